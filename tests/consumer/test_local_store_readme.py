"""The README's local-store snippet, run as written against a store the drain wrote: the day it merges carries
the classification metrics scikit-learn computes on the rows."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

from sklearn.metrics import confusion_matrix

from consumer.outbox_queue import HourRows
from consumer.outbox_queue import outbox_entry as new_entry
from consumer.sinks import LocalProfileStore, deliver_pending

README = Path(__file__).resolve().parents[2] / "README.md"
UTC = dt.timezone.utc
DAY = dt.datetime(2026, 3, 10, tzinfo=UTC)   # the day the snippet reads
CLASSES = ["SIGRE", "blue", "brown", "green", "green_point", "grey", "yellow"]


def readme_snippet() -> str:
    section = README.read_text().split("### Reading the local store with whylogs", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def random_rows(rnd: random.Random, n: int, classes: range) -> HourRows:
    """`n` reviews: mostly right, one in eight rejected without a class, one in ten without a score."""
    predicted = [rnd.choice(classes) for _ in range(n)]
    truth = [None if rnd.random() < 0.125 else p if rnd.random() < 0.7 else rnd.choice(classes) for p in predicted]
    return HourRows(predicted, truth, [None if rnd.random() < 0.1 else rnd.random() for _ in range(n)],
                    [rnd.uniform(1.0, 9000.0) for _ in range(n)])


def test_the_readme_snippet_reads_a_day_with_the_confusion_matrix_scikit_learn_computes(
        tmp_path, monkeypatch, make_config, collections):
    config = make_config(profiles={"local_store_dir": str(tmp_path / "var" / "profiles"),
                                   "local_store_interval_seconds": 0.0})
    rnd = random.Random(14)
    hours = [DAY - dt.timedelta(hours=1)] + [DAY + dt.timedelta(hours=h) for h in (0, 3, 9, 17, 23, 24)]
    reviews: dict[dt.datetime, HourRows] = {hour: HourRows() for hour in hours}
    for wave in range(3):   # three drains: later entries are merged into the hour files the earlier ones wrote
        docs = []
        for i, hour in enumerate(hours):
            # Hours see different classes (the 03:00 hour only three), so the day merges unequal matrices.
            rows = random_rows(rnd, rnd.randint(5, 60), range(3) if hour.hour == 3 else range(len(CLASSES)))
            reviews[hour].extend(rows)
            docs.append(new_entry(f"w{wave}-{i}", hour, rows, ["local"], DAY))
        collections.outbox.insert_many(docs)
        result = deliver_pending(collections, config, [LocalProfileStore(config.profiles.local_store_dir)],
                                 now=DAY + dt.timedelta(days=2))
        assert result.delivered == {"local": len(hours)} and not result.dead

    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_snippet(), str(README), "exec"), namespace)   # noqa: S102 - the README's own code

    day_rows = HourRows()
    for hour in hours:
        if hour.date() == DAY.date():
            day_rows.extend(reviews[hour])
    labelled = [(p, t) for p, t in zip(day_rows.predicted, day_rows.truth) if t is not None]
    labels = namespace["labels"]
    assert labels == sorted(CLASSES)
    y_true, y_pred = [CLASSES[t] for _, t in labelled], [CLASSES[p] for p, _ in labelled]
    expected = confusion_matrix(y_true, y_pred, labels=labels)   # rows: true class, columns: predicted
    assert namespace["counts"] == expected.T.tolist()
    assert namespace["rejected"] == day_rows.truth.count(None) > 0
    assert namespace["accuracy"] == sum(p == t for p, t in labelled) / len(day_rows)

    day, hour = namespace["day"], namespace["hour"]
    assert day.get_column("score").to_summary_dict()["counts/n"] == len(day_rows)
    assert day.dataset_timestamp == DAY
    nine = reviews[DAY + dt.timedelta(hours=9)]
    assert hour.dataset_timestamp == DAY + dt.timedelta(hours=9)
    assert hour.get_column("target").get_metric("counts").n.value == len(nine)
    matrix = hour.model_performance_metrics.confusion_matrix
    # Complete, as the README says to check: the matrix's total plus the rejections are the hour's rows.
    assert sum(cell.n for cell in matrix.confusion_matrix.values()) + nine.truth.count(None) == len(nine)
