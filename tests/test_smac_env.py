"""The SMAC environment's interface: sizes, masks, reward, episode end, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.smac import sim
from marl.envs.smac.env import SMAC
from marl.envs.smac.maps import SMAC_MAPS

# Reference §2e: n_actions, obs size, state size and max_reward for every map.
SIZES = {
    "3m": (9, 30, 48, 365), "8m": (14, 80, 168, 640), "25m": (31, 250, 950, 1575),
    "5m_vs_6m": (12, 55, 98, 530), "8m_vs_9m": (15, 85, 179, 695),
    "10m_vs_11m": (17, 105, 243, 805), "27m_vs_30m": (36, 285, 1170, 1850),
    "MMM": (16, 160, 290, 1015), "MMM2": (18, 176, 322, 1205), "2s3z": (11, 80, 120, 1020),
    "3s5z": (14, 128, 216, 1510), "3s5z_vs_3s6z": (15, 136, 230, 1670),
    "3s_vs_3z": (9, 36, 54, 680), "3s_vs_4z": (10, 42, 61, 840), "3s_vs_5z": (11, 48, 68, 1000),
    "1c3s5z": (15, 162, 270, 1870), "2m_vs_1z": (7, 16, 26, 360), "corridor": (30, 156, 282, 1280),
    "6h_vs_8z": (14, 78, 140, 1480), "2s_vs_1sc": (7, 17, 27, 510),
    "so_many_baneling": (38, 202, 397, 1480), "bane_vs_bane": (30, 336, 984, 1260),
    "2c_vs_64zg": (70, 332, 342, 3080),
}  # fmt: skip


def test_every_map_has_smacs_sizes():
    assert set(SIZES) == set(SMAC_MAPS)
    for name, sizes in SIZES.items():
        env = marl.make_raw_env(f"smac/{name}")
        assert (
            env.num_actions,
            env.obs_dim,
            env.state_dim,
            env.generator.map_max_reward,
        ) == sizes, name
        assert env.time_limit == SMAC_MAPS[name].episode_limit


@pytest.fixture(scope="module")
def three_m():
    env = SMAC("3m")
    return env, jax.jit(env.reset), jax.jit(env.step)


def place(state, positions, orders=None):
    battle = state.battle.replace(position=jnp.asarray(positions, jnp.float32))
    if orders is not None:
        battle = battle.replace(order=jnp.asarray(orders, jnp.int32))
    return state.replace(battle=battle)


def test_masks_follow_range_and_death(three_m):
    env, reset, step = three_m
    state, _ = reset(jax.random.PRNGKey(0))
    # Agent 0 at distance 5.9 from enemy 0 and 6.1 from enemy 1; enemy 2 far away.
    positions = [(10, 16), (10, 12), (10, 20), (15.9, 16), (10, 22.1), (30, 16)]
    state = place(state, positions, orders=[sim.ORDER_STOP] * 6)
    state = state.replace(
        battle=state.battle.replace(
            alive=state.battle.alive.at[1].set(False), health=state.battle.health.at[1].set(0.0)
        )
    )
    mask = np.asarray(env.observation(state).action_mask)
    np.testing.assert_array_equal(mask[0, :2], [False, True])
    np.testing.assert_array_equal(mask[0, 6:], [True, False, False])
    np.testing.assert_array_equal(mask[1], [True] + [False] * 8)  # dead: no-op only
    np.testing.assert_array_equal(mask[2, 6:], [False, True, False])  # 2.1 away from enemy 1
    # Moves off the walkable band (y 8..23) are masked.
    state = place(state, [(10, 23.5)] + positions[1:])
    mask = np.asarray(env.observation(state).action_mask)
    np.testing.assert_array_equal(mask[0, 2:6], [False, True, True, True])


def test_dead_agents_observe_zeros_and_the_state_has_their_row_zeroed(three_m):
    env, reset, _ = three_m
    state, _ = reset(jax.random.PRNGKey(0))
    battle = state.battle.replace(
        alive=state.battle.alive.at[2].set(False), health=state.battle.health.at[2].set(0.0)
    )
    obs = env.observation(state.replace(battle=battle))
    assert not np.any(np.asarray(obs.agents_view[2]))
    assert not np.any(np.asarray(obs.global_state[8:12]))  # ally rows are 4 wide on 3m
    assert np.all(np.asarray(obs.agents_view[0, -1]) == 1.0)  # own health, full


def test_reward_of_a_scripted_win_is_smacs_formula(three_m):
    env, reset, step = three_m
    state, _ = reset(jax.random.PRNGKey(0))
    positions = [(10, 15), (10, 16), (10, 17), (13, 15), (13, 16), (13, 17)]
    state = place(state, positions, orders=[sim.ORDER_STOP] * 6)
    state = state.replace(battle=state.battle.replace(health=state.battle.health.at[3:].set(6.0)))
    state, timestep = step(state, jnp.asarray([6, 7, 8]))
    # Three kills with one 6-damage shot each, 10 per kill, 200 for the win, over 365 / 20.
    expected = (3 * 6.0 + 3 * 10.0 + 200.0) / (365.0 / 20.0)
    np.testing.assert_allclose(np.asarray(timestep.reward), expected, rtol=1e-5)
    assert timestep.last() and float(timestep.extras["won"]) == 1.0
    assert np.all(np.asarray(timestep.discount) == 0.0)


def test_timeout_ends_without_a_win(three_m):
    env, reset, step = three_m
    state, _ = reset(jax.random.PRNGKey(0))
    positions = [(1, 15), (1, 16), (1, 17), (30, 15), (30, 16), (30, 17)]
    state = place(state, positions, orders=[sim.ORDER_STOP] * 6)
    for t in range(env.time_limit):
        state, timestep = step(state, jnp.ones(3, jnp.int32))
        assert bool(timestep.last()) == (t == env.time_limit - 1)
    assert float(timestep.extras["won"]) == 0.0
    assert np.all(np.asarray(timestep.discount) == 1.0)  # cut by the limit, not terminated
    assert float(timestep.reward[0]) == 0.0


def test_same_key_same_episode(three_m):
    env, reset, step = three_m

    def episode(key):
        state, timestep = reset(key)
        observations = [timestep.observation.agents_view]
        for step_key in jax.random.split(jax.random.PRNGKey(5), 10):
            logits = jnp.where(timestep.observation.action_mask, 0.0, -jnp.inf)
            state, timestep = step(state, jax.random.categorical(step_key, logits))
            observations.append(timestep.observation.agents_view)
        return np.stack(observations)

    np.testing.assert_array_equal(episode(jax.random.PRNGKey(1)), episode(jax.random.PRNGKey(1)))
    # Another key starts from the same positions, as SMAC does; fights then differ by
    # SC2's weapon delays (tests/test_smac_placement.py).
    np.testing.assert_array_equal(
        episode(jax.random.PRNGKey(1))[0], episode(jax.random.PRNGKey(2))[0]
    )


# Every SMAC map and one SMACv2 scenario per race.
RANDOM_PLAY_ENVS = [f"smac/{name}" for name in sorted(SMAC_MAPS)] + [
    "smacv2/protoss_5_vs_5",
    "smacv2/terran_10_vs_11",
    "smacv2/zerg_5_vs_5",
]


@pytest.mark.parametrize("env_name", RANDOM_PLAY_ENVS)
def test_random_play_keeps_every_invariant(env_name):
    env = marl.make_raw_env(env_name)

    def play(key):
        def body(carry, step_key):
            state, timestep = carry
            act_key, reset_key = jax.random.split(step_key)
            mask = timestep.observation.action_mask
            action = jax.random.categorical(act_key, jnp.where(mask, 0.0, -jnp.inf))
            state, timestep = env.step(state, action)
            record = (timestep, state.battle)
            state, timestep = jax.lax.cond(
                timestep.last(), lambda: env.reset(reset_key), lambda: (state, timestep)
            )
            return (state, timestep), record

        # One step past the time limit: every env finishes at least one episode.
        keys = jax.random.split(key, env.time_limit + 1)
        return jax.lax.scan(body, env.reset(key), keys)[1]

    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    # XLA's backend optimisations halve the compile and buy nothing for 4 short episodes.
    compiled = jax.jit(jax.vmap(play)).lower(keys).compile({"xla_backend_optimization_level": 0})
    timesteps, battles = compiled(keys)
    obs = timesteps.observation
    assert np.all(np.isfinite(np.asarray(obs.agents_view)))
    assert np.all(np.isfinite(np.asarray(obs.global_state)))
    assert np.all(np.isfinite(np.asarray(timesteps.reward)))
    health, shield = np.asarray(battles.health), np.asarray(battles.shield)
    unit_type = np.asarray(battles.unit_type)
    max_health = sim.unit_table()["health"][unit_type]
    max_shield = sim.unit_table()["shield"][unit_type]
    alive = np.asarray(battles.alive)
    assert np.all((health >= 0) & (health <= max_health + 1e-4))
    assert np.all((shield >= 0) & (shield <= max_shield + 1e-4))
    assert np.all(health[~alive] == 0)
    mask = np.asarray(obs.action_mask)
    dead_agents = ~alive[..., : env.num_agents]
    np.testing.assert_array_equal(mask[dead_agents][:, 0], True)
    assert not np.any(mask[dead_agents][:, 1:])
    assert not np.any(mask[~dead_agents][:, 0])  # the living never get the no-op
    # Episodes end, and never later than the map's limit.
    ended = np.asarray(timesteps.last())
    assert ended.any()
    assert np.all(np.asarray(obs.step_count)[ended] <= env.time_limit)
