"""Wrappers around the environment contract.

* :class:`AgentIDWrapper` appends a one-hot agent id to each agent's view.
* :class:`EpisodeMetricsWrapper` tracks the running return and length and reports
  them, with ``won``, on the last step of each episode.
* :class:`VectorEnv` steps a batch of environments and resets only those that
  finished, instead of computing a reset for every environment on every step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from functools import cached_property
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jumanji
from flax import struct
from jumanji import specs
from jumanji.types import TimeStep
from jumanji.wrappers import Wrapper

from marl.types import Array, Observation, PRNGKey


class AgentIDWrapper(Wrapper):
    """Appends the one-hot id of each agent to its ``agents_view``."""

    def __init__(self, env: jumanji.Environment):
        super().__init__(env)
        self._num_agents = env.observation_spec.agents_view.shape[0]

    def _add_id(self, timestep: TimeStep) -> TimeStep:
        obs = timestep.observation
        ids = jnp.eye(self._num_agents, dtype=obs.agents_view.dtype)
        view = jnp.concatenate([obs.agents_view, ids], axis=-1)
        return timestep.replace(observation=obs._replace(agents_view=view))

    def reset(self, key: PRNGKey) -> tuple[Any, TimeStep]:
        state, timestep = self._env.reset(key)
        return state, self._add_id(timestep)

    def step(self, state: Any, action: Array) -> tuple[Any, TimeStep]:
        state, timestep = self._env.step(state, action)
        return state, self._add_id(timestep)

    @cached_property
    def observation_spec(self) -> specs.Spec[Observation]:
        inner = self._env.observation_spec
        num_agents, obs_dim = inner.agents_view.shape
        view = specs.Array((num_agents, obs_dim + num_agents), jnp.float32, "agents_view")
        return inner.replace(agents_view=view)


@struct.dataclass
class MetricsState:
    env_state: Any
    episode_return: Array
    episode_length: Array


class EpisodeMetricsWrapper(Wrapper):
    """Adds ``episode_return``, ``episode_length`` and ``won`` to ``timestep.extras``.

    The figures are those of the episode that ended at this step; they are only
    meaningful where ``timestep.last()``. The return is the team's (agent 0's
    reward, the team reward being repeated per agent); for multi-objective tasks it
    is a vector. ``won`` comes from the inner environment's ``extras["won"]`` when
    it reports one, else 0.
    """

    def reset(self, key: PRNGKey) -> tuple[MetricsState, TimeStep]:
        env_state, timestep = self._env.reset(key)
        zero_return = jnp.zeros_like(timestep.reward[0], dtype=jnp.float32)
        state = MetricsState(env_state, zero_return, jnp.int32(0))
        extras = dict(timestep.extras)
        extras.update(
            episode_return=zero_return,
            episode_length=jnp.int32(0),
            won=jnp.float32(0.0),
        )
        return state, timestep.replace(extras=extras)

    def step(self, state: MetricsState, action: Array) -> tuple[MetricsState, TimeStep]:
        env_state, timestep = self._env.step(state.env_state, action)
        episode_return = state.episode_return + timestep.reward[0]
        episode_length = state.episode_length + 1
        extras = dict(timestep.extras)
        won = extras.get("won", jnp.float32(0.0))
        extras.update(
            episode_return=episode_return,
            episode_length=episode_length,
            won=jnp.asarray(won, jnp.float32),
        )
        running = jnp.logical_not(timestep.last())
        new_state = MetricsState(
            env_state,
            jnp.where(running, episode_return, jnp.zeros_like(episode_return)),
            jnp.where(running, episode_length, 0),
        )
        return new_state, timestep.replace(extras=extras)

    def render(self, state: MetricsState) -> Any:
        """The inner environment's rendering of ``state.env_state``."""
        return self._env.render(state.env_state)

    def render_episode(self, states: list[MetricsState]) -> list[Any]:
        """The inner environment's frames of an episode (one per state): its own
        ``render_episode`` where it has one (one view for the whole episode), else
        ``render`` of each state."""
        inner = [state.env_state for state in states]
        if hasattr(self._env, "render_episode"):
            return self._env.render_episode(inner)
        return [self._env.render(state) for state in inner]


