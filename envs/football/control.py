"""Which player each agent drives: GRF's hand-over of control between players.

In GRF an agent does not own a player. The team's controllable players (every left
player but those a scenario marks otherwise, keeper included) are handed to the
agents by the engine (``onthepitch/team.cpp``: ``AddHumanGamers``, ``SelectPlayer``,
``UpdateSwitch``; ``player/humanoid/humanoid.cpp`` for passes). Reduced here to one
decision per agent step:

* **at reset** the agents get the controllable players nearest the ball, sorted by
  player index (agent ``i`` the ``i``-th);
* **selecting a player** gives it to the agent at the front of a switch-priority
  queue, which then goes to the back; a player already driven is not selected again.
  It happens when a teammate passes to it (the pass's receiver, the keeper included)
  and, for outfield players only, when the team's *designated* player (below) is not
  driven and either has the ball or would be at it in under a third of the time the
  nearest driven player needs;
* **losing the turn**: with more than one agent, the front agent goes to the back of
  the queue while its player is the match's designated player (so the next pass goes
  to another agent);
* **the designated player** of each team (GRF's ``designatedTeamPossessionPlayer``) is
  the one the team counts on for the ball. It moves to the player with the shortest
  time to the ball (:func:`marl.envs.football.sim.time_to_ball`) only when that one is
  clearly better: GRF's rating ``(t_best + 0.5) / (t_designated + 0.5) < 0.8``, halved
  for a player on the ball, weighed 0.8 for a driven player, and made harder while the
  designated player would beat the opponents to the ball. The match's designated player
  is the one on the ball, else the designated player of the team that gets there first.

Directions, sprint and dribble stay with the agent across a hand-over, as GRF's sticky
actions belong to the controller, not the player.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.football import sim
from marl.types import Array

CONTROL_MODES = ("grf", "fixed")
RATING_MARGIN = 0.5  # s, added to both times of GRF's switch rating
SWITCH_RATING = 0.8  # the designated player moves below this rating
AUTOSWITCH_FACTOR = 3.0  # a free designated player is selected when this many times faster


@struct.dataclass
class Control:
    """Who drives whom: ``controlled`` ``[A]`` the player each agent drives, ``queue``
    ``[A]`` the agents in switch priority (front first), ``designated`` ``[2]`` each
    team's designated player."""

    controlled: Array
    queue: Array
    designated: Array


def start_control(
    m: sim.Match, s: sim.Statics, controllable: np.ndarray, num_agents: int
) -> Control:
    """GRF's hand-out at reset: the ``num_agents`` ``controllable`` (bool ``[P]``) players
    nearest the ball, sorted by index; each team's designated player is its player
    nearest the ball."""
    gap = jnp.hypot(m.x - m.ball.x, m.y - m.ball.y)
    nearest = jnp.argsort(jnp.where(jnp.asarray(controllable), gap, jnp.inf))[:num_agents]
    return fixed_control(m, s, jnp.sort(nearest))


def fixed_control(m: sim.Match, s: sim.Statics, players: Array) -> Control:
    """Agent ``i`` drives ``players[i]``, for good when :func:`update_control` is not used."""
    gap = jnp.hypot(m.x - m.ball.x, m.y - m.ball.y)
    team = jnp.asarray(s.team)
    designated = jnp.stack([jnp.argmin(jnp.where(team == t, gap, jnp.inf)) for t in (0, 1)])
    return Control(
        controlled=jnp.asarray(players, jnp.int32),
        queue=jnp.arange(len(players), dtype=jnp.int32),
        designated=designated.astype(jnp.int32),
    )


def driven_players(control: Control, num_players: int) -> Array:
    """Bool ``[P]``: the players some agent drives."""
    return jnp.zeros((num_players,), bool).at[control.controlled].set(True)


def _select(control: Control, player: Array, do: Array, controllable: Array) -> Control:
    """GRF's ``Team::SelectPlayer`` for the agents' team, when ``do``: the front agent
    takes ``player`` (if controllable and not driven yet) and goes to the back."""
    driven = jnp.any(control.controlled == player)
    hand_over = do & controllable[player] & ~driven
    front = control.queue[0]
    return control.replace(
        controlled=jnp.where(
            hand_over, control.controlled.at[front].set(player), control.controlled
        ),
        queue=jnp.where(hand_over, jnp.roll(control.queue, -1), control.queue),
        designated=control.designated.at[0].set(jnp.where(do, player, control.designated[0])),
    )


def update_control(
    control: Control, m: sim.Match, s: sim.Statics, events: sim.Events, controllable: np.ndarray
) -> Control:
    """One step of GRF's hand-over (the module docstring), after the step's play ``m``
    and ``events``; the agents play the left team (team 0)."""
    num_players = s.team.shape[0]
    team = jnp.asarray(s.team)
    keeper = jnp.asarray(s.keeper)
    selectable = jnp.asarray(controllable)
    # A pass: its receiver becomes its team's designated player, and the agents' if theirs.
    receiver = jnp.maximum(events.pass_receiver, 0)
    passed = events.pass_receiver >= 0
    receiving_team = team[receiver]
    control = _select(control, receiver, passed & (receiving_team == 0), selectable)
    control = control.replace(
        designated=control.designated.at[1].set(
            jnp.where(passed & (receiving_team == 1), receiver, control.designated[1])
        )
    )

    # Each team's designated player moves to its best-placed player when clearly better.
    time = sim.time_to_ball(m)
    driven = driven_players(control, num_players)
    team_time = jnp.stack([jnp.min(jnp.where(team == t, time, jnp.inf)) for t in (0, 1)])
    designated = []
    for t in (0, 1):
        current = control.designated[t]
        best = jnp.argmin(jnp.where(team == t, time, jnp.inf))
        rating = (time[best] + RATING_MARGIN) / (time[current] + RATING_MARGIN)
        rating = (
            rating * jnp.where(best == m.owner, 0.5, 1.0) / jnp.where(current == m.owner, 0.5, 1.0)
        )
        rating = rating * jnp.where(driven[best], 0.8, 1.0) / jnp.where(driven[current], 0.8, 1.0)
        # Less need to switch while the designated player beats the opponents to the ball.
        ahead = ~driven[best] & (time[current] < team_time[1 - t] - 0.1)
        rating = jnp.where(ahead, (rating + 0.2) * 1.2, rating)
        designated.append(jnp.where(rating < SWITCH_RATING, best, current))
    control = control.replace(designated=jnp.stack(designated).astype(jnp.int32))

    # The front agent loses its turn while it drives the match's designated player.
    first_team = jnp.argmin(team_time)
    match_designated = jnp.where(m.owner >= 0, m.owner, control.designated[first_team])
    if control.queue.shape[0] > 1:
        lose_turn = control.controlled[control.queue[0]] == match_designated
        control = control.replace(
            queue=jnp.where(lose_turn, jnp.roll(control.queue, -1), control.queue)
        )

    # A free outfield designated player much nearer the ball, or on it, is taken over.
    candidate = control.designated[0]
    driven = driven_players(control, num_players)
    driven_best = jnp.min(jnp.where(driven, time, jnp.inf))
    free = ~driven[candidate] & ~keeper[candidate]
    faster = AUTOSWITCH_FACTOR * time[candidate] < driven_best
    control = _select(control, candidate, free & faster, selectable)
    driven = driven_players(control, num_players)
    on_ball = ~driven[candidate] & ~keeper[candidate] & (m.owner == candidate)
    return _select(control, candidate, on_ball, selectable)
