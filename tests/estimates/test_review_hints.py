"""Review hints: ranking by interval width × traffic share, and the reviews a ±2-point interval needs."""

from __future__ import annotations

import math

import pytest

from estimates.intervals import proportion_interval
from estimates.review_hints import bin_hints, class_hints, reviews_needed, reviews_needed_stratified
from estimates.unreviewed import post_stratified


def test_hints_rank_wide_intervals_over_much_traffic_first():
    hints = bin_hints([0, 10, 400, 5], [0, 5, 390, 5], [0, 300, 500, 1000])
    assert [h.index for h in hints] == [3, 1, 2, 0]
    assert hints[0].width == proportion_interval(5, 5).width and hints[0].traffic_share == 1000 / 1800
    assert hints[-1].score == 0
    unreviewed = bin_hints([0, 100], [0, 90], [50, 50])
    assert unreviewed[0].index == 0 and unreviewed[0].width == 1.0
    assert class_hints([10, 10], [9, 5], [100, 100])[0].kind == "predicted_class"


@pytest.mark.parametrize("accuracy", [0.5, 0.85, 0.97])
def test_reviews_needed_is_the_first_n_within_two_points(accuracy):
    needed = reviews_needed(accuracy, 300)
    n = needed.per_day

    def half(m):
        interval = proportion_interval(round(accuracy * m), m)
        return (interval.high - interval.low) / 2

    assert half(n) <= 0.02 < half(n - 1)
    assert needed.current_per_day == 300 and needed.method == "wilson"


def test_reviews_needed_at_half_a_point_is_near_the_textbook_figure():
    assert reviews_needed(0.5).per_day == pytest.approx(1.959964 ** 2 * 0.25 / 0.02 ** 2, rel=0.01)


def test_stratified_needs_scale_with_the_square_of_the_width():
    r, c, u = [100, 200, 100], [40, 170, 98], [100, 800, 2000]
    needed = reviews_needed_stratified(r, c, u)
    current = post_stratified(r, c, u, finite=False).interval
    assert needed.per_day == math.ceil(400 * ((current.high - current.low) / 2 / 0.02) ** 2)
    assert needed.method == "post_stratified" and needed.current_per_day == 400
    assert reviews_needed_stratified([1], [1], [10]).per_day is None
