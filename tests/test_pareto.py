"""Pareto-front metrics (marl.pareto) against hand computations and an independent
exact hypervolume on random fronts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from marl import pareto

pytest.importorskip("pymoo")


def exact_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Inclusion-exclusion over every subset: the union of the boxes [reference, p]."""
    points = points[(points > reference).all(1)]
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.min(subset, axis=0)
            total += (-1) ** (size + 1) * np.prod(corner - reference)
    return total


def test_hypervolume_of_hand_worked_fronts() -> None:
    # A staircase of three unit-wide columns of heights 3, 2, 1.
    assert pareto.hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0]) == pytest.approx(6.0)
    # A dominated point and one short of the reference add nothing.
    assert pareto.hypervolume(
        [[1, 3], [2, 2], [3, 1], [0.5, 0.5], [4, -1]], [0, 0]
    ) == pytest.approx(6.0)
    # Another reference moves every box: columns 2 x 4, 1 x 3 and 1 x 2.
    assert pareto.hypervolume([[1, 3], [2, 2], [3, 1]], [-1, -1]) == pytest.approx(8 + 3 + 2)
    # Two boxes in 3-D, 2 x 2 x 1 and 1 x 1 x 3, overlapping in a 1 x 1 x 1 cube.
    assert pareto.hypervolume([[2, 2, 1], [1, 1, 3]], [0, 0, 0]) == pytest.approx(4 + 3 - 1)
    assert pareto.hypervolume([[-1, -1]], [0, 0]) == 0.0


@pytest.mark.parametrize("num_objectives", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion_on_random_fronts(num_objectives) -> None:
    rng = np.random.default_rng(num_objectives)
    for _ in range(20):
        points = rng.normal(size=(int(rng.integers(1, 9)), num_objectives))
        reference = rng.normal(size=num_objectives) - 1.0
        assert pareto.hypervolume(points, reference) == pytest.approx(
            exact_hypervolume(points, reference), rel=1e-9, abs=1e-12
        )


def test_non_dominated_keeps_one_of_equal_points() -> None:
    points = [[1, 3], [2, 2], [3, 1], [1, 1], [2, 2], [3, 0]]
    assert pareto.non_dominated(points).tolist() == [True, True, True, False, False, False]
    assert pareto.pareto_front(points).tolist() == [[1, 3], [2, 2], [3, 1]]
    assert pareto.cardinality(points) == 3
    assert pareto.cardinality(np.zeros((0, 2))) == 0


def test_expected_utility_is_the_mean_best_linear_utility() -> None:
    front = [[1.0, 0.0], [0.0, 1.0], [0.4, 0.4]]
    weights = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    # Each corner weight picks its own corner (1), the middle one 0.5 from either.
    assert pareto.expected_utility(front, weights) == pytest.approx((1 + 1 + 0.5) / 3)
    # The concave point (0.4, 0.4) is never any weight's best: EUM cannot see it.
    assert pareto.expected_utility(front[:2], weights) == pareto.expected_utility(front, weights)


def test_equally_spaced_weights_lie_on_the_simplex() -> None:
    for num_objectives, num_weights in [(2, 5), (3, 20)]:
        weights = pareto.equally_spaced_weights(num_objectives, num_weights)
        assert weights.shape == (num_weights, num_objectives)
        assert (weights >= 0).all()
        np.testing.assert_allclose(weights.sum(1), 1.0)
        assert len(np.unique(weights.round(6), axis=0)) == num_weights
    corners = pareto.equally_spaced_weights(2, 5)
    assert [0.0, 1.0] in corners.tolist() and [1.0, 0.0] in corners.tolist()
    # The default EUM uses 100 of them.
    assert pareto.expected_utility([[2.0, 0.0], [0.0, 2.0]]) > 1.0


def test_sparsity_and_spacing_by_hand() -> None:
    even = [[1, 3], [2, 2], [3, 1]]
    # Per objective the sorted gaps are 1 and 1: (1 + 1) * 2 objectives / (3 - 1).
    assert pareto.sparsity(even) == pytest.approx(2.0)
    assert pareto.spacing(even) == pytest.approx(0.0)
    uneven = [[0, 4], [1, 3], [4, 0]]
    # Gaps 1 and 3 on each objective: (1 + 9) * 2 / 2.
    assert pareto.sparsity(uneven) == pytest.approx(10.0)
    # Nearest L1 neighbours 2, 2, 6: mean 10/3, deviations -4/3, -4/3, 8/3.
    assert pareto.spacing(uneven) == pytest.approx(np.sqrt((16 + 16 + 64) / 9 / 2))
    # Dominated points are left out first; one point has neither.
    assert pareto.sparsity(even + [[0, 0]]) == pytest.approx(2.0)
    assert pareto.sparsity([[1, 1]]) == pareto.spacing([[1, 1]]) == 0.0


def test_bad_input_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="reference point has 3 objectives, the values 2"):
        pareto.hypervolume([[1, 2]], [0, 0, 0])
    with pytest.raises(ValueError, match=r"\[num_points, num_objectives\]"):
        pareto.hypervolume([1, 2], [0, 0])
    with pytest.raises(ValueError, match="finite"):
        pareto.cardinality([[1, np.nan]])
    with pytest.raises(ValueError, match=r"weights must be \[num_weights, 2\]"):
        pareto.expected_utility([[1, 2]], [[1, 0, 0]])
