"""Exploration for value-based learners: epsilon-greedy and epsilon-z-greedy.

An exploration is given the greedy actions and the action mask and returns the
actions to take. It may keep a state per agent of every environment (``()`` when
it keeps none), which the learner carries in its acting memory and resets where
an episode starts.

* :class:`EpsilonGreedy`: with probability epsilon, a uniformly random available
  action. Epsilon is annealed linearly from ``start`` to ``finish`` over
  ``anneal_steps`` env-steps; ``spread`` (Ape-X's alpha, 7 in Horgan et al. 2018;
  0 turns it off) gives each of ``B`` envs its own rate
  ``epsilon ** (1 + spread * i / (B - 1))``, so the replay holds both exploratory
  play and play that follows the greedy policy for long stretches.
* :class:`EpsilonZGreedy` (Dabney et al. 2021): an agent that starts to explore
  repeats its random action for ``k`` steps, ``k`` drawn from a zeta distribution
  with exponent ``repeat`` (2 in the paper) truncated at ``max_run``, while the
  action stays available. Runs of one action reach states a step-by-step random
  walk does not, e.g. a carrier running on at goal where the greedy policy shoots.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from marl.types import Array, PRNGKey


class Exploration(Protocol):
    """What a value-based learner is given to explore with."""

    def epsilon(self, env_steps: Array) -> Array:
        """The exploration rate after ``env_steps`` (logged)."""
        ...

    def initial_state(self, batch_size: int, num_agents: int) -> Any: ...

    def episode_start(self, state: Any, starts: Array) -> Any: ...

    def select(
        self, state: Any, key: PRNGKey, greedy: Array, action_mask: Array, env_steps: Array
    ) -> tuple[Array, Any]: ...


@dataclasses.dataclass(frozen=True)
class EpsilonGreedy:
    start: float
    finish: float
    anneal_steps: int
    spread: float = 0.0

    def epsilon(self, env_steps: Array) -> Array:
        """The annealed rate after ``env_steps`` env-steps."""
        fraction = jnp.clip(env_steps / max(self.anneal_steps, 1), 0.0, 1.0)
        return self.start + fraction * (self.finish - self.start)

    def env_epsilons(self, env_steps: Array, num_envs: int) -> Array:
        """Each of ``num_envs`` envs' rate ``[num_envs]`` (all equal when ``spread`` is 0)."""
        spread_fraction = jnp.arange(num_envs, dtype=jnp.float32) / max(num_envs - 1, 1)
        return self.epsilon(env_steps) ** (1.0 + self.spread * spread_fraction)

    def initial_state(self, batch_size: int, num_agents: int) -> Any:
        return ()

    def episode_start(self, state: Any, starts: Array) -> Any:
        """``state`` with the envs where ``starts [B]`` is true set back."""
        return state

    def _draws(
        self, key: PRNGKey, greedy: Array, action_mask: Array, env_steps: Array
    ) -> tuple[Array, Array, PRNGKey]:
        random_key, choose_key = jax.random.split(key)
        random_actions = jax.random.categorical(random_key, jnp.where(action_mask, 0.0, -jnp.inf))
        epsilons = self.env_epsilons(env_steps, greedy.shape[0])
        explore = jax.random.uniform(choose_key, greedy.shape) < epsilons[:, None]
        return random_actions, explore, choose_key

    def select(
        self, state: Any, key: PRNGKey, greedy: Array, action_mask: Array, env_steps: Array
    ) -> tuple[Array, Any]:
        """Actions ``[B, n]`` (int32) from the greedy ones and the mask ``[B, n, A]``."""
        random_actions, explore, _ = self._draws(key, greedy, action_mask, env_steps)
        return jnp.where(explore, random_actions, greedy).astype(jnp.int32), state


class ExploratoryRun(NamedTuple):
    action: Array  # [B, n] the random action a run repeats
    steps_left: Array  # [B, n] steps it still repeats for (0: none)


@dataclasses.dataclass(frozen=True)
class EpsilonZGreedy(EpsilonGreedy):
    repeat: float = 2.0
    max_run: int = 1

    def initial_state(self, batch_size: int, num_agents: int) -> ExploratoryRun:
        no_run = jnp.zeros((batch_size, num_agents), jnp.int32)
        return ExploratoryRun(no_run, no_run)

    def episode_start(self, state: ExploratoryRun, starts: Array) -> ExploratoryRun:
        return state._replace(steps_left=jnp.where(starts[:, None], 0, state.steps_left))

    def run_lengths(self, key: PRNGKey, shape: tuple[int, ...]) -> Array:
        """Lengths ``k >= 1``, ``P(k) ~ k ** -repeat`` up to ``max_run``."""
        lengths = jnp.arange(1, self.max_run + 1, dtype=jnp.float32)
        logits = -self.repeat * jnp.log(lengths)
        # Its own stream: the epsilon draws stay those of plain epsilon-greedy.
        key = jax.random.fold_in(key, 1)
        return jax.random.categorical(key, logits, shape=shape).astype(jnp.int32) + 1

    def select(
        self,
        state: ExploratoryRun,
        key: PRNGKey,
        greedy: Array,
        action_mask: Array,
        env_steps: Array,
    ) -> tuple[Array, ExploratoryRun]:
        random_actions, explore, choose_key = self._draws(key, greedy, action_mask, env_steps)
        still_available = jnp.take_along_axis(action_mask, state.action[..., None], axis=-1)[..., 0]
        repeating = (state.steps_left > 0) & still_available
        starting = ~repeating & explore
        action = jnp.where(repeating, state.action, random_actions)
        steps_left = jnp.where(
            repeating,
            state.steps_left - 1,
            jnp.where(starting, self.run_lengths(choose_key, greedy.shape) - 1, 0),
        )
        actions = jnp.where(repeating | starting, action, greedy).astype(jnp.int32)
        return actions, ExploratoryRun(action, steps_left)
