"""The football simulator's rules on hand-made situations, and properties of every scenario."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.football import sim
from marl.envs.football.env import (
    DRIBBLE,
    IDLE,
    LONG_PASS,
    RELEASE_DIRECTION,
    SHORT_PASS,
    SHOT,
    SLIDING,
    SPRINT,
    Football,
)
from marl.envs.football.scenarios import Player, Scenario, get_scenario, scenario_names

RIGHT, TOP, BOTTOM_RIGHT, BOTTOM = 5, 3, 6, 7
P = Player


def _episodes(env: Football, policy, steps: int, num_episodes: int, seed: int = 0) -> dict:
    """Runs ``num_episodes`` episodes of ``policy(t, state) -> actions`` for ``steps`` steps;
    per step: reward, the step type, end reason, ball owner, ball position and the state."""

    def run(key):
        state, _ = env.reset(key)

        def body(carry, t):
            state, over = carry
            state, timestep = env.step(state, policy(t, state))
            record = {
                "reward": jnp.where(over, 0.0, timestep.reward[0]),
                "ended": timestep.last() & ~over,
                "discount": timestep.discount[0],
                "reason": timestep.extras["end_reason"],
                "owner": state.match.owner,
                "ball_x": state.match.ball.x,
                "ball_y": state.match.ball.y,
                "x": state.match.x,
                "speed": jnp.hypot(state.match.vx, state.match.vy),
            }
            return (state, over | timestep.last()), record

        _, records = jax.lax.scan(body, (state, jnp.bool_(False)), jnp.arange(steps))
        return records

    keys = jax.random.split(jax.random.PRNGKey(seed), num_episodes)
    return jax.tree.map(np.asarray, _compile_fast(jax.vmap(run), keys)(keys))


def _compile_fast(function, *example_args):
    """``function`` compiled without XLA's backend optimisations, which take most of the
    compile time and buy little for the few short episodes of a rule check."""
    return jax.jit(function).lower(*example_args).compile({"xla_backend_optimization_level": 0})


def _end_reasons(records: dict) -> np.ndarray:
    """The end reason of each episode (0 if it did not end)."""
    ended = records["ended"]
    first = np.argmax(ended, axis=1)
    return np.where(ended.any(1), records["reason"][np.arange(len(first)), first], 0)


def _striker(name: str, distance: float, right: tuple[Player, ...]) -> Football:
    """One attacker ``distance`` m out in front of the right goal, the ball 0.5 m ahead of
    him, against ``right``."""
    spot = sim.HALF_LENGTH - distance
    left = (P("GK", -1.0, 0.0), P("CF", spot / sim.HALF_LENGTH, 0.0))
    return Football(Scenario(name, ((spot + 0.5) / 54.4, 0.0), left, right, controlled=(1,)))


def _shooter(distance: float, keeper: bool) -> Football:
    """A striker (:func:`_striker`) against the right team's keeper in goal, or
    (``keeper=False``) a lazy one far away in the other goal."""
    right = (P("GK", -1.0, 0.0),) if keeper else (P("GK", 1.0, 0.0, lazy=True),)
    return _striker(f"shooter_{distance}_{keeper}", distance, right)


def _shoot_at_step_one(direction: int):
    return lambda t, state: jnp.where(t == 1, SHOT, direction)[None]


def test_holding_shot_charges_it_as_in_grf():
    """GRF (the reference, section 5): the shot fires when its button is let go or after
    500 ms held, harder the longer it was held (desired power .15 for one step, .63 for
    five). Pressed once, the ball leaves three steps after the command; pressed on eight
    steps in a row, four steps later (the charge stops at five) and about 15% faster."""

    def leaves(hold_steps: int) -> tuple[np.ndarray, np.ndarray]:
        def policy(t, state):
            return jnp.where((t >= 1) & (t < 1 + hold_steps), SHOT, RIGHT)[None]

        records = _episodes(_shooter(25.0, keeper=False), policy, 16, 64)
        loose = (records["owner"] == -1) & (np.arange(16)[None, :] >= 2)
        step = np.argmax(loose, axis=1)
        travelled = np.hypot(
            records["ball_x"][np.arange(64), step + 2] - records["ball_x"][np.arange(64), step + 1],
            records["ball_y"][np.arange(64), step + 2] - records["ball_y"][np.arange(64), step + 1],
        )
        return step, travelled / sim.STEP_SECONDS

    once, once_speed = leaves(1)
    held, held_speed = leaves(8)
    assert (once == 1 + 3).all() and (held == 1 + 7).all()  # the first press at step 1
    assert 1.08 <= held_speed.mean() / once_speed.mean() <= 1.22


def test_a_shot_from_the_penalty_spot_into_an_empty_goal_scores():
    records = _episodes(_shooter(11.0, keeper=False), _shoot_at_step_one(RIGHT), 20, 64)
    reasons = _end_reasons(records)
    assert (reasons == 1).mean() >= 0.9, np.bincount(reasons)
    # The ball leaves after GRF's wind-up and crosses the line within about half a second.
    first_end = np.argmax(records["ended"], 1)[reasons == 1]
    assert np.all(first_end >= sim.KICK_DELAY[sim.SHOT]) and np.all(first_end <= 10)


def test_checkpoint_rewards_sum_to_one_with_the_payout_on_scoring():
    records = _episodes(_shooter(11.0, keeper=False), _shoot_at_step_one(RIGHT), 20, 16)
    scored = _end_reasons(records) == 1
    returns = records["reward"].sum(1)
    # +1 for the goal and the ten checkpoints of 0.1, collected or paid out at the goal.
    np.testing.assert_allclose(returns[scored], 2.0, atol=1e-5)
    # Near goal with the ball, most checkpoints are collected before the shot.
    assert np.all(records["reward"][scored, 0] >= 0.5)
    scoring_only = Football(_shooter(11.0, keeper=False).scenario, rewards="scoring")
    records = _episodes(scoring_only, _shoot_at_step_one(RIGHT), 20, 16)
    scored = _end_reasons(records) == 1
    np.testing.assert_allclose(records["reward"].sum(1)[scored], 1.0)


@pytest.mark.parametrize("speed", [5.0, 10.0, 20.0])
def test_a_rolling_ball_stops_where_the_friction_law_says(speed):
    ball = sim.Ball(*(jnp.float32(v) for v in (0.0, 0.0, sim.BALL_RADIUS, speed, 0.0, 0.0)))
    trail = []
    for _ in range(500):
        ball = sim._fly(ball, 0.02)
        trail.append(float(ball.x))
    # dv/dt = -(0.055 v² + 1.6): distance ln(1 + 0.055 v² / 1.6) / 0.11.
    expected = np.log(1.0 + 0.055 * speed**2 / 1.6) / 0.11
    assert trail[-1] == pytest.approx(expected, rel=1e-3)
    assert trail[-1] == pytest.approx(sim.stopping_distance(speed), rel=1e-3)
    assert np.all(np.diff(trail) >= 0) and trail[-1] == trail[-50]  # slowed, then stopped
    assert float(ball.vx) == 0.0


def test_a_lofted_ball_falls_bounces_lower_and_then_rolls():
    ball = sim.Ball(*(jnp.float32(v) for v in (0.0, 0.0, sim.BALL_RADIUS, 10.0, 0.0, 6.0)))
    heights = []
    for _ in range(300):
        ball = sim._fly(ball, 0.02)
        heights.append(float(ball.z))
    heights = np.array(heights)
    peak = heights.max()
    # Drag makes the peak a little lower than v²/2g above the resting height.
    assert 0.8 * 6.0**2 / (2 * 9.81) < peak - sim.BALL_RADIUS < 6.0**2 / (2 * 9.81)
    grounded = np.isclose(heights, sim.BALL_RADIUS, atol=1e-6)
    touchdowns = np.flatnonzero(grounded[1:] & ~grounded[:-1])
    assert len(touchdowns) >= 2
    second_peak = heights[touchdowns[0] : touchdowns[1]].max()
    assert second_peak < 0.62**2 * peak  # restitution 0.62 on the vertical speed
    assert grounded[-1]


def _passing_drill() -> Football:
    """A passer at the centre spot with the ball, a teammate 15 m to its right and one 15 m
    towards the top touch line, a lazy opponent far away."""
    scenario = Scenario(
        "passing_drill",
        (0.5 / 54.4, 0.0),
        (P("GK", -1.0, 0.0), P("CM", 0.0, 0.0), P("CM", 15 / 55, 0.0), P("CM", 0.0, -15 / 84.96)),
        (P("GK", -1.0, 0.0, lazy=True),),
        controlled=(1, 2, 3),
    )
    return Football(scenario)


@pytest.mark.parametrize("direction, receiver", [(RIGHT, 2), (TOP, 3)])
def test_a_short_pass_reaches_the_teammate_it_targets(direction, receiver):
    def policy(t, state):
        passer = jnp.where(t == 0, direction, jnp.where(t == 1, SHORT_PASS, IDLE))
        return jnp.stack([passer, jnp.int32(IDLE), jnp.int32(IDLE)])

    records = _episodes(_passing_drill(), policy, 30, 64)
    owners = records["owner"]
    new_owner = np.array([next((o for o in row if o not in (-1, 1)), -1) for row in owners])
    assert (new_owner == receiver).mean() >= 0.75, np.bincount(new_owner + 1)
    assert not np.any(new_owner == 5 - receiver)  # never the other teammate
    # GRF: a 15 m pass is received after about 10 steps (section 9).
    arrival = np.argmax(owners == receiver, axis=1)[new_owner == receiver]
    assert 7 <= np.median(arrival) <= 16


def test_the_ball_is_a_players_only_once_he_touches_it():
    """GRF (measured with gfootball 2.10.2): at an academy start the ball lies loose
    0.6 m in front of the carrier; standing still he never gets it (30 steps), running
    onto it he has it the step after he starts."""
    env = Football("academy_empty_goal_close")

    def stand(t, state):
        return jnp.asarray([IDLE], jnp.int32)

    def run_right(t, state):
        return jnp.asarray([jnp.where(t == 0, IDLE, RIGHT)], jnp.int32)

    standing = _episodes(env, stand, 30, 4)["owner"]
    assert (standing == -1).all()
    running = _episodes(env, run_right, 10, 4)["owner"]
    assert (running[:, 0] == -1).all()
    assert (running[:, 1:] == 1).all()  # from the end of the first running step on


def test_a_standing_teammate_receives_the_short_pass_in_3_vs_1_as_often_as_in_grf():
    """GRF (reference, section 9): the carrier's short pass at the start of 3_vs_1 is
    received by a standing teammate 17 times in 20, a median of 10 steps after the
    command (9-16). GRF has no mask: the command itself plays the loose ball at the
    carrier's feet."""

    def policy(t, state):
        return jnp.stack([jnp.where(t == 1, SHORT_PASS, IDLE), jnp.int32(IDLE), jnp.int32(IDLE)])

    env = Football("academy_3_vs_1_with_keeper", mask_ball_actions=False)
    records = _episodes(env, policy, 30, 400)
    owners = records["owner"]
    carrier = 1  # the attacker at the ball
    touched = (owners != -1) & (owners != carrier)
    first = np.argmax(touched, axis=1)
    new_owner = np.where(touched.any(1), owners[np.arange(len(first)), first], -1)
    received = (new_owner >= 0) & (new_owner < env.num_left)
    assert 0.75 <= received.mean() <= 0.95, np.bincount(new_owner + 1)
    assert 9 <= np.median(first[received] - 1) <= 16  # the command is the second step


