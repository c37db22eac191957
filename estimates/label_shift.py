"""The true-class mix of all traffic under label shift: BBSE and RLLS, with bootstrap intervals.

Reference: the reviewed confusion of a labelled period, `confusion[t][p]` (rows true class, columns
predicted, as clara.metrics). C[i, j] = P(ŷ = i, y = j) = confusion[j][i] / n; p(y) is C's column sums,
p(ŷ) its row sums. Target: μ = the predicted-class mix of all predictions.

- BBSE (Lipton et al. 2018): solve C w = μ; clip w at 0; q(y) = w ⊙ p(y), renormalised.
- RLLS (Azizzadenesheli et al. 2019): θ = w − 1, b = μ − p(ŷ); minimise ‖C θ − b‖₂ + Δ ‖θ‖₂ with
  θ ≥ −1, Δ = α · 3 (2 log(2K/δ) / (3n) + sqrt(2 log(2K/δ) / n)) as in the authors' code (α = 0.01,
  δ = 0.05), by scipy's SLSQP on the norms smoothed by 1e-12.

Reviewers who prefer low confidences make the reviewed confusion unlike the reference's traffic. Pass
`confusion` per confidence bin, shape (B, K, K), with `bin_traffic` (all predictions per bin in the
reference) and each bin's reviews are weighted by traffic / reviews (over strata merged as in
`unreviewed.strata`); the bootstrap then resamples each bin on its own.

Intervals: a seeded bootstrap that redraws the reference's reviews (multinomial per bin) and the
target's predicted counts (multinomial), percentiles per class. Implied accuracy: Σ_j q_j recall_j,
recall from the reference (unchanged under pure label shift).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import minimize

from estimates.results import LEVEL, Estimate, EstimateError, Interval, undefined
from estimates.unreviewed import MIN_REVIEWS, strata

ASSUMPTION = ("label shift only: p(x | y) is the same in the reference and the target (each class looks "
              "the same and the model errs on it the same way), and the reference confusion matrix is invertible")
IMPLIED = ASSUMPTION + "; per-class recall is the reference's"
METHODS = ("bbse", "rlls")
MAX_CONDITION = 1000.0
MIN_LABEL_REVIEWS = 200
MIN_CLASS_REVIEWS = 5


@dataclasses.dataclass(frozen=True, slots=True)
class LabelShift:
    method: str
    assumption: str
    mix: tuple[float, ...] | None              # q(y): the target's true-class mix
    intervals: tuple[Interval, ...] | None     # per class, bootstrap
    weights: tuple[float, ...] | None          # w = q(y) / p(y), after clipping
    reference_mix: tuple[float, ...]           # p(y)
    predicted_mix: tuple[float, ...]           # μ, what the naive view shows
    condition: float | None                    # 2-norm condition number of C
    smallest_singular_value: float | None
    accuracy: Estimate                         # Σ q_j recall_j, with its bootstrap interval
    n: int                                     # reference reviews
    target: int                                # target predictions
    reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def defined(self) -> bool:
        return self.mix is not None


def label_shift(confusion, target_predicted, *, method: str = "bbse", bin_traffic=None,
                min_reviews: int = MIN_LABEL_REVIEWS, min_class_reviews: int = MIN_CLASS_REVIEWS,
                max_condition: float = MAX_CONDITION, draws: int = 500, seed: int = 0, level: float = LEVEL,
                alpha: float = 0.01, delta: float = 0.05, min_bin_reviews: int = MIN_REVIEWS) -> LabelShift:
    """BBSE or RLLS estimate of the target's true-class mix; refuses, with a reason, when it cannot be trusted."""
    if method not in METHODS:
        raise EstimateError(f"label-shift method {method!r}: expected one of {', '.join(METHODS)}")
    cells, weights = _reference(confusion, bin_traffic, min_bin_reviews)
    target = np.asarray(target_predicted, dtype=np.int64)
    k = cells.shape[-1]
    if target.shape != (k,) or (target < 0).any():
        raise EstimateError(f"target predicted counts: expected {k} counts of zero or more, got {target.shape}")
    n, total = int(cells.sum()), int(target.sum())
    assumption = ASSUMPTION
    joint = _joint(cells, weights)
    mu = target / total if total else np.zeros(k)
    p_y, p_yhat = (joint.sum(axis=0), joint.sum(axis=1)) if n else (np.zeros(k), np.zeros(k))
    refuse = _refusal(cells, n, total, min_reviews, min_class_reviews)
    condition = sigma = None
    if refuse is None:
        singular = np.linalg.svd(joint, compute_uv=False)
        sigma = float(singular[-1])
        condition = float(singular[0] / singular[-1]) if singular[-1] > 0 else math.inf
        if condition > max_condition:
            refuse = f"the reference confusion matrix is ill-conditioned (condition {condition:.3g} > {max_condition:g})"
    empty = undefined(f"{method}_implied_accuracy", IMPLIED, n, refuse or "")
    if refuse is not None:
        return LabelShift(method, assumption, None, None, None, _tuple(p_y), _tuple(mu), condition, sigma, empty,
                          n, total, refuse)
    rho = alpha * 3 * (2 * math.log(2 * k / delta) / (3 * n) + math.sqrt(2 * math.log(2 * k / delta) / n))
    w, clipped = _solve(joint, mu, method, rho)
    q = _mix(w, p_y)
    recall = np.diag(joint) / p_y
    rng = np.random.default_rng(seed)
    boot_q, boot_recall, dropped = _bootstrap(cells, weights, target, method, rho, draws, rng)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boot_q, [tail, 100 - tail], axis=0)
    accuracy_draws = np.einsum("dk,dk->d", boot_q, boot_recall)
    acc_low, acc_high = np.percentile(accuracy_draws, [tail, 100 - tail])
    value = float(q @ recall)
    accuracy = Estimate(f"{method}_implied_accuracy", IMPLIED, value,
                        Interval(float(min(acc_low, value)), float(max(acc_high, value)), level, "bootstrap"), n)
    notes = []
    if clipped:
        notes.append(f"{clipped} negative class weight(s) clipped to 0 and the mix renormalised")
    if dropped:
        notes.append(f"{dropped} of {draws} bootstrap draws had a singular matrix and were left out")
    if weights is not None:
        notes.append("reviews weighted by traffic / reviews per confidence bin")
    intervals = tuple(Interval(float(min(a, v)), float(max(b, v)), level, "bootstrap") for a, b, v in zip(low, high, q))
    return LabelShift(method, assumption, _tuple(q), intervals, _tuple(w), _tuple(p_y), _tuple(mu), condition, sigma,
                      accuracy, n, total, notes=tuple(notes))


