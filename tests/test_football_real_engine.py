"""The adapter to GRF's real engine: what it reads off GRF's raw observations.

These parts need no engine (raw observations are plain dicts), so they run in CI; the
engine itself is exercised by the last test here and tests/test_benchmarks.py where
gfootball is installed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from marl.envs.football import real_engine
from marl.envs.football.scenarios import X_SCALE, Y_SCALE


def raw_observation(**changes):
    """A raw GRF observation of 3_vs_1_with_keeper's start, as the engine lays it out."""
    raw = {
        "left_team": np.array([[-1.0, 0.0], [0.6, 0.0], [0.7, 0.2], [0.7, -0.2]]),
        "right_team": np.array([[-1.0, 0.0], [-0.75, 0.0]]),
        "left_team_roles": np.array([0, 5, 5, 5]),
        "right_team_roles": np.array([0, 1]),
        "ball": np.array([0.62, 0.0, 0.11]),
        "ball_owned_team": 0,
        "ball_owned_player": 1,
        "game_mode": 0,
        "score": [0, 0],
    }
    raw.update(changes)
    return raw


def test_snapshot_is_in_metres_with_the_left_team_first():
    snapshot = real_engine.snapshot_of(raw_observation(), np.array([1, 2, 3]))
    np.testing.assert_allclose(snapshot.x[:4], np.array([-1.0, 0.6, 0.7, 0.7]) * X_SCALE)
    np.testing.assert_allclose(snapshot.y[2], 0.2 * Y_SCALE)
    np.testing.assert_array_equal(snapshot.team, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(snapshot.keeper, [True, False, False, False, True, False])
    assert snapshot.owner == 1
    assert snapshot.ball_z == pytest.approx(0.11)
    # A right-team owner is numbered after the whole left team.
    theirs = real_engine.snapshot_of(raw_observation(ball_owned_team=1, ball_owned_player=1), [1])
    assert theirs.owner == 5
    loose = real_engine.snapshot_of(raw_observation(ball_owned_team=-1), [1])
    assert loose.owner == -1


def test_the_mask_gives_kicks_to_the_agent_on_the_ball_and_sliding_to_the_others():
    snapshot = real_engine.snapshot_of(raw_observation(), np.array([0, 1, 3]))
    mask = real_engine.action_mask(snapshot)
    kicks = list(real_engine.KICKS)
    np.testing.assert_array_equal(mask[:, kicks].all(axis=1), [False, True, False])
    np.testing.assert_array_equal(mask[:, real_engine.SLIDING], [True, False, True])
    assert mask[:, :9].all() and mask[:, 13:16].all()  # moves, sprint, releases: always
    loose = real_engine.snapshot_of(raw_observation(ball_owned_team=-1), np.array([1]))
    assert not real_engine.action_mask(loose)[:, kicks].any()


@pytest.mark.parametrize(
    ("changes", "owned_before", "steps", "expected", "on_change"),
    [
        ({"score": [1, 0], "game_mode": 1}, 0, 20, "scored", True),  # a goal restarts play too
        ({"score": [0, 1]}, 0, 20, "conceded", True),
        ({"ball_owned_team": 1, "ball_owned_player": 0}, 0, 20, "possession_change", True),
        ({"ball_owned_team": -1, "game_mode": 2}, 0, 20, "out_of_play", True),
        # A defender's clearance out of play: both rules fire; out of play is named.
        ({"ball_owned_team": 1, "game_mode": 5}, 0, 20, "out_of_play", True),
        ({"ball_owned_team": -1}, 0, 400, "time_limit", True),
        # A loose ball between two owners of the same team changes nothing.
        ({"ball_owned_team": 0}, 0, 20, "running", True),
        # academy_corner plays on after a change of possession.
        ({"ball_owned_team": 1, "ball_owned_player": 0}, 0, 400, "time_limit", False),
    ],
)
def test_end_reasons_follow_grfs_own_rules(changes, owned_before, steps, expected, on_change):
    raw = raw_observation(**changes)
    reason = real_engine.end_reason(raw, owned_before, steps, 400, on_change)
    assert reason == expected


def test_without_gfootball_the_error_names_the_setup_script(monkeypatch):
    monkeypatch.setattr(real_engine, "gfootball_available", lambda: False)
    with pytest.raises(ModuleNotFoundError, match="benchmarks/gfootball_setup.sh"):
        real_engine.require_gfootball()
    with pytest.raises(ModuleNotFoundError, match="gfootball 2.10.2"):
        real_engine.RealFootball("academy_3_vs_1_with_keeper")


def test_a_real_engine_observation_is_laid_out_as_the_jax_envs():
    import jax

    import marl
    from marl.registry import make_raw_env
    from marl.sim_to_real import real_observation

    name = "football/academy_3_vs_1_with_keeper"
    key = jax.random.PRNGKey(3)
    raw_env = make_raw_env(name)
    _, timestep = raw_env.reset(key)
    obs = timestep.observation  # simple115 per agent: the vector GRF's wrapper builds
    built = real_observation(
        np.asarray(obs.agents_view), np.asarray(obs.action_mask), 0, raw_env.time_limit, True
    )
    _, wrapped = marl.make_env(name).reset(key)  # what a trained run's policy saw
    expected = wrapped.observation
    np.testing.assert_allclose(np.asarray(built.agents_view[0]), np.asarray(expected.agents_view))
    np.testing.assert_allclose(
        np.asarray(built.global_state[0]), np.asarray(expected.global_state), atol=1e-6
    )
    np.testing.assert_array_equal(
        np.asarray(built.action_mask[0]), np.asarray(expected.action_mask)
    )


@pytest.mark.parametrize(
    ("env_name", "kwargs", "message"),
    [
        ("smac/3m", {}, "plays football/\\* runs in GRF's engine; this run's env is 'smac/3m'"),
        (
            "football/academy_3_vs_1_with_keeper",
            {"representation": "egocentric"},
            "representation=simple115 .* this run used 'egocentric'",
        ),
    ],
)
def test_runs_that_cannot_play_in_gfootball_are_refused_in_one_line(env_name, kwargs, message):
    from marl.sim_to_real import RealEngineError, check_run_fits_gfootball

    with pytest.raises(RealEngineError, match=message):
        check_run_fits_gfootball(env_name, kwargs)
    assert check_run_fits_gfootball("football/academy_corner", {}) == "academy_corner"


def test_marl_evaluate_refuses_an_unknown_engine_in_one_line():
    from marl.experiments.evaluate import parse_args

    with pytest.raises(ValueError, match="engine must be one of jax, gfootball, got 'sc2'"):
        parse_args(["checkpoint=x", "engine=sc2"])
    with pytest.raises(ValueError, match="engine=gfootball evaluates; drop replay= and export="):
        parse_args(["checkpoint=x", "engine=gfootball", "replay=a.gif"])
    assert parse_args(["checkpoint=x", "engine=gfootball"])["engine"] == "gfootball"


class _RecordingBuilder:
    """GRF's scenario builder as far as a scenario file uses it, recording the calls."""

    def __init__(self):
        self.settings = type("Config", (), {})()
        self.ball = None
        self.teams: dict[str, list[tuple]] = {}
        self._team = None

    def config(self):
        return self.settings

    def SetBallPosition(self, x, y):  # noqa: N802 (GRF's names)
        self.ball = (x, y)

    def SetTeam(self, team):  # noqa: N802
        self._team = team
        self.teams[team] = []

    def AddPlayer(self, x, y, role, lazy=False, controllable=True):  # noqa: N802
        self.teams[self._team].append((x, y, role, lazy, controllable))


def test_a_registered_scenario_is_built_in_grf_as_grfs_own_file_builds_it(monkeypatch):
    """academy_3_vs_1_with_keeper through grf_builder gives what GRF's scenario file
    (gfootball/scenarios/academy_3_vs_1_with_keeper.py) sets: its ball, players,
    roles, duration and end rules."""
    import types

    from marl.envs.football.scenarios import get_scenario

    engine = types.SimpleNamespace(
        e_Team=types.SimpleNamespace(e_Left="left", e_Right="right"),
        e_PlayerRole=types.SimpleNamespace(
            **{f"e_PlayerRole_{role}": role for role in ("GK", "CB", "CM")}
        ),
    )
    monkeypatch.setitem(__import__("sys").modules, "gfootball_engine", engine)
    builder = _RecordingBuilder()
    real_engine.grf_builder(get_scenario("academy_3_vs_1_with_keeper"))(builder)

    assert builder.ball == (0.62, 0.0)
    assert builder.teams == {
        "left": [(-1.0, 0.0, "GK", False, True), (0.6, 0.0, "CM", False, True),
                 (0.7, 0.2, "CM", False, True), (0.7, -0.2, "CM", False, True)],
        "right": [(-1.0, 0.0, "GK", False, True), (-0.75, 0.0, "CB", False, True)],
    }  # fmt: skip
    settings = vars(builder.settings)
    assert settings["game_duration"] == 400
    assert settings["offsides"] is False and settings["deterministic"] is False
    assert settings["end_episode_on_score"] and settings["end_episode_on_out_of_play"]
    assert settings["end_episode_on_possession_change"]
    assert (settings["left_team_difficulty"], settings["right_team_difficulty"]) == (1.0, 0.6)

    # A scenario whose keeper no agent may drive says so to GRF's builder.
    import dataclasses

    no_keeper = dataclasses.replace(
        get_scenario("academy_3_vs_1_with_keeper"), controllable=(1, 2, 3)
    )
    builder = _RecordingBuilder()
    real_engine.grf_builder(no_keeper)(builder)
    assert [player[4] for player in builder.teams["left"]] == [False, True, True, True]
    assert all(player[4] for player in builder.teams["right"])


def test_a_full_game_scenario_is_not_built_for_grf():
    from marl.envs.football.scenarios import get_scenario

    with pytest.raises(ValueError, match="without restarts only"):
        real_engine.grf_builder(get_scenario("5_vs_5"))


def test_a_scenario_whose_name_is_no_module_name_is_refused_for_grf():
    import dataclasses

    from marl.envs.football.scenarios import get_scenario

    dotted = dataclasses.replace(get_scenario("academy_3_vs_1_with_keeper"), name="shot_16.5m")
    with pytest.raises(ValueError, match="'shot_16.5m'.*valid identifier"):
        real_engine.install_grf_scenario(dotted)


def test_each_episode_draws_its_seed_and_team_order_reproducibly():
    first = [
        real_engine.episode_settings(rng) for rng in [np.random.default_rng(5)] for _ in range(64)
    ]
    again = [
        real_engine.episode_settings(rng) for rng in [np.random.default_rng(5)] for _ in range(64)
    ]
    assert first == again
    orders = [s["reverse_team_processing"] for s in first]
    assert 16 < sum(orders) < 48  # both team orders, about equally
    for settings in first:  # GRF's own rule for a new environment
        assert settings["reverse_team_processing"] == bool(settings["game_engine_random_seed"] % 2)


def test_one_team_order_can_be_fixed_and_a_wrong_one_is_named():
    for order, reverse in (("normal", False), ("reversed", True)):
        rng = np.random.default_rng(5)
        settings = [real_engine.episode_settings(rng, order) for _ in range(16)]
        assert {s["reverse_team_processing"] for s in settings} == {reverse}
    with pytest.raises(ValueError, match="team_order='left': choose one of both, normal, reversed"):
        real_engine.episode_settings(np.random.default_rng(0), "left")
    with pytest.raises(ValueError, match="team_order='left'"):
        real_engine.RealFootball("academy_3_vs_1_with_keeper", team_order="left")


def _ball_path(env, episodes: int) -> list[tuple[float, float, float]]:
    """The ball after every step of ``episodes`` episodes, every agent running right."""
    path = []
    for _ in range(episodes):
        env.reset()
        for _ in range(env.time_limit):
            *_, snapshot, _, done, _ = env.step(np.full(env.num_agents, 5))
            path.append((snapshot.ball_x, snapshot.ball_y, snapshot.ball_z))
            if done:
                break
    return path


def test_a_second_engine_in_the_process_plays_as_the_first():
    """GRF fixes its team processing order once per environment from Python's global
    random state; the adapter sets it per episode, so two environments made one after
    the other with the same seed play the same episodes."""
    if not real_engine.gfootball_available():
        pytest.skip(f"gfootball is not installed: {real_engine.SETUP_HINT}")
    paths = []
    # Python's random state when GRF makes an environment picks its order: these two
    # states pick different ones (the parity of GRF's first random.randint).
    for python_seed in (0, 4):
        random.seed(python_seed)
        env = real_engine.RealFootball("academy_run_to_score_with_keeper", seed=3)
        try:
            paths.append(_ball_path(env, episodes=4))
        finally:
            env.close()
    np.testing.assert_allclose(paths[0], paths[1])
