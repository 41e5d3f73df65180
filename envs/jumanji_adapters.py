"""Jumanji's multi-agent grid worlds behind marl-lab's environment contract.

* :class:`LevelBasedForaging` wraps ``jumanji.environments.LevelBasedForaging``.
  Registered as the family ``lbf`` with task names ``{grid}x{grid}-{agents}p-{food}f``
  (``"lbf/8x8-2p-2f"``: an 8x8 grid, 2 agents, 2 food items), full observability and
  cooperative food levels, as in Jumanji's default task.
* :class:`RobotWarehouse` wraps ``jumanji.environments.RobotWarehouse``. Registered
  as the family ``rware`` with the RWARE paper's layouts: ``tiny-2ag``, ``tiny-4ag``
  (1 shelf row x 3 shelf columns) and ``small-4ag`` (2 x 3), column height 8, sensor
  range 1 and as many requested shelves as agents.

Both keep Jumanji's state as theirs, so a state can be built by hand from Jumanji's
dataclasses and stepped. The adapters report the team reward repeated per agent,
discount 0 only on a real termination (1 when the time limit cuts the episode),
``extras["won"]`` and ``extras["invalid_actions"]`` (how many agents chose an action
their mask forbade; the environment treats it as documented below, never crashes).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import jumanji.environments as jumanji_envs
from jumanji.environments.routing.lbf import utils as lbf_utils
from jumanji.environments.routing.lbf.generator import RandomGenerator as LbfGenerator
from jumanji.environments.routing.lbf.types import State as LbfState
from jumanji.environments.routing.robot_warehouse.generator import (
    RandomGenerator as RwareGenerator,
)
from jumanji.environments.routing.robot_warehouse.types import State as RwareState
from jumanji.types import StepType, TimeStep, restart

from marl.env import MultiAgentEnv, count_invalid, play_as_fallback, strong_types, team_timestep
from marl.types import Array, Observation, PRNGKey


def _first_extras() -> dict[str, Array]:
    return {"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)}


class LevelBasedForaging(MultiAgentEnv):
    """Level-Based Foraging (Papoudakis et al. 2021) from Jumanji.

    Agents with levels walk a ``grid_size x grid_size`` grid; a food item is eaten when
    agents adjacent to it LOAD together with total level at least the food's level.
    Actions: 0 no-op, 1 up, 2 down, 3 left, 4 right, 5 load. The mask forbids moving
    off the grid or onto an agent or uneaten food, and LOAD away from uneaten food; a
    forbidden action leaves the agent where it is, like a no-op.

    * ``agents_view``: Jumanji's vector observation as float32, ``3 * (num_food +
      num_agents)`` values: ``(row, col, level)`` of each food, of the agent itself and
      of each other agent, ``(-1, -1, 0)`` when out of view or eaten. Coordinates are
      those of the agent's field-of-view window (absolute when ``fov == grid_size``).
    * ``global_state``: ``(row, col, level)`` of every agent then ``(row, col, level,
      eaten)`` of every food, with coordinates divided by ``grid_size - 1`` and levels by
      their largest possible value, so all lie in [0, 1].
    * reward: the sum over agents of Jumanji's normalised per-agent reward (an episode
      that eats all food returns 1), repeated for every agent.
    * ``extras["won"]``: 1 when all food has been eaten.

    The constructor's defaults (``force_coop=True``: every food needs the joint level
    of the lowest-level agents, up to three of them; ``time_limit=100``) are those of
    Jumanji's default task, registered as ``lbf/8x8-2p-2f-coop``; registered names
    without ``-coop`` build the non-cooperative variant.
    """

    def __init__(
        self,
        grid_size: int = 8,
        num_agents: int = 2,
        num_food: int = 2,
        fov: int | None = None,
        max_agent_level: int = 2,
        force_coop: bool = True,
        time_limit: int = 100,
    ):
        fov = grid_size if fov is None else fov
        _check_lbf_sizes(grid_size, num_agents, num_food, fov, max_agent_level, time_limit)
        generator = LbfGenerator(
            grid_size=grid_size,
            num_agents=num_agents,
            num_food=num_food,
            fov=fov,
            max_agent_level=max_agent_level,
            force_coop=force_coop,
        )
        self._env = jumanji_envs.LevelBasedForaging(generator=generator, time_limit=time_limit)
        self.grid_size = grid_size
        self.num_food = num_food
        self.fov = fov
        self.max_agent_level = max_agent_level
        # The generator draws food levels up to the summed level of three agents.
        self.max_food_level = min(3, num_agents) * max_agent_level
        self.num_agents = num_agents
        self.num_actions = 6
        self.obs_dim = 3 * (num_agents + num_food)
        self.state_dim = 3 * num_agents + 4 * num_food
        self.time_limit = time_limit
        super().__init__()

    def __repr__(self) -> str:
        return (
            f"LevelBasedForaging(grid_size={self.grid_size}, num_agents={self.num_agents}, "
            f"num_food={self.num_food}, fov={self.fov}, time_limit={self.time_limit})"
        )

    def _global_state(self, state: LbfState) -> Array:
        scale = jnp.float32(self.grid_size - 1)
        agents = jnp.concatenate(
            [
                state.agents.position / scale,
                state.agents.level[:, None] / self.max_agent_level,
            ],
            axis=1,
        )
        foods = jnp.concatenate(
            [
                state.food_items.position / scale,
                state.food_items.level[:, None] / self.max_food_level,
                state.food_items.eaten[:, None],
            ],
            axis=1,
        )
        return jnp.concatenate([agents.ravel(), foods.ravel()]).astype(jnp.float32)

    def _observation(self, state: LbfState, inner_obs: Any) -> Observation:
        return Observation(
            agents_view=inner_obs.agents_view.astype(jnp.float32),
            action_mask=inner_obs.action_mask,
            global_state=self._global_state(state),
            step_count=jnp.asarray(state.step_count, jnp.int32),
        )

    def _action_mask(self, state: LbfState) -> Array:
        return jax.vmap(lbf_utils.compute_action_mask, (0, None, None))(
            state.agents, state, self.grid_size
        )

    def reset(self, key: PRNGKey) -> tuple[LbfState, TimeStep]:
        state, inner = self._env.reset(key)
        state = strong_types(state)
        obs = self._observation(state, inner.observation)
        return state, restart(obs, extras=_first_extras(), shape=self.num_agents)

    def step(self, state: LbfState, action: Array) -> tuple[LbfState, TimeStep]:
        action = jnp.asarray(action, jnp.int32)
        mask = self._action_mask(state)
        invalid = count_invalid(mask, action)
        next_state, inner = self._env.step(state, play_as_fallback(mask, action, 0))
        next_state = strong_types(next_state)
        all_eaten = jnp.all(next_state.food_items.eaten)
        obs = self._observation(next_state, inner.observation)
        extras = {"won": all_eaten.astype(jnp.float32), "invalid_actions": invalid}
        timestep = team_timestep(
            jnp.sum(inner.reward),
            obs,
            terminated=all_eaten,
            truncated=next_state.step_count >= self.time_limit,
            extras=extras,
            num_agents=self.num_agents,
        )
        return next_state, timestep

    def render(self, state: LbfState) -> Any:
        return self._env.render(state)


def _check_lbf_sizes(
    grid_size: int,
    num_agents: int,
    num_food: int,
    fov: int,
    max_agent_level: int,
    time_limit: int,
) -> None:
    # Jumanji only asserts these (or, for food placement, silently misplaces food).
    if grid_size < 5:
        raise ValueError(f"LBF needs grid_size >= 5, got {grid_size}")
    if num_agents < 1 or num_food < 1:
        raise ValueError(f"LBF needs at least one agent and one food, got {num_agents}, {num_food}")
    if not 1 <= fov <= grid_size:
        raise ValueError(f"LBF needs 1 <= fov <= grid_size, got fov={fov}")
    if max_agent_level < 2:
        raise ValueError(f"LBF needs max_agent_level >= 2, got {max_agent_level}")
    if (grid_size - 2) ** 2 - num_agents <= 5 * num_food:
        raise ValueError(
            f"a {grid_size}x{grid_size} LBF grid has too few inner cells for {num_food} "
            f"non-adjacent food items and {num_agents} agents"
        )
    if time_limit < 1:
        raise ValueError(f"time_limit must be positive, got {time_limit}")


LBF_PATTERN = "{grid}x{grid}-{agents}p-{food}f[-coop]"
_LBF_TASK = re.compile(r"(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?")


def parse_lbf_task(task: str) -> dict[str, Any] | None:
    """``"8x8-2p-2f-coop"`` -> ``{"grid_size": 8, "num_agents": 2, "num_food": 2,
    "force_coop": True}``; None if the name does not parse.

    As in the original LBF's names, the ``-coop`` suffix makes every food need the
    agents' joint level; without it an agent of high enough level eats alone.
    """
    match = _LBF_TASK.fullmatch(task)
    if match is None or match.group(1) != match.group(2):
        return None
    grid, _, agents, food = (int(g) for g in match.groups()[:4])
    coop = match.group(5) is not None
    return {"grid_size": grid, "num_agents": agents, "num_food": food, "force_coop": coop}


def lbf_accepts(task: str) -> bool:
    return parse_lbf_task(task) is not None


def make_lbf(task: str, **kwargs: Any) -> LevelBasedForaging:
    """Builds ``lbf/{task}``; keyword arguments (``fov``, ``time_limit``, ...) override."""
    sizes = parse_lbf_task(task)
    if sizes is None:
        raise ValueError(f"unknown LBF task '{task}'; expected {LBF_PATTERN}")
    return LevelBasedForaging(**{**sizes, **kwargs})


class RobotWarehouse(MultiAgentEnv):
    """The multi-robot warehouse RWARE (Papoudakis et al. 2021) from Jumanji.

    Robots fetch the requested shelves, carry them to the goal cells at the bottom of
    the warehouse and return them. Actions: 0 no-op, 1 forward, 2 turn left, 3 turn
    right, 4 toggle load. The mask forbids driving a carried shelf into another shelf;
    Jumanji turns a forbidden action into a no-op. Two robots on one cell end the
    episode (a real termination, as in Jumanji's version).

    * ``agents_view``: Jumanji's vector observation as float32 (own position, carrying,
      direction and highway flag, then the agents and shelves in sensor range).
    * ``global_state``: per agent ``(row, col)`` divided by the grid's size minus 1, the
      one-hot direction and the carrying flag; then per shelf ``(row, col)`` scaled the
      same way and the requested flag.
    * reward: Jumanji's shared reward, +1 per requested shelf delivered at this step
      (the sum over agents of the original RWARE's individual rewards), repeated for
      every agent.
    * ``extras["won"]``: always 0, the warehouse has no winning condition.

    Defaults are the ``tiny-2ag`` task with the original 500-step horizon.
    """

    def __init__(
        self,
        shelf_rows: int = 1,
        shelf_columns: int = 3,
        column_height: int = 8,
        num_agents: int = 2,
        sensor_range: int = 1,
        request_queue_size: int | None = None,
        time_limit: int = 500,
    ):
        if time_limit < 1:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        generator = RwareGenerator(
            shelf_rows=shelf_rows,
            shelf_columns=shelf_columns,
            column_height=column_height,
            num_agents=num_agents,
            sensor_range=sensor_range,
            request_queue_size=num_agents if request_queue_size is None else request_queue_size,
        )
        # Jumanji ends the episode at its time limit as a termination (discount 0). Its
        # limit is set one past ours so that inside our episodes it only ever ends on a
        # collision, and our own limit becomes a truncation.
        self._env = jumanji_envs.RobotWarehouse(generator=generator, time_limit=time_limit + 1)
        self.grid_shape = tuple(int(n) for n in generator.grid_size)
        self.num_shelves = int(generator.shelf_ids.shape[0])
        self.num_agents = num_agents
        self.num_actions = 5
        self.obs_dim = int(self._env.num_obs_features)
        self.state_dim = 7 * num_agents + 3 * self.num_shelves
        self.time_limit = time_limit
        super().__init__()

    def __repr__(self) -> str:
        return (
            f"RobotWarehouse(grid_shape={self.grid_shape}, num_agents={self.num_agents}, "
            f"num_shelves={self.num_shelves}, time_limit={self.time_limit})"
        )

    def _global_state(self, state: RwareState) -> Array:
        row_scale = jnp.float32(self.grid_shape[0] - 1)
        col_scale = jnp.float32(self.grid_shape[1] - 1)
        agents, shelves = state.agents, state.shelves
        agent_features = jnp.concatenate(
            [
                (agents.position.x / row_scale)[:, None],
                (agents.position.y / col_scale)[:, None],
                jax.nn.one_hot(agents.direction, 4),
                agents.is_carrying[:, None],
            ],
            axis=1,
        )
        shelf_features = jnp.stack(
            [
                shelves.position.x / row_scale,
                shelves.position.y / col_scale,
                shelves.is_requested,
            ],
            axis=1,
        )
        return jnp.concatenate([agent_features.ravel(), shelf_features.ravel()]).astype(jnp.float32)

    def _observation(self, state: RwareState, inner_obs: Any) -> Observation:
        return Observation(
            agents_view=inner_obs.agents_view.astype(jnp.float32),
            action_mask=inner_obs.action_mask,
            global_state=self._global_state(state),
            step_count=jnp.asarray(state.step_count, jnp.int32),
        )

    def reset(self, key: PRNGKey) -> tuple[RwareState, TimeStep]:
        state, inner = self._env.reset(key)
        state = strong_types(state)
        obs = self._observation(state, inner.observation)
        return state, restart(obs, extras=_first_extras(), shape=self.num_agents)

    def step(self, state: RwareState, action: Array) -> tuple[RwareState, TimeStep]:
        action = jnp.asarray(action, jnp.int32)
        invalid = count_invalid(state.action_mask, action)
        next_state, inner = self._env.step(state, action)
        next_state = strong_types(next_state)
        obs = self._observation(next_state, inner.observation)
        extras = {"won": jnp.float32(0.0), "invalid_actions": invalid}
        timestep = team_timestep(
            inner.reward,
            obs,
            terminated=inner.step_type == StepType.LAST,  # a collision, see __init__
            truncated=next_state.step_count >= self.time_limit,
            extras=extras,
            num_agents=self.num_agents,
        )
        return next_state, timestep

    def render(self, state: RwareState) -> Any:
        return self._env.render(state)


# RWARE's sizes are (shelf rows, shelf columns); request queue = number of agents.
RWARE_TASKS: dict[str, dict[str, int]] = {
    "tiny-2ag": {"shelf_rows": 1, "shelf_columns": 3, "num_agents": 2},
    "tiny-4ag": {"shelf_rows": 1, "shelf_columns": 3, "num_agents": 4},
    "small-4ag": {"shelf_rows": 2, "shelf_columns": 3, "num_agents": 4},
}
RWARE_PATTERN = "{" + "|".join(RWARE_TASKS) + "}"


def rware_accepts(task: str) -> bool:
    return task in RWARE_TASKS


def make_rware(task: str, **kwargs: Any) -> RobotWarehouse:
    """Builds ``rware/{task}``; keyword arguments (``time_limit``, ...) override."""
    if task not in RWARE_TASKS:
        raise ValueError(f"unknown RWARE task '{task}'; valid: {', '.join(RWARE_TASKS)}")
    return RobotWarehouse(**{**RWARE_TASKS[task], **kwargs})