def unreviewed_mix(mix, total: int, reviewed_true) -> tuple[float, ...] | None:
    """The true-class mix of the unreviewed part: all traffic's estimated counts less the reviewed ones."""
    reviewed_true = np.asarray(reviewed_true, dtype=np.float64)
    rest = total - reviewed_true.sum()
    if mix is None or rest <= 0:
        return None
    counts = np.clip(np.asarray(mix) * total - reviewed_true, 0, None)
    return _tuple(counts / counts.sum()) if counts.sum() > 0 else None


def _reference(confusion, bin_traffic, min_bin_reviews) -> tuple[np.ndarray, np.ndarray | None]:
    """Cells shaped (B, K, K) (B = 1 without bins) and per-bin weights (None: unweighted)."""
    cells = np.asarray(confusion, dtype=np.int64)
    if cells.ndim == 2:
        cells = cells[None]
    if cells.ndim != 3 or cells.shape[1] != cells.shape[2] or cells.shape[1] == 0 or (cells < 0).any():
        raise EstimateError(f"confusion: expected K x K (or bins x K x K) counts of zero or more, got {cells.shape}")
    if bin_traffic is None:
        return cells, None
    traffic = np.asarray(bin_traffic, dtype=np.int64)
    if traffic.shape != (cells.shape[0],):
        raise EstimateError(f"bin traffic: expected one count per bin ({cells.shape[0]}), got {traffic.shape}")
    reviewed = cells.sum(axis=(1, 2))
    correct = np.trace(cells, axis1=1, axis2=2)
    weights = np.zeros(len(reviewed))
    for g in strata(reviewed, correct, traffic, min_bin_reviews):
        weights[g.first:g.last + 1] = g.unreviewed / g.reviewed
    return cells, weights


