"""The SMAC opponent: difficulty levels of the built-in one, and a policy as the opponent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.smac import sim
from marl.envs.smac.env import SMAC
from marl.envs.smac.opponent import swap_sides

AGENT_X, ENEMY_X = 12.0, 17.0  # 5 apart: every marine in range of its opposite number


def _facing(state):
    ys = (14.0, 16.0, 18.0)
    positions = [(AGENT_X, y) for y in ys] + [(ENEMY_X, y) for y in ys]
    return state.replace(battle=state.battle.replace(position=jnp.asarray(positions, jnp.float32)))


def stop_policy(observation, key):
    del key
    return jnp.where(observation.action_mask[:, 1], 1, 0)


def attack_first_policy(observation, key):
    """Attacks the first living agent in range (action 6, 7, ...), else stops."""
    del key
    mask = observation.action_mask
    targets = mask[:, 6:]
    first = jnp.argmax(targets, axis=1)
    return jnp.where(targets.any(axis=1), 6 + first, jnp.where(mask[:, 1], 1, 0))


def test_swap_sides_twice_is_identity():
    env = SMAC("5m_vs_6m")
    state, _ = env.reset(jax.random.PRNGKey(0))
    battle = state.battle.replace(
        order_unit=state.battle.order_unit.at[0].set(7).at[6].set(2),
        acted_on=state.battle.acted_on.at[10].set(1),
    )
    swapped = swap_sides(battle, 5)
    assert int(swapped.order_unit[6 + 0]) == 7 - 5  # agent 0 is now unit 6, enemy 2 unit 2
    assert int(swapped.order_unit[1]) == 2 + 6
    assert int(swapped.acted_on[5]) == 1 + 6
    np.testing.assert_array_equal(np.asarray(swapped.team), [0] * 6 + [1] * 5)
    back = swap_sides(swapped, 6)
    jax.tree.map(np.testing.assert_array_equal, back, battle)


def test_opponent_observation_mirrors_the_agents():
    env = SMAC("3m", opponent_policy=stop_policy)
    state, _ = env.reset(jax.random.PRNGKey(0))
    state = _facing(state)
    ours = env.observation(state)
    theirs = env.opponent_observation(state)
    assert theirs.agents_view.shape == ours.agents_view.shape
    np.testing.assert_array_equal(np.asarray(theirs.action_mask), np.asarray(ours.action_mask))
    view, mirrored = np.asarray(ours.agents_view), np.asarray(theirs.agents_view)
    # Enemy features [attackable, distance, dx, dy, health]: the opponents see the same
    # distances with dx reversed.
    for k in range(3):
        block = slice(4 + 5 * k, 9 + 5 * k)
        expected = view[:, block] * np.asarray([1, 1, -1, 1, 1])
        np.testing.assert_allclose(mirrored[:, block], expected, atol=1e-6)


def test_a_policy_opponent_fights_only_as_told():
    idle = SMAC("3m", opponent_policy=stop_policy)
    state, _ = idle.reset(jax.random.PRNGKey(0))
    state = _facing(state)
    step = jax.jit(idle.step)
    stop = jnp.ones(3, jnp.int32)
    for _ in range(6):
        state, timestep = step(state, stop)
    # Stock units would open fire at 5 cells; policy-controlled ones wait for orders.
    np.testing.assert_array_equal(np.asarray(state.battle.health), 45.0)
    assert float(timestep.extras["opponent_reward"]) == 0.0

    focused = SMAC("3m", opponent_policy=attack_first_policy)
    state, _ = focused.reset(jax.random.PRNGKey(0))
    state = _facing(state)
    step = jax.jit(focused.step)
    for _ in range(2):
        state, timestep = step(state, stop)
    health = np.asarray(state.battle.health)
    # Agent 0 is in range of enemies 0 and 1 (enemy 2 is 6.4 away), agent 1 of enemy 2.
    np.testing.assert_array_equal(np.asarray(state.opponent_last_action), [6, 6, 7])
    assert health[0] < health[1] < 45.0 and np.all(health[2:] == 45.0)
    assert float(timestep.extras["opponent_reward"]) > 0.0
    assert float(timestep.reward[0]) == 0.0


def test_step_with_opponent_matches_the_policy_route():
    env = SMAC("3m", opponent_policy=attack_first_policy)
    state, _ = env.reset(jax.random.PRNGKey(0))
    state = _facing(state)
    stop = jnp.ones(3, jnp.int32)
    via_policy, _ = env.step(state, stop)
    key, policy_key = jax.random.split(state.key)
    action = attack_first_policy(env.opponent_observation(state), policy_key)
    explicit, _ = env.step_with_opponent(state.replace(key=key), stop, action)
    jax.tree.map(np.testing.assert_array_equal, via_policy, explicit)
    with pytest.raises(ValueError, match="opponent_policy"):
        SMAC("3m").step_with_opponent(state, stop, action)


def test_policy_opponent_under_auto_reset():
    env = marl.VectorEnv(marl.make_env("smac/3m", opponent_policy=attack_first_policy), 2)
    state, timestep = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(3):
        state, timestep = step(state, jnp.ones((2, 3), jnp.int32))
    assert timestep.extras["opponent_reward"].shape == (2,)


def test_difficulty_levels():
    with pytest.raises(ValueError, match="difficulty must be one of"):
        SMAC("3m", difficulty=11)

    def enemy_travel(difficulty):
        env = SMAC("3m", difficulty=difficulty)
        keys = jax.random.split(jax.random.PRNGKey(0), 64)

        def one(key):
            state, _ = env.reset(key)
            after, _ = env.step(state, jnp.ones(3, jnp.int32))
            gap = after.battle.position[3:] - state.battle.position[3:]
            return jnp.linalg.norm(gap, axis=-1), after.battle.order[3:]

        travel, orders = jax.jit(jax.vmap(one))(keys)
        return float(jnp.mean(travel)), np.asarray(orders)

    full, orders = enemy_travel(7)
    slow, slow_orders = enemy_travel(1)
    # VeryEasy units act in 40% of steps; held ones stay put.
    assert 0.25 < slow / full < 0.55
    # The hold lasts one step: every enemy is back on its attack-move.
    assert np.all(slow_orders == sim.ORDER_ATTACK_MOVE) and np.all(orders == sim.ORDER_ATTACK_MOVE)


def test_top_difficulty_focuses_the_weakest():
    def shot_at(difficulty):
        env = SMAC("3m", difficulty=difficulty)
        state, _ = env.reset(jax.random.PRNGKey(0))
        state = _facing(state)
        # The wounded agent 1, in the middle, is in every enemy's weapon range.
        battle = state.battle.replace(health=state.battle.health.at[1].set(20.0))
        after, _ = jax.jit(env.step)(state.replace(battle=battle), jnp.ones(3, jnp.int32))
        return np.asarray(after.battle.acted_on[3:])

    np.testing.assert_array_equal(shot_at(10), [1, 1, 1])
    np.testing.assert_array_equal(shot_at(7), [0, 1, 2])  # the closest: face to face
