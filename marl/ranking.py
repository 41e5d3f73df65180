"""Ranking a population of teams from noisy match outcomes: alpha-Rank, ResponseGraphUCB, Elo.

The setting is a symmetric two-team game between ``n`` teams of one population (trained
policies of different algorithms and seeds). A match of team ``i`` against team ``j``
scores 1 for ``i``'s win, 0.5 for a draw and 0 for a loss, so the meta-game's payoff
``P[i, j]`` (the expected score of ``i`` against ``j``) is constant-sum:
``P[j, i] = 1 - P[i, j]`` and ``P[i, i] = 0.5``. Outcomes are kept as two arrays:
``scores[i, j]``, the summed score of ``i`` against ``j``, and ``counts[i, j]``, the
matches between them (symmetric; ``scores + scores.T == counts``).

* :func:`alpha_rank`: the stationary distribution of alpha-Rank's evolutionary Markov
  chain over the teams (Omidshafiei et al., 2019), single population, with the local
  selection model: a mutant ``r`` in a population of ``s`` fixates with probability
  ``(1 - exp(-u)) / (1 - exp(-m u))``, ``u = alpha (P[r, s] - P[s, r])``, and the
  chain moves from ``s`` to ``r`` with that probability over ``n - 1``. ``alpha=inf``
  is the infinite-alpha limit with ``epsilon`` noise, where the mass sits on the sink
  components of the response graph. Checked against OpenSpiel's
  ``open_spiel.python.egt.alpharank`` in the tests.
* :func:`response_graph_ucb`: ResponseGraphUCB (Rowland et al., 2019), adaptive
  sampling of matches until every edge of the response graph (which of ``i`` and
  ``j`` beats the other) is known with confidence ``1 - delta``. Matches are asked of
  a ``play`` function in batches, so that a simulator can play them side by side.
* :func:`rank_with_intervals`: the alpha-Rank distribution, each team's rank and Elo
  rating, with intervals from the posterior of every ``P[i, j]`` given the outcomes.
* :func:`elo_ratings`: Bradley-Terry maximum-likelihood ratings on the Elo scale
  (400 points per factor of 10 in the odds), for comparison: Elo assumes a
  transitive population and averages over it, alpha-Rank does not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

CONFIDENCE_METHODS = ("hoeffding", "clopper-pearson")


def payoff_estimate(scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``P[i, j]``, the mean score of ``i`` against ``j`` (0.5 where they never met and on
    the diagonal)."""
    scores, counts = np.asarray(scores, np.float64), np.asarray(counts, np.float64)
    payoffs = np.divide(scores, counts, out=np.full_like(scores, 0.5), where=counts > 0)
    np.fill_diagonal(payoffs, 0.5)
    return payoffs


def _check_payoffs(payoffs: np.ndarray) -> np.ndarray:
    payoffs = np.asarray(payoffs, np.float64)
    if payoffs.ndim != 2 or payoffs.shape[0] != payoffs.shape[1]:
        raise ValueError(f"payoffs must be a square [n, n] matrix, got shape {payoffs.shape}")
    return payoffs


def _fixation(u: np.ndarray, population_size: int) -> np.ndarray:
    """Probability that one mutant with selection advantage ``u`` takes over a population
    of ``population_size``; ``1 / m`` at ``u = 0`` (neutral drift)."""
    m = population_size
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        denominator = np.expm1(-m * u)
        rho = np.expm1(-u) / denominator
    rho = np.where(np.isinf(denominator), 0.0, rho)  # a strongly worse mutant
    return np.where(np.abs(u) < 1e-14, 1.0 / m, rho)


def stationary_distribution(transitions: np.ndarray) -> np.ndarray:
    """The stationary distribution ``pi`` of a row-stochastic matrix (``pi T = pi``)."""
    n = transitions.shape[0]
    system = transitions.T - np.eye(n)
    system[-1, :] = 1.0  # replace one (redundant) balance equation by sum(pi) = 1
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    pi = np.linalg.solve(system, rhs)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def alpha_rank_transitions(
    payoffs: np.ndarray, alpha: float = 100.0, population_size: int = 50, epsilon: float = 0.01
) -> np.ndarray:
    """alpha-Rank's Markov chain over the teams (row ``s``: from a population of ``s``)."""
    payoffs = _check_payoffs(payoffs)
    n = payoffs.shape[0]
    if n == 1:
        return np.ones((1, 1))
    advantage = payoffs - payoffs.T  # [r, s]: P[r, s] - P[s, r]
    if math.isinf(alpha):
        # The limit: a mutant that does better always fixates, one that does worse
        # fixates with probability epsilon (keeps the chain irreducible), ties at 1/2.
        fixation = np.where(advantage > 1e-14, 1.0 - epsilon, epsilon)
        fixation = np.where(np.abs(advantage) <= 1e-14, 0.5, fixation)
    else:
        fixation = _fixation(alpha * advantage, population_size)
    transitions = fixation.T / (n - 1)  # [s, r]
    np.fill_diagonal(transitions, 0.0)
    np.fill_diagonal(transitions, 1.0 - transitions.sum(axis=1))
    return transitions


