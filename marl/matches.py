"""Matches between trained teams: one policy on each side of a SMAC map or a football
pitch.

A :class:`Team` is one seed of a saved run (its latest checkpoint), acting greedily.
:func:`play_matches` puts one team on the agents' side and another on the enemies'
(``SMAC.step_with_opponent``: the enemies get the mirrored observation, in the agents'
layout) and plays a batch of episodes side by side under ``vmap``; :class:`MatchMaker`
turns that into the ``play`` function of :func:`marl.ranking.response_graph_ucb`,
playing half of each pair's matches with the sides swapped, so that a map's side
advantage, if any, cancels.

Both teams must come from runs on the same symmetric task, trained with the same env
settings that shape the observation: a ``smac/<map>`` whose two sides have the same
units (3m, 2s3z, ...), or ``football/5_vs_5``, whose right team sees the game mirrored
from its own end (:class:`marl.envs.football.env.Football`). A match scores 1 for the
first team's win (SMAC: the other side wiped out; football: more goals at the time
limit), 0.5 for a draw and 0 for a loss.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from marl.types import Observation

FAMILIES = ("smac/", "football/")


class MatchError(ValueError):
    """Teams that cannot meet (different tasks, an asymmetric one, not SMAC or football)."""


@dataclasses.dataclass(eq=False)
class Team:
    """One seed of a saved run, as a player: ``act`` is the run's learner and ``params``
    that seed's learner state."""

    name: str
    run_dir: pathlib.Path
    seed: int
    algorithm: Any
    params: Any
    add_agent_id: bool
    env_name: str
    env_kwargs: dict[str, Any]


def load_teams(
    run_dir: str | pathlib.Path, name: str | None = None, seeds: Sequence[int] | None = None
) -> list[Team]:
    """The teams of a saved run, one per seed (all by default), named
    ``<name or algo>/seed<k>``."""
    from marl.train import read_run_config, restore_run

    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    if not config.env.name.startswith(FAMILIES):
        raise MatchError(
            f"matches are played on {' or '.join(f + '*' for f in FAMILIES)}; '{run_dir}' "
            f"trained on '{config.env.name}'"
        )
    run_seeds = config.seeds()
    chosen = list(run_seeds if seeds is None else seeds)
    missing = [s for s in chosen if s not in run_seeds]
    if missing:
        raise MatchError(f"'{run_dir}' has seeds {run_seeds}, not {missing}")
    runner, state, _ = restore_run(run_dir, config)
    label = name or config.algo.name
    teams = []
    for seed in chosen:
        index = run_seeds.index(seed)
        params = jax.tree_util.tree_map(lambda x, i=index: x[0, i], state.algo_state)
        teams.append(
            Team(
                name=f"{label}/seed{seed}",
                run_dir=run_dir,
                seed=seed,
                algorithm=runner.algorithm,
                params=params,
                add_agent_id=bool(config.env.add_agent_id),
                env_name=config.env.name,
                env_kwargs=dict(config.env.kwargs),
            )
        )
    return teams


def _stop_policy(observation: Observation, key: jax.Array) -> jax.Array:
    """Placeholder opponent: it makes the env accept the enemies' actions from outside
    (``step_with_opponent``); its own choices are never played."""
    del key
    return jnp.zeros(observation.action_mask.shape[:-1], jnp.int32)


def match_env(teams: Sequence[Team]) -> Any:
    """The env every team of ``teams`` can play on, both sides controlled."""
    from marl.registry import make_raw_env

    first = teams[0]
    for team in teams[1:]:
        if (team.env_name, team.env_kwargs) != (first.env_name, first.env_kwargs):
            raise MatchError(
                f"teams must share a map and env settings: {first.name} played "
                f"{first.env_name} {first.env_kwargs}, {team.name} {team.env_name} "
                f"{team.env_kwargs}"
            )
    try:
        env = make_raw_env(first.env_name, **first.env_kwargs, opponent_policy=_stop_policy)
    except ValueError as error:  # football: a scenario whose teams differ
        raise MatchError(f"{first.env_name}: {error}") from None
    if hasattr(env, "num_enemies") and env.num_agents != env.num_enemies:
        raise MatchError(
            f"{first.env_name} has {env.num_agents} agents against {env.num_enemies} "
            "enemies; self-play needs a map whose two sides have the same units"
        )
    state, timestep = env.reset(jax.random.PRNGKey(0))
    theirs = env.opponent_observation(state)
    ours = timestep.observation
    if theirs.agents_view.shape != ours.agents_view.shape or (
        theirs.action_mask.shape != ours.action_mask.shape
    ):
        raise MatchError(f"{first.env_name}'s two sides see different observation sizes")
    return env


