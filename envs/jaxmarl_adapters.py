"""JaxMARL's SMAX and MPE behind marl-lab's environment contract.

JaxMARL is an optional extra (``pip install 'marl-lab[jaxmarl]'``): it is imported only
when one of these environments is built, so this module imports without it.

* :class:`SMAX`: JaxMARL's StarCraft-like micromanagement, the allies learning against
  JaxMARL's heuristic enemy. Registered as the family ``smax``: any map name that
  ``jaxmarl.environments.smax.map_name_to_scenario`` knows (``"smax/3m"``,
  ``"smax/2s3z"``, ``"smax/5m_vs_6m"``, ...).
* :class:`MPESimpleSpread`: MPE's cooperative navigation with discrete actions,
  registered as ``"mpe/simple_spread_v3"``.

JaxMARL's own ``step`` resets finished episodes by itself; the adapters call
``step_env``, which does not, and report the end of an episode through the timestep.
JaxMARL also ends its episodes one step after its ``max_steps`` (it compares the step
count before incrementing it), so the adapters count steps themselves and stop at
``time_limit``.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jumanji.types import TimeStep, restart

from marl.env import MultiAgentEnv, count_invalid, play_as_fallback, strong_types, team_timestep
from marl.types import Array, Observation, PRNGKey


def _jaxmarl(what: str) -> Any:
    try:
        import jaxmarl.environments
    except ImportError as err:
        raise ImportError(f"{what} needs JaxMARL: pip install 'marl-lab[jaxmarl]'") from err
    return jaxmarl.environments


@struct.dataclass
class JaxMARLState:
    """A JaxMARL environment's state with the key its steps consume and our step count."""

    env_state: Any
    key: PRNGKey
    step_count: Array


def _stack(per_agent: dict[str, Array], agents: list[str], dtype: Any) -> Array:
    return jnp.stack([per_agent[agent] for agent in agents]).astype(dtype)


