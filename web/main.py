"""Command line: `python -m web [--config PATH]` serves the dashboard on web.host and web.port.

Under PORT (a Procfile platform's convention) it listens on every interface unless HOST names one.
Wrong MongoDB credentials stop start-up with one line (exit 2); an unreachable MongoDB does not: the
dashboard starts, /healthz answers 503 and the API recovers when MongoDB does.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pymongo.errors import PyMongoError

from clara.access import check_access
from clara.config import ALL_INTERFACES, Config, load_config
from clara.db import Collections, connect
from clara.errors import AccessDenied, ClaraError
from clara.logs import setup_logging
from web import assets, server
from web.app import create_app

log = logging.getLogger("web")


def _check_mongodb(config: Config) -> None:
    """Raise AccessDenied when MongoDB refuses the credentials; only warn when it cannot be reached."""
    client = connect(config)
    try:
        check_access(Collections.of(client, config))
    except PyMongoError as exc:
        log.warning("MongoDB is unreachable at start (%s); serving anyway: the API answers 503 until it is back",
                    type(exc).__name__)
        log.debug("MongoDB access check failed", exc_info=True)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web", description="Serve the CLARA Monitor dashboard.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: config.toml)")
    args = parser.parse_args(argv)
    try:
        setup_logging()
        config = load_config(args.config)
        if assets.missing():
            log.info("the dashboard's files are missing; fetching them (python -m web.assets)")
            assets.install()
        _check_mongodb(config)
        app = create_app(config)
    except AccessDenied as exc:
        log.error("dashboard cannot start: %s", exc)
        return 2
    except ClaraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host, port = config.web.host, config.web.port
    where = " (every interface)" if host == ALL_INTERFACES else ""
    server.run(app, host, port, on_ready=lambda: log.info("dashboard on http://%s:%d/%s (config %s)", host, port,
                                                              where, config.source))
    return 0