def test_the_keeper_parries_more_shots_than_it_holds_and_holds_more_from_distance():
    """GRF (benchmarks/football_fidelity.py, measured on the engine): a lone keeper stops
    every 30 m shot, holding about half, and from 11 m holds 8-12% while 21-80% of the
    tries end with the ball still loose 4 s later; close shots at a corner mostly score."""
    held, loose = {}, {}
    for distance in (11.0, 30.0):
        records = _episodes(
            _shooter(distance, keeper=True), _shoot_at_step_one(BOTTOM_RIGHT), 40, 128
        )
        reasons = _end_reasons(records)
        held[distance] = (reasons == 4).mean()  # the keeper holds it: possession changes
        loose[distance] = (reasons == 0).mean()  # nobody has it when the 40 steps end
        if distance == 11.0:
            assert (reasons == 1).mean() >= 0.5
    assert held[11.0] <= 0.1 and loose[11.0] >= 0.05
    assert held[30.0] >= 0.3 and loose[30.0] >= 0.15
    assert held[30.0] > held[11.0] + 0.25


def _ball_at_the_keeper(speed: float, num_episodes: int) -> dict:
    """A loose ball rolling at ``speed`` m/s straight at the right team's keeper, in its
    goal, from 4 m in front of it; the left team's lone striker stands far away."""
    env = _striker(f"ball_at_keeper_{speed:g}", 40.0, (P("GK", -1.0, 0.0),))
    reset = _rolling_towards(env, speed, 0.0, sim.HALF_LENGTH - 4.5, 0.0)
    idle = jnp.asarray([IDLE], jnp.int32)

    def run(key):
        state, _ = reset(key)

        def body(state, t):
            state, _ = env.step(state, idle)
            m = state.match
            return state, (m.owner, m.ball.x, m.ball.vx, m.ball.vy, m.slide[2], m.last_touch)

        _, records = jax.lax.scan(body, state, jnp.arange(12))
        return records

    keys = jax.random.split(jax.random.PRNGKey(1), num_episodes)
    owner, x, vx, vy, keeper_down, last_touch = jax.tree.map(
        np.asarray, _compile_fast(jax.vmap(run), keys)(keys)
    )
    return {"owner": owner, "x": x, "vx": vx, "vy": vy, "keeper_down": keeper_down,
            "last_touch": last_touch}  # fmt: skip