def _first_extras() -> dict[str, Array]:
    return {"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)}


class _JaxMARLAdapter(MultiAgentEnv):
    """What the JaxMARL adapters share: reset, and a step that does not auto-reset.

    Subclasses set ``self._env`` (a JaxMARL environment) and define
    ``_observation(obs, env_state, step_count)`` and ``step``.
    """

    _env: Any

    @abc.abstractmethod
    def _observation(self, obs: dict[str, Array], env_state: Any, step_count: Array) -> Observation:
        """Our observation from JaxMARL's per-agent ``obs`` and its state."""

    def reset(self, key: PRNGKey) -> tuple[JaxMARLState, TimeStep]:
        key, reset_key = jax.random.split(key)
        obs, env_state = self._env.reset(reset_key)
        state = JaxMARLState(strong_types(env_state), key, jnp.int32(0))
        timestep = restart(
            self._observation(obs, env_state, state.step_count),
            extras=_first_extras(),
            shape=self.num_agents,
        )
        return state, timestep

    def _step_env(
        self, state: JaxMARLState, action: Array
    ) -> tuple[dict[str, Array], Any, dict[str, Array], JaxMARLState]:
        """JaxMARL's ``step_env`` on our int array of actions, without its auto-reset."""
        key, step_key = jax.random.split(state.key)
        actions = {agent: action[i] for i, agent in enumerate(self._env.agents)}
        obs, env_state, rewards, _, _ = self._env.step_env(step_key, state.env_state, actions)
        next_state = JaxMARLState(strong_types(env_state), key, state.step_count + 1)
        return obs, env_state, rewards, next_state


class SMAX(_JaxMARLAdapter):
    """JaxMARL's SMAX: the allies of a SMAC-like map against the heuristic enemy.

    Actions (per ally): 0-3 move, 4 stop, ``5 + j`` attack enemy ``j``. The mask is
    JaxMARL's ``get_avail_actions``: moving needs the unit alive, attacking needs the
    enemy alive and in range, and stop is always available (dead units can only stop).
    A forbidden action changes nothing for that unit: JaxMARL ignores dead units'
    moves and attacks out of range, so it plays as stop (``fallback_action``).

    * ``agents_view``: JaxMARL's ``unit_list`` observation of each ally.
    * ``global_state``: JaxMARL's ``world_state``: per unit (allies then enemies)
      health fraction, position (map units, not scaled), weapon cooldown and one-hot
      unit type, zeros for dead units; then every unit's team and unit-type index.
    * reward: the allies' shared reward documented by JaxMARL (identical for every
      ally): the enemies' health lost this step, each as a fraction of its unit's full
      health, averaged over the enemies, plus ``won_battle_bonus`` (1) when the allies
      win.
    * ``extras["won"]``: 1 when every enemy is dead and some ally is alive.

    The episode terminates (discount 0) when either team is wiped out and is truncated
    after ``time_limit`` steps (100 by default, as in JaxMARL). Other keyword arguments
    go to ``jaxmarl.environments.smax.HeuristicEnemySMAX``.
    """

    fallback_action = 4  # stop

    def __init__(self, map_name: str = "3m", time_limit: int = 100, **smax_kwargs: Any):
        if time_limit < 1:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        smax = _jaxmarl("SMAX").smax
        self._env = smax.HeuristicEnemySMAX(
            scenario=_smax_scenario(map_name), max_steps=time_limit, **smax_kwargs
        )
        self.map_name = map_name
        self.num_allies = self._env.num_allies
        self.num_agents = self._env.num_allies
        self.num_actions = self._env.num_ally_actions
        self.obs_dim = int(self._env.obs_size)
        self.state_dim = int(self._env.state_size)
        self.time_limit = time_limit
        super().__init__()

    def __repr__(self) -> str:
        return f"SMAX(map_name={self.map_name!r}, time_limit={self.time_limit})"

    def _action_mask(self, env_state: Any) -> Array:
        return _stack(self._env.get_avail_actions(env_state), self._env.agents, bool)

    def _observation(self, obs: dict[str, Array], env_state: Any, step_count: Array) -> Observation:
        return Observation(
            agents_view=_stack(obs, self._env.agents, jnp.float32),
            action_mask=self._action_mask(env_state),
            global_state=obs["world_state"].astype(jnp.float32),
            step_count=step_count,
        )

    def step(self, state: JaxMARLState, action: Array) -> tuple[JaxMARLState, TimeStep]:
        action = jnp.asarray(action, jnp.int32)
        mask = self._action_mask(state.env_state)
        invalid = count_invalid(mask, action)
        action = play_as_fallback(mask, action, self.fallback_action)
        obs, env_state, rewards, next_state = self._step_env(state, action)
        alive = env_state.state.unit_alive
        allies_alive = jnp.any(alive[: self.num_allies])
        enemies_alive = jnp.any(alive[self.num_allies :])
        won = jnp.logical_and(allies_alive, jnp.logical_not(enemies_alive))
        timestep = team_timestep(
            rewards[self._env.agents[0]],
            self._observation(obs, env_state, next_state.step_count),
            terminated=jnp.logical_not(jnp.logical_and(allies_alive, enemies_alive)),
            truncated=next_state.step_count >= self.time_limit,
            extras={"won": won.astype(jnp.float32), "invalid_actions": invalid},
            num_agents=self.num_agents,
        )
        return next_state, timestep


def _smax_scenario(map_name: str) -> Any:
    smax = _jaxmarl("SMAX").smax
    try:
        return smax.map_name_to_scenario(map_name)
    except KeyError:
        known = ", ".join(sorted(smax.smax_env.MAP_NAME_TO_SCENARIO))
        raise ValueError(f"unknown SMAX map '{map_name}'; known: {known}") from None


SMAX_PATTERN = "{map} (a JaxMARL SMAX map such as 3m or 2s3z)"


def smax_accepts(task: str) -> bool:
    try:
        _smax_scenario(task)
    except ImportError:
        # Accept the name so that building it explains how to install JaxMARL.
        return bool(task)
    except ValueError:
        return False
    return True


def make_smax(task: str, **kwargs: Any) -> SMAX:
    """Builds ``smax/{map}``; keyword arguments (``time_limit``, ...) override."""
    return SMAX(map_name=task, **kwargs)


class MPESimpleSpread(_JaxMARLAdapter):
    """MPE's cooperative navigation (``simple_spread_v3``), discrete actions, from JaxMARL.

    ``num_agents`` agents should cover as many landmarks while avoiding each other.
    Actions: 0 no-op, 1 left, 2 right, 3 down, 4 up; all are always available.

    * ``agents_view``: JaxMARL's observation: own velocity and position, the landmarks'
      and the other agents' positions relative to the agent, and the (silent, zero)
      communication of the others.
    * ``global_state``: the absolute positions of all agents then all landmarks,
      followed by the agents' velocities (the environment's physical state).
    * reward: the sum of the agents' rewards, the global reward JaxMARL's Q-learning
      baselines use for MPE: each agent gets ``local_ratio`` times its collision
      penalty (-1 per agent it touches) plus ``1 - local_ratio`` times the shared
      coverage reward (minus the summed distance from each landmark to its closest
      agent). Repeated for every agent.
    * ``extras["won"]``: always 0, the task has no winning condition.

    Episodes never terminate; they are truncated after ``time_limit`` steps (25 by
    default, as in MPE).
    """

    def __init__(
        self,
        num_agents: int = 3,
        num_landmarks: int = 3,
        local_ratio: float = 0.5,
        time_limit: int = 25,
    ):
        if time_limit < 1:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        mpe = _jaxmarl("MPE").mpe
        self._env = mpe.SimpleSpreadMPE(
            num_agents=num_agents,
            num_landmarks=num_landmarks,
            local_ratio=local_ratio,
            action_type="Discrete",
            max_steps=time_limit,
        )
        self.num_landmarks = num_landmarks
        self.num_agents = num_agents
        self.num_actions = 5
        self.obs_dim = int(self._env.observation_space(self._env.agents[0]).shape[0])
        self.state_dim = 2 * (2 * num_agents + num_landmarks)
        self.time_limit = time_limit
        super().__init__()

    def __repr__(self) -> str:
        return (
            f"MPESimpleSpread(num_agents={self.num_agents}, num_landmarks={self.num_landmarks}, "
            f"time_limit={self.time_limit})"
        )

    def _observation(self, obs: dict[str, Array], env_state: Any, step_count: Array) -> Observation:
        global_state = jnp.concatenate(
            [env_state.p_pos.ravel(), env_state.p_vel[: self.num_agents].ravel()]
        )
        return Observation(
            agents_view=_stack(obs, self._env.agents, jnp.float32),
            action_mask=jnp.ones((self.num_agents, self.num_actions), bool),
            global_state=global_state.astype(jnp.float32),
            step_count=step_count,
        )

    def step(self, state: JaxMARLState, action: Array) -> tuple[JaxMARLState, TimeStep]:
        action = jnp.asarray(action, jnp.int32)
        obs, env_state, rewards, next_state = self._step_env(state, action)
        timestep = team_timestep(
            jnp.sum(_stack(rewards, self._env.agents, jnp.float32)),
            self._observation(obs, env_state, next_state.step_count),
            terminated=jnp.bool_(False),
            truncated=next_state.step_count >= self.time_limit,
            extras={"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)},
            num_agents=self.num_agents,
        )
        return next_state, timestep


MPE_TASKS = ("simple_spread_v3",)
MPE_PATTERN = "simple_spread_v3"


def mpe_accepts(task: str) -> bool:
    return task in MPE_TASKS


def make_mpe(task: str, **kwargs: Any) -> MPESimpleSpread:
    """Builds ``mpe/simple_spread_v3``; keyword arguments (``num_agents``, ...) override."""
    if task not in MPE_TASKS:
        raise ValueError(f"unknown MPE task '{task}'; valid: {', '.join(MPE_TASKS)}")
    return MPESimpleSpread(**kwargs)
