"""alpha-Rank, ResponseGraphUCB and Elo (marl.ranking) on meta-games with known answers."""

import math

import numpy as np
import pytest

from marl.ranking import (
    alpha_rank,
    elo_ratings,
    rank_with_intervals,
    ranks_of,
    response_graph_ucb,
)

# A rock-paper-scissors-like population with unequal margins: 1 beats 0, 2 beats 1,
# 0 beats 2. Its alpha-Rank distribution at alpha = 1 (m = 50) is not uniform.
RPS = np.array([[0.5, 0.3, 0.65], [0.7, 0.5, 0.25], [0.35, 0.75, 0.5]])
# Rock (0), paper (1), scissors (2) and a fourth team (3) that crushes rock and paper but
# loses to scissors: the highest average, yet scissors is the better place to be.
INTRANSITIVE = np.array(
    [
        [0.5, 0.1, 0.9, 0.05],
        [0.9, 0.5, 0.1, 0.05],
        [0.1, 0.9, 0.5, 0.6],
        [0.95, 0.95, 0.4, 0.5],
    ]
)


def bernoulli_games(payoffs, seed=0):
    """A ``play`` function: each match is a win with probability ``payoffs[i, j]``."""
    rng = np.random.default_rng(seed)

    def play(pairs):
        return (rng.random(len(pairs)) < payoffs[pairs[:, 0], pairs[:, 1]]).astype(float)

    return play


def constant_sum(rng, n):
    upper = np.triu(rng.uniform(size=(n, n)), 1)
    payoffs = upper + np.tril(1.0 - upper.T, -1)
    np.fill_diagonal(payoffs, 0.5)
    return payoffs


@pytest.mark.parametrize("alpha", [0.5, 5.0, 100.0, math.inf])
def test_alpha_rank_matches_open_spiel(alpha):
    from open_spiel.python.egt import alpharank

    rng = np.random.default_rng(1)
    for n in (2, 3, 6):
        for payoffs in (constant_sum(rng, n), rng.uniform(size=(n, n))):
            if math.isinf(alpha):
                expected = alpharank.compute(
                    [payoffs], m=50, alpha=1.0, use_inf_alpha=True, inf_alpha_eps=0.01
                )[2]
            else:
                expected = alpharank.compute([payoffs], m=50, alpha=alpha)[2]
            np.testing.assert_allclose(alpha_rank(payoffs, alpha, 50, 0.01), expected, atol=1e-9)


def test_cycle_at_high_alpha_is_uniform():
    np.testing.assert_allclose(alpha_rank(RPS, 100.0), [1 / 3] * 3, atol=1e-9)


def test_noisy_matches_recover_the_known_stationary_distribution():
    # At high alpha the cycle's mass is uniform and depends only on who beats whom,
    # which the adaptive sampler settles with confidence.
    sampled = response_graph_ucb(bernoulli_games(RPS), 3, delta=0.05, matches_per_round=50)
    assert sampled.resolved.all()
    np.testing.assert_array_equal(sampled.beats, RPS > 0.5)
    ranking = rank_with_intervals(sampled.scores, sampled.counts, alpha=100.0, num_samples=300)
    np.testing.assert_allclose(ranking.mass, [1 / 3] * 3, atol=0.02)
    # At alpha = 1 the mass depends on the margins: [.32, .27, .41].
    known = alpha_rank(RPS, alpha=1.0)
    assert known.max() - known.min() > 0.1
    pairs = np.repeat(np.array([[0, 1], [0, 2], [1, 2]]), 3_000, axis=0)
    outcome = bernoulli_games(RPS, seed=1)(pairs)
    scores, counts = np.zeros((3, 3)), np.zeros((3, 3))
    np.add.at(scores, (pairs[:, 0], pairs[:, 1]), outcome)
    np.add.at(scores, (pairs[:, 1], pairs[:, 0]), 1 - outcome)
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    counts += counts.T
    ranking = rank_with_intervals(scores, counts, alpha=1.0, num_samples=300, interval=0.99)
    # 3,000 matches per pair pin every P[i, j] to about +-0.009 (one standard error); at
    # alpha = 1 the mass moves about 1.5 times as much, so 0.03 is over two errors.
    np.testing.assert_allclose(ranking.mass, known, atol=0.03)
    assert np.all(ranking.mass_low <= known) and np.all(known <= ranking.mass_high)
    np.testing.assert_array_equal(ranking.rank, ranks_of(known))


