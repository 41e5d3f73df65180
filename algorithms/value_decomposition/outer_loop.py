"""Outer-loop QMIX: MO-MIX's baseline, one scalarised QMIX per preference of a grid.

The multi-objective literature's simplest way to a front (and the MO-MIX paper's
baseline): train a separate single-objective learner for each of a set of fixed
preferences ``w``, each on the scalarised reward ``w . r``, and take the front of
their returns. Here the learners run in one program, as seeds do: their states are
stacked along a leading preference axis and ``vmap`` runs them side by side. The
loop's environments are split evenly, each learner acting in and learning from its
own ``envs_per_device / num_preferences`` of them, so at equal env steps every
learner sees a ``1 / num_preferences`` share of the data (as separate runs sharing a
budget would). Each keeps its own exploration schedule, counted in its own env
steps, replay, optimiser and target network.

Asked to act on a preference (evaluation), it plays the learner trained for the
nearest preference of its grid; its evaluation grid is its training grid.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.algorithm import count_env_steps
from marl.algorithms.value_decomposition.learner import (
    ValueDecomposition,
    ValueDecompositionState,
)
from marl.algorithms.value_decomposition.mixing import QMIXOptions, make_qmix
from marl.env import require_vector_reward
from marl.options import check_at_least_one
from marl.pareto import simplex_grid
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition


@dataclasses.dataclass
class OuterLoopQMIXOptions(QMIXOptions):
    """QMIX's options for every learner, and the grid: one learner per preference of
    the simplex grid of step ``1 / preference_divisions`` (5 for two objectives at 4).
    ``arch.num_envs`` per device must be a multiple of the number of preferences."""

    name: str = "qmix_outer_loop"
    multi_objective: ClassVar[bool] = True
    preference_divisions: int = 4

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("preference_divisions",))


@struct.dataclass
class OuterLoopState:
    """Every learner's :class:`ValueDecompositionState` fields stacked ``[P, ...]``, and
    the env steps of all of them together (what the loop reads)."""

    params: Any
    target_params: Any
    opt_state: Any
    buffer_state: Any
    updates: Array
    learner_env_steps: Array  # [P]: each learner's own count, for its exploration
    env_steps: Array


class OuterLoopMemory(NamedTuple):
    """Training: every learner's memory ``[P, B / P, ...]`` (``learner`` is None).
    Acting on one preference: the index of the learner that plays and its memory."""

    learner: Array | None
    inner: Any


class OuterLoop:
    """One scalar learner per preference, vmapped (see the module's docstring).

    Implements :class:`marl.algorithm.MultiObjectiveAlgorithm`.
    """

    replay_fields = ("buffer_state",)

    def __init__(self, inner: ValueDecomposition, preferences: np.ndarray, envs_per_device: int):
        self.inner = inner
        self.preferences = np.asarray(preferences, np.float32)
        self.evaluation_preferences = np.asarray(preferences, np.float64)
        self.num_preferences, self.num_objectives = self.preferences.shape
        self.envs_per_device = envs_per_device
        self.envs_per_learner = envs_per_device // self.num_preferences

    # ------------------------------------------------------------ the stacks
    def _learners(self, state: OuterLoopState) -> ValueDecompositionState:
        return ValueDecompositionState(
            params=state.params,
            target_params=state.target_params,
            opt_state=state.opt_state,
            buffer_state=state.buffer_state,
            env_steps=state.learner_env_steps,
            updates=state.updates,
        )

    @staticmethod
    def _stacked(learners: ValueDecompositionState, env_steps: Array) -> OuterLoopState:
        return OuterLoopState(
            params=learners.params,
            target_params=learners.target_params,
            opt_state=learners.opt_state,
            buffer_state=learners.buffer_state,
            updates=learners.updates,
            learner_env_steps=learners.env_steps,
            env_steps=env_steps,
        )

    def _split(self, tree: Any, axis: int = 0) -> Any:
        """Leaves ``[..., B, ...]`` (``B`` at ``axis``) as ``[P, ..., B / P, ...]``."""

        def split(x: Array) -> Array:
            shape = x.shape[:axis] + (self.num_preferences, -1) + x.shape[axis + 1 :]
            return jnp.moveaxis(x.reshape(shape), axis, 0)

        return jax.tree_util.tree_map(split, tree)

    def _merge(self, tree: Any) -> Any:
        """Leaves ``[P, B / P, ...]`` as ``[B, ...]``."""
        return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)

    # ----------------------------------------------------------- the contract
    def init(self, key: PRNGKey) -> OuterLoopState:
        # One learner at a time (lax.map, not vmap): batched QR factorisations (the
        # GRU's orthogonal initialiser) can deadlock jaxlib's LAPACK thread pool.
        learners = jax.lax.map(self.inner.init, jax.random.split(key, self.num_preferences))
        return self._stacked(learners, jnp.int32(0))

    def initial_memory(self, batch_size: int, preference: Array | None = None) -> OuterLoopMemory:
        """Training memory (``preference`` None: ``batch_size`` is split between the
        learners), or the memory of the learner of the grid preference nearest to
        ``preference`` acting in all ``batch_size`` envs."""
        if preference is None:
            if batch_size % self.num_preferences:
                raise ValueError(
                    f"{batch_size} envs cannot be split evenly between "
                    f"{self.num_preferences} learners"
                )
            per_learner = batch_size // self.num_preferences
            inner = jax.vmap(lambda _: self.inner.initial_memory(per_learner))(
                jnp.arange(self.num_preferences)
            )
            return OuterLoopMemory(None, inner)
        grid = jnp.asarray(self.preferences)
        nearest = jnp.argmin(jnp.abs(grid - jnp.asarray(preference, grid.dtype)).sum(-1))
        return OuterLoopMemory(nearest.astype(jnp.int32), self.inner.initial_memory(batch_size))

    def act(
        self,
        state: OuterLoopState,
        obs: Observation,
        memory: OuterLoopMemory,
        key: PRNGKey,
        explore: bool,
    ) -> tuple[Array, OuterLoopMemory, Any]:
        """Every learner acts in its own envs; or, acting on one preference, its learner
        in all of them."""
        learners = self._learners(state)
        if memory.learner is not None:
            chosen = jax.tree_util.tree_map(lambda x: x[memory.learner], learners)
            actions, inner, extras = self.inner.act(chosen, obs, memory.inner, key, explore)
            return actions, OuterLoopMemory(memory.learner, inner), extras
        keys = jax.random.split(key, self.num_preferences)
        actions, inner, extras = jax.vmap(self.inner.act, in_axes=(0, 0, 0, 0, None))(
            learners, self._split(obs), memory.inner, keys, explore
        )
        return self._merge(actions), OuterLoopMemory(None, inner), self._merge(extras)

    def update(
        self,
        state: OuterLoopState,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None = None,
        bootstrap: Bootstrap | None = None,
    ) -> tuple[OuterLoopState, dict[str, Array]]:
        """Each learner learns from its own envs' part of the rollout ``[T, B]``, its
        reward scalarised by its preference. Metrics are means over the learners."""
        env_steps = count_env_steps(state.env_steps, rollout, axis_name)
        per_learner = self._split(rollout, axis=1)  # [P, T, B / P, ...]
        weights = jnp.asarray(self.preferences)
        reward = jnp.einsum("ptbnm,pm->ptbn", per_learner.reward, weights)
        per_learner = per_learner._replace(reward=reward)
        keys = jax.random.split(key, self.num_preferences)
        learners, metrics = jax.vmap(
            lambda learner, part, learner_key: self.inner.update(
                learner, part, learner_key, axis_name
            )
        )(self._learners(state), per_learner, keys)
        metrics = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)
        return self._stacked(learners, env_steps), metrics


def make_qmix_outer_loop(
    options: OuterLoopQMIXOptions, env_spec: EnvSpec, envs_per_device: int
) -> OuterLoop:
    """One QMIX per preference of the options' grid, for an env with a vector reward."""
    require_vector_reward(env_spec, "qmix_outer_loop")
    preferences = simplex_grid(env_spec.num_objectives, options.preference_divisions)
    count = len(preferences)
    if envs_per_device % count:
        raise ValueError(
            f"arch.num_envs: qmix_outer_loop trains {count} learners (one per preference of "
            f"algo.preference_divisions={options.preference_divisions}), each in its own envs; "
            f"the {envs_per_device} envs per device must be a multiple of {count}: e.g. "
            f"arch.num_envs={count * math.ceil(envs_per_device / count)} on one device"
        )
    fields = {
        field.name: getattr(options, field.name)
        for field in dataclasses.fields(QMIXOptions)
        if field.name != "name"
    }
    inner_options = QMIXOptions(**fields)
    scalar_spec = env_spec.replace(num_objectives=1)
    inner = make_qmix(inner_options, scalar_spec, envs_per_device // count)
    return OuterLoop(inner, preferences, envs_per_device)
