"""The estimates scenario runs end to end on a small day and reports every estimator, goal and row."""

from __future__ import annotations

import json

from bench import estimates_bench


def test_scenario_reports_every_phase_estimator_and_goal(tmp_path, capsys):
    output = tmp_path / "estimates.json"
    assert estimates_bench.main(["--per-day", "800", "--days", "2", "--reference-days", "2",
                                 "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert list(result["phases"]) == ["stable", "confidence drop", "label shift"]
    for phase in result["phases"].values():
        assert set(phase["mae_points"]) == set(estimates_bench.ESTIMATORS)
        assert 0 <= phase["coverage"] <= 1
    assert {"goal", "value", "target", "met"} <= set(result["goals"][0])
    assert all(len(row) == 5 and row[0] == "estimates" for row in result["rows"])
    printed = capsys.readouterr().out
    assert "Mean absolute error" in printed and "Goals" in printed


def test_a_seed_gives_the_same_day():
    models = estimates_bench.behaviours(estimates_bench.parse_args([]))
    first = estimates_bench.simulate_day("stable", models["stable"], 300, 0.2, 1.0, "s")
    again = estimates_bench.simulate_day("stable", models["stable"], 300, 0.2, 1.0, "s")
    assert (first.reviewed == again.reviewed).all() and (first.confidence == again.confidence).all()
    assert 0.1 < first.reviewed.mean() < 0.3
