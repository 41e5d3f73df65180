"""The environment contract: a Jumanji environment with marl-lab's observation layout.

Every environment is a :class:`jumanji.Environment` whose observation is an
:class:`marl.types.Observation`, whose action is ``(num_agents,)`` int32 and whose
reward is ``(num_agents,)`` (``(num_agents, num_objectives)`` for multi-objective
tasks). Subclasses of :class:`MultiAgentEnv` only declare their sizes; the specs
follow from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from jumanji import specs
from jumanji.types import StepType, TimeStep

from marl.types import Array, EnvSpec, Observation


class MultiAgentEnv(jumanji.Environment):
    """Base class: set the sizes in ``__init__`` before calling ``super().__init__()``.

    An action the mask forbids never crashes or corrupts the state: the environment
    plays it as ``fallback_action`` and counts it in ``extras["invalid_actions"]``.
    """

    num_agents: int
    num_actions: int
    obs_dim: int
    state_dim: int
    time_limit: int
    num_objectives: int = 1
    #: What each objective of a vector reward measures, ``num_objectives`` names.
    objective_names: tuple[str, ...] = ("reward",)
    #: Multi-objective envs: the hypervolume's reference point, a return vector that
    #: every reasonable policy beats (e.g. each objective's worst episode return).
    hypervolume_reference: tuple[float, ...] | None = None
    fallback_action: int = 0

    @cached_property
    def observation_spec(self) -> specs.Spec[Observation]:
        return specs.Spec(
            Observation,
            "ObservationSpec",
            agents_view=specs.Array((self.num_agents, self.obs_dim), jnp.float32, "agents_view"),
            action_mask=specs.BoundedArray(
                (self.num_agents, self.num_actions), bool, False, True, "action_mask"
            ),
            global_state=specs.Array((self.state_dim,), jnp.float32, "global_state"),
            step_count=specs.BoundedArray((), jnp.int32, 0, self.time_limit, "step_count"),
        )

    @cached_property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(
            num_values=np.full((self.num_agents,), self.num_actions, np.int32),
            name="action",
        )

    @cached_property
    def reward_spec(self) -> specs.Array:
        shape = (self.num_agents,)
        if self.num_objectives > 1:
            shape = (self.num_agents, self.num_objectives)
        return specs.Array(shape, jnp.float32, "reward")

    @cached_property
    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((self.num_agents,), jnp.float32, 0.0, 1.0, "discount")


def env_spec(env: jumanji.Environment) -> EnvSpec:
    """Reads the sizes of a (possibly wrapped) marl-lab environment."""
    obs_spec = env.observation_spec
    num_agents, obs_dim = obs_spec.agents_view.shape
    num_actions = obs_spec.action_mask.shape[1]
    (state_dim,) = obs_spec.global_state.shape
    reward_shape = env.reward_spec.shape
    return EnvSpec(
        num_agents=int(num_agents),
        num_actions=int(num_actions),
        obs_dim=int(obs_dim),
        state_dim=int(state_dim),
        time_limit=int(obs_spec.step_count.maximum),
        num_objectives=int(reward_shape[1]) if len(reward_shape) > 1 else 1,
    )


def preference_weights(
    weights: Sequence[float], objective_names: Sequence[str], key: str = "weights"
) -> np.ndarray:
    """``weights`` checked as a preference over ``objective_names``: one non-negative
    number per objective, summing to 1. Raises ``ValueError`` naming ``key``."""
    names = ", ".join(objective_names)
    values = np.asarray(weights, np.float32)
    if values.shape != (len(objective_names),):
        raise ValueError(f"{key} must give one number per objective ({names}), got {list(weights)}")
    if not np.isfinite(values).all() or (values < 0).any() or abs(values.sum() - 1.0) > 1e-4:
        raise ValueError(
            f"{key} must be non-negative and sum to 1 (a point of the simplex over {names}), "
            f"got {list(weights)}"
        )
    return values


def require_vector_reward(spec: EnvSpec, algo_name: str) -> None:
    """Refuses, in one line, a multi-objective learner on an env with a scalar reward."""
    if spec.num_objectives < 2:
        raise ValueError(
            f"{algo_name} learns from a vector reward and this env's reward is a scalar; "
            "choose a multi-objective env (mo-smac/<map>, mo-football/<scenario>, "
            "mo-matrix/pareto, mo-matrix/pareto_sum)"
        )


# Helpers for adapters that bring other libraries' environments to the contract.


def team_timestep(
    reward: Array,
    observation: Observation,
    terminated: Array,
    truncated: Array,
    extras: dict[str, Array],
    num_agents: int,
) -> TimeStep:
    """The timestep of a step: ``reward`` (the team's: a scalar, or a vector over the
    objectives) repeated per agent.

    The episode ends when it terminated or was truncated; the discount is 0 only when
    it terminated, so a time-limit cut still bootstraps.
    """
    last = jnp.logical_or(terminated, truncated)
    return TimeStep(
        step_type=jnp.where(last, StepType.LAST, StepType.MID),
        reward=jnp.broadcast_to(jnp.asarray(reward, jnp.float32), (num_agents, *jnp.shape(reward))),
        discount=jnp.full((num_agents,), jnp.where(terminated, 0.0, 1.0), jnp.float32),
        observation=observation,
        extras=extras,
    )


def count_invalid(action_mask: Array, action: Array) -> Array:
    """How many agents chose an action that ``action_mask`` forbids (int32 scalar)."""
    chosen = jnp.take_along_axis(action_mask, action[:, None], axis=1)[:, 0]
    return jnp.sum(~chosen).astype(jnp.int32)


def play_as_fallback(action_mask: Array, action: Array, fallback: int) -> Array:
    """Each agent's ``action`` where ``action_mask`` allows it, else ``fallback``."""
    chosen = jnp.take_along_axis(action_mask, action[:, None], axis=1)[:, 0]
    return jnp.where(chosen, action, fallback).astype(jnp.int32)


def strong_types(tree: Any) -> Any:
    """``tree`` with every array strongly typed.

    Jumanji and JaxMARL leave some state leaves weakly typed (Python-int updates), and
    not always the same ones after ``reset`` and ``step``; a jitted ``step`` would then
    compile once for the state ``reset`` returns and again for its own, and once more
    for a state built by hand.
    """

    def strong(x: Any) -> Array:
        x = jnp.asarray(x)
        return x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x.astype(x.dtype)

    return jax.tree.map(strong, tree)
