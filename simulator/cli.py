"""The command line: `python -m simulator [live] ...` and `python -m simulator history ...`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import random
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from clara.config import Config, load_config
from clara.db import Collections, connect
from clara.errors import ConfigError
from simulator import options
from simulator.connection import wait_for_mongo
from simulator.errors import SimulatorError
from simulator.generator import Drift, Settings
from simulator.history import history_documents, write_history
from simulator.model import DRIFT_KINDS, Behaviour
from simulator.traffic import LiveTraffic, utcnow

log = logging.getLogger("simulator")
MODES = ("live", "history")
LIVE_REVIEW_DELAY = 5.0            # seconds: scaled down so a demo dashboard fills quickly
HISTORY_REVIEW_DELAY = 2 * 3600.0
T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="configuration file (default: config.toml)")
    common.add_argument("--seed", type=int, help="random seed; the same seed writes the same documents "
                        "(default: a random one, logged)")
    model = common.add_argument_group("the model")
    model.add_argument("--class-mix", default="training", metavar="MIX",
                       help="true classes: 'training' (model.training_counts), 'uniform', or one weight per "
                            "class, comma-separated (default: training)")
    model.add_argument("--accuracy", default="0.7:0.95", metavar="ACC",
                       help="probability a prediction is right, per true class: one number, LOW:HIGH spread "
                            "from the first class to the last, or one per class comma-separated (default: 0.7:0.95)")
    model.add_argument("--confidence-right", type=options.open_fraction, default=0.85, metavar="MEAN",
                       help="mean confidence of right predictions (default: 0.85)")
    model.add_argument("--confidence-wrong", type=options.open_fraction, default=0.55, metavar="MEAN",
                       help="mean confidence of wrong predictions (default: 0.55)")
    model.add_argument("--confidence-concentration", type=options.positive, default=20.0, metavar="K",
                       help="Beta concentration of confidences; higher is tighter (default: 20)")
    reviews = common.add_argument_group("reviews and bad input")
    reviews.add_argument("--review-fraction", type=options.fraction, default=0.8, metavar="F",
                         help="share of predictions that get reviewed (default: 0.8)")
    reviews.add_argument("--review-delay", type=options.positive, metavar="SECONDS",
                         help="mean delay from prediction to review, exponentially distributed "
                              "(default: 5 live, 7200 history)")
    reviews.add_argument("--legacy-fraction", type=options.fraction, default=0.02, metavar="F",
                         help="share of reviews written in the older bool form (default: 0.02)")
    reviews.add_argument("--bad-fraction", type=options.fraction, default=0.0, metavar="F",
                         help="share of malformed documents: a missing field, an unknown class id, a confidence "
                              "out of range, a string timestamp (default: 0)")
    drift = common.add_argument_group("drift")
    drift.add_argument("--drift", choices=DRIFT_KINDS, help="switch on a drift (default: none)")
    drift.add_argument("--drift-at", type=options.when, default=0.0, metavar="WHEN",
                       help="when the drift starts: seconds from the start, or an ISO time (default: 0)")
    drift.add_argument("--drift-until", type=options.when, metavar="WHEN",
                       help="when the drift stops: seconds from the start, or an ISO time (default: never)")
    drift.add_argument("--drift-strength", type=options.open_fraction, default=0.5, metavar="S",
                       help="how far the drift moves, strictly between 0 and 1 (default: 0.5)")

    parser = argparse.ArgumentParser(prog="python -m simulator", description=(
        "Simulated traffic for CLARA Monitor: prediction documents in the model service's shape, written to "
        "mongodb.database / mongodb.source_collection, and their reviews. Without a mode: live."))
    modes = parser.add_subparsers(dest="mode", metavar="{live,history}")
    live = modes.add_parser("live", parents=[common], help="write predictions at a steady rate until stopped",
                            description="Write predictions at a steady rate and their reviews after a delay.")
    live.add_argument("--rate", type=options.positive, default=5.0, metavar="N",
                      help="predictions per second (default: 5)")
    live.add_argument("--duration", type=options.positive, metavar="SECONDS",
                      help="stop after this long (default: run until Ctrl-C or SIGTERM)")
    live.add_argument("--history-days", type=options.whole, default=0, metavar="DAYS",
                      help="if the collection is empty, first write this many days of history (default: 0)")
    live.add_argument("--history-per-day", type=options.count, default=2000, metavar="N",
                      help="documents per day of that history (default: 2000)")
    live.add_argument("--wait", type=options.non_negative, default=60.0, metavar="SECONDS",
                      help="how long to wait for MongoDB to come up (default: 60)")
    live.add_argument("--progress-every", type=options.positive, default=10.0, metavar="SECONDS",
                      help="how often to log counts (default: 10)")
    history = modes.add_parser("history", parents=[common], help="write days of history in bulk, then exit",
                               description="Write N days of history fast; reviewed documents carry their review.")
    history.add_argument("--days", type=options.count, required=True, help="days of history")
    history.add_argument("--per-day", type=options.count, required=True, metavar="N", help="documents per day")
    history.add_argument("--end", type=options.moment, metavar="TIME",
                         help="end of the history, ISO time (default: the start of the current UTC hour); "
                              "with --seed and --end the documents are identical on every run")
    history.add_argument("--chunk", type=options.count, default=5000, metavar="N",
                         help="documents per insert_many (default: 5000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*MODES, "-h", "--help"):
        argv.insert(0, "live")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"python -m simulator: error: {exc}", file=sys.stderr)
        return 2
    try:
        return run_history(args, config) if args.mode == "history" else run_live(args, config)
    except ValueError as exc:  # a combination of options the parser could not check on its own
        print(f"{parser.prog} {args.mode}: error: {exc}", file=sys.stderr)
        return 2
    except SimulatorError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # history mode stops where it is; what was inserted stays
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def settings_from(args: argparse.Namespace, config: Config, start: dt.datetime, review_delay: float,
                  prefix: str) -> Settings:
    """The generator's settings from the options; ValueError names the option that does not fit."""
    mix = _option("--class-mix", lambda: options.class_mix(args.class_mix, config.model.training_counts))
    accuracy = _option("--accuracy", lambda: options.accuracy(args.accuracy, config.n_classes))
    behaviour = Behaviour(mix, accuracy, args.confidence_right, args.confidence_wrong, args.confidence_concentration)
    drift = None
    if args.drift:
        drift = _option("--drift-until", lambda: Drift(
            args.drift, options.offset(args.drift_at, start), options.offset(args.drift_until, start),
            args.drift_strength))
    return Settings(behaviour, args.review_fraction, args.review_delay or review_delay, args.legacy_fraction,
                    args.bad_fraction, drift, prefix)


