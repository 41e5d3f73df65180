"""SMACv2-style scenarios: sizes, random teams, start positions, v2's interface changes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.smac import sim
from marl.envs.smac.env import SMAC
from marl.envs.smac.units import UNIT_INDEX
from marl.envs.smac.v2 import (
    ALLY_TYPE_ORDER,
    SMACV2_SCENARIOS,
    RandomTeamsGenerator,
    V2Scenario,
    draw_teams,
    register_scenario,
    smacv2,
    start_positions,
)

# Reference §5d: obs, state and n_actions of the 5 vs 5 scenarios.
SIZES_5V5 = {"protoss": (92, 130, 11), "terran": (82, 120, 11), "zerg": (82, 120, 11)}


def test_scenarios_and_sizes():
    races, sizes = ("protoss", "terran", "zerg"), ("5_vs_5", "10_vs_10", "10_vs_11", "20_vs_20")
    expected = {f"{r}_{s}" for r in races for s in (*sizes, "20_vs_23")}
    assert expected <= set(SMACV2_SCENARIOS)
    for race, (obs_dim, state_dim, num_actions) in SIZES_5V5.items():
        env = marl.make_raw_env(f"smacv2/{race}_5_vs_5")
        assert (env.obs_dim, env.state_dim, env.num_actions) == (obs_dim, state_dim, num_actions)
        assert env.time_limit == 200
    env = marl.make_raw_env("smacv2/zerg_20_vs_23")
    assert (env.num_agents, env.num_enemies, env.num_actions) == (20, 23, 29)


def _draws(scenario, num_keys=2000):
    keys = jax.random.split(jax.random.PRNGKey(0), num_keys)
    allies, enemies = jax.jit(jax.vmap(lambda k: draw_teams(k, scenario)))(keys)
    return np.asarray(allies), np.asarray(enemies)


def test_teams_follow_the_weights_and_mirror():
    scenario = SMACV2_SCENARIOS["protoss_10_vs_11"]
    allies, enemies = _draws(scenario)
    for name, weight in zip(scenario.unit_types, scenario.weights, strict=True):
        frequency = np.mean(allies == UNIT_INDEX[name])
        assert abs(frequency - weight) < 0.02, (name, frequency, weight)
    # The opponents are the agents' types, plus one more draw.
    np.testing.assert_array_equal(enemies[:, :10], allies)
    assert np.isin(enemies[:, 10], [UNIT_INDEX[u] for u in scenario.unit_types]).all()


def test_a_team_of_exceptions_is_redrawn():
    # With these weights two thirds of the plain draws would be medivacs only.
    scenario = V2Scenario(
        "medivac_heavy", "terran", 2, 1, ("marine", "marauder", "medivac"), (0.1, 0.1, 0.8),
        exceptions=("medivac",),
    )  # fmt: skip
    allies, enemies = _draws(scenario)
    assert not np.any(np.all(allies == UNIT_INDEX["medivac"], axis=1))
    assert np.mean(allies == UNIT_INDEX["medivac"]) > 0.3  # medivacs still drawn
    np.testing.assert_array_equal(enemies[:, 0], allies[:, 0])  # fewer opponents: truncated


def test_reflect_and_surrounded_starts():
    reflect = V2Scenario("r", "protoss", 5, 7, ("stalker",), (1.0,), start_positions="reflect")
    keys = jax.random.split(jax.random.PRNGKey(1), 200)
    allies, enemies = jax.vmap(lambda k: start_positions(k, reflect))(keys)
    allies, enemies = np.asarray(allies), np.asarray(enemies)
    assert np.all((allies[..., 0] >= 0) & (allies[..., 0] < 15))
    np.testing.assert_allclose(enemies[:, :5, 0], 32 - allies[..., 0], atol=1e-5)
    np.testing.assert_allclose(enemies[:, :5, 1], allies[..., 1])
    assert np.all(enemies[:, 5:, 0] >= 16)

    surrounded = V2Scenario(
        "s", "protoss", 5, 12, ("stalker",), (1.0,), start_positions="surrounded"
    )
    allies, enemies = jax.vmap(lambda k: start_positions(k, surrounded))(keys)
    allies, enemies = np.asarray(allies), np.asarray(enemies)
    np.testing.assert_array_equal(allies, 16.0)
    off_centre = np.abs(enemies - 16.0)
    np.testing.assert_allclose(off_centre[..., 0], off_centre[..., 1], atol=1e-4)  # diagonals
    assert np.all(off_centre >= 2.0 - 1e-4) and np.all(off_centre <= 16.0 + 1e-4)
    groups = [len({tuple(p) for p in np.round(e, 4)}) for e in enemies]
    assert set(groups) == {1, 2, 3, 4}


def test_agents_are_numbered_by_type_then_position():
    env = smacv2("terran_10_vs_10")
    rank = {UNIT_INDEX[name]: r for r, name in enumerate(ALLY_TYPE_ORDER)}
    states, _ = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(2), 16))
    types = np.asarray(states.battle.unit_type)[:, : env.num_agents]
    for row in types:
        ranks = [rank[t] for t in row]
        assert ranks == sorted(ranks)


@pytest.fixture(scope="module")
def protoss():
    env = smacv2("protoss_5_vs_5")
    return env, jax.jit(env.reset), jax.jit(env.step), jax.jit(env.observation)


def _set(state, types, positions):
    battle = sim.new_battle(
        jnp.asarray([UNIT_INDEX[t] for t in types]),
        state.battle.team,
        jnp.asarray(positions, jnp.float32),
    )
    return state.replace(battle=battle)


def test_observation_uses_each_agents_own_ranges(protoss):
    env, reset, _, observe = protoss
    state, _ = reset(jax.random.PRNGKey(0))
    types = ["zealot", "stalker", "stalker", "stalker", "stalker"] * 2
    # Enemy 0 is 3 cells east of agent 0 (a zealot: sight 9, shoot 2) and of agent 1 (a
    # stalker: sight 10, shoot 6); everything else is far apart.
    positions = [(10, 10), (10, 20), (2, 2), (2, 30), (6, 30), (13, 10), (30, 2), (30, 30),
                 (26, 30), (30, 16)]  # fmt: skip
    positions[5] = (13, 10)
    obs = observe(_set(state, types, positions))
    view, mask = np.asarray(obs.agents_view), np.asarray(obs.action_mask)
    assert not mask[0, 6] and not mask[1, 6]  # enemy 0 is 3 from agent 0, 10.4 from agent 1
    positions[5] = (11.5, 10)
    obs = observe(_set(state, types, positions))
    view, mask = np.asarray(obs.agents_view), np.asarray(obs.action_mask)
    assert mask[0, 6]  # 1.5 <= the zealot's shoot range 2
    # Enemy features start after the 4 move flags: [attackable, distance, dx, dy, ...].
    np.testing.assert_allclose(view[0, 4:8], [1.0, 1.5 / 9, 1.5 / 9, 0.0], atol=1e-6)
    # Own features end the vector: health, shield, x / 32, y / 32, type one-hot (3).
    np.testing.assert_allclose(view[0, -7:], [1, 1, 10 / 32, 10 / 32, 0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(view[1, -7:], [1, 1, 10 / 32, 20 / 32, 1, 0, 0], atol=1e-6)
    positions[5] = (10, 25)  # 5 from agent 1: in a stalker's shoot range 6
    obs = observe(_set(state, types, positions))
    view, mask = np.asarray(obs.agents_view), np.asarray(obs.action_mask)
    assert mask[1, 6] and not mask[0, 6]
    np.testing.assert_allclose(view[1, 4:8], [1.0, 5 / 10, 0.0, 5 / 10], atol=1e-6)


def test_positive_reward_clips_at_zero():
    env = smacv2("zerg_5_vs_5")
    state, _ = env.reset(jax.random.PRNGKey(0))
    types = ["zergling"] * 10
    positions = [(2, 2 + 3 * i) for i in range(5)] + [(30, 2 + 3 * i) for i in range(5)]
    state = _set(state, types, positions)
    # A wounded enemy regenerates and nobody fights: SMAC v1 would pay abs(negative).
    battle = state.battle.replace(health=state.battle.health.at[5].set(10.0))
    _, timestep = jax.jit(env.step)(state.replace(battle=battle), jnp.ones(5, jnp.int32))
    assert float(timestep.reward[0]) == 0.0
    v1_style = SMAC(RandomTeamsGenerator("zerg_5_vs_5"), own_position=True, positive_reward="abs")
    _, timestep = jax.jit(v1_style.step)(state.replace(battle=battle), jnp.ones(5, jnp.int32))
    assert float(timestep.reward[0]) > 0.0


def test_medivacs_alone_have_lost():
    env = smacv2("terran_5_vs_5")
    state, _ = env.reset(jax.random.PRNGKey(0))
    types = ["medivac", "marine", "marine", "marine", "marine"] + ["marine"] * 5
    positions = [(2, 2 + 3 * i) for i in range(5)] + [(30, 2 + 3 * i) for i in range(5)]
    state = _set(state, types, positions)
    dead = jnp.asarray([False, True, True, True, True] + [False] * 5)
    battle = state.battle.replace(alive=~dead, health=jnp.where(dead, 0.0, state.battle.health))
    _, timestep = jax.jit(env.step)(state.replace(battle=battle), jnp.ones(5, jnp.int32))
    assert bool(timestep.last()) and float(timestep.discount[0]) == 0.0
    assert float(timestep.extras["won"]) == 0.0


def test_max_reward_follows_each_episodes_opponents():
    env = smacv2("protoss_5_vs_5")
    state, _ = env.reset(jax.random.PRNGKey(3))
    roster = env.generator.roster(state.battle)
    enemy_types = np.asarray(state.battle.unit_type)[5:]
    stock = sum(sim.unit_table()["health"][t] + sim.unit_table()["shield"][t] for t in enemy_types)
    assert float(env.generator.max_reward(roster)) == pytest.approx(10 * 5 + 200 + stock)


def test_user_registered_scenario():
    scenario = V2Scenario("marines_3_vs_4", "terran", 3, 4, ("marine",), (1.0,))
    register_scenario(scenario)
    with pytest.raises(ValueError, match="exists"):
        register_scenario(scenario)
    env = marl.make_raw_env("smacv2/marines_3_vs_4")
    state, timestep = env.reset(jax.random.PRNGKey(0))
    assert timestep.observation.action_mask.shape == (3, 10)
    assert np.all(np.asarray(state.battle.unit_type) == UNIT_INDEX["marine"])
    with pytest.raises(ValueError, match="race 'orc'"):
        V2Scenario("bad", "orc", 3, 3, ("marine",), (1.0,))
    with pytest.raises(ValueError, match="valid for terran"):
        V2Scenario("bad", "terran", 3, 3, ("zealot",), (1.0,))