def alpha_rank(
    payoffs: np.ndarray, alpha: float = 100.0, population_size: int = 50, epsilon: float = 0.01
) -> np.ndarray:
    """alpha-Rank's stationary distribution over the ``n`` teams of a symmetric game.

    ``payoffs[i, j]``: the payoff of ``i`` against ``j``. ``alpha``: the selection
    intensity (``math.inf`` for the infinite-alpha limit, with ``epsilon`` noise);
    ``population_size``: ``m``. The teams are ranked by their mass.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (or inf), got {alpha}")
    if population_size < 2:
        raise ValueError(f"population_size must be >= 2, got {population_size}")
    return stationary_distribution(alpha_rank_transitions(payoffs, alpha, population_size, epsilon))


def ranks_of(masses: np.ndarray) -> np.ndarray:
    """1-based ranks by descending mass (ties share the better rank)."""
    masses = np.asarray(masses, np.float64)
    above = masses[None, :] > masses[:, None] + 1e-12
    return 1 + above.sum(axis=1)


def elo_ratings(
    scores: np.ndarray,
    counts: np.ndarray,
    prior_draws: float = 1.0,
    iterations: int = 10_000,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Bradley-Terry maximum-likelihood ratings on the Elo scale, mean 0.

    ``P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400))``, fitted to the scores by
    Hunter's minorise-maximise iterations (draws count half a win each way).
    ``prior_draws`` virtual draws are added to every pair that met, so that a team
    that won all its matches gets a finite rating.
    """
    scores, counts = np.asarray(scores, np.float64), np.asarray(counts, np.float64)
    met = (counts > 0).astype(np.float64)
    np.fill_diagonal(met, 0.0)
    wins = scores + 0.5 * prior_draws * met
    games = counts + prior_draws * met
    np.fill_diagonal(games, 0.0)
    total_wins = wins.sum(axis=1) - np.diag(wins)
    strength = np.ones(scores.shape[0])
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = np.divide(total_wins, denominator, out=strength.copy(), where=denominator > 0)
        updated = np.maximum(updated, 1e-300)
        updated /= np.exp(np.mean(np.log(updated)))
        if np.max(np.abs(np.log(updated) - np.log(strength))) < tolerance:
            strength = updated
            break
        strength = updated
    ratings = 400.0 * np.log10(strength)
    return ratings - ratings.mean()


# ------------------------------------------------------------------ ResponseGraphUCB
@dataclasses.dataclass
class SamplingResult:
    """What :func:`response_graph_ucb` played and concluded.

    ``scores``/``counts``: the outcomes (see the module's docstring). ``resolved[i, j]``:
    the edge between ``i`` and ``j`` is known at the confidence asked. ``beats[i, j]``:
    ``i`` beats ``j`` in the estimated response graph (for resolved edges, with that
    confidence). ``rounds``: batches played; ``matches``: matches in all.
    """

    scores: np.ndarray
    counts: np.ndarray
    resolved: np.ndarray
    beats: np.ndarray
    rounds: int
    matches: int

    @property
    def payoffs(self) -> np.ndarray:
        return payoff_estimate(self.scores, self.counts)