def _with_id(obs: Observation, add_agent_id: bool) -> Observation:
    if not add_agent_id:
        return obs
    num_agents = obs.agents_view.shape[-2]
    ids = jnp.broadcast_to(
        jnp.eye(num_agents, dtype=obs.agents_view.dtype), (*obs.agents_view.shape[:-1], num_agents)
    )
    return obs._replace(agents_view=jnp.concatenate([obs.agents_view, ids], axis=-1))


def _outcome(env: Any) -> Callable[[Any], jax.Array]:
    """The first team's score in a final ``state``: 1 won, 0.5 drawn, 0 lost."""
    from marl.envs.football.env import Football

    if isinstance(env, Football):

        def goals(state: Any) -> jax.Array:
            ours, theirs = state.inner.match.score[0], state.inner.match.score[1]
            return jnp.where(ours > theirs, 1.0, jnp.where(ours < theirs, 0.0, 0.5))

        return goals
    from marl.envs.smac import rules

    def battle(state: Any) -> jax.Array:
        roster = env.generator.roster(state.battle)
        won, lost, _ = rules.outcome(state.battle, env.num_agents, roster)
        return jnp.where(won, 1.0, jnp.where(lost, 0.0, 0.5))

    return battle


def episode_function(env: Any, first: Team, second: Team, num_matches: int) -> Callable:
    """A jitted ``(first_params, second_params, key) -> scores [num_matches]``: greedy
    episodes of ``first`` (agents' side) against ``second`` (enemies' side), scored 1
    for the first team's win, 0 for its loss, 0.5 for a draw or the time limit."""
    outcome_score = _outcome(env)

    def episodes(first_params: Any, second_params: Any, key: jax.Array) -> jax.Array:
        reset_key, key = jax.random.split(key)
        state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_matches))
        carry = (
            state,
            timestep.observation,
            first.algorithm.initial_memory(num_matches),
            second.algorithm.initial_memory(num_matches),
            jnp.zeros(num_matches, bool),
            jnp.full(num_matches, 0.5, jnp.float32),
            key,
        )

        def step(carry: tuple, _: Any) -> tuple[tuple, None]:
            state, ours, first_memory, second_memory, done, score, key = carry
            key, first_key, second_key = jax.random.split(key, 3)
            theirs = jax.vmap(env.opponent_observation)(state)
            first_action, first_memory, _ = first.algorithm.act(
                first_params, _with_id(ours, first.add_agent_id), first_memory, first_key, False
            )
            second_action, second_memory, _ = second.algorithm.act(
                second_params,
                _with_id(theirs, second.add_agent_id),
                second_memory,
                second_key,
                False,
            )
            state, timestep = jax.vmap(env.step_with_opponent)(state, first_action, second_action)
            ended = timestep.last()
            new_score = jax.vmap(outcome_score)(state)
            score = jnp.where(done | ~ended, score, new_score)
            done = done | ended
            return (
                state,
                timestep.observation,
                first_memory,
                second_memory,
                done,
                score,
                key,
            ), None

        carry, _ = jax.lax.scan(step, carry, None, length=env.time_limit)
        return carry[5]

    return jax.jit(episodes)


