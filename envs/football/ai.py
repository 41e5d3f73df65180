"""Scripted players: keepers, defenders, lazy players and the opponents' attack.

A reduced form of GRF's rule-based AI (the shared reference, section 7), computed
once per agent step for every player (the environment keeps the agents' own
commands for the players they drive):

* **keepers** stand on the line from their goal to the ball, a little off the line;
  they move into the path of a ball travelling towards their goal, come out at a
  carrier within 12 m of it, and pass out a ball they hold;
* **defending** (the other team has the ball), the player nearest the ball presses
  it, and so does every other player within its hunt distance of the carrier (GRF's
  ``(10 + 10 (1 - mindset)) x (0.3 + 0.7 difficulty)`` m); the rest mark the nearest
  opponent from 2 m goal-side, or cover between the ball and their goal;
* **a loose ball** is chased by each team's nearest outfield player; the others drift
  back towards their places, shifted towards the ball;
* **attacking**, the carrier runs at goal (sprinting unless an opponent is within
  6 m), shoots within 20 m of it and passes when an opponent is within 2.5 m; the
  others run into support ahead of the ball;
* **lazy** players stand and face the ball.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from marl.envs.football import sim
from marl.envs.football.sim import Commands, Match, Statics
from marl.types import Array

CLOSE_ENOUGH = 0.5  # m: within this of its target a player stops
SLOW_DOWN = 2.0  # wanted speed is at most this x the distance to the target
COVER_DISTANCE = 10.0
SUPPORT_AHEAD = 6.0
SPRINT_CLEAR = 6.0  # a scripted carrier sprints when no opponent is this close
KEEPER_OFF_LINE = (1.0, 5.0)  # a keeper's distance from its goal's centre, min and max
KEEPER_STEP_OUT = 0.1  # x its distance to the ball


def _towards(m: Match, target_x: Array, target_y: Array, top: Array) -> tuple[Array, Array]:
    gap_x, gap_y = target_x - m.x, target_y - m.y
    distance = jnp.sqrt(gap_x * gap_x + gap_y * gap_y)
    speed = jnp.where(distance < CLOSE_ENOUGH, 0.0, jnp.minimum(top, SLOW_DOWN * distance))
    return speed, jnp.arctan2(gap_y, gap_x)


def scripted_commands(m: Match, s: Statics) -> Commands:
    """Every player's command as the scripted AI would play it."""
    num_players = s.team.shape[0]
    index = jnp.arange(num_players)
    team = jnp.asarray(s.team)
    attack = jnp.asarray(s.attack)
    ball = m.ball
    has_ball = index == m.owner
    owner_team = sim.owner_team(m, s)
    defending = (owner_team >= 0) & (owner_team != team)
    loose = m.owner < 0
    own_goal_x = -attack * sim.HALF_LENGTH

    to_ball_x, to_ball_y = ball.x - m.x, ball.y - m.y
    ball_distance = jnp.sqrt(to_ball_x * to_ball_x + to_ball_y * to_ball_y)
    outfield = ~jnp.asarray(s.keeper) & ~jnp.asarray(s.lazy)
    nearest_of_team = jnp.stack([
        jnp.argmin(jnp.where(outfield & (team == t), ball_distance, jnp.inf)) for t in (0, 1)
    ])  # fmt: skip
    nearest = index == nearest_of_team[team]

    # Pairwise gaps for marking and for a carrier's pressure.
    gap_x = m.x[None, :] - m.x[:, None]
    gap_y = m.y[None, :] - m.y[:, None]
    gap = jnp.sqrt(gap_x * gap_x + gap_y * gap_y)
    opponent = team[None, :] != team[:, None]
    nearest_opponent = jnp.min(jnp.where(opponent, gap, jnp.inf), axis=1)
    markable = opponent & ~jnp.asarray(s.keeper)[None, :] & (index[None, :] != m.owner)
    marked = jnp.argmin(jnp.where(markable, gap, jnp.inf), axis=1)
    can_mark = jnp.any(markable, axis=1)

    # Defending: press, mark or cover.
    hunt = (sim.HUNT_BASE + 10.0 * (1.0 - s.mindset)) * s.stat
    press = defending & (nearest | (ball_distance <= hunt))
    man_x, man_y = m.x[marked], m.y[marked]
    man_to_goal = jnp.maximum(jnp.sqrt((own_goal_x - man_x) ** 2 + man_y * man_y), 1.0)
    mark_x = man_x + (own_goal_x - man_x) / man_to_goal * sim.MARK_DISTANCE
    mark_y = man_y - man_y / man_to_goal * sim.MARK_DISTANCE
    to_goal_x, to_goal_y = own_goal_x - ball.x, -ball.y
    to_goal = jnp.maximum(jnp.sqrt(to_goal_x * to_goal_x + to_goal_y * to_goal_y), 1.0)
    cover_x = ball.x + to_goal_x / to_goal * COVER_DISTANCE
    cover_y = ball.y + to_goal_y / to_goal * COVER_DISTANCE
    defend_x = jnp.where(press, ball.x + 0.2 * ball.vx, jnp.where(can_mark, mark_x, cover_x))
    defend_y = jnp.where(press, ball.y + 0.2 * ball.vy, jnp.where(can_mark, mark_y, cover_y))

    # A loose ball: the nearest chases where it will be, the rest drift to their places.
    chase = loose & nearest
    drift_x = s.home_x + 0.3 * (ball.x - s.home_x)
    drift_y = s.home_y + 0.3 * (ball.y - s.home_y)
    loose_x = jnp.where(chase, ball.x + 0.3 * ball.vx, drift_x)
    loose_y = jnp.where(chase, ball.y + 0.3 * ball.vy, drift_y)

    # Attacking: the carrier runs at goal, the others support ahead of the ball.
    opponents_goal_x = attack * sim.HALF_LENGTH
    team_home_x = np.array([s.home_x[s.team == t].mean() for t in s.team], np.float32)
    support_x = ball.x + attack * SUPPORT_AHEAD + 0.5 * (s.home_x - team_home_x)
    support_y = 0.8 * s.home_y + 0.2 * ball.y
    attack_x = jnp.where(has_ball, opponents_goal_x, support_x)
    attack_y = jnp.where(has_ball, 0.0, support_y)

    target_x = jnp.where(defending, defend_x, jnp.where(loose, loose_x, attack_x))
    target_y = jnp.where(defending, defend_y, jnp.where(loose, loose_y, attack_y))
    urgent = press | chase | (has_ball & (nearest_opponent > SPRINT_CLEAR))
    top = jnp.where(urgent, sim.TOP_SPEED, sim.WALK_SPEED)

    # Keepers: into the ball's path, out at a close carrier, else on the goal-ball line.
    keeper = jnp.asarray(s.keeper)
    from_goal_x, from_goal_y = ball.x - own_goal_x, ball.y
    from_goal = jnp.maximum(jnp.sqrt(from_goal_x * from_goal_x + from_goal_y * from_goal_y), 1e-3)
    stand = jnp.clip(KEEPER_STEP_OUT * from_goal, *KEEPER_OFF_LINE)
    place_x = own_goal_x + from_goal_x / from_goal * stand
    place_y = from_goal_y / from_goal * stand
    incoming = loose & (ball.vx * (own_goal_x - ball.x) > 0.0) & (jnp.abs(ball.vx) > 3.0)
    time_to_keeper = (m.x - ball.x) / jnp.where(jnp.abs(ball.vx) > 1e-3, ball.vx, 1e-3)
    path_y = jnp.clip(ball.y + ball.vy * jnp.maximum(time_to_keeper, 0.0),
                      -sim.GOAL_HALF_WIDTH - 1.0, sim.GOAL_HALF_WIDTH + 1.0)  # fmt: skip
    rush = (defending & (from_goal < sim.KEEPER_RUSH)) | (
        loose & ~incoming & (from_goal < sim.KEEPER_RUSH)
    )
    keeper_x = jnp.where(incoming, m.x, jnp.where(rush, ball.x, place_x))
    keeper_y = jnp.where(incoming, path_y, jnp.where(rush, ball.y, place_y))
    keeper_top = jnp.where(incoming | rush, sim.TOP_SPEED, sim.WALK_SPEED)
    target_x = jnp.where(keeper & ~has_ball, keeper_x, target_x)
    target_y = jnp.where(keeper & ~has_ball, keeper_y, target_y)
    top = jnp.where(keeper & ~has_ball, keeper_top, top)

    speed, angle = _towards(m, target_x, target_y, top)
    lazy = jnp.asarray(s.lazy)
    speed = jnp.where(lazy | (keeper & has_ball), 0.0, speed)
    angle = jnp.where(lazy, jnp.arctan2(to_ball_y, to_ball_x), angle)

    # The carrier's kicks: a keeper passes at once, others shoot in range or pass under pressure.
    goal_gap = jnp.sqrt((opponents_goal_x - m.x) ** 2 + m.y * m.y)
    shoot = has_ball & ~keeper & (goal_gap <= sim.SHOOT_DISTANCE)
    pressed = has_ball & (keeper | (nearest_opponent <= sim.PRESSED_DISTANCE))
    kick = jnp.where(shoot, sim.SHOT, jnp.where(pressed, sim.SHORT_PASS, 0)).astype(jnp.int32)
    return Commands(
        speed=speed,
        angle=angle,
        kick=jnp.where(lazy, 0, kick),
        aim_x=attack,
        aim_y=jnp.zeros_like(attack),
        slide=jnp.zeros((num_players,), bool),
    )
