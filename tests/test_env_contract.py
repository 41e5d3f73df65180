"""The environment contract, checked on every registered environment family.

For one small task per family: the specs match what ``reset`` and ``step`` return,
``reset`` and ``step`` run under ``jit`` and ``vmap``, uniformly random available
actions play an episode to its end within the time limit, and an unavailable action
is played as the env's ``fallback_action``: counted in ``extras["invalid_actions"]``,
and nothing else differs from choosing the fallback.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl import registry
from marl.env import env_spec

# One small task per family (keyword arguments keep episodes short where they can).
TASKS = {
    "matrix": ("matrix/two_step", {}),
    "mo-matrix": ("mo-matrix/pareto", {}),
    "lbf": ("lbf/5x5-2p-1f", {"time_limit": 20}),
    "rware": ("rware/tiny-2ag", {"time_limit": 20}),
    "smax": ("smax/3m", {"time_limit": 20}),
    "mpe": ("mpe/simple_spread_v3", {"time_limit": 10}),
    "smac": ("smac/3m", {}),
    "mo-smac": ("mo-smac/3m", {}),
    "smacv2": ("smacv2/terran_5_vs_5", {}),
    "football": ("football/academy_empty_goal_close", {}),
    "mo-football": ("mo-football/academy_empty_goal_close", {}),
}
NUM_ENVS = 8


def test_every_registered_family_has_a_task_here():
    registry.env_names()  # loads the registrations
    families = {name.partition("/")[0] for name in registry._ENVS} | set(registry._ENV_FAMILIES)
    assert families == set(TASKS)


def _first(tree):
    return jax.tree_util.tree_map(lambda x: x[0], tree)


@pytest.mark.parametrize("family", list(TASKS))
def test_environment_contract(family):
    name, kwargs = TASKS[family]
    env = registry.make_raw_env(name, **kwargs)
    spec = env_spec(env)
    reset = jax.jit(jax.vmap(env.reset))
    step = jax.jit(jax.vmap(env.step))

    states, timestep = reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))
    # The specs describe what reset and step return.
    env.observation_spec.validate(_first(timestep.observation))
    assert timestep.observation.agents_view.shape == (NUM_ENVS, spec.num_agents, spec.obs_dim)
    assert timestep.observation.global_state.shape == (NUM_ENVS, spec.state_dim)
    assert timestep.observation.action_mask.dtype == jnp.bool_
    assert np.all(np.asarray(timestep.observation.step_count) == 0)
    assert set(timestep.extras) >= {"won", "invalid_actions"}

    # Uniformly random available actions play every env's first episode to its end.
    key = jax.random.PRNGKey(1)
    ended = np.zeros(NUM_ENVS, bool)
    lengths = np.zeros(NUM_ENVS, int)
    unavailable = None  # (state, timestep, env index, agent, action) with a masked action
    for t in range(spec.time_limit + 1):
        mask = np.asarray(timestep.observation.action_mask)
        if unavailable is None and not mask.all():
            env_index, agent, action = np.argwhere(~mask)[0]
            unavailable = (states, timestep, env_index, agent, action)
        key, action_key = jax.random.split(key)
        actions = jax.random.categorical(action_key, jnp.where(mask, 0.0, -jnp.inf))
        states, timestep = step(states, actions.astype(jnp.int32))
        if t == 0:
            env.observation_spec.validate(_first(timestep.observation))
            assert timestep.reward.shape == (NUM_ENVS, *env.reward_spec.shape)
            assert timestep.discount.shape == (NUM_ENVS, *env.discount_spec.shape)
        np.testing.assert_array_equal(np.asarray(timestep.extras["invalid_actions"])[~ended], 0)
        last = np.asarray(timestep.last())
        lengths[~ended] += 1
        ended |= last
        if ended.all():
            break
    assert ended.all(), f"{name}: an episode ran past its time limit of {spec.time_limit}"
    assert np.all(lengths <= spec.time_limit)

    if unavailable is None:  # this family's masks always allow every action
        assert family in ("matrix", "mo-matrix", "mpe"), f"{name}: no unavailable action was seen"
        return
    # An unavailable action plays as the fallback: the step with it and the step with
    # the fallback differ only in the count of invalid actions.
    states, timestep, env_index, agent, action = unavailable
    state = jax.tree_util.tree_map(lambda x: x[env_index], states)
    mask = np.asarray(timestep.observation.action_mask)[env_index]
    chosen = mask.argmax(-1).astype(np.int32)  # the others: their first available action
    with_unavailable, with_fallback = chosen.copy(), chosen.copy()
    with_unavailable[agent] = action
    with_fallback[agent] = env.fallback_action
    pair = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
    next_states, next_timestep = step(
        pair, jnp.asarray(np.stack([with_unavailable, with_fallback]))
    )
    counts = np.asarray(next_timestep.extras["invalid_actions"])
    assert counts[0] == 1
    assert counts[1] == int(not mask[agent, env.fallback_action])  # SMAC: no-op is masked
    jax.tree_util.tree_map(
        lambda x: np.testing.assert_array_equal(x[0], x[1]), (next_states, next_timestep.reward)
    )
    jax.tree_util.tree_map(
        lambda x: np.testing.assert_array_equal(x[0], x[1]),
        (next_timestep.observation, next_timestep.discount, next_timestep.step_type),
    )
    others = {k: v for k, v in next_timestep.extras.items() if k != "invalid_actions"}
    jax.tree_util.tree_map(lambda x: np.testing.assert_array_equal(x[0], x[1]), others)
