"""The command line: exit code 2 and a message naming the option for every bad argument."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from simulator import options
from simulator.cli import main
from tests.support.processes import write_config

UTC = dt.timezone.utc


@pytest.mark.parametrize("args, message", [
    (["--rate", "0"], "argument --rate: expected a positive number"),
    (["--rate", "fast"], "argument --rate: expected a number"),
    (["--review-fraction", "1.5"], "argument --review-fraction: expected a fraction from 0 to 1"),
    (["--accuracy", "0.9,0.8"], "argument --accuracy: expected one value per class (7), got 2"),
    (["--accuracy", "0.5:2"], "argument --accuracy: expected a fraction from 0 to 1"),
    (["--class-mix", "0,0,0,0,0,0,0"], "argument --class-mix: expected non-negative weights"),
    (["--class-mix=-1,1,1,1,1,1,1"], "argument --class-mix: expected non-negative weights"),
    (["--drift", "colour"], "argument --drift: invalid choice"),
    (["--drift", "accuracy", "--drift-at", "yesterday"], "argument --drift-at: expected seconds from the start"),
    (["--drift", "accuracy", "--drift-at", "60", "--drift-until", "30"], "argument --drift-until: expected the drift"),
    (["--drift-strength", "1"], "argument --drift-strength: expected a number strictly between 0 and 1"),
    (["--confidence-right", "0"], "argument --confidence-right: expected a number strictly between 0 and 1"),
    (["--history-days", "-1"], "argument --history-days: expected a whole number of zero or more"),
    (["--seed", "x"], "argument --seed: invalid int value"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["history", "--per-day", "10"], "the following arguments are required: --days"),
    (["history", "--days", "0", "--per-day", "10"], "argument --days: expected a whole number of at least 1"),
    (["history", "--days", "1", "--per-day", "10", "--end", "5"], "argument --end: expected an ISO time"),
])
def test_bad_arguments_exit_2_naming_the_option(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_bad_configuration_exits_2_naming_the_key(tmp_path, capsys):
    path = write_config(tmp_path / "config.toml", {"mongodb": {"databse": "x"}})
    assert main(["--config", str(path)]) == 2
    assert "unknown key mongodb.databse" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert main(["history", "--help"]) == 0
    assert "--per-day" in capsys.readouterr().out


def test_unreachable_mongodb_exits_1_after_waiting(tmp_path, monkeypatch, capsys):
    from clara.embedded_mongo import free_port

    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    assert main(["--wait", "0.5", "--duration", "1"]) == 1
    assert "MongoDB did not answer within 0.5 s" in capsys.readouterr().err


def test_accuracy_forms():
    assert options.accuracy("0.8", 3) == (0.8, 0.8, 0.8)
    assert options.accuracy("0.6:1", 3) == pytest.approx((0.6, 0.8, 1.0))
    assert options.accuracy("0.1,0.2,0.3", 3) == (0.1, 0.2, 0.3)


def test_class_mix_forms():
    assert options.class_mix("training", (2, 1)) == (2.0, 1.0)
    assert options.class_mix("training", (0, 0)) == (1.0, 1.0)
    assert options.class_mix("uniform", (2, 1)) == (1.0, 1.0)
    assert options.class_mix("3,1", (2, 1)) == (3.0, 1.0)


def test_when_is_seconds_or_an_iso_time():
    assert options.when("90") == 90.0
    assert options.when("2025-01-31T12:00:00") == dt.datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert options.when("2025-01-31T13:00:00+01:00") == dt.datetime(2025, 1, 31, 12, tzinfo=UTC)
    start = dt.datetime(2025, 1, 31, 11, 59, tzinfo=UTC)
    assert options.offset(options.when("2025-01-31T12:00:00Z"), start) == 60.0
    with pytest.raises(argparse.ArgumentTypeError):
        options.moment("60")