class MatchMaker:
    """Plays batches of matches among ``teams``: ``maker(pairs)`` with ``pairs`` an
    ``int [B, 2]`` array of team indices returns the first team's scores ``[B]``.

    Each pair's matches are split between the two sides (the first half with the first
    team on the agents' side). One compiled episode function serves every pair of teams
    from the same two runs; ``matches`` counts all matches played.
    """

    def __init__(self, teams: Sequence[Team], seed: int = 0):
        if len(teams) < 2:
            raise MatchError(f"matches need at least 2 teams, got {len(teams)}")
        self.teams = list(teams)
        self.env = match_env(self.teams)
        self._compiled: dict[tuple[int, int, int], Callable] = {}
        self._key = jax.random.PRNGKey(seed)
        self.matches = 0

    def _episodes(self, first: Team, second: Team, num_matches: int) -> Callable:
        key = (id(first.algorithm), id(second.algorithm), num_matches)
        if key not in self._compiled:
            self._compiled[key] = episode_function(self.env, first, second, num_matches)
        return self._compiled[key]

    def play(self, first: int, second: int, num_matches: int) -> np.ndarray:
        """``num_matches`` episodes of team ``first`` on the agents' side against
        ``second``; the first team's scores."""
        self._key, key = jax.random.split(self._key)
        a, b = self.teams[first], self.teams[second]
        scores = self._episodes(a, b, num_matches)(a.params, b.params, key)
        self.matches += num_matches
        return np.asarray(scores, np.float64)

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs, np.int64)
        scores = np.empty(len(pairs))
        ordered = [tuple(p) for p in pairs]
        for pair in dict.fromkeys(ordered):
            rows = np.flatnonzero((pairs[:, 0] == pair[0]) & (pairs[:, 1] == pair[1]))
            home = (len(rows) + 1) // 2
            if home:
                scores[rows[:home]] = self.play(pair[0], pair[1], home)
            if len(rows) - home:
                scores[rows[home:]] = 1.0 - self.play(pair[1], pair[0], len(rows) - home)
        return scores


def rank_teams(
    teams: Sequence[Team],
    delta: float = 0.05,
    matches_per_round: int = 8,
    max_matches_per_pair: int = 400,
    confidence: str = "hoeffding",
    adaptive: bool = True,
    alpha: float = 100.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Plays ResponseGraphUCB's matches among ``teams`` and ranks them (alpha-Rank and
    Elo with 90% intervals; :mod:`marl.ranking`). Returns a JSON-ready summary:
    ``teams``, ``matches``, ``rounds``, ``seconds``, ``counts``, ``payoffs``,
    ``resolved`` (edges known at confidence ``1 - delta``) and ``ranking`` (one row per
    team, best first), plus ``table``, the ranking as markdown."""
    import time

    from marl.ranking import rank_with_intervals, response_graph_ucb

    started = time.perf_counter()
    maker = MatchMaker(teams, seed=seed)
    sampled = response_graph_ucb(
        maker,
        len(teams),
        delta=delta,
        matches_per_round=matches_per_round,
        max_matches_per_pair=max_matches_per_pair,
        confidence=confidence,
        adaptive=adaptive,
        seed=seed,
    )
    ranking = rank_with_intervals(sampled.scores, sampled.counts, alpha=alpha, seed=seed)
    names = [team.name for team in teams]
    rows = [
        {
            "team": names[t],
            "mass": float(ranking.mass[t]),
            "mass_interval": [float(ranking.mass_low[t]), float(ranking.mass_high[t])],
            "rank": int(ranking.rank[t]),
            "rank_interval": [int(ranking.rank_low[t]), int(ranking.rank_high[t])],
            "elo": float(ranking.elo[t]),
            "elo_interval": [float(ranking.elo_low[t]), float(ranking.elo_high[t])],
        }
        for t in ranking.order
    ]
    return {
        "teams": names,
        "env": teams[0].env_name,
        "delta": delta,
        "confidence": confidence,
        "sampling": "adaptive" if adaptive else "uniform",
        "alpha": alpha,
        "matches": sampled.matches,
        "rounds": sampled.rounds,
        "seconds": time.perf_counter() - started,
        "counts": sampled.counts.astype(int).tolist(),
        "payoffs": sampled.payoffs.round(4).tolist(),
        "resolved": sampled.resolved.tolist(),
        "ranking": rows,
        "table": ranking.table(names),
    }