def test_a_keeper_parries_a_ball_too_fast_to_hold_and_holds_a_slow_one():
    """A parry sends the ball back off the keeper (slower, within PARRY_SPREAD of
    straight back), makes it the last to touch and puts it on the ground; a fast ball
    is parried more often than held; a slow one is always held, never parried."""
    keeper = 2
    fast = _ball_at_the_keeper(30.0, 64)
    down = fast["keeper_down"] > 0  # only a parry puts a keeper on the ground
    parried = down.any(axis=1)
    first = np.argmax(down, axis=1)
    steps = np.arange(down.shape[1])[None, :]
    held_first = (fast["owner"] == keeper) & ~(parried[:, None] & (steps >= first[:, None]))
    assert 0.2 <= parried.mean() <= 0.95  # the rest go in or are held
    assert parried.mean() > held_first.any(axis=1).mean()
    rows = np.flatnonzero(parried)
    vx, vy = fast["vx"][rows, first[rows]], fast["vy"][rows, first[rows]]
    speed = np.hypot(vx, vy)
    assert np.all(speed <= sim.PARRY_RESTITUTION * 30.0 + 1e-3)
    assert np.all(speed >= sim.PARRY_RESTITUTION * 15.0)  # rolling and flying take a little
    assert np.all(np.abs(np.arctan2(vy, -vx)) <= sim.PARRY_SPREAD + 1e-3)
    assert (fast["last_touch"][rows, first[rows]] == keeper).all()
    assert (fast["owner"][rows, first[rows]] == -1).all()
    slow = _ball_at_the_keeper(5.0, 16)
    held = slow["owner"] == keeper
    assert held.any(axis=1).all()  # (then it plays the ball on)
    before = np.arange(held.shape[1])[None, :] < np.argmax(held, axis=1)[:, None]
    assert (slow["keeper_down"][before] == 0).all()


