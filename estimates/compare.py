"""Whether two proportions differ: B's accuracy (or a class's recall) against A's, on independent reviews.

Method. The pooled two-proportion z-test: with p = (k_a + k_b) / (n_a + n_b),

    z = (k_b / n_b - k_a / n_a) / sqrt(p (1 - p) (1 / n_a + 1 / n_b)),   two-sided p-value = 2 (1 - Phi(|z|)),

which is Pearson's chi-square test of the 2 x 2 table without continuity correction (z^2 = chi^2; the tests
check both against scipy.stats.chi2_contingency). Its normal approximation needs enough of each outcome:
when an expected count of the table (row total x column total / n) is below MIN_EXPECTED, Fisher's exact test
(scipy.stats.fisher_exact, conditional on the margins, conservative) is used instead and the result says
so. Chosen over Barnard's exact test, which is more powerful on small tables but costs a numerical search
per table (tens of milliseconds), where a comparison view runs one test per class.

Assumption: each side's reviews are independent draws from its predictions, the two samples independent of
each other (no review counted on both sides), and reviewers choose which predictions to review the same way
on both sides: a version whose reviewers favour easy images looks better than it is, and no test undoes that.

Several classes at once. Each class's recall is tested on its own; with K tests some are "significant" by
chance, so `compare_each` also gives Benjamini-Hochberg adjusted p-values
(scipy.stats.false_discovery_control) and judges significance on those.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy.stats import false_discovery_control, fisher_exact, norm

from estimates.intervals import proportion
from estimates.results import Estimate, EstimateError

Z_TEST = "two-proportion z-test (pooled)"
FISHER = "Fisher's exact test"
ASSUMPTION = ("each side's reviews are independent draws from its own predictions, the two sides independent, "
              "and reviewers choosing what to review the same way on both sides")
MIN_EXPECTED = 5
ALPHA = 0.05


@dataclasses.dataclass(frozen=True, slots=True)
class Difference:
    """B's proportion against A's: each with its Wilson interval, the difference b - a, and the test."""

    method: str
    assumption: str
    a: Estimate
    b: Estimate
    difference: float | None
    statistic: float | None      # z for the z-test, the odds ratio for Fisher's test
    p_value: float | None
    alpha: float
    adjusted_p_value: float | None = None   # Benjamini-Hochberg, when tested in a family (compare_each)
    reason: str | None = None

    @property
    def significant(self) -> bool | None:
        """Whether the difference is significant at `alpha` (on the adjusted p-value where there is one)."""
        p = self.p_value if self.adjusted_p_value is None else self.adjusted_p_value
        return None if p is None else p < self.alpha


def two_proportions(k_a: int, n_a: int, k_b: int, n_b: int, *, alpha: float = ALPHA) -> Difference:
    """Test k_b / n_b against k_a / n_a (see the module docstring); undefined when a side has no reviews or
    every review on both sides has the same outcome (nothing can differ)."""
    for k, n in ((k_a, n_a), (k_b, n_b)):
        if not (isinstance(k, int) and isinstance(n, int)) or k < 0 or n < 0 or k > n:
            raise EstimateError(f"counts {k} of {n}: expected whole numbers with 0 <= k <= n")
    if not 0.0 < alpha < 1.0:
        raise EstimateError(f"alpha {alpha!r}: expected a number strictly between 0 and 1")
    a, b = proportion(k_a, n_a), proportion(k_b, n_b)
    if not n_a or not n_b:
        return Difference(Z_TEST, ASSUMPTION, a, b, None, None, None, alpha,
                          reason="no reviews on " + ("either side" if not n_a and not n_b else "one side"))
    difference = k_b / n_b - k_a / n_a
    hits, n = k_a + k_b, n_a + n_b
    if hits in (0, n):
        return Difference(Z_TEST, ASSUMPTION, a, b, difference, None, None, alpha,
                          reason="every review has the same outcome on both sides")
    if min(side * total / n for side in (n_a, n_b) for total in (hits, n - hits)) < MIN_EXPECTED:
        odds, p = fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])
        return Difference(FISHER, ASSUMPTION + f"; an expected count below {MIN_EXPECTED}, so exact, not "
                          "the normal approximation", a, b, difference, _finite(odds), float(p), alpha)
    pooled = hits / n
    z = difference / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return Difference(Z_TEST, ASSUMPTION, a, b, difference, z, float(2 * norm.sf(abs(z))), alpha)


def compare_each(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]], *,
                 alpha: float = ALPHA) -> list[Difference]:
    """`two_proportions` per item (a class's (correct, reviews) on each side), with Benjamini-Hochberg adjusted
    p-values over the items that could be tested."""
    if len(a) != len(b):
        raise EstimateError(f"{len(a)} items on one side and {len(b)} on the other")
    found = [two_proportions(k_a, n_a, k_b, n_b, alpha=alpha) for (k_a, n_a), (k_b, n_b) in zip(a, b)]
    tested = [i for i, one in enumerate(found) if one.p_value is not None]
    if not tested:
        return found
    adjusted = false_discovery_control([found[i].p_value for i in tested], method="bh")
    for i, p in zip(tested, adjusted):
        found[i] = dataclasses.replace(found[i], adjusted_p_value=float(p))
    return found


def verdict(found: Difference, name_a: str, name_b: str, what: str = "accuracy") -> str:
    """The comparison in words: which side is higher, by how much, and whether that is significant."""
    if found.difference is None:
        return f"{what}: no comparison ({found.reason})"
    a, b = found.a.value, found.b.value
    points = 100 * found.difference
    if found.p_value is None:
        return f"{what}: {name_b} {b:.1%} and {name_a} {a:.1%}, not testable ({found.reason})"
    if abs(points) < 0.05:   # what one decimal cannot tell apart is not "higher"
        head = f"{what}: {name_b} and {name_a} are level ({b:.1%} and {a:.1%}, {points:+.2f} points)"
    else:
        better, worse = (name_b, name_a) if found.difference > 0 else (name_a, name_b)
        head = (f"{what}: {better} is higher than {worse} ({max(a, b):.1%} vs {min(a, b):.1%}, "
                f"{abs(points):.1f} points)")
    p_name, p = ("adjusted p", found.adjusted_p_value) if found.adjusted_p_value is not None else ("p", found.p_value)
    judged = "significant" if found.significant else "not significant"
    return f"{head}; the difference is {judged} at {found.alpha:g} ({found.method}, {p_name} = {p:.3g})"


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
