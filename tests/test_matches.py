"""Matches between teams on both sides of a SMAC map (marl.matches) and their ranking."""

import json
import pathlib
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from marl.experiments import rank
from marl.matches import MatchError, MatchMaker, Team, load_teams
from marl.ranking import rank_with_intervals, response_graph_ucb

MOVE_EAST, MOVE_WEST, STOP, FIRST_TARGET = 4, 5, 1, 6
ROW = 4  # 3m's global state: every ally's [health, cooldown, x, y], then enemies' [health, x, y]


class Scripted:
    """A hand-written team with the learners' acting interface. ``charge``: attack the
    first enemy in range, else walk towards the enemies' mean x; otherwise stand still
    (stopped units still shoot back at enemies in range)."""

    def __init__(self, charge: bool):
        self.charge = charge

    def initial_memory(self, batch_size):
        return ()

    def act(self, params, obs, memory, key, explore):
        mask = obs.action_mask
        num_agents = mask.shape[-2]
        alive = mask[..., STOP]
        if self.charge:
            state = obs.global_state
            own_x = state[:, 2 : ROW * num_agents : ROW]
            enemies = state[:, ROW * num_agents : (ROW + 3) * num_agents].reshape(-1, num_agents, 3)
            living = enemies[..., 0] > 0
            enemy_x = (enemies[..., 1] * living).sum(-1) / jnp.maximum(living.sum(-1), 1)
            move = jnp.where(own_x < enemy_x[:, None], MOVE_EAST, MOVE_WEST)
            targets = mask[..., FIRST_TARGET:]
            action = jnp.where(targets.any(-1), FIRST_TARGET + jnp.argmax(targets, -1), move)
        else:
            action = jnp.full(mask.shape[:-1], STOP)
        return jnp.where(alive, action, 0).astype(jnp.int32), memory, {}


def scripted(name, charge, env_name="smac/3m"):
    return Team(name, pathlib.Path("."), 0, Scripted(charge), {}, False, env_name, {})


@pytest.fixture(scope="module")
def maker():
    return MatchMaker([scripted("charge", True), scripted("stop", False)])


def test_charging_team_beats_a_standing_one_from_either_side(maker):
    # Three marines focusing one enemy at a time beat three that only shoot back at
    # whoever is in range, from either side of the map.
    np.testing.assert_array_equal(maker.play(0, 1, 4), [1.0] * 4)
    np.testing.assert_array_equal(maker.play(1, 0, 4), [0.0] * 4)
    # Nobody moves, nobody is in range: a draw at the time limit.
    np.testing.assert_array_equal(maker.play(1, 1, 4), [0.5] * 4)
    # A batch of pairs: half of each pair's matches are played with the sides swapped,
    # and the scores are always the first-named team's.
    pairs = np.array([[0, 1]] * 4 + [[1, 0]] * 2)
    np.testing.assert_array_equal(maker(pairs), [1, 1, 1, 1, 0, 0])


def test_ranking_of_scripted_teams(maker):
    before = maker.matches
    sampled = response_graph_ucb(maker, 2, delta=0.05, matches_per_round=4)
    assert sampled.resolved.all() and sampled.beats[0, 1]
    # Hoeffding at delta 0.05 needs 8 straight wins to exclude 1/2 (with the union and
    # time corrections, 9 or more): two or three rounds of 4.
    assert 8 <= sampled.matches <= 16 and maker.matches - before == sampled.matches
    ranking = rank_with_intervals(sampled.scores, sampled.counts, num_samples=50)
    assert list(ranking.order) == [0, 1] and ranking.elo[0] > ranking.elo[1]


class Chaser:
    """Football, simple115: runs at the ball; with it, runs right and shoots past x = 0.7
    (GRF's units), all from its own end of the pitch."""

    def initial_memory(self, batch_size):
        return ()

    def act(self, params, obs, memory, key, explore):
        view = obs.agents_view
        active = jnp.argmax(view[..., 97:108], -1)  # which of its team's 11 slots
        positions = view[..., :22].reshape(*view.shape[:-1], 11, 2)
        me = jnp.take_along_axis(positions, active[..., None, None], axis=-2)[..., 0, :]
        gap = view[..., 88:90] - me  # to the ball
        eighth = jnp.round(jnp.arctan2(gap[..., 1], gap[..., 0]) / (jnp.pi / 4)).astype(int) % 8
        towards_ball = jnp.array([5, 6, 7, 8, 1, 2, 3, 4])[eighth]  # 0 rad is "right", 5
        has_ball = obs.action_mask[..., 12]
        action = jnp.where(has_ball, jnp.where(me[..., 0] > 0.7, 12, 5), towards_ball)
        return action.astype(jnp.int32), memory, {}