def _lone_striker_run(covered: bool) -> dict:
    """12 steps of a lone striker, 25 m out, running at goal with the ball; ``covered``
    puts a right-team defender 8 m in front of him (between him and the goal)."""
    right = (P("GK", -1.0, 0.0),) + ((P("CB", -0.69, 0.0),) if covered else ())
    env = _striker(f"lone_striker_{covered}", 25.0, right)
    records = _episodes(env, lambda t, state: jnp.full((1,), RIGHT), 12, 1)
    return {"keeper_x": records["x"][0, :, 2], "owner": records["owner"][0]}


def test_a_keeper_comes_out_at_a_lone_striker_and_holds_its_line_when_covered():
    """GRF's goalie strategy: a keeper whose outfield teammates cannot reach the carrier's
    shooting point first comes out at him; covered, it stands 0.7 m in front of a line
    0.7 m inside the goal line (it stops within 0.5 m of where it is going)."""
    alone, covered = _lone_striker_run(False), _lone_striker_run(True)
    line = sim.HALF_LENGTH
    assert (alone["owner"] == 1).all()
    assert line - alone["keeper_x"][-1] > 4.0  # sprinting out at the striker
    assert np.all(np.diff(alone["keeper_x"]) < 0.0)
    assert (covered["owner"][:8] == 1).all()  # then the defender tackles
    assert np.all(np.abs(line - covered["keeper_x"][5:8] - 1.4) <= 0.5)