def _option(name: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"argument {name}: {exc}") from exc


def _seed(args: argparse.Namespace) -> int:
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
        log.info("seed %d (pass --seed %d to repeat this run)", args.seed, args.seed)
    return args.seed


def run_history(args: argparse.Namespace, config: Config) -> int:
    end = args.end or utcnow().replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=args.days)
    settings = settings_from(args, config, start, HISTORY_REVIEW_DELAY, "hist")
    seed = _seed(args)
    total = args.days * args.per_day
    client = connect(config)
    try:
        wait_for_mongo(client, config.mongodb.server_selection_timeout_seconds, threading.Event())
        source = Collections.of(client, config).source
        print(f"history: {total} documents from {start.isoformat()} to {end.isoformat()} into "
              f"{config.mongodb.database}.{config.mongodb.source_collection}", flush=True)
        written = write_history(source, history_documents(settings, seed, end, args.days, args.per_day),
                                args.chunk, lambda done: print(f"history: {done}/{total} ({done / total:.0%})",
                                                               flush=True))
    finally:
        client.close()
    print(f"history: wrote {written} documents", flush=True)
    return 0


def run_live(args: argparse.Namespace, config: Config) -> int:
    start = utcnow()
    settings = settings_from(args, config, start, LIVE_REVIEW_DELAY, "live")
    seed = _seed(args)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    client = connect(config)
    try:
        if not wait_for_mongo(client, args.wait, stop):
            return 0
        source = Collections.of(client, config).source
        if args.history_days and source.find_one({}, {"_id": 1}) is None:
            prefill = dataclasses.replace(settings, review_delay=HISTORY_REVIEW_DELAY, drift=None,
                                          filename_prefix="hist")
            log.info("empty collection: writing %d days of history first", args.history_days)
            written = write_history(source, history_documents(prefill, f"{seed}/history", start,
                                                              args.history_days, args.history_per_day))
            log.info("history: wrote %d documents", written)
        log.info("live: %g predictions/s into %s.%s", args.rate, config.mongodb.database,
                 config.mongodb.source_collection)
        traffic = LiveTraffic(source, settings, seed, args.rate, progress_every=args.progress_every)
        stats = traffic.run(stop, args.duration)
    finally:
        client.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("stopped: %d predictions, %d reviews written; %d reviews were still to come",
             stats.predictions, stats.reviews, stats.pending_reviews)
    return 0