class VecState(NamedTuple):
    env_state: Any
    keys: Array  # one PRNG key per environment, consumed only by its own resets


def _select(mask: Array, new: Any, old: Any) -> Any:
    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree_util.tree_map(pick, new, old)


class VectorEnv:
    """A batch of ``num_envs`` environments with auto-reset of the finished ones.

    A step runs the inner ``step`` for every environment; then, only when some
    episode ended, it resets those environments with the smallest of a few batch
    sizes that holds them all (``ceil(N * f)`` for ``f`` in ``reset_fractions``,
    then ``N``): the finished environments are gathered, reset and scattered back,
    and a step where more ended than the largest partial batch holds resets the
    whole batch and selects. One ``lax.switch`` picks the branch, so a step pays
    for a reset of the size it needs rather than of every environment. Every
    environment owns its PRNG key, so an environment's episodes do not depend on
    what the other environments of the batch did, nor on which branch ran.

    The returned timestep keeps the reward, discount, step type and extras of the
    step just taken, but for finished environments its observation is the first
    observation of their next episode.
    """

    def __init__(
        self,
        env: jumanji.Environment,
        num_envs: int,
        reset_fractions: Sequence[float] = (1 / 64, 1 / 8),
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if any(not 0.0 <= f <= 1.0 for f in reset_fractions):
            raise ValueError(f"reset_fractions must lie in [0, 1], got {tuple(reset_fractions)}")
        self.env = env
        self.num_envs = num_envs
        sizes = {max(1, math.ceil(num_envs * f)) for f in reset_fractions}
        self.partial_reset_sizes = sorted(size for size in sizes if size < num_envs)

    def reset(self, key: PRNGKey) -> tuple[VecState, TimeStep]:
        keys = jax.random.split(key, self.num_envs)
        split = jax.vmap(jax.random.split)(keys)
        env_state, timestep = jax.vmap(self.env.reset)(split[:, 1])
        return VecState(env_state, split[:, 0]), timestep

    def step(self, state: VecState, actions: Array) -> tuple[VecState, TimeStep]:
        env_state, timestep = jax.vmap(self.env.step)(state.env_state, actions)
        done = timestep.last()
        num_envs = self.num_envs

        def reset_all(operand):
            env_state, obs, keys = operand
            split = jax.vmap(jax.random.split)(keys)
            fresh_state, fresh_ts = jax.vmap(self.env.reset)(split[:, 1])
            return (
                _select(done, fresh_state, env_state),
                _select(done, fresh_ts.observation, obs),
                _select(done, split[:, 0], keys),
            )

        def reset_some(size: int, operand):
            env_state, obs, keys = operand
            (index,) = jnp.nonzero(done, size=size, fill_value=num_envs)
            split = jax.vmap(jax.random.split)(keys[jnp.minimum(index, num_envs - 1)])
            fresh_state, fresh_ts = jax.vmap(self.env.reset)(split[:, 1])

            def scatter(batch, fresh):
                return batch.at[index].set(fresh, mode="drop")

            return (
                jax.tree_util.tree_map(scatter, env_state, fresh_state),
                jax.tree_util.tree_map(scatter, obs, fresh_ts.observation),
                scatter(keys, split[:, 0]),
            )

        branches = [lambda operand: operand]
        branches += [functools.partial(reset_some, size) for size in self.partial_reset_sizes]
        branches.append(reset_all)
        # 0 when no episode ended, else 1 + how many partial sizes are too small.
        thresholds = jnp.asarray([0, *self.partial_reset_sizes], jnp.int32)
        branch = jnp.sum(done.sum() > thresholds)
        operand = (env_state, timestep.observation, state.keys)
        env_state, obs, keys = jax.lax.switch(branch, branches, operand)
        return VecState(env_state, keys), timestep.replace(observation=obs)