def _rolling_towards(env: Football, vx: float, vy: float, x: float, y: float):
    """Puts a loose ball at (x, y) m rolling at (vx, vy) m/s after the reset."""

    def reset(key):
        state, timestep = env.reset(key)
        ball = sim.Ball(*(jnp.float32(v) for v in (x, y, sim.BALL_RADIUS, vx, vy, 0.0)))
        return state.replace(match=state.match.replace(ball=ball)), timestep

    return reset


def test_the_ball_crossing_a_touch_line_ends_an_academy_episode():
    env = Football("academy_empty_goal")
    reset = _rolling_towards(env, 0.0, 25.0, -20.0, 20.0)
    state, _ = reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for _ in range(20):
        state, timestep = step(state, jnp.array([IDLE]))
        if timestep.last():
            break
    assert bool(timestep.last())
    assert int(timestep.extras["end_reason"]) == 3
    assert float(timestep.discount[0]) == 0.0
    assert float(state.match.ball.y) > sim.HALF_WIDTH


def _tackle_drill(end_on_possession_change: bool) -> Football:
    """An attacker at the ball and a defender in front of it, a step away (so that the
    attacker, who has to touch the ball to have it, is on it first)."""
    scenario = Scenario(
        f"tackle_drill_{end_on_possession_change}",
        (0.5 / 54.4, 0.0),
        (P("GK", -1.0, 0.0), P("CM", 0.0, 0.0)),
        (P("GK", -1.0, 0.0), P("CB", -3.0 / 55, 0.0)),
        controlled=(1,),
        end_on_possession_change=end_on_possession_change,
    )
    return Football(scenario)


def _touch_then_stand(t, state):
    """Onto the ball in the first step (it is his only once he touches it), then stop."""
    return jnp.where(t == 0, RIGHT, RELEASE_DIRECTION)[None].astype(jnp.int32)


def test_a_tackle_changes_possession_and_ends_the_episode_where_the_scenario_says():
    records = _episodes(_tackle_drill(True), _touch_then_stand, 30, 32)
    reasons = _end_reasons(records)
    assert (reasons == 4).mean() >= 0.9
    # The ball changed teams on the last step (mostly the defender's tackle; sometimes the
    # attacker winning it back after losing it on the first step).
    first = np.argmax(records["ended"], 1)
    team = np.array([0, 0, 1, 1])
    after = team[records["owner"][np.arange(32), first]]
    before = team[records["owner"][np.arange(32), first - 1]]
    assert np.all((after != before)[reasons == 4])
    assert (after[reasons == 4] == 1).mean() >= 0.8
    records = _episodes(_tackle_drill(False), _touch_then_stand, 30, 32)
    assert not records["ended"].any()
    assert (records["owner"] == 3).any(1).mean() >= 0.9  # won, and play went on


def test_a_sliding_tackle_reaches_a_ball_that_standing_cannot():
    """A lazy opponent holds the ball 1.2 m to the side of the agent's path: out of a
    standing player's reach, within a slide's."""
    scenario = Scenario(
        "slide_drill",
        (-0.5 / 54.4, 0.0),
        (P("GK", -1.0, 0.0), P("CB", -1.5 / 55, -1.2 / 84.96)),
        (P("GK", -1.0, 0.0), P("CF", 0.0, 0.0, lazy=True)),
        controlled=(1,),
    )
    env = Football(scenario)
    # The opponent has the ball from the first step; the agent slides on the third.
    slide = _end_reasons(_episodes(env, lambda t, s: jnp.where(t == 2, SLIDING, IDLE)[None], 8, 64))
    stand = _end_reasons(_episodes(env, lambda t, s: jnp.array([IDLE]), 8, 64))
    assert (stand == 4).mean() == 0.0
    assert (slide == 4).mean() >= 0.5


def test_sticky_actions_persist_until_released():
    env = Football("academy_empty_goal")

    def policy(t, state):
        action = jnp.select(
            [t == 0, t == 10, t == 20, t == 30], [RIGHT, SPRINT, DRIBBLE, RELEASE_DIRECTION], IDLE
        )
        return action[None]

    records = _episodes(env, policy, 45, 1)
    speed = records["speed"][0, :, 1]
    x = records["x"][0, :, 1]
    assert np.all(np.diff(x[:30]) > 0)  # still running right on idle steps
    assert speed[9] == pytest.approx(sim.WALK_SPEED, abs=0.05)
    # Sprint held: GRF's acceleration fades to nothing at top speed, so it is neared slowly.
    assert sim.TOP_SPEED - 0.3 < speed[19] <= sim.TOP_SPEED
    # Dribble is held too, but sprint still wins until it is released.
    assert speed[29] >= speed[19]
    assert speed[-1] == 0.0 and np.all(np.diff(x[40:]) == 0)  # released: stops


