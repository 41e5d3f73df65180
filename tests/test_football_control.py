"""GRF's hand-over of the agents' control between players, on hand-made situations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.football import sim
from marl.envs.football.control import Control, start_players, team_sheet, update_control
from marl.envs.football.env import IDLE, SHORT_PASS, Football
from marl.envs.football.scenarios import Player, Scenario

P = Player
RIGHT = 5
# Four left players (keeper, and three outfield players around the centre spot) against
# a keeper and a defender far away; two agents.
DRILL = Scenario(
    "control_drill",
    (0.0, 0.0),
    (P("GK", -1.0, 0.0), P("CM", 0.0, 0.0), P("CM", 0.3, 0.2), P("CM", -0.05, -0.05)),
    (P("GK", -1.0, 0.0), P("CB", -0.75, 0.0)),
    controlled=(3, 1),
)
NO_PASS = sim.Events(
    goal=jnp.int32(-1), out=jnp.bool_(False), out_x=jnp.float32(0.0), out_y=jnp.float32(0.0),
    out_over_goal_line=jnp.bool_(False), last_touch_team=jnp.int32(-1),
    possession_change=jnp.bool_(False), scorer=jnp.int32(-1), pass_receiver=jnp.int32(-1),
)  # fmt: skip


def _situation(scenario: Scenario = DRILL, **players: float) -> tuple[sim.Match, sim.Statics]:
    """The scenario's kick-off with some players moved (``x3=-11.0``: player 3's x, metres)
    and the ball still."""
    statics = sim.statics(scenario)
    match = sim.initial_match(scenario, statics)
    for name, value in players.items():
        axis, index = name[0], int(name[1:])
        match = match.replace(**{axis: getattr(match, axis).at[index].set(value)})
    return match, statics


def _control(controlled, queue, designated=(1, 5)) -> Control:
    return Control(
        controlled=jnp.asarray(controlled, jnp.int32),
        queue=jnp.asarray(queue, jnp.int32),
        designated=jnp.asarray(designated, jnp.int32),
    )


def _update(control, match, statics, events=NO_PASS, controllable=(0, 1, 2, 3)) -> Control:
    selectable = np.zeros(statics.team.shape[0], bool)
    selectable[list(controllable)] = True
    return update_control(control, match, statics, events, selectable)


def _ball_at(match: sim.Match, x: float, y: float, owner: int = -1) -> sim.Match:
    return match.replace(ball=match.ball.replace(x=jnp.float32(x), y=jnp.float32(y)),
                         owner=jnp.int32(owner))  # fmt: skip


def test_reset_shows_grf_team_sheet_hand_out_and_the_first_action_drives_the_carrier():
    grf, fixed = Football(DRILL), Football(DRILL, control="fixed")
    state, timestep = grf.reset(jax.random.PRNGKey(0))
    # Not the players nearest the ball (1 on it, 3 at 3 m): a four-player team's
    # team-sheet slots nearest the centre are the keeper's and the third's, and that is
    # what the reset observation shows ...
    active = np.asarray(timestep.observation.agents_view[:, 88 + 9 : 88 + 9 + 11])
    assert active.argmax(1).tolist() == [0, 2] and active.sum() == 2
    # ... while the first frame of play has the front agent take over the free carrier,
    # so the first action already drives him; agent 0 goes to the back of the queue.
    assert state.control.controlled.tolist() == [1, 2]
    assert state.control.queue.tolist() == [1, 0]
    idle_state, _ = grf.step(state, jnp.asarray([IDLE, IDLE]))
    state, timestep = grf.step(state, jnp.asarray([RIGHT, IDLE]))
    # Agent 0's "right" moves the carrier, not the keeper.
    assert float(state.match.x[1]) > float(idle_state.match.x[1]) + 0.02
    assert float(state.match.x[0]) == float(idle_state.match.x[0])
    active = np.asarray(timestep.observation.agents_view[:, 88 + 9 : 88 + 9 + 11])
    assert active.argmax(1).tolist() == [1, 2]
    state, timestep = fixed.reset(jax.random.PRNGKey(0))
    assert state.control.controlled.tolist() == [3, 1]
    active = np.asarray(timestep.observation.agents_view[:, 88 + 9 : 88 + 9 + 11])
    assert active.argmax(1).tolist() == [3, 1]


@pytest.mark.parametrize(
    "team_size, num_agents, handed_out",
    [
        # What GRF 2.10.2's engine hands out at reset (benchmarks/grf_hand_out.py):
        (2, 1, [0]),  # academy_empty_goal_close
        (4, 3, [0, 2, 3]),  # academy_3_vs_1_with_keeper
        (3, 2, [0, 2]),  # academy_pass_and_shoot_with_keeper
        (11, 10, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]),  # academy_corner
    ],
)
def test_reset_hand_out_matches_grf_engine(team_size, num_agents, handed_out):
    everyone = np.ones(team_size, bool)
    assert start_players(team_size, everyone, num_agents).tolist() == handed_out
    # An uncontrollable slot is skipped for the next nearest.
    if team_size == 4:
        no_keeper = everyone.copy()
        no_keeper[0] = False
        assert start_players(team_size, no_keeper, 3).tolist() == [1, 2, 3]


def test_team_sheet_mirrors_and_spaces_grf_formation_slots():
    sheet = team_sheet(11)
    assert sheet.dtype == np.float32 and sheet.shape == (11, 2)
    # The two full-backs and the two wide midfielders mirror each other exactly.
    assert sheet[1, 0] == sheet[4, 0] and sheet[1, 1] == -sheet[4, 1]
    assert sheet[8, 0] == sheet[10, 0] and sheet[8, 1] == -sheet[10, 1]
    outfield = sheet[1:] / 25.0
    gaps = np.hypot(*(outfield[:, None] - outfield[None]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(10, 1)].min() >= 0.5 - 1e-3
    with pytest.raises(ValueError, match="1 to 11 players, got 12"):
        team_sheet(12)


def test_a_pass_hands_its_receiver_to_the_front_agent_who_goes_to_the_back():
    match, statics = _situation(x2=-20.0, y2=0.0)
    match = _ball_at(match, -20.0, 0.0)  # near player 2, the pass's receiver
    passed = NO_PASS._replace(pass_receiver=jnp.int32(2))
    control = _update(_control([1, 3], [0, 1]), match, statics, passed)
    assert control.controlled.tolist() == [2, 3] and control.queue.tolist() == [1, 0]
    # The next pass (to the keeper: GRF hands it over when passed to) goes to agent 1.
    match = _ball_at(match, float(match.x[0]), 0.0)
    control = _update(control, match, statics, NO_PASS._replace(pass_receiver=jnp.int32(0)))
    assert control.controlled.tolist() == [2, 0] and control.queue.tolist() == [0, 1]
    # A pass to a player already driven changes nobody's player.
    again = _update(control, match, statics, NO_PASS._replace(pass_receiver=jnp.int32(0)))
    assert again.controlled.tolist() == [2, 0]


def test_a_player_no_agent_may_drive_is_never_handed_over():
    match, statics = _situation(x2=-20.0, y2=0.0)
    match = _ball_at(match, -20.0, 0.0, owner=2)
    passed = NO_PASS._replace(pass_receiver=jnp.int32(2))
    control = _update(_control([1, 3], [0, 1]), match, statics, passed, controllable=(1, 3))
    assert control.controlled.tolist() == [1, 3]


def test_the_front_agent_loses_its_turn_while_its_player_has_the_ball():
    match, statics = _situation()
    match = _ball_at(match, float(match.x[1]), float(match.y[1]), owner=1)
    control = _update(_control([1, 3], [0, 1]), match, statics)
    assert control.controlled.tolist() == [1, 3] and control.queue.tolist() == [1, 0]


def test_a_free_outfield_teammate_on_the_ball_is_taken_over_but_not_the_keeper():
    match, statics = _situation(x2=-20.0, y2=0.0)
    on_ball = _ball_at(match, -20.0, 0.0, owner=2)
    control = _update(_control([1, 3], [0, 1]), on_ball, statics)
    assert control.controlled.tolist() == [2, 3]
    keeper = _ball_at(match, float(match.x[0]), 0.0, owner=0)
    control = _update(_control([1, 3], [0, 1]), keeper, statics)
    assert control.controlled.tolist() == [1, 3]


@pytest.mark.parametrize(("driven_x", "switches"), [(0.0, True), (-12.5, False)])
def test_a_free_teammate_is_taken_over_only_when_three_times_nearer_the_ball(driven_x, switches):
    # A still ball at -10 m: player 2 is 1 m from it, the driven player 1 10 m or 2.5 m.
    match, statics = _situation(x2=-11.0, y2=0.0, x1=driven_x, y1=0.0, x3=30.0)
    match = _ball_at(match, -10.0, 0.0)
    control = _update(_control([1], [0]), match, statics)
    assert control.controlled.tolist() == ([2] if switches else [1])


def test_time_to_ball_counts_the_ball_rolling_towards_a_player():
    match, _ = _situation(x2=-20.0, y2=0.0)
    still = _ball_at(match, -10.0, 0.0)
    rolling = still.replace(ball=still.ball.replace(vx=jnp.float32(-12.0)))
    time_still, time_rolling = (np.asarray(sim.time_to_ball(m)) for m in (still, rolling))
    # The ball rolling at player 2 (10 m away) reaches him sooner than he would reach it.
    assert time_rolling[2] < time_still[2]
    owned = _ball_at(match, 0.0, 0.0, owner=1)
    assert float(sim.time_to_ball(owned)[1]) == 0.0


def _pass_back(control: str) -> tuple[list[list[int]], list[float], list[int], np.ndarray]:
    """academy_run_to_score_with_keeper: the agent's defender takes the ball and passes
    (his only teammate is the keeper); per step the driven players, the ball's speed and
    owner, and the last observation."""
    env = Football("academy_run_to_score_with_keeper", control=control)
    state, _ = env.reset(jax.random.PRNGKey(1))
    step = jax.jit(env.step)
    driven, speeds, owners = [], [], []
    # Onto the ball (1.1 m ahead), then the pass.
    actions = [RIGHT, IDLE, SHORT_PASS] + [IDLE] * 13
    for action in actions:
        state, timestep = step(state, jnp.asarray([action]))
        driven.append(state.control.controlled.tolist())
        speeds.append(float(jnp.hypot(state.match.ball.vx, state.match.ball.vy)))
        owners.append(int(state.match.owner))
    return driven, speeds, owners, np.asarray(timestep.observation.agents_view)


def test_passing_back_to_the_keeper_hands_the_agent_its_keeper_when_the_pass_leaves():
    driven, speeds, owners, view = _pass_back("grf")
    handed = [t for t, players in enumerate(driven) if players == [0]]
    assert handed, driven
    first = handed[0]
    assert all(players == [1] for players in driven[:first])
    # The hand-over happens in the step the ball leaves the defender's foot.
    assert owners[first - 1] == 1 and owners[first] == -1 and speeds[first] > 10.0
    assert view[0, 88 + 9 : 88 + 9 + 11].argmax() == 0  # the observation marks the keeper
    driven, *_ = _pass_back("fixed")
    assert all(players == [1] for players in driven)


def test_bad_control_settings_fail_in_one_line():
    with pytest.raises(ValueError, match="control must be one of grf, fixed, got 'auto'"):
        Football("academy_3_vs_1_with_keeper", control="auto")
    with pytest.raises(ValueError, match=r"controllable=\(7,\) must be distinct indices"):
        Scenario("bad", (0.0, 0.0), DRILL.left, DRILL.right, controlled=(1,), controllable=(7,))
    with pytest.raises(ValueError, match="2 agents but only 1 controllable players"):
        Scenario("bad", (0.0, 0.0), DRILL.left, DRILL.right, controlled=(1, 2),
                 controllable=(1,))  # fmt: skip
