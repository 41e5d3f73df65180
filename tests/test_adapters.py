"""The Jumanji (LBF, RWARE) and JaxMARL (SMAX, MPE) adapters on hand-made situations.

Each environment compiles one ``reset`` and one ``step`` (module-scoped fixtures);
hand-made states keep the dtypes of a reset state so that they reuse that compile.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jumanji.environments.routing.lbf.types import Agent as LbfAgent
from jumanji.environments.routing.lbf.types import Food as LbfFood
from jumanji.environments.routing.lbf.types import State as LbfState
from jumanji.environments.routing.robot_warehouse.types import Agent as RwareAgent
from jumanji.environments.routing.robot_warehouse.types import Position
from jumanji.types import StepType

import marl
from marl import env_spec, make_raw_env

LAST, MID = int(StepType.LAST), int(StepType.MID)


class Compiled(NamedTuple):
    env: Any
    reset: Any
    step: Any


def _compiled(name: str) -> Compiled:
    env = make_raw_env(name)
    return Compiled(env, jax.jit(env.reset), jax.jit(env.step))


def _check_spec(env: Any, timestep: Any) -> None:
    spec = env_spec(env)
    env.observation_spec.validate(timestep.observation)
    assert timestep.reward.shape == timestep.discount.shape == (spec.num_agents,)
    assert timestep.reward.dtype == timestep.discount.dtype == jnp.float32
    assert timestep.extras["won"].dtype == jnp.float32
    # One team reward, repeated for every agent.
    np.testing.assert_array_equal(timestep.reward, timestep.reward[0])


def _actions(*values: int) -> jax.Array:
    return jnp.array(values, jnp.int32)


# ---------------------------------------------------------------------------- LBF

NOOP, UP, DOWN, LEFT, RIGHT, LOAD = range(6)


@pytest.fixture(scope="module")
def lbf() -> Compiled:
    return _compiled("lbf/8x8-2p-2f")


def lbf_state(
    agent_pos: list[list[int]],
    food_pos: list[list[int]],
    food_eaten: tuple[bool, bool] = (False, False),
    step_count: int = 0,
) -> LbfState:
    """Two level-1 agents and two level-2 foods (so both agents must LOAD together)."""
    agents = LbfAgent(
        id=jnp.arange(2, dtype=jnp.int32),
        position=jnp.array(agent_pos, jnp.int32),
        level=jnp.array([1, 1], jnp.int32),
        loading=jnp.zeros(2, bool),
    )
    food = LbfFood(
        id=jnp.arange(2, dtype=jnp.int32),
        position=jnp.array(food_pos, jnp.int32),
        level=jnp.array([2, 2], jnp.int32),
        eaten=jnp.array(food_eaten, bool),
    )
    return LbfState(
        agents=agents, food_items=food, step_count=jnp.int32(step_count), key=jax.random.PRNGKey(0)
    )


def test_lbf_reset_matches_the_spec(lbf):
    spec = env_spec(lbf.env)
    assert (spec.num_agents, spec.num_actions, spec.obs_dim) == (2, 6, 12)
    assert (spec.state_dim, spec.time_limit) == (14, 100)
    state, timestep = lbf.reset(jax.random.PRNGKey(1))
    _check_spec(lbf.env, timestep)
    assert int(timestep.observation.step_count) == 0
    assert int(timestep.step_type) == int(StepType.FIRST)
    gs = timestep.observation.global_state
    assert float(gs.min()) >= 0.0 and float(gs.max()) <= 1.0
    _, timestep = lbf.step(state, jnp.zeros(2, jnp.int32))
    _check_spec(lbf.env, timestep)
    assert int(timestep.observation.step_count) == 1


def test_lbf_action_mask_and_an_unavailable_move(lbf):
    # Agent 0 on the top edge, far from food; agent 1 with food on its right.
    state = lbf_state(agent_pos=[[0, 3], [5, 5]], food_pos=[[3, 3], [5, 6]])
    next_state, timestep = lbf.step(state, _actions(UP, NOOP))  # UP is off the grid
    np.testing.assert_array_equal(next_state.agents.position, [[0, 3], [5, 5]])
    assert int(timestep.extras["invalid_actions"]) == 1
    assert int(timestep.step_type) == MID
    np.testing.assert_array_equal(
        timestep.observation.action_mask,
        [
            [True, False, True, True, True, False],  # no UP at the edge, no LOAD without food
            [True, True, True, True, False, True],  # food blocks RIGHT and allows LOAD
        ],
    )
    assert int(timestep.observation.step_count) == 1
    np.testing.assert_array_equal(timestep.reward, [0.0, 0.0])


def test_lbf_joint_load_pays_the_team(lbf):
    state = lbf_state(agent_pos=[[2, 3], [4, 3]], food_pos=[[3, 3], [6, 6]])
    # Alone, a level-1 agent cannot lift a level-2 food.
    next_state, timestep = lbf.step(state, _actions(LOAD, NOOP))
    assert not bool(next_state.food_items.eaten[0])
    np.testing.assert_array_equal(timestep.reward, [0.0, 0.0])
    # Together they do: the food is half of the total food level, so the team gets 0.5.
    next_state, timestep = lbf.step(state, _actions(LOAD, LOAD))
    np.testing.assert_array_equal(next_state.food_items.eaten, [True, False])
    np.testing.assert_allclose(timestep.reward, [0.5, 0.5])
    assert int(timestep.step_type) == MID
    np.testing.assert_array_equal(timestep.discount, [1.0, 1.0])
    assert float(timestep.extras["won"]) == 0.0
    assert int(timestep.extras["invalid_actions"]) == 0


@pytest.mark.parametrize("step_count", [0, 99])
def test_lbf_eating_the_last_food_terminates_and_wins(lbf, step_count):
    state = lbf_state(
        agent_pos=[[2, 3], [4, 3]],
        food_pos=[[3, 3], [6, 6]],
        food_eaten=(False, True),
        step_count=step_count,
    )
    _, timestep = lbf.step(state, _actions(LOAD, LOAD))
    assert int(timestep.step_type) == LAST
    np.testing.assert_array_equal(timestep.discount, [0.0, 0.0])  # even at the time limit
    assert float(timestep.extras["won"]) == 1.0
    np.testing.assert_allclose(timestep.reward, [0.5, 0.5])


def test_lbf_time_limit_truncates(lbf):
    state = lbf_state(agent_pos=[[0, 3], [5, 5]], food_pos=[[3, 3], [5, 6]], step_count=99)
    _, timestep = lbf.step(state, _actions(NOOP, NOOP))
    assert int(timestep.step_type) == LAST
    assert int(timestep.observation.step_count) == lbf.env.time_limit
    np.testing.assert_array_equal(timestep.discount, [1.0, 1.0])
    assert float(timestep.extras["won"]) == 0.0


def test_registry_builds_lbf_and_rejects_unknown_names():
    env = make_raw_env("lbf/10x10-3p-3f", time_limit=50)
    spec = env_spec(env)
    assert (spec.num_agents, spec.obs_dim, spec.state_dim, spec.time_limit) == (3, 18, 21, 50)
    assert env.fov == 10
    assert marl.registry.is_env_name("rware/tiny-4ag")
    for name in ["lbf/banana", "lbf/8x9-2p-2f", "rware/huge-2ag"]:
        with pytest.raises(ValueError, match="valid:") as info:
            make_raw_env(name)
        assert "lbf/{grid}x{grid}-{agents}p-{food}f" in str(info.value)
        assert "rware/{tiny-2ag|tiny-4ag|small-4ag}" in str(info.value)
    with pytest.raises(ValueError, match="too few inner cells"):
        make_raw_env("lbf/5x5-2p-3f")


# -------------------------------------------------------------------------- RWARE

FORWARD = 1
FACE_UP, FACE_RIGHT, FACE_DOWN = 0, 1, 2


@pytest.fixture(scope="module")
def rware() -> Compiled:
    return _compiled("rware/tiny-2ag")


@pytest.fixture(scope="module")
def rware_start(rware) -> Any:
    return rware.reset(jax.random.PRNGKey(2))


def rware_state(
    template: Any,
    agents: RwareAgent,
    shelf_pos: np.ndarray,
    mask: np.ndarray,
    requested: tuple[int, ...],
) -> Any:
    """A warehouse with the given agents and shelf positions, grid rebuilt to match."""
    grid = np.zeros(template.grid.shape, np.int32)
    grid[0, shelf_pos[:, 0], shelf_pos[:, 1]] = np.arange(1, len(shelf_pos) + 1)
    grid[1, np.asarray(agents.position.x), np.asarray(agents.position.y)] = [1, 2]
    is_requested = np.zeros(len(shelf_pos), np.float32)
    is_requested[list(requested)] = 1.0
    shelves = template.shelves._replace(
        position=Position(x=jnp.asarray(shelf_pos[:, 0]), y=jnp.asarray(shelf_pos[:, 1])),
        is_requested=jnp.asarray(is_requested),
    )
    return template.replace(
        grid=jnp.asarray(grid),
        agents=agents,
        shelves=shelves,
        request_queue=jnp.array(requested, jnp.int32),
        action_mask=jnp.asarray(mask),
        step_count=jnp.int32(0),
    )


def _rware_agents(positions, directions, carrying) -> RwareAgent:
    positions = np.asarray(positions, np.int32)
    return RwareAgent(
        position=Position(x=jnp.asarray(positions[:, 0]), y=jnp.asarray(positions[:, 1])),
        direction=jnp.array(directions, jnp.int32),
        is_carrying=jnp.array(carrying, jnp.int32),
    )


def test_rware_reset_and_step_match_the_spec(rware, rware_start):
    spec = env_spec(rware.env)
    assert (spec.num_agents, spec.num_actions, spec.time_limit) == (2, 5, 500)
    assert spec.state_dim == 7 * 2 + 3 * rware.env.num_shelves
    state, timestep = rware_start
    _check_spec(rware.env, timestep)
    assert int(timestep.observation.step_count) == 0
    _, timestep = rware.step(state, _actions(NOOP, NOOP))
    _check_spec(rware.env, timestep)
    assert int(timestep.observation.step_count) == 1
    assert float(timestep.extras["won"]) == 0.0


def test_rware_delivery_pays_the_team_and_masked_forward_is_a_noop(rware, rware_start):
    template, _ = rware_start
    shelf_pos = np.stack([template.shelves.position.x, template.shelves.position.y], 1)
    (blocking,) = np.nonzero((shelf_pos[:, 0] == 2) & (shelf_pos[:, 1] == 1))
    assert blocking.size == 1 and blocking[0] not in (0, 1)
    # Agent 0 carries requested shelf 0 just above goal (10, 4), facing it; agent 1
    # carries shelf 1 and faces shelf `blocking`, so it may not drive forward.
    shelf_pos[0], shelf_pos[1] = (9, 4), (2, 0)
    agents = _rware_agents([[9, 4], [2, 0]], [FACE_DOWN, FACE_RIGHT], [1, 1])
    mask = np.ones((2, 5), bool)
    mask[1, FORWARD] = False
    state = rware_state(template, agents, shelf_pos, mask, requested=(0, 5))
    next_state, timestep = rware.step(state, _actions(FORWARD, FORWARD))
    np.testing.assert_array_equal(timestep.reward, [1.0, 1.0])
    assert int(next_state.agents.position.x[0]) == 10
    assert (int(next_state.agents.position.x[1]), int(next_state.agents.position.y[1])) == (2, 0)
    assert int(timestep.extras["invalid_actions"]) == 1
    assert not bool(timestep.observation.action_mask[1, FORWARD])
    assert float(next_state.shelves.is_requested[0]) == 0.0  # delivered, no longer requested
    assert int(timestep.step_type) == MID
    np.testing.assert_array_equal(timestep.discount, [1.0, 1.0])


def test_rware_collision_terminates_and_time_limit_truncates(rware, rware_start):
    template, _ = rware_start
    shelf_pos = np.stack([template.shelves.position.x, template.shelves.position.y], 1)
    agents = _rware_agents([[0, 0], [0, 1]], [FACE_RIGHT, FACE_UP], [0, 0])
    state = rware_state(template, agents, shelf_pos, np.ones((2, 5), bool), requested=(0, 5))
    _, timestep = rware.step(state, _actions(FORWARD, NOOP))  # agent 0 drives into agent 1
    assert int(timestep.step_type) == LAST
    np.testing.assert_array_equal(timestep.discount, [0.0, 0.0])

    _, timestep = rware.step(template.replace(step_count=jnp.int32(499)), _actions(NOOP, NOOP))
    assert int(timestep.step_type) == LAST
    assert int(timestep.observation.step_count) == 500
    np.testing.assert_array_equal(timestep.discount, [1.0, 1.0])


# --------------------------------------------------------------------------- SMAX

STOP, ATTACK_FIRST = 4, 5


@pytest.fixture(scope="module")
def smax() -> Compiled:
    pytest.importorskip("jaxmarl")
    return _compiled("smax/3m")


@pytest.fixture(scope="module")
def smax_start(smax) -> Any:
    return smax.reset(jax.random.PRNGKey(3))


def test_smax_reset_matches_the_spec_and_masks(smax, smax_start):
    spec = env_spec(smax.env)
    assert (spec.num_agents, spec.num_actions, spec.time_limit) == (3, 8, 100)
    assert (spec.obs_dim, spec.state_dim) == (smax.env._env.obs_size, smax.env._env.state_size)
    _, timestep = smax_start
    _check_spec(smax.env, timestep)
    assert int(timestep.observation.step_count) == 0
    # The teams start about 16 apart, beyond a marine's range of 5: move or stop only.
    mask = np.asarray(timestep.observation.action_mask)
    assert mask[:, :ATTACK_FIRST].all() and not mask[:, ATTACK_FIRST:].any()


def test_smax_attacking_out_of_range_is_harmless(smax, smax_start):
    state, _ = smax_start
    next_state, timestep = smax.step(state, jnp.full(3, ATTACK_FIRST, jnp.int32))
    assert int(timestep.extras["invalid_actions"]) == 3
    health = next_state.env_state.state.unit_health
    np.testing.assert_array_equal(health, state.env_state.state.unit_health)
    assert int(timestep.observation.step_count) == 1
    assert int(timestep.step_type) == MID


def test_smax_wiping_out_the_enemy_wins(smax, smax_start):
    state, _ = smax_start
    units = state.env_state.state
    units = units.replace(
        unit_alive=units.unit_alive.at[3:].set(False), unit_health=units.unit_health.at[3:].set(0.0)
    )
    state = state.replace(env_state=state.env_state.replace(state=units))
    _, timestep = smax.step(state, jnp.full(3, STOP, jnp.int32))
    assert int(timestep.step_type) == LAST
    np.testing.assert_array_equal(timestep.discount, [0.0, 0.0, 0.0])
    assert float(timestep.extras["won"]) == 1.0
    np.testing.assert_allclose(timestep.reward, [1.0, 1.0, 1.0])  # the won-battle bonus


def test_smax_time_limit_truncates(smax, smax_start):
    state, _ = smax_start
    state = state.replace(step_count=jnp.int32(99))
    _, timestep = smax.step(state, jnp.full(3, STOP, jnp.int32))
    assert int(timestep.step_type) == LAST
    assert int(timestep.observation.step_count) == 100
    np.testing.assert_array_equal(timestep.discount, [1.0, 1.0, 1.0])
    assert float(timestep.extras["won"]) == 0.0


def _random_episode(compiled: Compiled, start: Any, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    state, timestep = start
    timesteps = [timestep]
    while int(timestep.step_type) != LAST:
        assert len(timesteps) <= compiled.env.time_limit
        mask = np.asarray(timestep.observation.action_mask)
        assert mask.any(axis=1).all()  # every agent always has an action
        action = [rng.choice(np.flatnonzero(row)) for row in mask]
        state, timestep = compiled.step(state, jnp.array(action, jnp.int32))
        timesteps.append(timestep)
    return timesteps


def test_smax_random_episode_ends_within_the_limit(smax, smax_start):
    timesteps = _random_episode(smax, smax_start, seed=0)
    last = timesteps[-1]
    length = len(timesteps) - 1
    assert [int(t.observation.step_count) for t in timesteps] == list(range(length + 1))
    assert all(int(t.extras["invalid_actions"]) == 0 for t in timesteps)
    for timestep in timesteps[1:]:
        _check_spec(smax.env, timestep)
    if length < smax.env.time_limit:
        np.testing.assert_array_equal(last.discount, 0.0)  # a team was wiped out
    if float(last.extras["won"]) == 1.0:
        np.testing.assert_array_equal(last.discount, 0.0)


# ---------------------------------------------------------------------------- MPE


@pytest.fixture(scope="module")
def mpe() -> Compiled:
    pytest.importorskip("jaxmarl")
    return _compiled("mpe/simple_spread_v3")


@pytest.fixture(scope="module")
def mpe_start(mpe) -> Any:
    return mpe.reset(jax.random.PRNGKey(4))


def test_mpe_episode_is_truncated_at_the_limit(mpe, mpe_start):
    spec = env_spec(mpe.env)
    assert (spec.num_agents, spec.num_actions, spec.obs_dim) == (3, 5, 18)
    assert (spec.state_dim, spec.time_limit) == (18, 25)
    _check_spec(mpe.env, mpe_start[1])
    assert bool(mpe_start[1].observation.action_mask.all())
    timesteps = _random_episode(mpe, mpe_start, seed=1)
    assert len(timesteps) == 26  # reset plus 25 steps
    assert all(int(t.step_type) == MID for t in timesteps[1:-1])
    np.testing.assert_array_equal(timesteps[-1].discount, 1.0)
    assert float(timesteps[-1].extras["won"]) == 0.0
    for timestep in timesteps[1:]:
        _check_spec(mpe.env, timestep)


def test_mpe_team_reward_is_the_sum_of_agent_rewards(mpe, mpe_start):
    state, _ = mpe_start
    # Landmarks far apart, each agent 0.1 to the right of its own, at rest: a no-op
    # keeps them there, nobody collides and each landmark is 0.1 from its closest agent.
    landmarks = jnp.array([[-0.8, 0.0], [0.0, 0.8], [0.8, 0.0]], jnp.float32)
    agents = landmarks + jnp.array([0.1, 0.0], jnp.float32)
    env_state = state.env_state.replace(
        p_pos=jnp.concatenate([agents, landmarks]), p_vel=jnp.zeros_like(state.env_state.p_vel)
    )
    _, timestep = mpe.step(state.replace(env_state=env_state), jnp.zeros(3, jnp.int32))
    # Each agent: 0.5 * (no collision) + 0.5 * (-0.3 coverage); the team sums three.
    np.testing.assert_allclose(timestep.reward, [-0.45, -0.45, -0.45], rtol=1e-5)
    np.testing.assert_allclose(timestep.observation.global_state[:6], agents.ravel(), atol=1e-6)


def test_registry_rejects_unknown_smax_maps():
    pytest.importorskip("jaxmarl")
    assert marl.registry.is_env_name("smax/2s3z")
    with pytest.raises(ValueError, match="valid:.*smax/"):
        make_raw_env("smax/banana")


def test_missing_jaxmarl_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # makes `import jaxmarl` fail
    for name in ["smax/3m", "mpe/simple_spread_v3"]:
        with pytest.raises(ImportError, match=r"pip install 'marl-lab\[jaxmarl\]'"):
            make_raw_env(name)


# --------------------------------------------------------------------------- all


def _avals(tree: Any) -> list[Any]:
    return [jax.typeof(leaf) for leaf in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", ["lbf", "rware", "smax", "mpe"])
def test_step_keeps_the_signature_of_reset(name, request):
    # A loop carries (state, timestep) through lax.scan and lax.cond, which need reset
    # and step to agree exactly (weak types included, else also one compile per kind).
    compiled = request.getfixturevalue(name)
    start = compiled.reset(jax.random.PRNGKey(5))
    action = jnp.zeros(compiled.env.num_agents, jnp.int32)
    stepped = jax.eval_shape(compiled.env.step, *start[:1], action)
    assert jax.tree.structure(stepped) == jax.tree.structure(start)
    assert _avals(stepped) == _avals(start)