def test_sprint_release_and_dribble_set_the_speed():
    env = Football("academy_empty_goal")

    def policy(t, state):
        return jnp.select([t == 0, t == 1], [RIGHT, DRIBBLE], IDLE)[None]

    speed = _episodes(env, policy, 20, 1)["speed"][0, :, 1]
    assert speed[-1] == pytest.approx(sim.DRIBBLE_SPEED, abs=0.05)


# GRF's observation coordinates of the reference's positions (section 6): left team
# builder (x, y) -> (1.011 x, 1.016 y), right team -> (-1.011 x, -1.016 y).
START_POSITIONS = {
    "academy_3_vs_1_with_keeper": {
        "ball": (0.62, 0.0),
        "left": [(-1.011, 0.0), (0.607, 0.0), (0.708, 0.203), (0.708, -0.203)],
        "right": [(1.011, 0.0), (0.758, 0.0)],
    },
    "academy_empty_goal_close": {
        "ball": (0.77, 0.0),
        "left": [(-1.011, 0.0), (0.758, 0.0)],
        "right": [(-1.011, 0.0)],
    },
    "academy_pass_and_shoot_with_keeper": {
        "ball": (0.7, -0.28),
        "left": [(-1.011, 0.0), (0.708, 0.0), (0.708, -0.305)],
        "right": [(1.011, 0.0), (0.758, -0.305)],
    },
    "academy_counterattack_hard": {
        "ball": (0.26, -0.11),
        "right": [(1.011, 0.0), (-0.129, 0.199), (0.404, 0.065), (0.404, -0.065)],
    },
    "academy_counterattack_easy": {"right": [(1.011, 0.0), (-0.129, 0.199), (-0.404, 0.065)]},
    "academy_corner": {"ball": (0.99, 0.41), "left": [(-1.011, 0.0), (1.011, 0.427)]},
}


@pytest.mark.parametrize("name", sorted(START_POSITIONS))
def test_scenario_start_positions_match_the_reference(name):
    env = Football(name)
    _, timestep = env.reset(jax.random.PRNGKey(0))
    view = np.asarray(timestep.observation.agents_view[0])
    left = view[:22].reshape(11, 2)
    right = view[44:66].reshape(11, 2)
    expected = START_POSITIONS[name]
    if "ball" in expected:
        np.testing.assert_allclose(view[88:90], expected["ball"], atol=2e-3)
        assert view[90] == pytest.approx(sim.BALL_RADIUS)
    for block, key in ((left, "left"), (right, "right")):
        for i, position in enumerate(expected.get(key, [])):
            np.testing.assert_allclose(block[i], position, atol=2e-3, err_msg=f"{key} {i}")
    scenario = get_scenario(name)
    assert np.all(left[scenario.num_left :] == -1.0)  # padding
    assert np.all(right[len(scenario.right) :] == -1.0)


def test_simple115_marks_each_agent_as_the_active_player_and_masks_ball_actions():
    env = Football("academy_3_vs_1_with_keeper")
    state, timestep = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    # Standing, nobody has the ball: GRF's owned-team one-hot says "loose", no kicks.
    state, timestep = step(state, jnp.array([IDLE, IDLE, IDLE]))
    obs = timestep.observation
    assert obs.agents_view.shape == (3, 115) and obs.global_state.shape == (env.state_dim,)
    active = np.asarray(obs.agents_view[:, 97:108])
    np.testing.assert_array_equal(active, np.eye(11)[[1, 2, 3]])
    np.testing.assert_array_equal(obs.agents_view[:, 94:97], [[1, 0, 0]] * 3)
    assert not np.asarray(obs.action_mask)[:, SHOT].any()
    # One step onto the ball and it is the carrier's.
    state, timestep = step(state, jnp.array([RIGHT, IDLE, IDLE]))
    obs = timestep.observation
    np.testing.assert_array_equal(obs.agents_view[:, 94:97], [[0, 1, 0]] * 3)  # left has it
    mask = np.asarray(obs.action_mask)
    assert int(state.match.owner) == 1
    np.testing.assert_array_equal(mask[:, SHOT], [True, False, False])
    np.testing.assert_array_equal(mask[:, SHORT_PASS], [True, False, False])
    np.testing.assert_array_equal(mask[:, SLIDING], [False, True, True])
    assert np.all(mask[:, :9]) and np.all(mask[:, 13:16])
    unmasked = Football("academy_3_vs_1_with_keeper", mask_ball_actions=False)
    _, timestep = unmasked.reset(jax.random.PRNGKey(0))
    assert np.all(timestep.observation.action_mask)