def _half_width_hoeffding(counts: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.sqrt(np.log(2.0 / delta) / (2.0 * np.maximum(counts, 1)))


def _clopper_pearson(
    successes: np.ndarray, counts: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    lower = np.where(
        successes > 0, stats.beta.ppf(delta / 2, successes, counts - successes + 1), 0.0
    )
    upper = np.where(
        successes < counts, stats.beta.ppf(1 - delta / 2, successes + 1, counts - successes), 1.0
    )
    return lower, upper


def response_graph_ucb(
    play: Callable[[np.ndarray], np.ndarray],
    num_teams: int,
    delta: float = 0.05,
    matches_per_round: int = 8,
    max_matches_per_pair: int = 2_000,
    confidence: str = "hoeffding",
    adaptive: bool = True,
    seed: int = 0,
) -> SamplingResult:
    """Plays matches until the response graph of ``num_teams`` teams is known with
    probability at least ``1 - delta``.

    ``play(pairs)`` plays one match per row of ``pairs`` (``int [B, 2]``: the two teams)
    and returns the first team's scores (``[B]``, in {0, 0.5, 1}); a batch holds many
    pairs, so matches can run side by side.

    Each round plays ``matches_per_round`` matches of every pair whose edge is still
    open (``adaptive``, ResponseGraphUCB's sampling of unresolved edges in batches),
    or of every pair until the last edge closes (``adaptive=False``: uniform sampling,
    the baseline). An edge ``{i, j}`` closes when the confidence interval of ``P[i, j]``
    excludes 1/2 (``P[i, i] = 1/2`` is known, so this is the single-population form of
    the paper's test). ``delta`` is split over the pairs (union bound) and over each
    pair's checks (``delta_t = delta_pair 6 / (pi^2 t^2)``), so the answer holds at
    whatever round sampling stops. ``confidence``: ``hoeffding`` (any outcome in [0, 1])
    or ``clopper-pearson`` (exact for wins and losses; a draw is replaced by a fair coin
    flip, which keeps the mean). Pairs still open after ``max_matches_per_pair`` stay
    unresolved: within the confidence asked they are ties.
    """
    if confidence not in CONFIDENCE_METHODS:
        raise ValueError(
            f"confidence must be one of {', '.join(CONFIDENCE_METHODS)}, got '{confidence}'"
        )
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if num_teams < 2:
        raise ValueError(f"ranking needs at least 2 teams, got {num_teams}")
    rng = np.random.default_rng(seed)
    scores = np.zeros((num_teams, num_teams))
    counts = np.zeros((num_teams, num_teams))
    checks = np.zeros((num_teams, num_teams))
    upper_pairs = np.array(
        [(i, j) for i in range(num_teams) for j in range(i + 1, num_teams)], np.int64
    )
    delta_pair = delta / len(upper_pairs)
    open_ = np.ones(len(upper_pairs), bool)
    rounds = 0
    while open_.any():
        active = open_ & (counts[upper_pairs[:, 0], upper_pairs[:, 1]] < max_matches_per_pair)
        if not active.any():
            break
        sampled = upper_pairs[active] if adaptive else upper_pairs
        batch = np.repeat(sampled, matches_per_round, axis=0)
        outcome = np.asarray(play(batch), np.float64)
        if outcome.shape != (len(batch),):
            raise ValueError(f"play returned shape {outcome.shape}, expected ({len(batch)},)")
        if confidence == "clopper-pearson":
            draws = np.isclose(outcome, 0.5)
            outcome = np.where(draws, rng.integers(0, 2, outcome.shape), outcome)
        np.add.at(scores, (batch[:, 0], batch[:, 1]), outcome)
        np.add.at(scores, (batch[:, 1], batch[:, 0]), 1.0 - outcome)
        np.add.at(counts, (batch[:, 0], batch[:, 1]), 1.0)
        np.add.at(counts, (batch[:, 1], batch[:, 0]), 1.0)
        rounds += 1
        i, j = upper_pairs[open_, 0], upper_pairs[open_, 1]
        checks[i, j] += 1
        delta_t = delta_pair * 6.0 / (math.pi**2 * checks[i, j] ** 2)
        if confidence == "hoeffding":
            mean = scores[i, j] / counts[i, j]
            half = _half_width_hoeffding(counts[i, j], delta_t)
            lower, upper = mean - half, mean + half
        else:
            lower, upper = _clopper_pearson(scores[i, j], counts[i, j], delta_t)
        closed = (lower > 0.5) | (upper < 0.5)
        open_indices = np.flatnonzero(open_)
        open_[open_indices[closed]] = False
    resolved = np.zeros((num_teams, num_teams), bool)
    done = ~open_
    resolved[upper_pairs[done, 0], upper_pairs[done, 1]] = True
    resolved |= resolved.T
    np.fill_diagonal(resolved, True)  # a team against itself: 1/2, known
    payoffs = payoff_estimate(scores, counts)
    return SamplingResult(
        scores=scores,
        counts=counts,
        resolved=resolved,
        beats=payoffs > 0.5,
        rounds=rounds,
        matches=int(counts.sum() // 2),
    )


# ---------------------------------------------------------------- intervals
@dataclasses.dataclass
class Ranking:
    """A population's ranking with its uncertainty.

    ``mass``: alpha-Rank's distribution on the estimated payoffs; ``mass_low`` and
    ``mass_high``: its ``interval`` (say 90%) over the posterior; ``rank`` and
    ``rank_low``/``rank_high`` likewise (1 is best); ``elo`` with ``elo_low``/``elo_high``
    the same for Bradley-Terry ratings. ``order``: the teams, best first by ``mass``
    (ties by Elo).
    """

    mass: np.ndarray
    mass_low: np.ndarray
    mass_high: np.ndarray
    rank: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    elo: np.ndarray
    elo_low: np.ndarray
    elo_high: np.ndarray
    order: np.ndarray
    interval: float

    def table(self, names: list[str]) -> str:
        """A markdown table of the ranking, best first."""
        pct = round(100 * self.interval)
        lines = [
            f"| team | alpha-Rank mass ({pct}% interval) | rank ({pct}% interval) | "
            f"Elo ({pct}% interval) |",
            "|---|---|---|---|",
        ]
        for t in self.order:
            lines.append(
                f"| {names[t]} | {self.mass[t]:.3f} ({self.mass_low[t]:.3f}-"
                f"{self.mass_high[t]:.3f}) | {self.rank[t]} ({self.rank_low[t]}-"
                f"{self.rank_high[t]}) | {self.elo[t]:+.0f} ({self.elo_low[t]:+.0f} to "
                f"{self.elo_high[t]:+.0f}) |"
            )
        return "\n".join(lines)


def rank_with_intervals(
    scores: np.ndarray,
    counts: np.ndarray,
    alpha: float = 100.0,
    population_size: int = 50,
    num_samples: int = 1_000,
    interval: float = 0.9,
    seed: int = 0,
) -> Ranking:
    """alpha-Rank and Elo of the outcomes, with ``interval`` credible intervals.

    Every ``P[i, j]`` (``i < j``) is drawn from its posterior ``Beta(1 + s, 1 + c - s)``
    given ``s`` points in ``c`` matches (a uniform prior; ``P[j, i] = 1 - P[i, j]``), and
    the ranking is recomputed on each of ``num_samples`` draws.

    Elo is fitted as if every pair that met had played the same number of matches (the
    mean): a Bradley-Terry fit weighs pairs by their matches, and an adaptive sampler
    plays the close pairs most, which would tilt the ratings towards them.
    """
    scores, counts = np.asarray(scores, np.float64), np.asarray(counts, np.float64)
    n = scores.shape[0]
    rng = np.random.default_rng(seed)
    payoffs = payoff_estimate(scores, counts)
    mass = alpha_rank(payoffs, alpha, population_size)
    met = counts > 0
    balanced = np.where(met, counts[met].mean() if met.any() else 0.0, 0.0)
    elo = elo_ratings(payoffs * balanced, balanced)
    iu = np.triu_indices(n, 1)
    masses = np.empty((num_samples, n))
    elos = np.empty((num_samples, n))
    for sample in range(num_samples):
        drawn = np.full((n, n), 0.5)
        drawn[iu] = rng.beta(1.0 + scores[iu], 1.0 + counts[iu] - scores[iu])
        drawn[(iu[1], iu[0])] = 1.0 - drawn[iu]
        masses[sample] = alpha_rank(drawn, alpha, population_size)
        elos[sample] = elo_ratings(drawn * balanced, balanced)
    ranks = np.stack([ranks_of(m) for m in masses])
    tail = (1.0 - interval) / 2
    quantile = lambda x, q: np.quantile(x, q, axis=0)  # noqa: E731
    order = np.lexsort((-elo, -mass))
    return Ranking(
        mass=mass,
        mass_low=quantile(masses, tail),
        mass_high=quantile(masses, 1 - tail),
        rank=ranks_of(mass),
        rank_low=np.floor(quantile(ranks, tail)).astype(int),
        rank_high=np.ceil(quantile(ranks, 1 - tail)).astype(int),
        elo=elo,
        elo_low=quantile(elos, tail),
        elo_high=quantile(elos, 1 - tail),
        order=order,
        interval=interval,
    )