def test_adaptive_sampling_needs_fewer_matches_than_uniform():
    # Margins from 0.4 down to 0.08: uniform sampling plays every pair as long as the
    # closest one needs.
    payoffs = np.array(
        [
            [0.5, 0.9, 0.8, 0.58],
            [0.1, 0.5, 0.7, 0.9],
            [0.2, 0.3, 0.5, 0.85],
            [0.42, 0.1, 0.15, 0.5],
        ]
    )
    runs = {
        adaptive: response_graph_ucb(
            bernoulli_games(payoffs, seed=3),
            4,
            delta=0.1,
            matches_per_round=16,
            adaptive=adaptive,
        )  # fmt: skip
        for adaptive in (True, False)
    }
    for result in runs.values():
        assert result.resolved.all()
        np.testing.assert_array_equal(result.beats, payoffs > 0.5)
    assert runs[True].matches < 0.6 * runs[False].matches
    # Uniform sampling plays every pair equally often; adaptive stops the easy ones early.
    off = ~np.eye(4, dtype=bool)
    assert len(np.unique(runs[False].counts[off])) == 1
    assert runs[True].counts[0, 1] < runs[True].counts[0, 3]


def test_clopper_pearson_with_draws_and_unresolvable_ties():
    payoffs = np.array([[0.5, 0.8, 0.5], [0.2, 0.5, 0.5], [0.5, 0.5, 0.5]])
    rng = np.random.default_rng(0)

    def play(pairs):  # pairs with team 2 always draw; 0 beats 1 four times in five
        p = payoffs[pairs[:, 0], pairs[:, 1]]
        wins = (rng.random(len(pairs)) < p).astype(float)
        draws = (pairs == 2).any(axis=1)
        return np.where(draws, 0.5, wins)

    result = response_graph_ucb(
        play, 3, delta=0.05, matches_per_round=20, max_matches_per_pair=200,
        confidence="clopper-pearson",
    )  # fmt: skip
    assert result.resolved[0, 1] and result.beats[0, 1] and not result.beats[1, 0]
    assert not result.resolved[0, 2] and not result.resolved[1, 2]  # ties stay open
    assert result.counts[0, 2] == 200 and result.counts[0, 1] < 200
    # Draws became fair coin flips: the tie's estimate stays near 1/2.
    assert abs(result.payoffs[0, 2] - 0.5) < 0.15


def test_elo_recovers_bradley_terry_ratings():
    ratings = np.array([300.0, 100.0, 0.0, -400.0])
    expected = 1 / (1 + 10 ** ((ratings[None, :] - ratings[:, None]) / 400))
    counts = np.full((4, 4), 10_000.0)
    np.fill_diagonal(counts, 0)
    fitted = elo_ratings(expected * counts, counts, prior_draws=0.0)
    np.testing.assert_allclose(fitted, ratings - ratings.mean(), atol=0.5)


def test_elo_and_alpha_rank_disagree_on_an_intransitive_population():
    mass = alpha_rank(INTRANSITIVE, alpha=100.0)
    counts = np.full((4, 4), 1_000.0)
    np.fill_diagonal(counts, 0)
    elo = elo_ratings(INTRANSITIVE * counts, counts)
    # Elo puts the team that beats two of three first; alpha-Rank puts the team that
    # beats it first: scissors is only beaten by rock, which paper and team 3 beat.
    assert np.argmax(elo) == 3
    assert np.argmax(mass) == 2
    np.testing.assert_allclose(mass, [0.2, 0.1, 0.4, 0.3], atol=1e-3)
    # The same from noisy matches, with intervals that separate the two tops.
    sampled = response_graph_ucb(bernoulli_games(INTRANSITIVE, seed=5), 4, delta=0.05)
    ranking = rank_with_intervals(sampled.scores, sampled.counts, num_samples=200)
    assert ranking.order[0] == 2 and np.argmax(ranking.elo) == 3
    assert ranking.rank_high[2] == 1  # scissors is first in (nearly) every posterior draw
    assert ranking.elo_low[3] > ranking.elo_high[2]
    table = ranking.table(["rock", "paper", "scissors", "crusher"])
    assert table.splitlines()[2].startswith("| scissors |")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": "wald"}, "confidence must be one of hoeffding, clopper-pearson"),
        ({"delta": 0.0}, "delta must be in (0, 1)"),
        ({"num_teams": 1}, "at least 2 teams"),
    ],
)
def test_bad_sampler_settings_fail_in_one_line(kwargs, message):
    arguments = {"num_teams": 3, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        response_graph_ucb(bernoulli_games(RPS), **arguments)


def test_alpha_rank_refuses_non_square_payoffs():
    with pytest.raises(ValueError, match=r"square \[n, n\]"):
        alpha_rank(np.ones((2, 3)))