def test_egocentric_observation_is_relative_to_each_agent():
    # Fixed control: each agent sees from the scenario's player (GRF's hand-out at reset
    # is tests/test_football_control.py's).
    env = Football("academy_3_vs_1_with_keeper", representation="egocentric", control="fixed")
    state, timestep = env.reset(jax.random.PRNGKey(0))
    view = np.asarray(timestep.observation.agents_view)
    assert view.shape == (3, env.obs_dim)
    m = state.match
    for agent, player in enumerate(env.controlled):
        ball_dx = (float(m.ball.x) - float(m.x[player])) / sim.HALF_LENGTH
        assert view[agent, 6] == pytest.approx(ball_dx, abs=1e-5)
    # Agent 1's first "other" is player 0 (the keeper) at the same offsets as seen by agent 2.
    others = view[:, 16:20]
    np.testing.assert_allclose(
        others[0, :2] * [sim.HALF_LENGTH, sim.HALF_WIDTH] + [float(m.x[1]), float(m.y[1])],
        [float(m.x[0]), float(m.y[0])],
        atol=1e-4,
    )


def test_full_game_restarts_with_throw_ins_goal_kicks_and_kick_offs():
    env = Football("5_vs_5")
    step = jax.jit(env.step)
    idle = jnp.full((4,), IDLE)
    # Over the touch line: a throw-in for the team that did not touch it last.
    state, _ = _rolling_towards(env, 0.0, 30.0, 10.0, 30.0)(jax.random.PRNGKey(0))
    state = state.replace(match=state.match.replace(last_touch=jnp.int32(1)))
    for _ in range(5):
        state, timestep = step(state, idle)
        if int(timestep.observation.global_state[88 + 9 + 5]) == 1:
            break
    assert not bool(timestep.last())
    assert int(state.match.owner) >= 5  # the right team throws in
    assert abs(float(state.match.ball.y)) < sim.HALF_WIDTH
    # A goal: the score counts it and the conceding team kicks off from the centre.
    state, _ = _rolling_towards(env, 30.0, 0.0, 48.0, 0.0)(jax.random.PRNGKey(1))
    keeper_away = state.match.x.at[5].set(30.0), state.match.y.at[5].set(30.0)
    state = state.replace(
        match=state.match.replace(x=keeper_away[0], y=keeper_away[1], last_touch=jnp.int32(2))
    )
    for _ in range(5):
        state, timestep = step(state, idle)
        if float(timestep.reward[0]) != 0.0:
            break
    assert float(timestep.reward[0]) >= 1.0 and not bool(timestep.last())
    assert int(timestep.extras["scorer"]) == 2
    np.testing.assert_array_equal(state.match.score, [1, 0])
    assert float(state.match.ball.x) == 0.0 and float(state.match.ball.y) == 0.0
    assert int(state.match.game_mode) == sim.KICK_OFF
    assert np.all(np.asarray(state.match.x)[5:] >= 0.0)  # everybody back in their half


def _where_ended(ended: np.ndarray, new, old):
    return np.where(ended.reshape((-1,) + (1,) * (np.ndim(old) - 1)), new, old)


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_stays_finite_and_on_the_pitch_under_random_play(name):
    env = Football(name)
    num_envs = 8
    reset = jax.jit(jax.vmap(env.reset))
    rng = np.random.default_rng(0)
    state, timestep = reset(jax.random.split(jax.random.PRNGKey(0), num_envs))
    step = _compile_fast(
        jax.vmap(env.step), state, jnp.zeros(timestep.observation.action_mask.shape[:2], jnp.int32)
    )
    for t in range(150):
        match = jax.tree.map(np.asarray, state.match)
        assert np.all(np.abs(match.x) <= sim.HALF_LENGTH + sim.PITCH_RIM + 1e-3)
        assert np.all(np.abs(match.y) <= sim.HALF_WIDTH + sim.PITCH_RIM + 1e-3)
        # The ball is never out of play at the start of a step: leaving ends the episode
        # (academy) or restarts play (full game).
        assert np.all(np.abs(match.ball.x) <= sim.GOAL_LINE + 1e-3)
        assert np.all(np.abs(match.ball.y) <= sim.TOUCH_LINE + 1e-3)
        mask = np.asarray(timestep.observation.action_mask)
        actions = np.array([[rng.choice(np.flatnonzero(row)) for row in agent] for agent in mask])
        state, timestep = step(state, jnp.asarray(actions))
        for leaf in jax.tree.leaves(timestep.observation):
            assert np.all(np.isfinite(np.asarray(leaf)))
        ended = np.asarray(timestep.last())
        if ended.any():
            fresh, _ = reset(jax.random.split(jax.random.PRNGKey(t + 1), num_envs))
            state = jax.tree.map(partial(_where_ended, ended), fresh, state)


