"""`python -m replay`: backfill a date range through the consumer's batches, or rebuild it (see --help).

Every argument is checked before anything is read or written: a bad one exits with code 2.
Exit codes: 0 done (or dry run), 1 MongoDB failed, 2 bad arguments or configuration (or a MongoDB
privilege CLARA's indexes need is missing, or a rebuild refused because it would remove the counts of
deleted documents: --allow-shrink), 130 interrupted (run the same command again to finish).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading

from pymongo.errors import PyMongoError

from clara.config import Config, load_config
from clara.db import Collections, connect, end_orphaned_transactions, ensure_indexes
from clara.errors import ConfigError, IndexPrivilegeError
from clara.logs import setup_logging
from consumer.migrate import migrate_logged_as
from consumer.outbox_queue import sink_names
from replay.counted import check_counted, shrink_refusal
from replay.predictions import prediction_shrink_refusal, predictions_in_range
from replay.errors import ReplayError, ShrinkRefused, UsageError
from replay.options import Options, TimeRange, parse_moment
from replay.plan import describe, hour_phase, select
from replay.progress import Progress
from replay.rebuild import REBUILD_GROUP_DOCUMENTS
from replay.run import Replay

log = logging.getLogger("replay")
KNOWN_SINKS = ("local", "whylabs")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replay", description="Backfill reviews missed by the consumer, or rebuild a range's rollups.",
        epilog="Dates and datetimes without an offset are in model.timezone. Exit codes: 0 done (or dry run), "
               "1 MongoDB failed, 2 bad arguments or configuration, or a rebuild refused because it would remove "
               "the counts of deleted documents (see --allow-shrink), 130 interrupted (run again to finish).")
    parser.add_argument("--config", help="path to config.toml (default: the repository's config.toml)")
    parser.add_argument("--from", dest="start", metavar="WHEN",
                        help="first prediction time: a date (the start of that day) or a datetime; default: the first")
    parser.add_argument("--to", dest="end", metavar="WHEN",
                        help="last prediction time: a date (inclusive: the whole day) or a datetime (exclusive); "
                             "default: no end")
    parser.add_argument("--rebuild", action="store_true",
                        help="recount the rollups of every whole hour in the range from the documents, replacing them")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="let --rebuild drop the counts of reviews whose document is gone (deleted, e.g. by a "
                             "TTL index) and their counted entries; without it such a rebuild exits with code 2 "
                             "before writing anything, since those reviews happened and their counts are history")
    parser.add_argument("--profiles", metavar="SINKS", default="",
                        help="re-send one profile per hour of the range to these sinks (comma-separated: "
                             "local, whylabs)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="documents per backfill batch and per rebuild transaction "
                             f"(default: consumer.catchup_batch_size; {REBUILD_GROUP_DOCUMENTS:,} for a rebuild)")
    parser.add_argument("--log-interval", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between progress log lines when not on a terminal (default: 10)")
    return parser


def parse_options(args: argparse.Namespace, config: Config) -> Options:
    """Validate the arguments against the configuration; raises UsageError naming the option."""
    zone = config.model.zone
    start = None if args.start is None else parse_moment("--from", args.start, zone, end=False)
    end = None if args.end is None else parse_moment("--to", args.end, zone, end=True)
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--from {args.start!r} is not before --to {args.end!r}")
    profiles = tuple(dict.fromkeys(name.strip() for name in args.profiles.split(","))) if args.profiles else ()
    for name in profiles:
        if name not in KNOWN_SINKS:
            raise UsageError(f"--profiles: unknown sink {name!r}; expected one or more of {', '.join(KNOWN_SINKS)}")
        if name not in sink_names(config):
            setting = "profiles.local_store = true" if name == "local" else \
                "WHYLABS_API_KEY, whylabs.org_id and whylabs.dataset_id"
            raise UsageError(f"--profiles: sink {name!r} is not enabled by the configuration (it needs {setting})")
    if args.allow_shrink and not args.rebuild:
        raise UsageError("--allow-shrink only applies to --rebuild (a backfill never removes a count)")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: expected at least 1")
    if args.log_interval <= 0:
        raise UsageError(f"--log-interval {args.log_interval}: expected a positive number of seconds")
    return Options(TimeRange(start, end), args.rebuild, profiles, args.dry_run, args.log_interval, args.allow_shrink,
                   args.batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the reason
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    setup_logging()
    try:
        config = load_config(args.config)
        options = parse_options(args, config)
    except (ConfigError, UsageError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.batch_size is not None:
        config = dataclasses.replace(config, consumer=dataclasses.replace(config.consumer,
                                                                          catchup_batch_size=args.batch_size))
    # Named sessions: a re-run ends the transaction a killed run of replay left open on this collection.
    app_name = f"clara-replay:{config.mongodb.database}.{config.mongodb.source_collection}"[:128]
    client = connect(config, appname=app_name)
    try:
        return _run(client, config, options, app_name)
    except ShrinkRefused as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PyMongoError as exc:
        log.error("MongoDB failed: %s: %s", type(exc).__name__, exc)
        return EXIT_FAILED
    except IndexPrivilegeError as exc:
        log.error("replay cannot start: %s", exc)
        return EXIT_USAGE
    except ReplayError as exc:
        log.error("replay failed: %s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.warning("aborted: the open batch was rolled back; run the same command again to finish")
        return EXIT_INTERRUPTED
    finally:
        client.close()


def _run(client, config: Config, options: Options, app_name: str) -> int:
    cols = Collections.of(client, config)
    if options.dry_run:
        print("dry run: nothing is changed", *describe(select(cols, config, options), config), sep="\n")
        return EXIT_OK
    # Read-only, before anything is written (the indexes and the migration included): a rebuild never
    # silently removes the counts of reviews whose document was deleted.
    counted = check_counted(cols, phase) if options.rebuild and (phase := hour_phase(options)) else None
    if counted is not None and counted.gone_reviews and not options.allow_shrink:
        raise ShrinkRefused(shrink_refusal(counted.gone, config))
    predictions = predictions_in_range(cols, phase) if counted is not None else None
    if predictions is not None and predictions.lost and not options.allow_shrink:
        raise ShrinkRefused(prediction_shrink_refusal(predictions.lost))
    ensure_indexes(cols)
    if ended := end_orphaned_transactions(client, app_name):
        log.warning("ended %d transaction(s) an interrupted replay left open", ended)
    if migrated := migrate_logged_as(client, cols, config):
        log.info("migrated %d logged_as snapshots into %s", migrated, cols.counted.name)
    selection = select(cols, config, options, None if migrated else counted, predictions)
    for line in describe(selection, config):
        log.info("%s", line)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stop)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = Replay(client, cols, config, options, selection, stop,
                         Progress(selection.total, log_interval=options.log_interval)).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(*summary.lines(), sep="\n")
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def _stopper(stop: threading.Event):
    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: abort now; the open transaction is rolled back
        log.warning("%s received: finishing the current batch (again to abort it)", signal.Signals(signum).name)
        stop.set()
    return request_stop
