"""Which player each agent drives: GRF's hand-over of control between players.

In GRF an agent does not own a player. The team's controllable players (every left
player but those a scenario marks otherwise, keeper included) are handed to the
agents by the engine (``onthepitch/team.cpp``: ``AddHumanGamers``, ``SelectPlayer``,
``UpdateSwitch``; ``player/humanoid/humanoid.cpp`` for passes). Reduced here to one
decision per agent step:

* **at reset** the agents get the controllable players whose *team-sheet* slots lie
  nearest the centre spot, sorted by player index (agent ``i`` the ``i``-th), and each
  team's designated player is its first player: GRF hands the players out while it
  builds the match, when every player stands at its slot of the engine's default
  formation (``data/teamdata.cpp``) and the ball on the centre spot, before the
  scenario places them (:func:`team_sheet`, :func:`start_players`). The observation
  at reset shows that hand-out; the rules below then run once before the first step's
  play, as GRF switches in the first frame of play, so that the first action already
  drives the ball carrier where the hand-out missed him;
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


# GRF's default formation (``data/teamdata.cpp``), slot by slot: (x, y, role), in its
# formation units (x from the own goal line -1 to the opponents' 1).
_FORMATION = (
    (-1.0, 0.0, "GK"), (-0.7, 0.75, "LB"), (-1.0, 0.25, "CB"), (-1.0, -0.25, "CB"),
    (-0.7, -0.75, "RB"), (0.0, 0.5, "CM"), (-0.2, 0.0, "CM"), (0.0, -0.5, "CM"),
    (0.6, 0.75, "LM"), (1.0, 0.0, "CF"), (0.6, -0.75, "RM"),
)  # fmt: skip
# Where GRF pulls each role's slot to (``GetDefaultRolePosition``).
_ROLE_ANCHOR = {
    "GK": (-1.0, 0.0), "CB": (-1.0, 0.0), "LB": (-0.8, 0.8), "RB": (-0.8, -0.8),
    "CM": (0.0, 0.0), "LM": (0.0, 1.0), "RM": (0.0, -1.0), "CF": (1.0, 0.0),
}  # fmt: skip
_SLOT_SPACING = 0.5  # GRF's minimum distance between outfield slots, formation units
_SLOT_METRES = 25.0  # metres per formation unit where GRF first places its players


def team_sheet(num_players: int) -> np.ndarray:
    """Float32 ``[num_players, 2]``: where GRF's engine stands a team of ``num_players``
    while it builds a match, in metres from the centre spot (up to sign): the first
    ``num_players`` slots of its default formation, each 60% of the way from its role's
    anchor, pushed apart (up to 10 rounds) until outfield slots are half a unit apart,
    then scaled by 25. GRF's arithmetic is single precision; so is this, so that ties
    between mirrored slots stay ties."""
    if not 1 <= num_players <= len(_FORMATION):
        raise ValueError(
            f"team_sheet: a team has 1 to {len(_FORMATION)} players, got {num_players}"
        )
    f32 = np.float32
    slots = _FORMATION[:num_players]
    position = np.array(
        [[f32(x) * f32(0.6) + f32(_ROLE_ANCHOR[r][0]) * f32(0.4),
          f32(y) * f32(0.6) + f32(_ROLE_ANCHOR[r][1]) * f32(0.4)] for x, y, r in slots],
        np.float32,
    )  # fmt: skip
    outfield = [role != "GK" for _, _, role in slots]
    for _ in range(10):
        offset = np.zeros_like(position)
        moved = False
        for a in range(num_players - 1):
            for b in range(a + 1, num_players):
                if not (outfield[a] and outfield[b]):
                    continue
                gap = position[a] - position[b]
                length = np.float32(np.hypot(gap[0], gap[1]))
                if length < _SLOT_SPACING:
                    moved = True
                    away = gap / length if length > 0 else np.array([0.0, 1.0], np.float32)
                    closeness = f32(1.0) - length / f32(_SLOT_SPACING)
                    push = away * f32(_SLOT_SPACING * 0.5) * closeness
                    offset[a] += push
                    offset[b] -= push
        if not moved:
            break
        position = np.clip(position + offset, -1.0, 1.0).astype(np.float32)
    return position * np.float32(_SLOT_METRES)


def start_players(num_team_players: int, controllable: np.ndarray, num_agents: int) -> np.ndarray:
    """GRF's hand-out at reset (``Team::AddHumanGamers``): the ``num_agents`` players of
    ``controllable`` (bool ``[num_team_players]``) whose :func:`team_sheet` slots are
    nearest the centre spot, ties to the lower index, sorted by index."""
    sheet = team_sheet(num_team_players)
    distance = np.hypot(sheet[:, 0], sheet[:, 1]).astype(np.float32)
    candidates = [i for i in range(num_team_players) if controllable[i]]
    nearest = sorted(candidates, key=lambda i: (distance[i], i))[:num_agents]
    return np.sort(np.asarray(nearest, np.int32))


def start_control(s: sim.Statics, players: np.ndarray) -> Control:
    """Control at reset with GRF's hand-over: agent ``i`` drives ``players[i]`` (from
    :func:`start_players`); each team's designated player is its first player, as
    ``Team::ResetSituation`` leaves it."""
    first = [int(np.argmax(np.asarray(s.team) == t)) for t in (0, 1)]
    return Control(
        controlled=jnp.asarray(players, jnp.int32),
        queue=jnp.arange(len(players), dtype=jnp.int32),
        designated=jnp.asarray(first, jnp.int32),
    )


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
    control: Control,
    m: sim.Match,
    s: sim.Statics,
    events: sim.Events | None,
    controllable: np.ndarray,
) -> Control:
    """One step of GRF's hand-over (the module docstring), after the step's play ``m``
    and ``events`` (``None``: no pass, as in the first frame of play after a reset); the
    agents play the left team (team 0)."""
    num_players = s.team.shape[0]
    team = jnp.asarray(s.team)
    keeper = jnp.asarray(s.keeper)
    selectable = jnp.asarray(controllable)
    # A pass: its receiver becomes its team's designated player, and the agents' if theirs.
    pass_receiver = jnp.int32(-1) if events is None else events.pass_receiver
    receiver = jnp.maximum(pass_receiver, 0)
    passed = pass_receiver >= 0
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