def _joint(cells: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    return _joint_many(cells[None], weights)[0]


def _joint_many(cells: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """P(ŷ = i, y = j) for stacked (D, B, K, K) cells: transposed, weighted per bin, normalised."""
    w = np.ones(cells.shape[1]) if weights is None else weights
    joint = np.einsum("dbtp,b->dpt", cells.astype(np.float64), w)
    total = joint.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return joint / total


def _refusal(cells, n, total, min_reviews, min_class_reviews) -> str | None:
    if n < min_reviews:
        return f"too few reference reviews ({n} < {min_reviews})"
    if total == 0:
        return "no target predictions"
    per_class = cells.sum(axis=(0, 2))
    thin = [str(j) for j in np.flatnonzero(per_class < min_class_reviews)]
    if thin:
        return f"too few reference reviews of true class {', '.join(thin)} (< {min_class_reviews} each)"
    return None


def _solve(joint: np.ndarray, mu: np.ndarray, method: str, rho: float) -> tuple[np.ndarray, int]:
    if method == "bbse":
        w = np.linalg.solve(joint, mu)
    else:
        w = _rlls(joint, mu, rho)
    clipped = int((w < 0).sum())
    return np.clip(w, 0, None), clipped


def _rlls(joint: np.ndarray, mu: np.ndarray, rho: float) -> np.ndarray:
    b = mu - joint.sum(axis=1)
    eps = 1e-12

    def objective(theta):
        residual = joint @ theta - b
        r_norm, t_norm = math.sqrt(residual @ residual + eps), math.sqrt(theta @ theta + eps)
        return r_norm + rho * t_norm, joint.T @ residual / r_norm + rho * theta / t_norm

    k = len(mu)
    try:   # start from BBSE's clipped answer: a few iterations instead of dozens
        start = np.clip(np.linalg.solve(joint, mu), 0, None) - 1.0
    except np.linalg.LinAlgError:
        start = np.zeros(k)
    result = minimize(objective, start, jac=True, method="SLSQP", bounds=[(-1.0, None)] * k,
                      options={"ftol": 1e-10, "maxiter": 200})
    return 1.0 + result.x


def _mix(w: np.ndarray, p_y: np.ndarray) -> np.ndarray:
    q = w * p_y
    return q / q.sum() if q.sum() > 0 else p_y


def _bootstrap(cells, weights, target, method, rho, draws, rng) -> tuple[np.ndarray, np.ndarray, int]:
    """q(y) and per-class recall of each bootstrap draw (rows), and how many draws were singular."""
    b, k = cells.shape[0], cells.shape[-1]
    sample = np.zeros((draws, b, k, k), dtype=np.int64)
    for i in range(b):
        r = int(cells[i].sum())
        if r:
            sample[:, i] = rng.multinomial(r, cells[i].ravel() / r, size=draws).reshape(draws, k, k)
    mus = rng.multinomial(int(target.sum()), target / target.sum(), size=draws) / target.sum()
    joints = _joint_many(sample, weights)
    p_y = joints.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (p_y > 0).all(axis=1) & (np.abs(np.linalg.det(joints)) > 1e-300)
    joints, mus, p_y = joints[ok], mus[ok], p_y[ok]
    recalls = np.diagonal(joints, axis1=1, axis2=2) / p_y
    if method == "bbse":
        ws = np.clip(np.linalg.solve(joints, mus[..., None])[..., 0], 0, None)
        qs = ws * p_y
        qs = qs / qs.sum(axis=1, keepdims=True)
    else:
        qs = np.array([_mix(np.clip(_rlls(joint, mu, rho), 0, None), py) for joint, mu, py in zip(joints, mus, p_y)])
    return qs, recalls, int((~ok).sum())


def _tuple(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
