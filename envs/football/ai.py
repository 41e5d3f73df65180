"""Scripted players: keepers, defenders, lazy players and the opponents' attack.

A reduced form of GRF's rule-based AI (the shared reference, section 7), computed
once per agent step for every player (the environment keeps the agents' own
commands for the players they drive):

* **keepers** (GRF's goalie strategy) stand 10 m off their line while the ball is in
  the other half; in their own half they stand on the line from the ball to their
  goal, at least 0.7 m in front of a line 0.7 m inside the goal line, and further out
  by a share of the way to the ball: 0.3 while their team has it, and the whole way
  when an opposing carrier would reach his shooting point (halfway to goal, at most
  20 m from it) before any outfield teammate, less when another opponent nearer the
  goal would then be free; they move into the path of a ball travelling towards their
  goal, go for a loose ball when they are the nearest of all players to it (GRF's
  designated player), and pass out a ball they hold;
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
# Keepers (GRF's goalie_default strategy).
KEEPER_LINE_DISTANCE = 10.0  # m off the goal line while the ball is in the other half
KEEPER_BACK_LINE = 0.7  # m: the line a keeper's place is measured from, and its least
KEEPER_BIAS = 0.3  # share of the way to the ball while its own team has it
KEEPER_LEAD = 0.32  # s: where opponents will be
MATE_LEAD = 0.24  # s: where teammates will be
BALL_LOOKAHEAD = 1.0  # s: who is first to a loose ball is judged where it will be
SHOOT_THRESHOLD = 20.0  # m: where a carrier is expected to shoot from
HELPER_SHOOT_THRESHOLD = 24.0  # m: likewise, for the opponent nearest the goal besides him


def _shooting_point(x: Array, y: Array, goal_x: Array, threshold: float) -> tuple[Array, ...]:
    """Where a player at ``(x, y)`` heading for the goal at ``goal_x`` would shoot from
    (GRF: ``threshold`` m from goal, or halfway when closer than twice that), and how far
    he has to go."""
    gap_x, gap_y = goal_x - x, -y
    to_goal = jnp.sqrt(gap_x * gap_x + gap_y * gap_y)
    to_go = jnp.clip(
        to_goal - threshold * jnp.clip(to_goal / (2.0 * threshold), 0.0, 1.0),
        0.0,
        sim.HALF_LENGTH,
    )
    unit = to_go / jnp.maximum(to_goal, 1e-3)
    return x + gap_x * unit, y + gap_y * unit, to_go


def _keeper_come_out(
    m: Match, s: Statics, carrier: Array, lead_x: Array, lead_y: Array, own_goal_x: Array,
    defending: Array,
) -> Array:  # fmt: skip
    """Each player's come-out bias as its team's keeper (GRF's goalie_default): the whole
    way when the carrier against them will reach his shooting point before any outfield
    teammate does (by 1 m), less when another opponent nearer the goal is left free;
    none otherwise."""
    num_players = s.team.shape[0]
    team = jnp.asarray(s.team)
    mate = (team[:, None] == team[None, :]) & ~jnp.asarray(s.keeper)[None, :]
    mate_x, mate_y = m.x + MATE_LEAD * m.vx, m.y + MATE_LEAD * m.vy

    def nearest_mate(point_x: Array, point_y: Array) -> Array:
        gap_x, gap_y = mate_x[None, :] - point_x[:, None], mate_y[None, :] - point_y[:, None]
        gap = jnp.sqrt(gap_x * gap_x + gap_y * gap_y)
        return jnp.min(jnp.where(mate, gap, jnp.inf), axis=1)

    shoot_x, shoot_y, to_go = _shooting_point(
        lead_x[carrier], lead_y[carrier], own_goal_x, SHOOT_THRESHOLD
    )
    alone = nearest_mate(shoot_x, shoot_y) > to_go + 1.0
    # The helper: the opponent nearest the goal other than the carrier.
    index = jnp.arange(num_players)
    helpers = (team[None, :] != team[:, None]) & (index[None, :] != carrier)
    goal_gap = jnp.sqrt((lead_x[None, :] - own_goal_x[:, None]) ** 2 + lead_y[None, :] ** 2)
    helper = jnp.argmin(jnp.where(helpers, goal_gap, jnp.inf), axis=1)
    has_helper = jnp.any(helpers, axis=1)
    help_x, help_y, help_to_go = _shooting_point(
        lead_x[helper], lead_y[helper], own_goal_x, HELPER_SHOOT_THRESHOLD
    )
    help_gap = nearest_mate(help_x, help_y)
    free = jnp.where(help_gap > help_to_go, jnp.clip((help_gap - help_to_go) / 2.0, 0.0, 1.0), 0.0)
    ratio = help_to_go / (to_go + 1e-4)
    danger = 0.7 * (1.0 - jnp.clip((ratio - 1.0) / 0.5, 0.0, 1.0))
    bias = jnp.where(has_helper, jnp.clip(1.0 - free * danger, 0.0, 1.0), 1.0)
    return jnp.where(defending & alone, bias, 0.0)


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
    nearest = outfield & (index == nearest_of_team[team])
    # GRF's keeper goes for a loose ball only as the match's designated player: the first
    # of everybody to reach it.
    active = ~jnp.asarray(s.lazy)
    ahead_x, ahead_y = (
        ball.x + BALL_LOOKAHEAD * ball.vx - m.x,
        ball.y + BALL_LOOKAHEAD * ball.vy - m.y,
    )
    ahead = jnp.sqrt(ahead_x * ahead_x + ahead_y * ahead_y)
    first_to_ball = active & (index == jnp.argmin(jnp.where(active, ahead, jnp.inf)))

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

    # Keepers (GRF's goalie_default strategy, the reference, section 7): with the ball
    # in the other half, KEEPER_LINE_DISTANCE off the line; in their own half, on the
    # line from the ball to the goal, KEEPER_BACK_LINE in front of a line that far inside
    # the goal line, or a share (the come-out bias) of the way to the ball; into the
    # path of a ball bound for goal; at a loose ball nobody is nearer to.
    keeper = jnp.asarray(s.keeper)
    line_x = own_goal_x + attack * KEEPER_BACK_LINE
    carrier = jnp.maximum(m.owner, 0)
    lead_x, lead_y = m.x + KEEPER_LEAD * m.vx, m.y + KEEPER_LEAD * m.vy  # where each will be
    # The ball end of the line: between the ball and a carrier against them.
    end_x = jnp.where(defending, 0.6 * ball.x + 0.4 * lead_x[carrier], ball.x)
    end_y = jnp.where(defending, 0.6 * ball.y + 0.4 * lead_y[carrier], ball.y)
    from_line_x, from_line_y = end_x - line_x, end_y
    from_line = jnp.maximum(jnp.sqrt(from_line_x * from_line_x + from_line_y * from_line_y), 1e-3)
    come_out = _keeper_come_out(m, s, carrier, lead_x, lead_y, own_goal_x, defending)
    bias = jnp.where(defending, come_out, jnp.where(owner_team == team, KEEPER_BIAS, 0.0))
    stand = jnp.clip((from_line - 0.5) * bias, KEEPER_BACK_LINE, None)
    own_half = ball.x * attack < 0.0
    place_x = jnp.where(own_half, line_x + from_line_x / from_line * stand,
                        own_goal_x + attack * KEEPER_LINE_DISTANCE)  # fmt: skip
    place_y = jnp.where(own_half, from_line_y / from_line * stand, 0.0)
    incoming = loose & (ball.vx * (own_goal_x - ball.x) > 0.0) & (jnp.abs(ball.vx) > 3.0)
    time_to_keeper = (m.x - ball.x) / jnp.where(jnp.abs(ball.vx) > 1e-3, ball.vx, 1e-3)
    path_y = jnp.clip(ball.y + ball.vy * jnp.maximum(time_to_keeper, 0.0),
                      -sim.GOAL_HALF_WIDTH - 1.0, sim.GOAL_HALF_WIDTH + 1.0)  # fmt: skip
    rush = loose & first_to_ball & ~incoming
    keeper_x = jnp.where(incoming, m.x, jnp.where(rush, ball.x, place_x))
    keeper_y = jnp.where(incoming, path_y, jnp.where(rush, ball.y, place_y))
    target_x = jnp.where(keeper & ~has_ball, keeper_x, target_x)
    target_y = jnp.where(keeper & ~has_ball, keeper_y, target_y)
    # Sprinting out and across, walking back towards the goal.
    going_back = jnp.hypot(keeper_x - own_goal_x, keeper_y) < jnp.hypot(m.x - own_goal_x, m.y)
    keeper_top = jnp.where(going_back & ~incoming & ~rush, sim.WALK_SPEED, sim.TOP_SPEED)
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
        driven=jnp.zeros((num_players,), bool),
    )
