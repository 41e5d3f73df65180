"""Preferences over objectives for multi-objective learners: a grid on the simplex and
the guide that picks one preference per episode.

A preference ``w`` weighs the objectives of a vector reward (``w >= 0``, ``sum w = 1``);
a preference-conditioned learner acts to maximise ``w . Q``. While training, every
episode plays one preference from :func:`marl.pareto.simplex_grid`, drawn when the
episode starts and held to its end.

:class:`PreferenceGuide` draws it. ``uniform``: every grid preference equally often
(the ablation). ``guided`` (MO-MIX's exploration guide, our reconstruction: the paper's
rule is not public): the guide keeps, for every grid preference, a running mean of
the vector returns of the training episodes played under it. Where two neighbouring
preferences of the grid (one step apart) reach returns far apart, the front the
learner offers has a gap between them; a preference's share of the draws grows with
the widest gap to its neighbours (the widest, not their sum, so that the grid's
corners, which have fewer neighbours, are not drawn less). A preference not played
yet counts as next to the widest gap, so every one is tried early; a
``uniform_share`` of the draws stays uniform so that none is starved.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from marl.pareto import simplex_grid
from marl.types import Array, PRNGKey

SAMPLING = ("guided", "uniform")


class GuideState(NamedTuple):
    """``running [B, m]``: each env's return so far in its current episode;
    ``mean [G, m]``: the running mean return of every grid preference's episodes;
    ``episodes [G]``: how many episodes each preference has ended."""

    running: Array
    mean: Array
    episodes: Array


def grid_neighbours(grid: np.ndarray) -> np.ndarray:
    """``[G, G]`` bool: preferences one grid step apart (one weight up by ``1/d``,
    another down by ``1/d``)."""
    step = np.abs(np.diff(np.unique(grid[:, 0]))).min() if len(grid) > 1 else 1.0
    distance = np.abs(grid[:, None, :] - grid[None, :, :]).sum(-1)
    return np.isclose(distance, 2 * step)


class PreferenceGuide:
    """Draws each episode's preference from a simplex grid (see the module's docstring).

    Args:
        num_objectives: the objectives of the env's reward.
        divisions: the grid's resolution (``1 / divisions`` steps of weight).
        sampling: ``"guided"`` or ``"uniform"``.
        uniform_share: the share of guided draws that are uniform.
        rate: the weight of a rollout's new episodes in the running means (at least
            ``1 / episodes``, so the first episodes set the mean).
    """

    def __init__(
        self,
        num_objectives: int,
        divisions: int,
        sampling: str = "guided",
        uniform_share: float = 0.25,
        rate: float = 0.05,
    ):
        if sampling not in SAMPLING:
            raise ValueError(f"sampling '{sampling}' is unknown; valid: {', '.join(SAMPLING)}")
        self.num_objectives = num_objectives
        self.grid_values = simplex_grid(num_objectives, divisions)
        self.neighbours_values = grid_neighbours(self.grid_values)
        self.sampling = sampling
        self.uniform_share = uniform_share
        self.rate = rate

    @property
    def num_preferences(self) -> int:
        return len(self.grid_values)

    def init(self, num_envs: int) -> GuideState:
        size, objectives = self.grid_values.shape
        return GuideState(
            running=jnp.zeros((num_envs, objectives), jnp.float32),
            mean=jnp.zeros((size, objectives), jnp.float32),
            episodes=jnp.zeros((size,), jnp.float32),
        )

    def index_of(self, preference: Array) -> Array:
        """The grid preference nearest to each ``preference [..., m]``: ``[...]`` int32."""
        grid = jnp.asarray(self.grid_values, preference.dtype)
        distance = jnp.abs(preference[..., None, :] - grid).sum(-1)
        return jnp.argmin(distance, axis=-1).astype(jnp.int32)

    def probabilities(self, state: GuideState) -> Array:
        """The chance of each grid preference at the next draw, ``[G]``."""
        size = self.num_preferences
        uniform = jnp.full((size,), 1.0 / size)
        if self.sampling == "uniform" or size == 1:
            return uniform
        played = state.episodes > 0
        distance = jnp.linalg.norm(state.mean[:, None, :] - state.mean[None, :, :], axis=-1)
        pairs = jnp.asarray(self.neighbours_values)
        both_played = pairs & played[:, None] & played[None, :]
        gap = jnp.where(both_played, distance, 0.0)
        largest = jnp.maximum(gap.max(), 1e-6)
        # A pair with a preference not played yet counts as the largest gap.
        gap = jnp.where(pairs & ~both_played, largest, gap)
        score = gap.max(1)
        guided = jnp.where(score.sum() > 0, score / jnp.maximum(score.sum(), 1e-12), uniform)
        return self.uniform_share * uniform + (1.0 - self.uniform_share) * guided

    def sample(self, state: GuideState, key: PRNGKey, batch_size: int) -> Array:
        """``batch_size`` preferences ``[B, m]`` drawn from :meth:`probabilities`."""
        logits = jnp.log(self.probabilities(state))
        index = jax.random.categorical(key, logits, shape=(batch_size,))
        return jnp.asarray(self.grid_values, jnp.float32)[index]

    def observe(
        self,
        state: GuideState,
        reward: Array,
        done: Array,
        preference: Array,
        axis_name: str | None = None,
    ) -> GuideState:
        """The guide after a rollout: team rewards ``[T, B, m]``, ``done [T, B]`` and the
        preference each step was played with ``[T, B, m]``. The new episodes' returns
        are pooled over ``axis_name`` (devices), so every device keeps the same means."""

        def step(running: Array, inputs: tuple[Array, Array, Array]):
            step_reward, step_done, step_preference = inputs
            running = running + step_reward
            one_hot = jax.nn.one_hot(self.index_of(step_preference), self.num_preferences)
            one_hot = one_hot * step_done[:, None]
            sums = one_hot.T @ running  # [G, m]
            running = jnp.where(step_done[:, None], 0.0, running)
            return running, (sums, one_hot.sum(0))

        running, (sums, counts) = jax.lax.scan(step, state.running, (reward, done, preference))
        sums, counts = sums.sum(0), counts.sum(0)
        if axis_name is not None:
            sums, counts = jax.lax.psum((sums, counts), axis_name)
        episodes = state.episodes + counts
        weight = jnp.where(counts > 0, jnp.maximum(self.rate, counts / jnp.maximum(episodes, 1)), 0)
        new_mean = sums / jnp.maximum(counts, 1)[:, None]
        mean = state.mean + weight[:, None] * (new_mean - state.mean)
        return GuideState(running, mean, episodes)