class Idle:
    def initial_memory(self, batch_size):
        return ()

    def act(self, params, obs, memory, key, explore):
        return jnp.zeros(obs.action_mask.shape[:-1], jnp.int32), memory, {}


def test_football_teams_play_from_both_ends():
    def football(name, algorithm):
        return Team(name, pathlib.Path("."), 0, algorithm, {}, False, "football/5_vs_5", {})

    maker = MatchMaker([football("chaser", Chaser()), football("idle", Idle())])
    # A whole 5_vs_5 match (3,000 steps): the chaser scores from either end, the idle
    # team never does.
    np.testing.assert_array_equal(maker.play(0, 1, 2), [1.0, 1.0])
    np.testing.assert_array_equal(maker.play(1, 0, 2), [0.0, 0.0])
    with pytest.raises(MatchError, match="teams are alike"):
        MatchMaker([scripted("a", True, "football/academy_3_vs_1_with_keeper")] * 2)


def test_teams_must_share_a_symmetric_map():
    with pytest.raises(MatchError, match="teams must share a map"):
        MatchMaker([scripted("a", True), scripted("b", True, "smac/8m")])
    with pytest.raises(MatchError, match="5 agents against 6 enemies"):
        MatchMaker([scripted("a", True, "smac/5m_vs_6m"), scripted("b", True, "smac/5m_vs_6m")])
    with pytest.raises(MatchError, match="at least 2 teams"):
        MatchMaker([scripted("a", True)])


def test_teams_load_from_a_saved_run(train_config, monkeypatch, capsys):
    from marl.train import train

    config = train_config(
        algo="vdn",
        env="smac/3m",
        algo_options={"hidden_dim": 8, "batch_size": 2, "buffer_size": 124},
        **{
            "arch.num_envs": 2,
            "arch.rollout_length": 60,
            "arch.total_timesteps": 120,
            "arch.eval_interval": 120,
            "arch.eval_episodes": 1,
            "arch.num_seeds": 2,
        },
    )
    train(config)
    teams = load_teams(config.run_dir, name="vdn-tiny")
    assert [t.name for t in teams] == ["vdn-tiny/seed0", "vdn-tiny/seed1"]
    with pytest.raises(MatchError, match="not \\[7\\]"):
        load_teams(config.run_dir, seeds=[7])
    maker = MatchMaker([*teams, scripted("charge", True)])
    scores = maker(np.array([[0, 1]] * 2 + [[0, 2]] * 2))
    assert set(np.unique(scores)) <= {0.0, 0.5, 1.0}
    assert maker.matches == 4
    # marl-rank on the run: its two seeds are the teams.
    out = pathlib.Path(config.run_dir).parent / "rank.json"
    argv = ["marl-rank", f"runs={config.run_dir}", "matches_per_round=2", "max_matches=4",
            f"json={out}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    rank.main()
    printed = capsys.readouterr().out
    assert "2 teams on smac/3m" in printed and "| vdn/seed" in printed
    result = json.loads(out.read_text())
    assert result["teams"] == ["vdn/seed0", "vdn/seed1"]
    assert 2 <= result["matches"] <= 4 and result["counts"][0][1] == result["matches"]
    assert sorted(row["rank"] for row in result["ranking"]) in ([1, 2], [1, 1])


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("delta=2", "delta must be a number in (0.0, 1.0), got '2'"),
        ("sampling=greedy", "sampling must be one of adaptive, uniform, got 'greedy'"),
        ("confidence=wald", "confidence must be one of hoeffding, clopper-pearson"),
        ("matches=3", "unexpected argument 'matches=3'"),
    ],
)
def test_marl_rank_refuses_bad_settings_in_one_line(tmp_path, argument, message):
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(ValueError) as error:
        rank.parse_args([f"runs={tmp_path}", argument])
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="not a marl-lab run directory"):
        rank.parse_args([f"runs={tmp_path / 'nothing'}"])
