"""A 2-D football simulator in JAX with Google Research Football's constants.

Everything is in metres and seconds, in the observation's orientation (``+x`` towards
the right team's goal, ``+y`` towards the bottom touch line); conversion to GRF's
anisotropic observation units happens only in the environment's interface. The
constants and the rules they come from are in the shared reference
(``reference/football.md``); the section numbers below point there.

One agent step is 0.1 s, simulated in ``num_substeps`` ticks (5 by default, 20 ms
each; GRF's engine uses 10 ms). Per tick:

1. **players** (point masses, section 3) turn towards their wanted direction at most
   at GRF's cornering rate, which falls with speed above 1.8 m/s (a larger wanted
   turn brakes them instead), accelerate at up to 11 m/s² falling to 0 at top speed
   (7.7 m/s), and brake at 15 m/s²; a sliding player lunges and then lies down;
2. **the ball** (section 4) follows its owner half a metre in front of it; a loose
   ball flies under gravity and quadratic air drag, bounces with GRF's restitution
   and, on the ground, rolls with drag plus GRF's quadratic and constant friction,
   integrated exactly (``dv/dt = -(0.055 v² + 1.6)``);
3. **the lines**: a ball crossing a goal line between the posts and under the bar is
   a goal, anywhere else it is out of play (the event is latched for the step);
4. **possession** (section 5): a loose ball is controlled by a player whose reach
   (1 m around a point just ahead of it, stretching to 1.5 m with a falling chance;
   keepers dive to 1.8 m and up to the bar) it is in, with certainty below 6 m/s of
   relative speed and with a chance falling to 0 at 60 m/s (keepers 40 m/s) above; a
   keeper gets to more balls than it holds and parries the rest back off it, going
   down; an owned ball is won by an opponent within 1 m by a tackle, a sliding one
   more likely than a standing one.

Kicks are commands to the ball's owner that fire after GRF's measured wind-up
(section 9: 5 steps for passes, 4 for shots) if it still owns the ball: passes pick
their receiver and power automatically as GRF does for controlled players (section
5), shots aim at the goal with GRF's power and a random mix of ideal and poor
execution; an agent who presses shot again charges it, as holding GRF's button does
(up to 5 steps, harder). Scripted players (keepers, defenders, lazy players and the opponents'
attack) come from :func:`scripted_commands`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.football.scenarios import (
    HALF_LENGTH,
    HALF_WIDTH,
    MINDSET,
    Player,
    Scenario,
    ball_metres,
    to_metres,
)
from marl.types import Array

STEP_SECONDS = 0.1

# Players (section 3).
DRIBBLE_SPEED = 3.5
WALK_SPEED = 5.0
TOP_SPEED = 7.7  # sprint: 8 m/s x (0.9 + 0.1 x a typical velocity stat)
FREE_TURN_SPEED = 1.8  # below this a player turns at will
ACCEL_POWER = 11.0  # m/s² from standstill, falling to 0 at top speed
BRAKE = 15.0  # m/s²: GRF's 0.3 m/s per 10 ms velocity change x the default agility 0.5
TURN_RATE = math.pi  # rad/s, divided by (v / 8 + 0.01) and scaled by agility
OFF_BALL_TURN = 1.5  # GRF turns 1.5x faster without the ball
DEFAULT_STAT = 0.5  # GRF's default agility and acceleration stats
PITCH_RIM = 3.0  # how far players may run beyond the lines
SLIDE_STEPS = 8  # a sliding tackle: 3 steps of lunge, then 5 on the ground
SLIDE_LUNGE_STEPS = 3
SLIDE_SPEED = 6.0
SLIDE_DECEL = 6.0

# Ball (section 4).
GRAVITY = 9.81
DRAG = 0.015
FRICTION = 0.04
LINEAR_FRICTION = 1.6
BOUNCE = 0.62
LINEAR_BOUNCE = 0.06
BALL_RADIUS = 0.11
ROLL_VZ = 0.5  # a ground ball rising slower than this rolls instead of hopping
GOAL_HALF_WIDTH = 3.7
GOAL_HEIGHT = 2.5
GOAL_LINE = HALF_LENGTH + 0.06 + BALL_RADIUS  # the plane the ball's centre crosses
TOUCH_LINE = HALF_WIDTH + 0.06 + BALL_RADIUS
DRIBBLE_OFFSET = 0.5  # an owned ball sits this far in front of its owner

# Possession and tackles (section 5).
REACH = 1.0
RECEIVE_REACH = 1.5  # stretching to trap a loose ball; the chance falls off beyond REACH
KEEPER_REACH = 1.8  # diving; likewise
CONTROL_HEIGHT = 0.5
KEEPER_HEIGHT = GOAL_HEIGHT
EASY_CONTROL_SPEED = 6.0  # relative speed below which a ball in reach is always controlled
# Above it, never. With RECEIVE_REACH, set so that a standing teammate receives GRF's short
# pass in 3_vs_1 as often as in the engine (section 9: 17 of 20).
MAX_CONTROL_SPEED = 60.0
# GRF's keeper stops far more than it holds (measured on the engine, 2.10.2, with
# benchmarks/football_fidelity.py: shots at a lone keeper from 11-22 m end with the ball
# loose 4 s later in 21-80% of tries and held in 0-18%; traced, a 35 m/s shot it reaches
# comes back off it at 13-23 m/s, low, near straight back). Ours: in reach, a keeper gets
# to the ball with the control chance of any loose ball but at least at KEEPER_SAVE_RATE
# per step (x the stretch); it holds it with the control chance's share (surely below
# EASY_CONTROL_SPEED, never above KEEPER_MAX_CONTROL_SPEED) and parries the rest. The
# rate is fitted to that benchmark's ten shots: mean goal rate .38 (GRF .38), held .15
# (.16), loose at the end .29 (.41).
KEEPER_MAX_CONTROL_SPEED = 40.0
KEEPER_SAVE_RATE = 0.75
PARRY_RESTITUTION = 0.55  # the parried ball's speed over the incoming one
PARRY_SPREAD = 0.35  # rad either side of straight back
PARRY_LIFT = 5.0  # m/s, the largest upward speed a parry gives
KEEPER_DOWN_STEPS = 5  # a parrying keeper is on the ground (GRF's dive), as after a slide
KICK_LOCKOUT = 0.3  # seconds before a kicker can touch its own kick again
# GRF gives a player the ball only once he touches it, and a standing player does not
# touch a ball at rest by his feet (the engine, measured: an idle carrier 0.6 m from the
# ball at an academy start never gets it): a loose ball is controlled by an agent's
# player only when it and he move relative to each other at least this fast (m/s), or
# when he is told to kick it (_kick). The engine's own players walk onto the ball, so
# the rule is not applied to them (their lazy ones, in drills, take it as before).
TOUCH_SPEED = 0.5
TACKLE_RATE = 3.0  # per second in reach of an owned ball (standing), x the tackling stat
SLIDE_TACKLE_RATE = 12.0
SLIDE_REACH = 1.6

# Kicks (sections 5 and 9).
SHORT_PASS, LONG_PASS, HIGH_PASS, SHOT = 1, 2, 3, 4
KICK_DELAY = (0, 5, 5, 5, 4)  # agent steps from the command to the ball leaving
PASS_SPEED_SCALE = 36.0
PASS_CAP = 30.0
HIGH_PASS_CAP = 42.0
PASS_ANGLE_NOISE = 0.05  # rad, uniform
# GRF scales a kick by its animation's power (the reference, section 5). Measured on the
# engine (2.10.2): a short or long pass straight back to empty_goal_close's keeper, 97 m
# away, by a carrier running at goal leaves at about 15.5 m/s where the power law and cap
# give 30; a pass 72 degrees off the carrier's facing (3_vs_1's short pass) loses
# nothing. Fitted to those two: no loss up to 90 degrees, then a linear loss reaching
# this fraction straight behind.
BACK_PASS_LOSS = 0.49
# GRF charges a shot while its button is held (the reference, section 5): the gauge grows
# 10 ms per engine tick (100 ms per agent step), the shot fires when the button is let go
# or after 500 ms, with desired power clip(((held ms - 60) / 940) ** 0.6, 0.01, 1), so a
# one-step shot has 0.15 and one held 5 steps 0.63. Traced in GRF, a striker who keeps
# pressing shot while running with the ball shoots 8-9 steps after his first press, at
# about 35 m/s (30 for a one-step shot).
SHOT_CHARGE_STEPS = 5
SHOT_CHARGE_MS_PER_STEP = 100.0
# Measured on the engine (gfootball 2.10.2, empty_goal_close): a standing carrier's shot
# leaves at 26.6 m/s on average, one running onto the ball at 30.3; fitted with a body
# factor and, as for passes, half the kicker's run along the shot added.
SHOT_POWER_FACTOR = 0.835
SHOT_RUN_SHARE = 0.5
SHOT_AIM = 0.9 * GOAL_HALF_WIDTH
SHOT_ANGLE_ERROR = 0.25  # rad, the worst execution's direction error
SHOT_EXTRA_HEIGHT = 0.7
SHOT_POWER_LOSS = 0.5
SHOT_TECHNIQUE = 0.7 * DEFAULT_STAT  # the blend exponent u ** (0.7 x technical stat)

# Scripted players (section 7).
HUNT_BASE = 10.0  # m; + 10 x (1 - mindset), x (0.3 + 0.7 difficulty)
SHOOT_DISTANCE = 20.0  # scripted carriers shoot from here
PRESSED_DISTANCE = 2.5  # scripted carriers pass when an opponent is this close
MARK_DISTANCE = 2.0  # markers stand this far goal-side of their man

# Number of uniforms a step draws: per tick one for control and one for tackles per
# player and two for a parry, and five for the kick.
PARRY_UNIFORMS = 2
KICK_UNIFORMS = 5


class Statics(NamedTuple):
    """Per-player constants of a scenario (NumPy), left team first."""

    team: np.ndarray  # 0 left, 1 right
    keeper: np.ndarray
    lazy: np.ndarray
    mindset: np.ndarray
    difficulty: np.ndarray  # the player's team's
    stat: np.ndarray  # GRF scales every stat by (0.3 + 0.7 difficulty)
    attack: np.ndarray  # +1 left (attacks +x), -1 right
    home_x: np.ndarray
    home_y: np.ndarray
    reach: np.ndarray  # for tackles
    control_reach: np.ndarray  # for a loose ball
    control_height: np.ndarray
    max_control_speed: np.ndarray


def statics(scenario: Scenario, right_difficulty: float | None = None) -> Statics:
    """The per-player constants of ``scenario`` (optionally another opponent difficulty)."""
    left, right = scenario.left, scenario.right
    num_left = len(left)
    players: tuple[Player, ...] = left + right
    team = np.array([0] * num_left + [1] * len(right), np.int32)
    keeper = np.array([p.role == "GK" for p in players])
    difficulties = (
        scenario.left_difficulty,
        scenario.right_difficulty if right_difficulty is None else right_difficulty,
    )
    difficulty = np.array([difficulties[t] for t in team], np.float32)
    left_x, left_y = to_metres(left, right=False)
    right_x, right_y = to_metres(right, right=True)
    return Statics(
        team=team,
        keeper=keeper,
        lazy=np.array([p.lazy for p in players]),
        mindset=np.array([MINDSET[p.role] for p in players], np.float32),
        difficulty=difficulty,
        stat=(0.3 + 0.7 * difficulty).astype(np.float32),
        attack=np.where(team == 0, 1.0, -1.0).astype(np.float32),
        home_x=np.concatenate([left_x, right_x]),
        home_y=np.concatenate([left_y, right_y]),
        reach=np.where(keeper, KEEPER_REACH, REACH).astype(np.float32),
        control_reach=np.where(keeper, KEEPER_REACH, RECEIVE_REACH).astype(np.float32),
        control_height=np.where(keeper, KEEPER_HEIGHT, CONTROL_HEIGHT).astype(np.float32),
        max_control_speed=np.where(keeper, KEEPER_MAX_CONTROL_SPEED, MAX_CONTROL_SPEED).astype(
            np.float32
        ),
    )


@struct.dataclass
class Ball:
    x: Array
    y: Array
    z: Array
    vx: Array
    vy: Array
    vz: Array


@struct.dataclass
class Match:
    """The state of play. Player arrays are ``[P]``, left team first."""

    x: Array
    y: Array
    vx: Array
    vy: Array
    heading: Array  # radians, 0 towards +x
    slide: Array  # int32 steps left of a sliding tackle (lunge, then on the ground)
    ball: Ball
    owner: Array  # int32 player with the ball, -1 when it is loose
    last_touch: Array  # int32 player who last touched the ball (-1 none yet)
    last_owner_team: Array  # int32 team seen with the ball at the end of a step (-1 none yet)
    lockout: Array  # seconds before ``last_touch`` may touch its own kick
    kick_kind: Array  # int32 pending kick (0 none)
    kick_timer: Array  # int32 steps until it fires
    kick_player: Array  # int32
    kick_aim_x: Array  # the kicker's input direction (a unit vector, or 0 0)
    kick_aim_y: Array
    kick_charge: Array  # int32 steps the kicker has held the shot command (agents only)
    score: Array  # int32 [2] goals of the left and right team
    game_mode: Array  # int32 GRF game mode shown this step (0 normal, 1 kick-off, ...)


class Commands(NamedTuple):
    """What each player wants this step, ``[P]`` each."""

    speed: Array  # wanted speed, m/s
    angle: Array  # wanted direction, radians
    kick: Array  # int32: 0, SHORT_PASS, LONG_PASS, HIGH_PASS or SHOT
    aim_x: Array  # input direction for kicks (unit vector or 0 0)
    aim_y: Array
    slide: Array  # bool: start a sliding tackle
    driven: Array  # bool: the player is driven by an agent this step (else the AI plays it)


class Events(NamedTuple):
    """What happened during a step."""

    goal: Array  # int32: -1 none, 0 the left team scored, 1 the right team scored
    out: Array  # bool: the ball left the pitch without a goal
    out_x: Array  # where it crossed the line
    out_y: Array
    out_over_goal_line: Array  # bool: over a goal line (else a touch line)
    last_touch_team: Array  # int32 team that touched the ball last before the event
    possession_change: Array  # bool: another team has the ball than at the last step's end
    scorer: Array  # int32 player who last touched the ball before the goal (-1 none)
    pass_receiver: Array  # int32 teammate a pass played this step was aimed at (-1 none)


def initial_match(scenario: Scenario, s: Statics) -> Match:
    """The scenario's kick-off: players at their places facing the opponents' goal."""
    ball_x, ball_y = ball_metres(scenario)
    num_players = s.team.shape[0]
    zeros = jnp.zeros((num_players,), jnp.float32)
    return Match(
        x=jnp.asarray(s.home_x),
        y=jnp.asarray(s.home_y),
        vx=zeros,
        vy=zeros,
        heading=jnp.asarray(np.where(s.team == 0, 0.0, np.pi), jnp.float32),
        slide=jnp.zeros((num_players,), jnp.int32),
        ball=Ball(
            *(jnp.float32(v) for v in (ball_x, ball_y, BALL_RADIUS, 0.0, 0.0, 0.0)),
        ),
        owner=jnp.int32(-1),
        last_touch=jnp.int32(-1),
        last_owner_team=jnp.int32(-1),
        lockout=jnp.float32(0.0),
        kick_kind=jnp.int32(0),
        kick_timer=jnp.int32(0),
        kick_player=jnp.int32(-1),
        kick_aim_x=jnp.float32(0.0),
        kick_aim_y=jnp.float32(0.0),
        kick_charge=jnp.int32(0),
        score=jnp.zeros((2,), jnp.int32),
        game_mode=jnp.int32(0),
    )


def owner_team(m: Match, s: Statics) -> Array:
    """The team (0 left, 1 right) of the player with the ball; -1 when it is loose."""
    return jnp.where(m.owner >= 0, jnp.asarray(s.team)[jnp.maximum(m.owner, 0)], -1)


def wrap(angle: Array) -> Array:
    """An angle in ``[-pi, pi]``: ``angle`` less the nearest whole number of turns.

    Arithmetic rather than ``arctan2(sin, cos)``: three transcendental functions per
    player and tick were about a fifth of a football step on XLA:CPU."""
    return angle - (2.0 * math.pi) * jnp.round(angle / (2.0 * math.pi))


def rolling(speed: Array, seconds: float | Array) -> tuple[Array, Array]:
    """A ground ball's speed and distance after ``seconds`` of rolling from ``speed``:
    the exact solution of ``dv/dt = -(a v² + b)`` with ``a`` drag plus quadratic
    friction and ``b`` the constant friction (it stops after ``atan(v sqrt(a/b)) /
    sqrt(ab)`` seconds)."""
    a, b = DRAG + FRICTION, LINEAR_FRICTION
    root = math.sqrt(a * b)
    phase = jnp.arctan(speed * math.sqrt(a / b))
    later = jnp.maximum(phase - root * seconds, 0.0)
    new_speed = math.sqrt(b / a) * jnp.tan(later)
    distance = jnp.log(jnp.cos(later) / jnp.cos(phase)) / a
    return new_speed, distance


def stopping_distance(speed: float) -> float:
    """How far a ball rolling at ``speed`` m/s travels before it stops."""
    a, b = DRAG + FRICTION, LINEAR_FRICTION
    return math.log(1.0 + a * speed * speed / b) / (2.0 * a)


# GRF's possession bookkeeping (``Player::UpdatePossessionStats``): the ball is predicted
# 3 s ahead, a player can play it below 1.5 m, and his time to a point is its distance
# from where his movement takes him in 0.2 s at 0.75 of his top speed.
PREDICTION_SECONDS = 3.0
PLAYABLE_HEIGHT = 1.5
PREDICTION_STEPS = round(PREDICTION_SECONDS / STEP_SECONDS)


def time_to_ball(m: Match) -> Array:
    """Each player's time (seconds) to get to the ball, ``[P]``, as GRF's possession
    logic counts it: the first moment on the ball's predicted path (rolling, or flying
    low enough to play) the player can be at, else the time to where it will be in
    3 s; zero for the player with the ball."""
    times = STEP_SECONDS * jnp.arange(1, PREDICTION_STEPS + 1, dtype=jnp.float32)
    ball = m.ball
    speed = jnp.sqrt(ball.vx * ball.vx + ball.vy * ball.vy)
    _, rolled = rolling(speed, times)
    loose = m.owner < 0
    unit_x = jnp.where(speed > 1e-6, ball.vx / jnp.maximum(speed, 1e-6), 0.0)
    unit_y = jnp.where(speed > 1e-6, ball.vy / jnp.maximum(speed, 1e-6), 0.0)
    ball_x = jnp.where(loose, ball.x + unit_x * rolled, ball.x)
    ball_y = jnp.where(loose, ball.y + unit_y * rolled, ball.y)
    height = jnp.maximum(ball.z + ball.vz * times - 0.5 * GRAVITY * times * times, 0.0)
    ball_z = jnp.where(loose, height, 0.0)
    from_x, from_y = m.x + 0.2 * m.vx, m.y + 0.2 * m.vy
    gap = jnp.sqrt((ball_x[:, None] - from_x) ** 2 + (ball_y[:, None] - from_y) ** 2)
    needed = gap / (0.75 * TOP_SPEED)  # [T, P]
    reachable = (needed <= times[:, None]) & (ball_z[:, None] < PLAYABLE_HEIGHT)
    first = times[jnp.argmax(reachable, axis=0)]
    later = jnp.maximum(PREDICTION_SECONDS, needed[-1])
    found = jnp.where(jnp.any(reachable, axis=0), first, later)
    return jnp.where(jnp.arange(m.x.shape[0]) == m.owner, 0.0, found)


def _move_players(m: Match, c: Commands, s: Statics, dt: float) -> Match:
    speed = jnp.sqrt(m.vx * m.vx + m.vy * m.vy)
    has_ball = jnp.arange(s.team.shape[0]) == m.owner
    agility = 0.7 + 0.3 * DEFAULT_STAT * s.stat
    turn_cap = (
        TURN_RATE * agility * jnp.where(has_ball, 1.0, OFF_BALL_TURN) / (speed / 8.0 + 0.01) * dt
    )
    turn_cap = jnp.where(speed > FREE_TURN_SPEED, turn_cap, math.pi)
    wanted_turn = wrap(c.angle - m.heading)
    moving = c.speed > 0.0
    turn = jnp.clip(wanted_turn, -turn_cap, turn_cap)
    heading = jnp.where(moving, m.heading + turn, m.heading)
    blocked = moving & (jnp.abs(wanted_turn) > turn_cap)
    top = TOP_SPEED
    tiredness = jnp.clip((speed - FREE_TURN_SPEED) / (top - FREE_TURN_SPEED), 0.0, 1.0) ** 1.8
    accel = ACCEL_POWER * (1.0 - tiredness) * (0.7 + 0.3 * DEFAULT_STAT * s.stat)
    target = jnp.where(blocked, 0.0, jnp.minimum(c.speed, top))
    new_speed = jnp.where(
        speed < target,
        jnp.minimum(speed + accel * dt, target),
        jnp.maximum(speed - BRAKE * dt, target),
    )
    # A sliding player lunges along its heading, then lies on the ground.
    lunging = m.slide > SLIDE_STEPS - SLIDE_LUNGE_STEPS
    down = (m.slide > 0) & ~lunging
    new_speed = jnp.where(lunging, jnp.maximum(speed - SLIDE_DECEL * dt, 0.0), new_speed)
    new_speed = jnp.where(down, 0.0, new_speed)
    # Wrapped before its cosine and sine, which the tick's contest then shares.
    heading = wrap(jnp.where(m.slide > 0, m.heading, heading))
    vx = new_speed * jnp.cos(heading)
    vy = new_speed * jnp.sin(heading)
    x = jnp.clip(m.x + vx * dt, -HALF_LENGTH - PITCH_RIM, HALF_LENGTH + PITCH_RIM)
    y = jnp.clip(m.y + vy * dt, -HALF_WIDTH - PITCH_RIM, HALF_WIDTH + PITCH_RIM)
    return m.replace(x=x, y=y, vx=vx, vy=vy, heading=heading)


def _fly(ball: Ball, dt: float) -> Ball:
    """One tick of a loose ball: in the air by Euler steps, on the ground exactly."""
    on_ground = (ball.z <= BALL_RADIUS + 1e-3) & (ball.vz <= ROLL_VZ)
    # In the air: gravity, then drag on the 3-D speed, then a bounce off the ground.
    vz = ball.vz - GRAVITY * dt
    speed3 = jnp.sqrt(ball.vx * ball.vx + ball.vy * ball.vy + vz * vz)
    keep = jnp.maximum(1.0 - DRAG * speed3 * dt, 0.0)
    air_vx, air_vy, vz = ball.vx * keep, ball.vy * keep, vz * keep
    z = ball.z + vz * dt
    bounced = (z < BALL_RADIUS) & (vz < 0.0)
    vz = jnp.where(bounced, jnp.maximum(-BOUNCE * vz - LINEAR_BOUNCE, 0.0), vz)
    z = jnp.maximum(z, BALL_RADIUS)
    # On the ground: the exact rolling solution over dt.
    horizontal = jnp.sqrt(ball.vx * ball.vx + ball.vy * ball.vy)
    roll_speed, roll_distance = rolling(horizontal, dt)
    safe = jnp.maximum(horizontal, 1e-6)
    ux, uy = ball.vx / safe, ball.vy / safe
    return Ball(
        x=jnp.where(on_ground, ball.x + ux * roll_distance, ball.x + air_vx * dt),
        y=jnp.where(on_ground, ball.y + uy * roll_distance, ball.y + air_vy * dt),
        z=jnp.where(on_ground, BALL_RADIUS, z),
        vx=jnp.where(on_ground, ux * roll_speed, air_vx),
        vy=jnp.where(on_ground, uy * roll_speed, air_vy),
        vz=jnp.where(on_ground, 0.0, vz),
    )


def _where(condition: Array, if_true: Ball, if_false: Ball) -> Ball:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), if_true, if_false)


def _follow_owner(m: Match) -> Ball:
    owner = jnp.maximum(m.owner, 0)
    heading = m.heading[owner]
    return Ball(
        x=m.x[owner] + DRIBBLE_OFFSET * jnp.cos(heading),
        y=m.y[owner] + DRIBBLE_OFFSET * jnp.sin(heading),
        z=jnp.float32(BALL_RADIUS),
        vx=m.vx[owner],
        vy=m.vy[owner],
        vz=jnp.float32(0.0),
    )


def _lines(before: Ball, after: Ball) -> tuple[Array, Array, Array, Array, Array]:
    """Goal (-1 none, 0 into the right goal, 1 into the left one) and out of play."""
    crossing_right = (before.x <= GOAL_LINE) & (after.x > GOAL_LINE)
    crossing_left = (before.x >= -GOAL_LINE) & (after.x < -GOAL_LINE)
    line = jnp.where(crossing_right, GOAL_LINE, -GOAL_LINE)
    fraction = jnp.clip((line - before.x) / jnp.where(after.x == before.x, 1.0, after.x - before.x),
                        0.0, 1.0)  # fmt: skip
    y_at_line = before.y + fraction * (after.y - before.y)
    z_at_line = before.z + fraction * (after.z - before.z)
    between_posts = (jnp.abs(y_at_line) < GOAL_HALF_WIDTH) & (z_at_line <= GOAL_HEIGHT)
    goal = jnp.where(
        crossing_right & between_posts, 0, jnp.where(crossing_left & between_posts, 1, -1)
    )
    over_goal_line = jnp.abs(after.x) > GOAL_LINE
    out = (goal < 0) & (over_goal_line | (jnp.abs(after.y) > TOUCH_LINE))
    out_x = jnp.clip(after.x, -GOAL_LINE, GOAL_LINE)
    out_y = jnp.clip(after.y, -TOUCH_LINE, TOUCH_LINE)
    return goal.astype(jnp.int32), out, out_x, out_y, over_goal_line


def _chance(rate_per_step: Array, dt: float) -> Array:
    """The per-tick chance of something that happens with ``rate_per_step`` per 0.1 s."""
    return 1.0 - (1.0 - jnp.clip(rate_per_step, 0.0, 1.0)) ** (dt / STEP_SECONDS)


def _contest(m: Match, s: Statics, driven: Array, u_control: Array, u_tackle: Array,
             dt: float) -> tuple[Array, Array]:  # fmt: skip
    """The new owner after one tick's contest for the ball (may be unchanged), and the
    keeper who parries a loose ball this tick (-1 none)."""
    num_players = s.team.shape[0]
    index = jnp.arange(num_players)
    ball = m.ball
    point_x = m.x + 0.05 * m.vx + 0.1 * jnp.cos(m.heading)
    point_y = m.y + 0.05 * m.vy + 0.1 * jnp.sin(m.heading)
    dx, dy = ball.x - point_x, ball.y - point_y
    distance = jnp.sqrt(dx * dx + dy * dy)
    lunging = m.slide > SLIDE_STEPS - SLIDE_LUNGE_STEPS
    on_feet = (m.slide == 0) | lunging
    locked = (index == m.last_touch) & (m.lockout > 0.0)
    # A loose ball: controlled in reach, surely when slow relative to the player.
    rel_vx, rel_vy = ball.vx - m.vx, ball.vy - m.vy
    relative = jnp.sqrt(rel_vx * rel_vx + rel_vy * rel_vy + ball.vz * ball.vz)
    per_step = (s.max_control_speed - relative) / (s.max_control_speed - EASY_CONTROL_SPEED)

    def with_slide(reach: Array) -> Array:
        return jnp.where(lunging, jnp.maximum(reach, SLIDE_REACH), reach)

    reach = with_slide(s.control_reach)
    can_touch = (ball.z <= s.control_height) & on_feet & ~locked
    can_touch = can_touch & (distance <= reach) & ((relative >= TOUCH_SPEED) | ~driven)
    # A stretch or a keeper's dive beyond a standing player's reach holds the ball less surely.
    stretch = jnp.clip((reach - distance) / jnp.maximum(reach - REACH, 1e-3), 0.0, 1.0)
    hold = jnp.clip(per_step, 0.0, 1.0)
    touch = jnp.where(s.keeper, jnp.maximum(hold, KEEPER_SAVE_RATE), hold) * stretch
    touches = can_touch & (u_control < _chance(touch, dt))
    # Keepers hold only part of what they get to; the second uniform (tackles need an
    # owned ball, so it is free here) splits a keeper's touch into a catch or a parry.
    catches = touches & (~s.keeper | (u_tackle < hold))
    # An owned ball: opponents in reach tackle for it.
    in_possession = owner_team(m, s)
    rate = jnp.where(lunging, SLIDE_TACKLE_RATE, TACKLE_RATE * s.stat)
    in_reach = (ball.z <= s.control_height) & on_feet & ~locked & (distance <= with_slide(s.reach))
    tackles = in_reach & (s.team != in_possession) & (u_tackle < 1.0 - jnp.exp(-rate * dt))
    loose = m.owner < 0
    winners = jnp.where(loose, touches, tackles)
    nearest = jnp.argmin(jnp.where(winners, distance, jnp.inf))
    anyone = jnp.any(winners)
    parried = loose & anyone & ~catches[nearest]
    owner = jnp.where(anyone & ~parried, nearest, m.owner).astype(jnp.int32)
    return owner, jnp.where(parried, nearest, -1).astype(jnp.int32)


def _parry(m: Match, parrier: Array, uniforms: Array) -> Match:
    """The ball back off the keeper ``parrier`` (-1: no parry), who goes down: slower,
    within :data:`PARRY_SPREAD` of straight back, lifted up to :data:`PARRY_LIFT`."""
    ball, parried, keeper = m.ball, parrier >= 0, jnp.maximum(parrier, 0)
    speed = PARRY_RESTITUTION * jnp.sqrt(ball.vx * ball.vx + ball.vy * ball.vy)
    direction = jnp.arctan2(-ball.vy, -ball.vx) + PARRY_SPREAD * (2.0 * uniforms[0] - 1.0)
    return m.replace(
        ball=ball.replace(
            vx=jnp.where(parried, speed * jnp.cos(direction), ball.vx),
            vy=jnp.where(parried, speed * jnp.sin(direction), ball.vy),
            vz=jnp.where(parried, PARRY_LIFT * uniforms[1], ball.vz),
        ),
        last_touch=jnp.where(parried, keeper, m.last_touch),
        slide=jnp.where(
            parried & (jnp.arange(m.slide.shape[0]) == keeper), KEEPER_DOWN_STEPS, m.slide
        ),
    )


def _pass_velocity(m: Match, s: Statics, kind: Array, kicker: Array, aim_x: Array,
                   aim_y: Array, noise: Array) -> tuple[Array, Array, Array, Array]:  # fmt: skip
    """GRF's automatic pass for a controlled player: the receiver is the teammate whose
    predicted position best matches the input direction, the power follows its
    distance (the reference, section 5). Returns the ball's velocity and the receiver
    (-1: nobody to pass to)."""
    team = jnp.asarray(s.team)
    px, py = m.x[kicker], m.y[kicker]
    gap_x, gap_y = m.x - px, m.y - py
    gap = jnp.sqrt(gap_x * gap_x + gap_y * gap_y)
    lead = 0.7 * jnp.clip(0.3 + 0.05 * gap, 0.0, 1.0) ** 0.7
    # The long pass's forward offset only picks the receiver (GRF, measured: a long pass
    # to a standing teammate in 3_vs_1 is received 9 times in 10, aimed at him).
    forward = jnp.where(kind == LONG_PASS, 0.2 * gap * s.attack, 0.0)
    target_x = m.x + m.vx * lead
    target_y = m.y + m.vy * lead
    to_x, to_y = target_x - px, target_y - py
    distance = jnp.maximum(jnp.sqrt(to_x * to_x + to_y * to_y), 1e-3)
    pick_x = to_x + forward
    pick_distance = jnp.maximum(jnp.sqrt(pick_x * pick_x + to_y * to_y), 1e-3)
    manual_x, manual_y = px + aim_x * pick_distance, py + aim_y * pick_distance
    off = jnp.sqrt((target_x + forward - manual_x) ** 2 + (target_y - manual_y) ** 2)
    angle = jnp.abs(wrap(jnp.arctan2(to_y, pick_x) - jnp.arctan2(aim_y, aim_x)))
    score = 0.8 * jnp.clip(off / 70.0, 0.0, 1.0) ** 0.8 + angle / math.pi
    teammate = (team == team[kicker]) & (jnp.arange(team.shape[0]) != kicker)
    receiver = jnp.argmin(jnp.where(teammate, score, jnp.inf))
    has_receiver = jnp.any(teammate)
    # With nobody to pass to, the ball goes 20 m along the input.
    length = jnp.where(has_receiver, distance[receiver], 20.0)
    direction = jnp.where(has_receiver, jnp.arctan2(to_y[receiver], to_x[receiver]),
                          jnp.arctan2(aim_y, aim_x)) + noise  # fmt: skip
    fraction = jnp.clip(length / 60.0, 0.0, 1.0)
    high = kind == HIGH_PASS
    up = jnp.where(high, 0.45 - 0.15 * fraction, 0.11)
    power = fraction**1.4 * jnp.where(high, 1.15, 1.8)
    wanted = PASS_SPEED_SCALE * (power + 0.3)
    cap = jnp.where(high, HIGH_PASS_CAP, PASS_CAP)
    # A pass played behind the kicker's facing is a turn, weaker (GRF's touch power).
    turn = jnp.abs(wrap(direction - m.heading[kicker]))
    body = 1.0 - BACK_PASS_LOSS * jnp.clip((turn - 0.5 * math.pi) / (0.5 * math.pi), 0.0, 1.0)
    speed = jnp.minimum(wanted, cap) * body
    excess = jnp.clip(wanted - cap, 0.0, 10.0)
    norm = jnp.sqrt(1.0 + up * up)
    return (
        speed / norm * jnp.cos(direction),
        speed / norm * jnp.sin(direction),
        speed * up / norm + 0.25 * excess,
        jnp.where(has_receiver, receiver, -1).astype(jnp.int32),
    )


def _shot_velocity(m: Match, s: Statics, kicker: Array, aim_x: Array, aim_y: Array,
                   uniforms: Array) -> tuple[Array, Array, Array]:  # fmt: skip
    """A shot at the opponents' goal: the input picks the aim point across the mouth,
    execution mixes the ideal shot with a poor one (direction, height and power
    errors) by a random factor (the reference, section 5)."""
    attack = jnp.asarray(s.attack)[kicker]
    px, py = m.x[kicker], m.y[kicker]
    goal_x = attack * HALF_LENGTH
    towards_goal = jnp.arctan2(-py, goal_x - px)
    aim_y_at_goal = SHOT_AIM * jnp.sin(wrap(jnp.arctan2(aim_y, aim_x) - towards_goal)) * attack
    direction = jnp.arctan2(aim_y_at_goal - py, goal_x - px)
    quality = uniforms[0] ** SHOT_TECHNIQUE
    poor = 1.0 - quality
    direction = direction + poor * SHOT_ANGLE_ERROR * (2.0 * uniforms[1] - 1.0)
    facing = jnp.cos(m.heading[kicker] - direction)
    power = SHOT_POWER_FACTOR * (1.0 - 0.3 * (1.0 - facing) / 2.0)
    held_ms = SHOT_CHARGE_MS_PER_STEP * jnp.maximum(m.kick_charge, 1)
    desired = jnp.clip((jnp.maximum(held_ms - 60.0, 0.0) / 940.0) ** 0.6, 0.01, 1.0)
    shot_speed = 45.0 * (0.7 + 0.3 * jnp.sqrt(desired))
    speed = shot_speed * power * (1.0 - poor * SHOT_POWER_LOSS * uniforms[2])
    run = m.vx[kicker] * jnp.cos(direction) + m.vy[kicker] * jnp.sin(direction)
    speed = speed + SHOT_RUN_SHARE * jnp.maximum(run, 0.0)
    up = 0.05 + poor * SHOT_EXTRA_HEIGHT * uniforms[3]
    norm = jnp.sqrt(1.0 + up * up)
    return speed / norm * jnp.cos(direction), speed / norm * jnp.sin(direction), speed * up / norm


def _kick(m: Match, c: Commands, s: Statics, uniforms: Array) -> tuple[Match, Array]:
    """Registers the owner's kick command and fires a pending kick whose wind-up ended;
    returns the match and the receiver of a pass fired now (-1 none).

    A kick commanded by a player with a loose ball at his feet (within :data:`REACH`,
    low and slow enough to control, not his own kick) plays it: the command is the
    touch that makes it his (GRF: a standing carrier told to pass at an academy start
    passes, though standing never makes the ball his; TOUCH_SPEED).
    """
    ball = m.ball
    point_x = m.x + 0.1 * jnp.cos(m.heading)
    point_y = m.y + 0.1 * jnp.sin(m.heading)
    distance = jnp.sqrt((ball.x - point_x) ** 2 + (ball.y - point_y) ** 2)
    relative = jnp.sqrt((ball.vx - m.vx) ** 2 + (ball.vy - m.vy) ** 2 + ball.vz * ball.vz)
    locked = (jnp.arange(s.team.shape[0]) == m.last_touch) & (m.lockout > 0.0)
    at_feet = (
        (c.kick > 0)
        & (m.slide == 0)
        & ~locked
        & (distance <= REACH)
        & (ball.z <= s.control_height)
        & (relative <= EASY_CONTROL_SPEED)
    )
    taker = jnp.argmin(jnp.where(at_feet, distance, jnp.inf)).astype(jnp.int32)
    takes = (m.owner < 0) & (m.kick_kind == 0) & jnp.any(at_feet)
    m = m.replace(
        owner=jnp.where(takes, taker, m.owner),
        last_touch=jnp.where(takes, taker, m.last_touch),
    )
    owner = jnp.maximum(m.owner, 0)
    request = jnp.where(m.owner >= 0, c.kick[owner], 0)
    start = (m.kick_kind == 0) & (request > 0)
    # An agent's player pressing shot again charges it: its wind-up waits (GRF's AI sets
    # its own power, so scripted players do not charge).
    charging = (
        (m.kick_kind == SHOT)
        & (m.kick_player == m.owner)
        & (m.owner >= 0)
        & (request == SHOT)
        & c.driven[owner]
        & (m.kick_charge < SHOT_CHARGE_STEPS)
    )
    delays = jnp.asarray(KICK_DELAY, jnp.int32)
    m = m.replace(
        kick_kind=jnp.where(start, request, m.kick_kind),
        kick_timer=jnp.where(start, delays[request], m.kick_timer),
        kick_player=jnp.where(start, m.owner, m.kick_player),
        kick_aim_x=jnp.where(start, c.aim_x[owner], m.kick_aim_x),
        kick_aim_y=jnp.where(start, c.aim_y[owner], m.kick_aim_y),
        kick_charge=jnp.where(start, 1, m.kick_charge + charging.astype(jnp.int32)),
    )
    # The wind-up is lost with the ball.
    pending = (m.kick_kind > 0) & (m.kick_player == m.owner) & (m.owner >= 0)
    timer = jnp.where(pending, m.kick_timer - jnp.where(charging, 0, 1), 0)
    fire = pending & (timer <= 0)
    kicker = jnp.maximum(m.kick_player, 0)
    aim_x = jnp.where((m.kick_aim_x == 0) & (m.kick_aim_y == 0), jnp.cos(m.heading[kicker]),
                      m.kick_aim_x)  # fmt: skip
    aim_y = jnp.where((m.kick_aim_x == 0) & (m.kick_aim_y == 0), jnp.sin(m.heading[kicker]),
                      m.kick_aim_y)  # fmt: skip
    noise = PASS_ANGLE_NOISE * (2.0 * uniforms[4] - 1.0)
    *pass_v, receiver = _pass_velocity(m, s, m.kick_kind, kicker, aim_x, aim_y, noise)
    shot_v = _shot_velocity(m, s, kicker, aim_x, aim_y, uniforms)
    is_shot = m.kick_kind == SHOT
    vx, vy, vz = (jnp.where(is_shot, b, a) for a, b in zip(pass_v, shot_v, strict=True))
    start_ball = _follow_owner(m)
    ball = jax.tree.map(
        lambda kicked, held: jnp.where(fire, kicked, held),
        Ball(start_ball.x, start_ball.y, start_ball.z, vx, vy, vz),
        m.ball,
    )
    m = m.replace(
        ball=ball,
        owner=jnp.where(fire, -1, m.owner),
        last_touch=jnp.where(fire, kicker, m.last_touch),
        lockout=jnp.where(fire, KICK_LOCKOUT, m.lockout),
        kick_kind=jnp.where(pending & ~fire, m.kick_kind, 0),
        kick_timer=timer,
    )
    return m, jnp.where(fire & ~is_shot, receiver, -1)


def step(
    m: Match, c: Commands, s: Statics, key: Array, num_substeps: int = 5
) -> tuple[Match, Events]:
    """Advances the match by one agent step (0.1 s) under ``c``; returns the events."""
    num_players = s.team.shape[0]
    dt = STEP_SECONDS / num_substeps
    team = jnp.asarray(s.team)
    per_tick = num_substeps * num_players
    uniforms = jax.random.uniform(
        key, (2 * per_tick + PARRY_UNIFORMS * num_substeps + KICK_UNIFORMS,)
    )
    u_control = uniforms[:per_tick].reshape(num_substeps, num_players)
    u_tackle = uniforms[per_tick : 2 * per_tick].reshape(num_substeps, num_players)
    u_parry = uniforms[2 * per_tick : -KICK_UNIFORMS].reshape(num_substeps, PARRY_UNIFORMS)
    # Sliding tackles start from the feet, never with the ball.
    index = jnp.arange(num_players)
    start_slide = c.slide & (m.slide == 0) & (index != m.owner)
    speed = jnp.sqrt(m.vx * m.vx + m.vy * m.vy)
    boost = jnp.where(start_slide, jnp.maximum(SLIDE_SPEED / jnp.maximum(speed, 1e-3), 1.0), 1.0)
    m = m.replace(
        slide=jnp.where(start_slide, SLIDE_STEPS, m.slide),
        vx=jnp.where(start_slide & (speed < 1e-3), SLIDE_SPEED * jnp.cos(m.heading), m.vx * boost),
        vy=jnp.where(start_slide & (speed < 1e-3), SLIDE_SPEED * jnp.sin(m.heading), m.vy * boost),
    )
    m, pass_receiver = _kick(m, c, s, uniforms[-KICK_UNIFORMS:])

    def tick(carry, uniforms_now):
        m, goal, out, out_x, out_y, over_goal_line, touch_before_event = carry
        u_control_now, u_tackle_now, u_parry_now = uniforms_now
        m = _move_players(m, c, s, dt)
        before = m.ball
        after = _where(m.owner >= 0, _follow_owner(m), _fly(before, dt))
        tick_goal, tick_out, tick_x, tick_y, tick_over = _lines(before, after)
        fresh = (goal < 0) & ~out
        new_event = fresh & ((tick_goal >= 0) | tick_out)
        goal = jnp.where(fresh, tick_goal, goal)
        out = out | (fresh & tick_out)
        out_x = jnp.where(new_event, tick_x, out_x)
        out_y = jnp.where(new_event, tick_y, out_y)
        over_goal_line = jnp.where(new_event, tick_over, over_goal_line)
        touch_before_event = jnp.where(new_event, m.last_touch, touch_before_event)
        # After a goal or an out the ball is dead for the rest of the step.
        dead = (goal >= 0) | out
        after = _where(dead & ~new_event, before, after)
        m = m.replace(ball=after)
        owner, parrier = _contest(m, s, c.driven, u_control_now, u_tackle_now, dt)
        owner = jnp.where(dead, m.owner, owner)
        m = _parry(m, jnp.where(dead, -1, parrier), u_parry_now)
        gained = (owner >= 0) & (owner != m.owner)
        m = m.replace(
            owner=owner,
            last_touch=jnp.where(gained, owner, m.last_touch),
            lockout=jnp.maximum(m.lockout - dt, 0.0),
        )
        m = m.replace(ball=_where(gained, _follow_owner(m), m.ball))
        return (m, goal, out, out_x, out_y, over_goal_line, touch_before_event), None

    # A rolled loop: unrolled, the ticks compiled about 1.4x slower and ran slower at 1
    # and 64 envs, 5% faster at 1024 (BENCHMARKS.md, "Football throughput").
    zero = jnp.float32(0.0)
    carry = (m, jnp.int32(-1), jnp.bool_(False), zero, zero, jnp.bool_(False), m.last_touch)
    carry, _ = jax.lax.scan(tick, carry, (u_control, u_tackle, u_parry))
    m, goal, out, out_x, out_y, over_goal_line, touch_before_event = carry
    # As GRF's wrapper sees it: the team with the ball now against the last team seen with
    # it at the end of a step (a loose ball in between does not count).
    owner_team = jnp.where(m.owner >= 0, team[jnp.maximum(m.owner, 0)], -1)
    possession_change = (owner_team >= 0) & (m.last_owner_team >= 0)
    possession_change = possession_change & (owner_team != m.last_owner_team)
    m = m.replace(
        last_owner_team=jnp.where(owner_team >= 0, owner_team, m.last_owner_team),
        slide=jnp.maximum(m.slide - 1, 0),
        score=m.score + jnp.stack([goal == 0, goal == 1]).astype(jnp.int32),
        game_mode=jnp.int32(0),
    )
    last_touch_team = jnp.where(
        touch_before_event >= 0, team[jnp.maximum(touch_before_event, 0)], -1
    )
    events = Events(
        goal=goal,
        out=out,
        out_x=out_x,
        out_y=out_y,
        out_over_goal_line=over_goal_line,
        last_touch_team=last_touch_team.astype(jnp.int32),
        possession_change=possession_change,
        scorer=jnp.where(goal >= 0, touch_before_event, -1).astype(jnp.int32),
        pass_receiver=pass_receiver,
    )
    return m, events


KICK_OFF, GOAL_KICK, THROW_IN = 1, 2, 5  # GRF's game modes
GOAL_KICK_SPOT = 5.5  # m in front of the goal line
THROW_IN_LINE = HALF_WIDTH - 0.5


class Formations(NamedTuple):
    """Kick-off positions ``[2, P]`` (index: the team kicking off) for full-game restarts."""

    x: np.ndarray
    y: np.ndarray


def formations(scenario: Scenario) -> Formations:
    """Where everybody stands at a kick-off by the left (0) or the right (1) team."""
    xs, ys = [], []
    for kicking in (0, 1):
        left = scenario.kickoff if kicking == 0 else scenario.receiving
        right = scenario.receiving if kicking == 0 else scenario.kickoff
        left_x, left_y = to_metres(left, right=False)
        right_x, right_y = to_metres(right, right=True)
        xs.append(np.concatenate([left_x, right_x]))
        ys.append(np.concatenate([left_y, right_y]))
    return Formations(np.stack(xs), np.stack(ys))


def restart(m: Match, events: Events, s: Statics, f: Formations) -> Match:
    """Full-game rules reduced to three restarts: a kick-off by the team that conceded,
    a throw-in (any ball over a touch line) or a goal kick (any ball over a goal line
    without a goal) for the team that did not touch it last. The restarting player
    gets the ball; the step's observation shows GRF's game mode."""
    team = jnp.asarray(s.team)
    num_players = s.team.shape[0]
    index = jnp.arange(num_players)
    zeros = jnp.zeros((num_players,), jnp.float32)
    conceded = jnp.maximum(1 - events.goal, 0)  # the team that kicks off
    kickoff = m.replace(
        x=jnp.asarray(f.x)[conceded],
        y=jnp.asarray(f.y)[conceded],
        vx=zeros,
        vy=zeros,
        heading=jnp.asarray(np.where(s.team == 0, 0.0, np.pi), jnp.float32),
        slide=jnp.zeros((num_players,), jnp.int32),
        ball=Ball(*(jnp.float32(v) for v in (0.0, 0.0, BALL_RADIUS, 0.0, 0.0, 0.0))),
        owner=jnp.int32(-1),
        game_mode=jnp.int32(KICK_OFF),
    )
    restarting = jnp.where(events.last_touch_team == 0, 1, 0)
    keeper = jnp.argmax(jnp.asarray(s.keeper) & (team == restarting))
    keeper_x = -jnp.asarray(s.attack)[keeper] * (HALF_LENGTH - GOAL_KICK_SPOT)
    outfield = ~jnp.asarray(s.keeper) & (team == restarting)
    line_y = jnp.sign(events.out_y) * THROW_IN_LINE
    distance = (m.x - events.out_x) ** 2 + (m.y - line_y) ** 2
    thrower = jnp.argmin(jnp.where(outfield, distance, jnp.inf))
    goal_kick = events.out_over_goal_line | ~jnp.any(outfield)
    taker = jnp.where(goal_kick, keeper, thrower)
    spot_x = jnp.where(goal_kick, keeper_x, events.out_x)
    spot_y = jnp.where(goal_kick, 0.0, line_y)
    taker_heading = jnp.where(goal_kick, jnp.where(restarting == 0, 0.0, jnp.pi),
                              jnp.where(line_y > 0, -jnp.pi / 2, jnp.pi / 2))  # fmt: skip
    set_piece = m.replace(
        x=jnp.where(index == taker, spot_x, m.x),
        y=jnp.where(index == taker, spot_y, m.y),
        vx=jnp.where(index == taker, 0.0, m.vx),
        vy=jnp.where(index == taker, 0.0, m.vy),
        heading=jnp.where(index == taker, taker_heading, m.heading),
        owner=taker.astype(jnp.int32),
        last_touch=taker.astype(jnp.int32),
        last_owner_team=restarting.astype(jnp.int32),
        game_mode=jnp.where(goal_kick, GOAL_KICK, THROW_IN).astype(jnp.int32),
    )
    set_piece = set_piece.replace(ball=_follow_owner(set_piece))
    cleared = m.replace(kick_kind=jnp.int32(0), kick_timer=jnp.int32(0), lockout=jnp.float32(0.0))
    chosen = jax.tree.map(lambda a, b: jnp.where(events.goal >= 0, a, b), kickoff, set_piece)
    chosen = chosen.replace(
        kick_kind=cleared.kick_kind, kick_timer=cleared.kick_timer, lockout=cleared.lockout
    )
    happened = (events.goal >= 0) | events.out
    return jax.tree.map(lambda a, b: jnp.where(happened, a, b), chosen, m)
