"""The cooperative matrix games of the value-decomposition papers.

* :class:`OneStepMatrixGame`: two agents, three actions, one step whose team reward
  is read from a payoff matrix. The default is the non-monotonic payoff
  ``[[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]`` used to separate QMIX and VDN from
  weighted QMIX and QPLEX.
* :class:`TwoStepGame`: QMIX's two-step game. Agent 0's first action picks state
  2A (action 0), where every joint action pays 7, or state 2B (action 1), whose
  payoff is ``[[0, 1], [1, 8]]``. The optimum is 8; VDN settles on 7.

Both are fully observed: every agent and the mixer see the one-hot of the state.
``extras["won"]`` is 1 when the episode's payoff is the game's optimum; every action
is always available, so ``extras["invalid_actions"]`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax.numpy as jnp
import numpy as np
from flax import struct
from jumanji.types import TimeStep, restart, termination, transition

from marl.env import MultiAgentEnv
from marl.types import Array, Observation, PRNGKey

NON_MONOTONIC_PAYOFF = ((8.0, -12.0, -12.0), (-12.0, 0.0, 0.0), (-12.0, 0.0, 0.0))
TWO_STEP_PAYOFF_2A = ((7.0, 7.0), (7.0, 7.0))
TWO_STEP_PAYOFF_2B = ((0.0, 1.0), (1.0, 8.0))


def _extras(won: Array) -> dict[str, Array]:
    return {"won": won, "invalid_actions": jnp.int32(0)}


def stateless_observation(num_agents: int, num_actions: int, step_count: Array) -> Observation:
    """The observation of a one-state game: a constant 1 to every agent and the mixer,
    every action available."""
    return Observation(
        agents_view=jnp.ones((num_agents, 1), jnp.float32),
        action_mask=jnp.ones((num_agents, num_actions), bool),
        global_state=jnp.ones((1,), jnp.float32),
        step_count=jnp.asarray(step_count, jnp.int32),
    )


@struct.dataclass
class MatrixState:
    game_state: Array  # int32 index of the current state of the game
    step_count: Array


class OneStepMatrixGame(MultiAgentEnv):
    """A one-step cooperative game with a ``num_actions x num_actions`` payoff."""

    def __init__(self, payoff: Sequence[Sequence[float]] = NON_MONOTONIC_PAYOFF):
        payoff_array = np.asarray(payoff, np.float32)
        if payoff_array.ndim != 2 or payoff_array.shape[0] != payoff_array.shape[1]:
            raise ValueError(f"payoff must be a square matrix, got shape {payoff_array.shape}")
        self.payoff = payoff_array
        self.num_agents = 2
        self.num_actions = payoff_array.shape[0]
        self.obs_dim = 1
        self.state_dim = 1
        self.time_limit = 1
        super().__init__()

    def _observation(self, step_count: Array) -> Observation:
        return stateless_observation(self.num_agents, self.num_actions, step_count)

    def reset(self, key: PRNGKey) -> tuple[MatrixState, TimeStep]:
        del key
        state = MatrixState(jnp.int32(0), jnp.int32(0))
        timestep = restart(
            self._observation(0),
            extras=_extras(jnp.float32(0)),
            shape=2,
        )
        return state, timestep

    def step(self, state: MatrixState, action: Array) -> tuple[MatrixState, TimeStep]:
        chex.assert_shape(action, (self.num_agents,))
        payoff = jnp.asarray(self.payoff)[action[0], action[1]]
        won = (payoff == self.payoff.max()).astype(jnp.float32)
        next_state = MatrixState(state.game_state, state.step_count + 1)
        reward = jnp.full((self.num_agents,), payoff, jnp.float32)
        timestep = termination(
            reward,
            self._observation(1),
            extras=_extras(won),
            shape=2,
        )
        return next_state, timestep


class TwoStepGame(MultiAgentEnv):
    """QMIX's two-step game (Rashid et al. 2018, section 6.1)."""

    STATE_1, STATE_2A, STATE_2B = 0, 1, 2

    def __init__(self):
        self.num_agents = 2
        self.num_actions = 2
        self.obs_dim = 3
        self.state_dim = 3
        self.time_limit = 2
        super().__init__()

    def _observation(self, game_state: Array, step_count: Array) -> Observation:
        one_hot = jnp.eye(3, dtype=jnp.float32)[game_state]
        return Observation(
            agents_view=jnp.tile(one_hot, (self.num_agents, 1)),
            action_mask=jnp.ones((self.num_agents, self.num_actions), bool),
            global_state=one_hot,
            step_count=jnp.asarray(step_count, jnp.int32),
        )

    def reset(self, key: PRNGKey) -> tuple[MatrixState, TimeStep]:
        del key
        state = MatrixState(jnp.int32(self.STATE_1), jnp.int32(0))
        obs = self._observation(state.game_state, 0)
        return state, restart(obs, extras=_extras(jnp.float32(0)), shape=2)

    def step(self, state: MatrixState, action: Array) -> tuple[MatrixState, TimeStep]:
        first_step = state.game_state == self.STATE_1
        next_game_state = jnp.where(
            first_step, jnp.where(action[0] == 0, self.STATE_2A, self.STATE_2B), state.game_state
        )
        payoff_2a = jnp.asarray(TWO_STEP_PAYOFF_2A)[action[0], action[1]]
        payoff_2b = jnp.asarray(TWO_STEP_PAYOFF_2B)[action[0], action[1]]
        payoff = jnp.where(
            first_step, 0.0, jnp.where(state.game_state == self.STATE_2A, payoff_2a, payoff_2b)
        )
        next_state = MatrixState(next_game_state, state.step_count + 1)
        obs = self._observation(next_game_state, next_state.step_count)
        reward = jnp.full((self.num_agents,), payoff, jnp.float32)
        won = jnp.where(first_step, 0.0, (payoff == 8.0).astype(jnp.float32))
        mid = transition(reward, obs, extras=_extras(won), shape=2)
        end = termination(reward, obs, extras=_extras(won), shape=2)
        timestep = TimeStep(
            step_type=jnp.where(first_step, mid.step_type, end.step_type),
            reward=reward,
            discount=jnp.where(first_step, mid.discount, end.discount),
            observation=obs,
            extras=_extras(won),
        )
        return next_state, timestep
