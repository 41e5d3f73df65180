"""Pareto-front metrics for multi-objective returns, as the MORL community computes them.

Every function takes value vectors ``[num_points, num_objectives]`` (host-side NumPy;
these run once per evaluation, not inside a jitted step) and treats every objective as
one to **maximise**, as returns are. The definitions follow morl-baselines:

* :func:`hypervolume`: the volume dominated by the front and bounded by a reference
  point that every point must beat (pymoo's exact algorithms do the work).
* :func:`expected_utility` (EUM): the mean, over a set of preference weights, of the
  best linear utility ``w . v`` the front offers; :func:`equally_spaced_weights` gives
  the Riesz s-energy weights morl-baselines evaluates it with.
* :func:`cardinality`: how many points are non-dominated.
* :func:`sparsity` (PGMORL): the mean squared gap between neighbours along each
  objective; lower is denser.
* :func:`spacing` (Schott): how even the gaps between nearest neighbours are; 0 for
  an evenly spaced front.

pymoo is the ``mo`` extra (``pip install 'marl-lab[mo]'``); only the hypervolume and
the weights need it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FRONT_METRICS",
    "cardinality",
    "equally_spaced_weights",
    "expected_utility",
    "front_metrics",
    "hypervolume",
    "non_dominated",
    "pareto_front",
    "require_pymoo",
    "simplex_grid",
    "sparsity",
    "spacing",
]

#: The names :func:`front_metrics` returns, the hypervolume first (the headline).
FRONT_METRICS = ("hypervolume", "eum", "cardinality", "sparsity", "spacing")


def _points(values: np.ndarray | Sequence) -> np.ndarray:
    points = np.asarray(values, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(
            f"value vectors must be [num_points, num_objectives], got shape {points.shape}"
        )
    if not np.isfinite(points).all():
        raise ValueError("value vectors must be finite")
    return points


def require_pymoo() -> None:
    """Raises a one-line ``ImportError`` when pymoo (the ``mo`` extra) is missing."""
    try:
        import pymoo  # noqa: F401
    except ImportError:
        raise ImportError(
            "multi-objective metrics need pymoo: pip install 'marl-lab[mo]'"
        ) from None


def non_dominated(values: np.ndarray | Sequence) -> np.ndarray:
    """A bool mask ``[num_points]``: True where no other point is at least as good in
    every objective and better in one. Of duplicate points, the first is kept."""
    points = _points(values)
    num_points = points.shape[0]
    if num_points == 0:
        return np.zeros(0, bool)
    at_least = (points[:, None, :] >= points[None, :, :]).all(-1)  # [other, point]
    better = (points[:, None, :] > points[None, :, :]).any(-1)
    dominated = (at_least & better).any(0)
    # Equal points: keep the first of each group.
    equal = (points[:, None, :] == points[None, :, :]).all(-1)
    earlier_copy = np.tril(equal, -1).any(1)
    return ~dominated & ~earlier_copy


def pareto_front(values: np.ndarray | Sequence) -> np.ndarray:
    """The non-dominated points, ``[num_front, num_objectives]``, in their input order."""
    points = _points(values)
    return points[non_dominated(points)]


def hypervolume(values: np.ndarray | Sequence, reference: np.ndarray | Sequence) -> float:
    """The volume dominated by ``values`` and bounded below by ``reference``.

    Points that do not beat the reference in every objective add nothing (as in
    pymoo and morl-baselines). ``reference`` is a per-env setting: a vector every
    reasonable policy beats, e.g. each objective's worst return.
    """
    points = _points(values)
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != (points.shape[1],):
        raise ValueError(
            f"the hypervolume's reference point has {reference.shape[0] if reference.ndim else 0}"
            f" objectives, the values {points.shape[1]}"
        )
    beyond = points[(points > reference).all(1)]
    if beyond.shape[0] == 0:
        return 0.0
    require_pymoo()
    from pymoo.indicators.hv import HV

    # pymoo minimises: negate both the points and the reference.
    return float(HV(ref_point=-reference)(-pareto_front(beyond)))


def equally_spaced_weights(num_objectives: int, num_weights: int, seed: int = 42) -> np.ndarray:
    """``num_weights`` preference vectors on the simplex, spread by Riesz s-energy
    (pymoo's ``energy`` reference directions; morl-baselines' default seed 42)."""
    if num_objectives < 1 or num_weights < 1:
        raise ValueError("num_objectives and num_weights must be positive")
    return np.array(_energy_weights(num_objectives, num_weights, seed))


@functools.lru_cache(maxsize=32)
def _energy_weights(num_objectives: int, num_weights: int, seed: int) -> tuple:
    # Cached: pymoo's optimisation takes seconds, and every evaluation asks again.
    if num_objectives == 1:
        return tuple((1.0,) for _ in range(num_weights))
    require_pymoo()
    from pymoo.util.ref_dirs import get_reference_directions

    weights = get_reference_directions("energy", num_objectives, num_weights, seed=seed)
    return tuple(map(tuple, weights.tolist()))


def expected_utility(
    values: np.ndarray | Sequence, weights: np.ndarray | Sequence | None = None
) -> float:
    """EUM: the mean over ``weights [W, num_objectives]`` of ``max_v w . v``; by default
    100 :func:`equally_spaced_weights`."""
    points = _points(values)
    if weights is None:
        weights = equally_spaced_weights(points.shape[1], 100)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != points.shape[1]:
        raise ValueError(
            f"weights must be [num_weights, {points.shape[1]}], got shape {weights.shape}"
        )
    if points.shape[0] == 0:
        raise ValueError("the expected utility of an empty front is undefined")
    return float((weights @ points.T).max(1).mean())


def cardinality(values: np.ndarray | Sequence) -> int:
    """How many of the points are non-dominated (duplicates count once)."""
    return int(non_dominated(values).sum())


def sparsity(values: np.ndarray | Sequence) -> float:
    """PGMORL's sparsity of the non-dominated points: for each objective, the sum of
    squared gaps between consecutive sorted values, summed and divided by ``n - 1``;
    0 for fewer than two points."""
    front = pareto_front(values)
    if front.shape[0] < 2:
        return 0.0
    gaps = np.diff(np.sort(front, axis=0), axis=0)
    return float((gaps**2).sum() / (front.shape[0] - 1))


def spacing(values: np.ndarray | Sequence) -> float:
    """Schott's spacing of the non-dominated points: the standard deviation (with
    ``n - 1``) of each point's L1 distance to its nearest neighbour; 0 for fewer than
    two points, and for an evenly spaced front."""
    front = pareto_front(values)
    if front.shape[0] < 2:
        return 0.0
    distance = np.abs(front[:, None, :] - front[None, :, :]).sum(-1)
    np.fill_diagonal(distance, np.inf)
    nearest = distance.min(1)
    return float(np.sqrt(((nearest - nearest.mean()) ** 2).sum() / (front.shape[0] - 1)))


def front_metrics(
    values: np.ndarray | Sequence,
    reference: np.ndarray | Sequence,
    weights: np.ndarray | Sequence | None = None,
) -> dict[str, float]:
    """Every metric of :data:`FRONT_METRICS` of the value vectors ``values``, as
    morl-baselines logs them (dominated points dropped first); non-finite points
    (a preference whose episodes did not end) are left out."""
    raw = np.asarray(values, dtype=np.float64)
    finite = raw[np.isfinite(raw).all(1)] if raw.ndim == 2 else raw
    if finite.shape[0] == 0:
        return {name: float("nan") for name in FRONT_METRICS}
    points = _points(finite)
    return {
        "hypervolume": hypervolume(points, reference),
        "eum": expected_utility(points, weights),
        "cardinality": float(cardinality(points)),
        "sparsity": sparsity(points),
        "spacing": spacing(points),
    }


def simplex_grid(num_objectives: int, divisions: int) -> np.ndarray:
    """Every preference whose weights are multiples of ``1 / divisions`` and sum to 1,
    ``[C(divisions + m - 1, m - 1), m]``, ordered by the first weight descending
    (two objectives: ``(1, 0), (1 - 1/d, 1/d), ..., (0, 1)``)."""
    if num_objectives < 1 or divisions < 1:
        raise ValueError(
            f"a simplex grid needs num_objectives >= 1 and divisions >= 1, got "
            f"{num_objectives} and {divisions}"
        )
    counts = [
        combination
        for combination in itertools.product(range(divisions + 1), repeat=num_objectives)
        if sum(combination) == divisions
    ]
    counts.sort(reverse=True)
    return np.asarray(counts, np.float64) / divisions
