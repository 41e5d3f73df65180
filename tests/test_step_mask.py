"""``Transition.mask``: every single-task learner trains only on the steps a composite
learner hands it, and a rollout without a mask trains exactly as before."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.algorithms.value_decomposition.learner import replay_steps
from marl.env import env_spec

NUM_ENVS = 4
LENGTH = 6


def _rollout(learner, env, state, key) -> tuple[marl.Transition, marl.types.Bootstrap]:
    """``LENGTH`` steps of ``NUM_ENVS`` one-step matrix games (every step an episode)."""
    memory = learner.initial_memory(NUM_ENVS)
    steps = []
    for step_key in jax.random.split(key, LENGTH):
        reset_key, act_key = jax.random.split(step_key)
        env_state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, NUM_ENVS))
        obs = timestep.observation
        action, memory, extras = learner.act(state, obs, memory, act_key, True)
        _, timestep = jax.vmap(env.step)(env_state, action)
        done = timestep.last()
        steps.append(marl.Transition(obs, action, timestep.reward, done, done, extras))
    rollout = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *steps)
    return rollout, marl.types.Bootstrap(obs, memory)


@pytest.fixture(scope="module")
def game():
    return marl.make_env("matrix/one_step")


def test_a_value_learner_loss_counts_only_the_masked_steps(game):
    learner = marl.make_algorithm("qmix", env_spec(game), NUM_ENVS, hidden_dim=8)
    state = learner.init(jax.random.PRNGKey(0))
    rollout, _ = _rollout(learner, game, state, jax.random.PRNGKey(1))
    windows = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), replay_steps(rollout))
    assert bool(jnp.all(windows.mask))  # no mask: every step counts
    loss = jax.jit(lambda batch: learner.loss(state.params, state.target_params, batch)[0])

    # Only env 0's steps: the loss of env 0's window alone.
    first_env = jnp.zeros(windows.mask.shape, bool).at[0].set(True)
    masked = loss(windows._replace(mask=first_env))
    alone = loss(jax.tree_util.tree_map(lambda x: x[:1], windows))
    np.testing.assert_allclose(masked, alone, rtol=1e-6)
    assert not np.isclose(masked, loss(windows), rtol=1e-3)
    # No step at all: nothing to learn from.
    assert float(loss(windows._replace(mask=jnp.zeros_like(windows.mask)))) == 0.0


@pytest.mark.parametrize("algorithm", ["ippo", "mappo"])
def test_a_policy_gradient_learner_trains_only_on_the_masked_steps(game, algorithm):
    learner = marl.make_algorithm(
        algorithm, env_spec(game), NUM_ENVS, hidden_dim=8, num_minibatches=1, num_epochs=2
    )
    state = learner.init(jax.random.PRNGKey(0))
    rollout, bootstrap = _rollout(learner, game, state, jax.random.PRNGKey(1))
    update = jax.jit(lambda r: learner.update(state, r, jax.random.PRNGKey(2), None, bootstrap)[0])

    def params_of(mask):
        return jax.tree_util.tree_leaves(update(rollout._replace(mask=mask)).params)

    every = params_of(None)
    for fresh, trained in zip(params_of(jnp.ones_like(rollout.done)), every, strict=True):
        np.testing.assert_array_equal(fresh, trained)  # all steps: as without a mask
    before = jax.tree_util.tree_leaves(state.params)
    for fresh, initial in zip(params_of(jnp.zeros_like(rollout.done)), before, strict=True):
        np.testing.assert_array_equal(fresh, initial)  # no step: nothing moves
    half = params_of(jnp.arange(LENGTH)[:, None] < jnp.full((1, NUM_ENVS), LENGTH // 2))
    assert any(not np.array_equal(a, b) for a, b in zip(half, every, strict=True))
