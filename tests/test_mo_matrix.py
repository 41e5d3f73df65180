"""The multi-objective matrix game with a known Pareto front (envs/mo_matrix.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl import pareto
from marl.env import env_spec
from marl.envs.mo_matrix import PARETO_PAYOFFS, ParetoMatrixGame


@pytest.fixture(scope="module")
def game() -> ParetoMatrixGame:
    return ParetoMatrixGame()


def test_rewards_follow_the_payoffs_and_miscoordination(game) -> None:
    step = jax.jit(game.step)
    state, first = game.reset(jax.random.PRNGKey(0))
    assert first.reward.shape == (2, 2) and not first.reward.any()
    for action in range(4):
        _, timestep = step(state, jnp.array([action, action]))
        np.testing.assert_allclose(timestep.reward, [PARETO_PAYOFFS[action]] * 2, rtol=1e-6)
        assert timestep.last() and float(timestep.discount.sum()) == 0.0
        assert float(timestep.extras["won"]) == 1.0
    _, missed = step(state, jnp.array([0, 2]))
    # Default miscoordination: one below the worst coordinated payoff per objective.
    np.testing.assert_allclose(missed.reward, [[-1.0, -1.0]] * 2)
    assert float(missed.extras["won"]) == 0.0


def test_specs_carry_the_objectives(game) -> None:
    spec = env_spec(game)
    assert (spec.num_agents, spec.num_actions, spec.num_objectives) == (2, 4, 2)
    assert game.reward_spec.shape == (2, 2)
    states, timesteps = jax.vmap(game.step)(
        jax.vmap(game.reset)(jax.random.split(jax.random.PRNGKey(0), 3))[0],
        jnp.array([[0, 0], [1, 1], [1, 3]]),
    )
    assert timesteps.reward.shape == (3, 2, 2)


def test_the_known_front_and_what_linear_preferences_reach(game) -> None:
    # Every coordinated payoff is non-dominated; the front equals marl.pareto's.
    assert game.pareto_optimal.tolist() == [True, True, True, True]
    np.testing.assert_allclose(pareto.pareto_front(game.payoffs), game.pareto_front)
    # Action 3 (0.85, 0.3) lies under the segment (1, 0)-(0.7, 0.7): no preference
    # makes it the best of w . v, so linear-preference greedy policies reach 0, 1, 2.
    assert game.supported.tolist() == [True, True, True, False]
    weights = pareto.equally_spaced_weights(2, 101)
    chosen = set((weights @ game.payoffs.T).argmax(1).tolist())
    assert chosen == {0, 1, 2}
    # The concave point adds hypervolume that the supported points leave uncovered.
    reference = np.array([0.0, 0.0])
    full = pareto.hypervolume(game.pareto_front, reference)
    supported_only = pareto.hypervolume(game.payoffs[game.supported], reference)
    assert full > supported_only
    # Expected utility, a linear measure, cannot tell the two apart.
    assert pareto.expected_utility(game.pareto_front, weights) == pytest.approx(
        pareto.expected_utility(game.payoffs[game.supported], weights)
    )


def test_a_dominated_payoff_is_not_pareto_optimal_nor_won() -> None:
    game = ParetoMatrixGame(((1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.4, 0.4)))
    assert game.pareto_optimal.tolist() == [True, True, True, False]
    _, timestep = game.step(game.reset(jax.random.PRNGKey(0))[0], jnp.array([3, 3]))
    assert float(timestep.extras["won"]) == 0.0


def test_equal_payoffs_are_both_pareto_optimal() -> None:
    game = ParetoMatrixGame(((1.0, 0.0), (0.0, 1.0), (1.0, 0.0)))
    assert game.pareto_optimal.tolist() == [True, True, True]
    assert game.pareto_front.tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]


def test_bad_payoffs_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"payoffs must be \[num_actions >= 2"):
        ParetoMatrixGame(((1.0, 0.0),))
    with pytest.raises(ValueError, match="miscoordination must have one value per objective"):
        ParetoMatrixGame(miscoordination=(0.5, 0.5))
