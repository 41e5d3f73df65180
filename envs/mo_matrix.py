"""A cooperative one-step game with vector rewards whose Pareto front is known exactly.

Two agents each pick one of ``K`` actions. When they coordinate on action ``k`` the
team receives the payoff vector ``payoffs[k]``; when they do not, ``miscoordination``
(dominated by every coordinated payoff). The Pareto-optimal joint policies are
therefore the coordinated joint actions whose payoffs are non-dominated.

The default payoffs (two objectives)::

    action 0: (1.00, 0.00)   an extreme of the front
    action 1: (0.70, 0.70)   the balanced compromise
    action 2: (0.00, 1.00)   the other extreme
    action 3: (0.85, 0.30)   non-dominated, but in a concave part of the front

Every one of the four is Pareto-optimal. Action 3 lies below the segment from
(1, 0) to (0.7, 0.7) (at 0.85 the segment is at 0.35), so no preference ``w`` makes
it the best of ``w . v``: a learner that acts greedily on a linear scalarisation
cannot choose it, whichever preference it is given. That makes the game a test of
what linear-preference methods can reach (the three supported points) and of
whether a method reports the whole front.

Fully observed and stateless, like :mod:`marl.envs.matrix`. The reward is
``(num_agents, num_objectives)`` (the team's vector, repeated per agent), or with
``weights`` their weighted sum; ``extras["won"]`` is 1 for a Pareto-optimal joint
action. Registered as ``mo-matrix/pareto``.

:class:`ParetoSumGame` (``mo-matrix/pareto_sum``) is its no-coordination sibling: the
team's payoff is the mean of what each agent's action contributes, so there is no
miscoordination to fall into and every agent's best reply to a preference is the same
whatever the other does. That makes it a game that value-decomposition learners
solve reliably under every preference (a sum is what VDN represents exactly; the
coordination game above traps the QMIX family at its other equilibria in about half
the seeds even with a single fixed preference). Its front holds both kinds of joint
policy: the same action for both agents, and different actions whose mean is
non-dominated; with the default payoffs one of those, actions 0 and 3, lies in a
concave part of the front.
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct
from jumanji.types import TimeStep, restart, termination

from marl.env import MultiAgentEnv, preference_weights
from marl.envs.matrix import stateless_observation
from marl.pareto import non_dominated
from marl.types import Array, Observation, PRNGKey

#: The default coordinated payoffs: three supported Pareto-optimal points and one
#: unsupported (concave) one.
PARETO_PAYOFFS = ((1.0, 0.0), (0.7, 0.7), (0.0, 1.0), (0.85, 0.3))


def _supported(points: np.ndarray, front: np.ndarray, num_weights: int = 2001) -> np.ndarray:
    """Which points are the strict best of ``w . v`` for some weight ``w`` (two
    objectives: a fine grid over the simplex)."""
    weights = np.linspace(0.0, 1.0, num_weights)
    weights = np.stack([weights, 1.0 - weights], axis=1)
    utility = weights @ points.T  # [W, K]
    best = utility.max(1, keepdims=True)
    unique_best = (utility >= best - 1e-6).sum(1) == 1  # float32 payoffs
    winners = np.unique(utility.argmax(1)[unique_best])
    supported = np.zeros(len(points), bool)
    supported[winners] = True
    return supported & front


@struct.dataclass
class ParetoMatrixState:
    step_count: Array


class ParetoMatrixGame(MultiAgentEnv):
    """Two agents, one step, vector payoffs for coordinating on an action.

    Args:
        payoffs: ``[K, num_objectives]`` the team's payoff for coordinating on each
            action.
        miscoordination: the payoff when the agents pick different actions; it must
            be dominated by every coordinated payoff.
        weights: a fixed preference over the objectives (non-negative, summing to 1):
            the reward is the weighted sum, a scalar.
    """

    def __init__(
        self,
        payoffs: Sequence[Sequence[float]] = PARETO_PAYOFFS,
        miscoordination: Sequence[float] | None = None,
        weights: list[float] | None = None,
    ):
        payoff_array = np.asarray(payoffs, np.float32)
        if payoff_array.ndim != 2 or payoff_array.shape[0] < 2 or payoff_array.shape[1] < 2:
            raise ValueError(
                "payoffs must be [num_actions >= 2, num_objectives >= 2], got shape "
                f"{payoff_array.shape}"
            )
        if miscoordination is None:
            miscoordination = payoff_array.min(0) - 1.0
        miss = np.asarray(miscoordination, np.float32)
        if miss.shape != (payoff_array.shape[1],) or not (payoff_array > miss).all():
            raise ValueError(
                "miscoordination must have one value per objective, each below every "
                f"coordinated payoff's; got {miss.tolist()}"
            )
        names = tuple(f"objective_{index}" for index in range(payoff_array.shape[1]))
        self.weights = None if weights is None else preference_weights(weights, names)
        self.payoffs = payoff_array
        self.miscoordination = miss
        self.num_agents = 2
        self.num_actions = payoff_array.shape[0]
        if self.weights is None:
            self.num_objectives = payoff_array.shape[1]
            self.objective_names = names
            # Miscoordination: the worst return of the game, beaten by every
            # coordinated payoff.
            self.hypervolume_reference = tuple(float(value) for value in miss)
        self.obs_dim = 1
        self.state_dim = 1
        self.time_limit = 1
        front = payoff_array[non_dominated(payoff_array)]
        # Equal payoffs are equally optimal (non_dominated keeps one of them).
        self.pareto_optimal = (payoff_array[:, None] == front[None]).all(-1).any(1)
        super().__init__()

    def __repr__(self) -> str:
        return f"ParetoMatrixGame(payoffs={self.payoffs.astype(np.float64).round(6).tolist()})"

    @property
    def pareto_front(self) -> np.ndarray:
        """The known front: the non-dominated coordinated payoffs ``[F, num_objectives]``."""
        return self.payoffs[self.pareto_optimal]

    @property
    def supported(self) -> np.ndarray:
        """Which actions' payoffs a linear preference can single out (two objectives)."""
        if self.num_objectives != 2:
            raise ValueError("supported points are computed for two objectives")
        return _supported(self.payoffs.astype(np.float64), self.pareto_optimal)

    def joint_payoff(self, action: Array) -> Array:
        """The team's payoff vector of a joint action ``[2]``."""
        payoffs = jnp.asarray(self.payoffs)
        return jnp.where(action[0] == action[1], payoffs[action[0]], self.miscoordination)

    def pareto_optimal_action(self, action: Array) -> Array:
        """Whether a joint action ``[2]`` is Pareto-optimal (``extras["won"]``)."""
        return (action[0] == action[1]) & jnp.asarray(self.pareto_optimal)[action[0]]

    def _observation(self, step_count: int) -> Observation:
        return stateless_observation(self.num_agents, self.num_actions, step_count)

    def reset(self, key: PRNGKey) -> tuple[ParetoMatrixState, TimeStep]:
        del key
        extras = {"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)}
        timestep = restart(self._observation(0), extras=extras, shape=self.num_agents)
        reward = jnp.zeros(self.reward_spec.shape, jnp.float32)
        return ParetoMatrixState(jnp.int32(0)), timestep.replace(reward=reward)

    def step(self, state: ParetoMatrixState, action: Array) -> tuple[ParetoMatrixState, TimeStep]:
        chex.assert_shape(action, (self.num_agents,))
        payoff = self.joint_payoff(action)
        won = self.pareto_optimal_action(action)
        extras = {"won": won.astype(jnp.float32), "invalid_actions": jnp.int32(0)}
        if self.weights is not None:
            payoff = jnp.dot(jnp.asarray(self.weights), payoff)
        reward = jnp.broadcast_to(payoff, self.reward_spec.shape).astype(jnp.float32)
        timestep = termination(reward, self._observation(1), extras=extras, shape=self.num_agents)
        return ParetoMatrixState(state.step_count + 1), timestep


class ParetoSumGame(ParetoMatrixGame):
    """Two agents, one step; the team's payoff is the mean of both actions' payoffs.

    Args:
        payoffs: ``[K, num_objectives]`` what each action contributes.
        weights: a fixed preference over the objectives: the reward is a scalar.

    ``joint_payoffs [K, K, m]`` is the team's payoff of every joint action;
    ``pareto_optimal_joint [K, K]`` marks the non-dominated ones (``won``);
    ``supported_joint [K, K]`` those a linear preference singles out (up to the
    agents' order, which no preference can separate).
    """

    def __init__(
        self,
        payoffs: Sequence[Sequence[float]] = PARETO_PAYOFFS,
        weights: list[float] | None = None,
    ):
        payoff_array = np.asarray(payoffs, np.float32)
        super().__init__(payoffs, miscoordination=payoff_array.min(0) - 1.0, weights=weights)
        joint = (payoff_array[:, None, :] + payoff_array[None, :, :]) / 2.0
        self.joint_payoffs = joint
        flat = joint.reshape(-1, joint.shape[-1])
        front = flat[non_dominated(flat)]
        self.pareto_optimal_joint = (
            (flat[:, None] == front[None]).all(-1).any(1).reshape(joint.shape[:2])
        )
        if self.weights is None:
            # Every joint payoff is a mean of two contributions, so none falls below
            # the worst contribution: that is the hypervolume's reference.
            self.hypervolume_reference = tuple(float(v) for v in payoff_array.min(0))

    def __repr__(self) -> str:
        return f"ParetoSumGame(payoffs={self.payoffs.astype(np.float64).round(6).tolist()})"

    @property
    def pareto_front(self) -> np.ndarray:
        """The non-dominated joint payoffs ``[F, num_objectives]`` (each once)."""
        flat = self.joint_payoffs.reshape(-1, self.joint_payoffs.shape[-1])
        return np.unique(flat[self.pareto_optimal_joint.reshape(-1)], axis=0)

    @property
    def supported_joint(self) -> np.ndarray:
        """``[K, K]``: which joint actions' payoffs are the best of ``w . v`` for some
        preference ``w`` (two objectives), ties between the agents' order allowed."""
        if self.num_objectives != 2:
            raise ValueError("supported points are computed for two objectives")
        flat = self.joint_payoffs.reshape(-1, 2).astype(np.float64)
        points = np.unique(flat, axis=0)
        front = non_dominated(points)
        supported_points = points[_supported(points, front)]
        return (
            (flat[:, None] == supported_points[None])
            .all(-1)
            .any(1)
            .reshape(self.joint_payoffs.shape[:2])
        )

    def joint_payoff(self, action: Array) -> Array:
        """The team's payoff vector of a joint action ``[2]``."""
        return jnp.asarray(self.joint_payoffs)[action[0], action[1]]

    def pareto_optimal_action(self, action: Array) -> Array:
        """Whether a joint action ``[2]`` is Pareto-optimal (``extras["won"]``)."""
        return jnp.asarray(self.pareto_optimal_joint)[action[0], action[1]]
