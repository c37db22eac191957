"""Arguments: dates in the configured zone, inclusive date ends, and exit code 2 before touching anything."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest

from replay.cli import main
from replay.errors import UsageError
from replay.options import TimeRange, parse_moment
from replay.progress import Progress
from tests.replay.conftest import snapshot
from tests.support.documents import predictions

UTC = dt.timezone.utc
MADRID = ZoneInfo("Europe/Madrid")


def test_dates_are_local_days_and_a_date_end_includes_its_day():
    assert parse_moment("--from", "2026-03-01", MADRID, end=False) == dt.datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert parse_moment("--to", "2026-03-01", MADRID, end=True) == dt.datetime(2026, 3, 1, 23, tzinfo=UTC)
    # the day the clocks go forward is 23 hours long
    assert parse_moment("--to", "2026-03-29", MADRID, end=True) == dt.datetime(2026, 3, 29, 22, tzinfo=UTC)


def test_datetimes_take_the_zone_unless_they_carry_an_offset():
    assert parse_moment("--from", "2026-07-01T10:30", MADRID, end=False) == dt.datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert parse_moment("--to", "2026-07-01 10:30", MADRID, end=True) == dt.datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert parse_moment("--from", "2026-07-01T10:30+00:00", MADRID, end=False) == dt.datetime(2026, 7, 1, 10, 30,
                                                                                             tzinfo=UTC)
    assert parse_moment("--from", "2026-07-01T10:30Z", MADRID, end=False) == dt.datetime(2026, 7, 1, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2026-02-30", "2026-03-01T25:00", "01/03/2026", ""])
def test_unparseable_moments_name_the_option(text):
    with pytest.raises(UsageError, match="--from .*expected a date"):
        parse_moment("--from", text, MADRID, end=False)


def test_a_range_splits_into_whole_hours_and_edges():
    at = lambda h, m=0: dt.datetime(2026, 7, 1, h, m, tzinfo=UTC)  # noqa: E731
    span = TimeRange(at(9, 30), at(12, 15))
    assert span.full_hours() == TimeRange(at(10), at(12))
    assert span.edges() == [TimeRange(at(9, 30), at(10)), TimeRange(at(12), at(12, 15))]
    assert TimeRange(at(9, 10), at(9, 50)).full_hours() is None
    assert TimeRange(at(9), at(11)).edges() == []
    assert TimeRange().query() == {} and TimeRange().full_hours() == TimeRange()
    assert span.clip(at(9)) == TimeRange(at(9, 30), at(10))


def test_progress_shows_done_total_rate_and_eta():
    clock = iter([0.0, 10.0, 10.0, 10.0]).__next__
    progress = Progress(1000, log_interval=100, now=clock)
    progress.advance(250)
    text, fraction = progress.line()
    assert text == "250/1,000 (25.0%), 25 docs/s, ETA 0:00:30" and fraction == 0.25


def test_progress_is_a_bar_on_a_terminal_and_log_lines_elsewhere(caplog):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = [0.0]
    terminal = Terminal()
    bar = Progress(40, stream=terminal, now=lambda: clock[0])
    clock[0] = 1.0
    bar.advance(10)
    bar.close()
    assert terminal.getvalue().startswith("\rreplay [#######.....................] 10/40 (25.0%), 10 docs/s, ETA 0:00:03")
    assert terminal.getvalue().endswith("\n")
    clock[0] = 0.0
    with caplog.at_level("INFO", logger="replay"):
        lines = Progress(40, stream=io.StringIO(), log_interval=2, now=lambda: clock[0])
        for _ in range(4):
            clock[0] += 1
            lines.advance(10)
    assert [r.getMessage() for r in caplog.records] == ["progress: 20/40 (50.0%), 10 docs/s, ETA 0:00:02",
                                                        "progress: 40/40 (100.0%), 10 docs/s, ETA 0:00:00"]


BAD_ARGUMENTS = [
    (["--from", "2026-13-01"], "--from '2026-13-01': expected a date"),
    (["--to", "next week"], "--to 'next week': expected a date"),
    (["--from", "2026-03-02", "--to", "2026-03-01"], "is not before --to"),
    (["--from", "2026-03-01T12:00", "--to", "2026-03-01T12:00"], "is not before --to"),
    (["--profiles", "local,s3"], "unknown sink 's3'"),
    (["--rebuild", "--profiles", "whylabs"], "sink 'whylabs' is not enabled"),
    (["--batch-size", "0"], "--batch-size 0: expected at least 1"),
    (["--allow-shrink"], "--allow-shrink only applies to --rebuild"),
    (["--since", "2026-03-01"], "unrecognized arguments: --since"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_arguments_exit_2_before_touching_anything(argv, message, collections, config_file, replay_env, capsys):
    collections.source.insert_many(predictions(20, start=dt.datetime(2026, 3, 1, tzinfo=UTC)))
    before = snapshot(collections)
    assert main(["--config", config_file(), *argv]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(collections) == before


def test_a_bad_config_file_exits_2(tmp_path, replay_env, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[consumer]\ncatchup_batch_size = 'lots'\n")
    assert main(["--config", str(path)]) == 2
    assert "consumer.catchup_batch_size = 'lots': expected an integer" in capsys.readouterr().err