def test_bad_settings_fail_in_one_line():
    with pytest.raises(ValueError, match="representation must be one of simple115, egocentric"):
        Football("academy_empty_goal", representation="pixels")
    with pytest.raises(ValueError, match="rewards must be one of scoring, scoring,checkpoints"):
        Football("academy_empty_goal", rewards="goals")
    with pytest.raises(ValueError, match="difficulty must lie in"):
        Football("academy_empty_goal", difficulty=2.0)
    with pytest.raises(ValueError, match="unknown env 'football/academy_nothing'"):
        marl.make_env("football/academy_nothing")
    with pytest.raises(ValueError, match="controlled"):
        Scenario("bad", (0, 0), (P("GK", -1, 0),), (P("GK", -1, 0),), controlled=(3,))
    with pytest.raises(ValueError, match="unknown role 'XX'"):
        Scenario("bad", (0, 0), (P("XX", -1, 0),), (P("GK", -1, 0),), controlled=(0,))


def test_a_pass_back_behind_the_carrier_is_weaker_as_in_grf():
    """GRF (measured with gfootball 2.10.2, empty_goal_close): a carrier running at goal
    who passes to his keeper 97 m behind him sends the ball off at about 15.5 m/s, and it
    has gone 27-29 m 30 steps after the command; the power law alone would send it at
    the 30 m/s cap, 50 m."""
    env = Football("academy_empty_goal_close")

    def back_pass(t, state):
        action = jnp.select([t == 0, t == 1, t == 2], [IDLE, RIGHT, SHORT_PASS], RELEASE_DIRECTION)
        return action[None].astype(jnp.int32)

    records = _episodes(env, back_pass, 33, 8)
    ball_x = records["ball_x"]  # after each step; the command is step 2
    assert (records["owner"][:, 1] == 1).all()
    speed = np.abs(np.diff(ball_x, axis=1)) / 0.1
    release_speed = speed[:, 2:12].max(axis=1)
    np.testing.assert_allclose(release_speed, 15.5, atol=2.5)
    travelled = ball_x[:, 1] - ball_x[:, 32]  # backwards, 30 steps after the command
    assert np.all((travelled > 23.0) & (travelled < 34.0)), travelled


def test_shots_and_long_passes_leave_as_in_grf():
    """GRF (measured with gfootball 2.10.2): a carrier running onto the ball in
    empty_goal_close shoots at 30.3 m/s on average (25.1-32 over 10); a long pass to a
    standing teammate in 3_vs_1 is received 9 times in 10, aimed at him."""
    env = Football("academy_empty_goal_close")

    def shoot(t, state):
        action = jnp.select([t == 0, t == 1], [IDLE, RIGHT], jnp.where(t == 2, SHOT, IDLE))
        return action[None].astype(jnp.int32)

    records = _episodes(env, shoot, 12, 32)
    speed = np.abs(np.diff(records["ball_x"], axis=1)) / 0.1
    release = speed[:, 2:8].max(axis=1)
    assert 26.0 <= release.mean() <= 32.0, release.mean()
    three = Football("academy_3_vs_1_with_keeper")

    def long_pass(t, state):
        passer = jnp.select(
            [t == 0, t == 1], [IDLE, RIGHT], jnp.where(t == 2, LONG_PASS, RELEASE_DIRECTION)
        )
        return jnp.stack([passer, jnp.int32(IDLE), jnp.int32(IDLE)]).astype(jnp.int32)

    owners = _episodes(three, long_pass, 30, 64)["owner"]
    received = np.array([any(o in (2, 3) for o in row) for row in owners])
    assert received.mean() >= 0.6, received.mean()
