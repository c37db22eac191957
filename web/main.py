"""Command line: `python -m web [--config PATH]` serves the dashboard on web.host and web.port ($PORT)."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from clara.config import load_config
from clara.errors import ClaraError
from web.app import create_app

log = logging.getLogger("web")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web", description="Serve the CLARA Monitor dashboard.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: config.toml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        app = create_app(config)
    except ClaraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("dashboard on http://%s:%d/ (config %s)", config.web.host, config.web.port, config.source)
    web.run_app(app, host=config.web.host, port=config.web.port, print=None, shutdown_timeout=5)
    return 0
