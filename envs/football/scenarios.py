"""Football scenarios: GRF's eleven academy scenarios and 5_vs_5, and user-registered ones.

Positions are given as GRF's scenario builder takes them (the shared reference,
section 6): ``x`` in ``[-1, 1]`` and ``y`` in ``[-0.42, 0.42]``, the left team in the
pitch's frame and the right team in its own mirrored frame (it attacks towards
``-x`` there), and the ball in the observation's coordinates. :func:`to_metres`
turns them into the simulator's metres.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

HALF_LENGTH = 55.0  # goal line to centre, metres
HALF_WIDTH = 36.0  # touch line to centre
# Observation units per metre (GRF's X_FIELD_SCALE and |Y_FIELD_SCALE|); the y axis
# keeps the observation's orientation, so "top" is -y in both.
X_SCALE = 54.4
Y_SCALE = 83.6
# The builder's y runs to 0.42 at the touch line: 84.96 m per unit (section 2).
BUILDER_Y_METRES = 84.96

ROLES = ("GK", "CB", "LB", "RB", "DM", "CM", "LM", "RM", "AM", "CF")
# How far forward a role plays, which sets how far an AI defender hunts the carrier
# (GRF's AI_GetMindSet: the reference, section 7).
MINDSET = {"GK": 0.0, "CB": 0.0, "LB": 0.25, "RB": 0.25, "DM": 0.25, "CM": 0.5, "LM": 0.5,
           "RM": 0.5, "AM": 0.75, "CF": 1.0}  # fmt: skip


class Player(NamedTuple):
    role: str
    x: float
    y: float
    lazy: bool = False  # stands still and only plays a ball that comes within reach


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One football task.

    ``controlled`` lists the left players (indices into ``left``) the agents drive
    at the start, in agent order; ``controllable`` the left players GRF may hand to an
    agent during play (default: all of them, keeper included, as in GRF's academy
    files; ``Football(control="fixed")`` keeps ``controlled`` for good instead). Every
    player no agent drives is scripted. ``kickoff_left``/``kickoff_right``
    give the formations after a goal when ``restarts`` is on (full-game rules); with
    ``restarts`` off the episode ends at a goal or when the ball leaves the pitch
    (``end_on_out_of_play``), and at a change of the team in possession when
    ``end_on_possession_change``.
    """

    name: str
    ball: tuple[float, float]
    left: tuple[Player, ...]
    right: tuple[Player, ...]
    controlled: tuple[int, ...]
    time_limit: int = 400
    end_on_possession_change: bool = True
    end_on_out_of_play: bool = True
    restarts: bool = False
    left_difficulty: float = 1.0
    right_difficulty: float = 0.6
    # Full games: each team's kick-off and receiving formations (left team's frame
    # for both teams; the right team's are mirrored like ``right``).
    kickoff: tuple[Player, ...] = ()
    receiving: tuple[Player, ...] = ()
    controllable: tuple[int, ...] | None = None

    def __post_init__(self):
        if not self.left or not self.right:
            raise ValueError(f"scenario '{self.name}': each team needs at least one player")
        if len(self.left) > 11 or len(self.right) > 11:
            raise ValueError(f"scenario '{self.name}': at most 11 players per team")
        for player in self.left + self.right + self.kickoff + self.receiving:
            if player.role not in ROLES:
                raise ValueError(
                    f"scenario '{self.name}': unknown role '{player.role}'; valid: "
                    + ", ".join(ROLES)
                )
        if not self.controlled:
            raise ValueError(f"scenario '{self.name}': controlled must name at least one player")
        if len(set(self.controlled)) != len(self.controlled) or not all(
            0 <= i < len(self.left) for i in self.controlled
        ):
            raise ValueError(
                f"scenario '{self.name}': controlled={self.controlled} must be distinct "
                f"indices into the {len(self.left)} left players"
            )
        selectable = self.selectable
        if len(set(selectable)) != len(selectable) or not all(
            0 <= i < len(self.left) for i in selectable
        ):
            raise ValueError(
                f"scenario '{self.name}': controllable={self.controllable} must be distinct "
                f"indices into the {len(self.left)} left players"
            )
        if len(self.controlled) > len(selectable):
            raise ValueError(
                f"scenario '{self.name}': {len(self.controlled)} agents but only "
                f"{len(selectable)} controllable players"
            )
        if self.restarts and len(self.kickoff) != len(self.left):
            raise ValueError(f"scenario '{self.name}': restarts need a kick-off formation")
        for name in ("left_difficulty", "right_difficulty"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"scenario '{self.name}': {name} must lie in [0, 1]")

    @property
    def selectable(self) -> tuple[int, ...]:
        """The left players an agent may drive (``controllable``, default all)."""
        if self.controllable is None:
            return tuple(range(len(self.left)))
        return self.controllable

    @property
    def num_left(self) -> int:
        return len(self.left)

    @property
    def num_players(self) -> int:
        return len(self.left) + len(self.right)


def to_metres(players: tuple[Player, ...], right: bool) -> tuple[np.ndarray, np.ndarray]:
    """Builder coordinates to the simulator's metres (right team: from its own frame)."""
    sign = -1.0 if right else 1.0
    x = np.array([sign * HALF_LENGTH * p.x for p in players], np.float32)
    y = np.array([sign * BUILDER_Y_METRES * p.y for p in players], np.float32)
    return x, y


def ball_metres(scenario: Scenario) -> tuple[float, float]:
    return scenario.ball[0] * X_SCALE, scenario.ball[1] * Y_SCALE


_P = Player
_KEEPER = (_P("GK", -1.0, 0.0),)
_CHASERS = (_P("LB", 0.12, 0.2), _P("CB", 0.12, 0.1), _P("CM", 0.12, 0.0),
            _P("CB", 0.12, -0.1), _P("RB", 0.12, -0.2))  # fmt: skip
_COUNTER_LEFT = (
    _P("GK", -1.0, 0.0), _P("LB", -0.672, -0.19576), _P("CB", -0.75, -0.06356),
    _P("CB", -0.75, 0.063559), _P("RB", -0.672, 0.19576), _P("CM", -0.434, -0.10568),
    _P("CM", -0.434, 0.10568), _P("CM", 0.5, -0.3161), _P("LM", 0.25, -0.1),
    _P("RM", 0.25, 0.1), _P("CF", 0.35, 0.316102),
)  # fmt: skip


def _counter_right(first_cb_x: float) -> tuple[Player, ...]:
    # GRF's file gives the RB the LB's coordinates; kept as the engine plays it.
    return (
        _P("GK", -1.0, 0.0), _P("LB", 0.128, -0.19576), _P("CB", first_cb_x, -0.06356),
        _P("CB", -0.4, 0.063559), _P("RB", 0.128, -0.19576), _P("CM", 0.365, -0.10568),
        _P("CM", 0.282, 0.0), _P("CM", 0.365, 0.10568), _P("LM", 0.54, -0.3161),
        _P("RM", 0.51, 0.0), _P("CF", 0.54, 0.316102),
    )  # fmt: skip


# 11_vs_11 formations (the reference, section 6): the kick-off team's, and the receiving one's.
_FULL_KICKOFF = (
    _P("GK", -1.0, 0.0), _P("RM", 0.0, 0.02), _P("CF", 0.0, -0.02), _P("LB", -0.422, -0.19576),
    _P("CB", -0.5, -0.06356), _P("CB", -0.5, 0.063559), _P("RB", -0.422, 0.19576),
    _P("CM", -0.184212, -0.10568), _P("CM", -0.267574, 0.0), _P("CM", -0.184212, 0.10568),
    _P("LM", -0.01, -0.2161),
)  # fmt: skip
_FULL_RECEIVING = (
    _FULL_KICKOFF[0],
    _P("RM", -0.05, 0.0),
    _P("CF", -0.01, 0.216102),
    *_FULL_KICKOFF[3:],
)
_FIVE_KICKOFF = (_P("GK", -1.0, 0.0), _P("RM", 0.0, 0.02), _P("CF", 0.0, -0.02),
                 _P("LB", -0.1, -0.1), _P("CB", -0.1, 0.1))  # fmt: skip
_FIVE_RECEIVING = (_P("GK", -1.0, 0.0), _P("RM", -0.04, 0.04), _P("CF", -0.04, -0.04),
                   _P("LB", -0.1, -0.1), _P("CB", -0.1, 0.1))  # fmt: skip

_SCENARIOS: dict[str, Scenario] = {}


def register_scenario(scenario: Scenario, overwrite: bool = False) -> None:
    """Makes ``scenario`` available as ``football/<scenario.name>``."""
    if scenario.name in _SCENARIOS and not overwrite:
        raise ValueError(f"football scenario '{scenario.name}' exists; pass overwrite=True")
    _SCENARIOS[scenario.name] = scenario


def get_scenario(name: str) -> Scenario:
    if name not in _SCENARIOS:
        raise ValueError(
            f"unknown football scenario '{name}'; valid: {', '.join(scenario_names())}"
        )
    return _SCENARIOS[name]


def scenario_names() -> list[str]:
    return sorted(_SCENARIOS)


for _scenario in (
    Scenario("academy_empty_goal_close", (0.77, 0.0), (*_KEEPER, _P("CB", 0.75, 0.0)),
             (_P("GK", 1.0, 0.0),), controlled=(1,)),
    Scenario("academy_empty_goal", (0.02, 0.0), (*_KEEPER, _P("CB", 0.0, 0.0)),
             (_P("GK", 1.0, 0.0),), controlled=(1,)),
    Scenario("academy_run_to_score", (0.02, 0.0), (*_KEEPER, _P("CB", 0.0, 0.0)),
             (_P("GK", 1.0, 0.0), *_CHASERS), controlled=(1,)),
    Scenario("academy_run_to_score_with_keeper", (0.02, 0.0), (*_KEEPER, _P("CB", 0.0, 0.0)),
             (*_KEEPER, *_CHASERS), controlled=(1,)),
    Scenario("academy_pass_and_shoot_with_keeper", (0.7, -0.28),
             (*_KEEPER, _P("CB", 0.7, 0.0), _P("CB", 0.7, -0.3)),
             (*_KEEPER, _P("CB", -0.75, 0.3)), controlled=(1, 2)),
    Scenario("academy_run_pass_and_shoot_with_keeper", (0.7, -0.28),
             (*_KEEPER, _P("CB", 0.7, 0.0), _P("CB", 0.7, -0.3)),
             (*_KEEPER, _P("CB", -0.75, 0.1)), controlled=(1, 2)),
    Scenario("academy_3_vs_1_with_keeper", (0.62, 0.0),
             (*_KEEPER, _P("CM", 0.6, 0.0), _P("CM", 0.7, 0.2), _P("CM", 0.7, -0.2)),
             (*_KEEPER, _P("CB", -0.75, 0.0)), controlled=(1, 2, 3)),
    Scenario(
        "academy_corner", (0.99, 0.41),
        (*_KEEPER, _P("LB", 1.0, 0.42), _P("CB", 0.7, 0.15), _P("CB", 0.7, 0.05),
         _P("RB", 0.7, -0.05), _P("CM", 0.0, 0.0), _P("CM", 0.6, 0.35), _P("CM", 0.8, 0.07),
         _P("LM", 0.8, -0.03), _P("RM", 0.8, -0.13), _P("CF", 0.7, -0.3)),
        (*_KEEPER, _P("LB", -0.75, -0.18), _P("CB", -0.75, -0.08), _P("CB", -0.75, 0.02),
         _P("RB", -1.0, -0.1), _P("CM", -0.8, -0.25), _P("CM", -0.88, -0.07),
         _P("CM", -0.88, 0.03), _P("LM", -0.88, 0.13), _P("RM", -0.75, 0.25),
         _P("CF", -0.2, 0.0)),
        controlled=tuple(range(1, 11)), end_on_possession_change=False,
    ),
    Scenario("academy_counterattack_easy", (0.26, -0.11), _COUNTER_LEFT, _counter_right(0.4),
             controlled=(7, 8, 9, 10)),
    Scenario("academy_counterattack_hard", (0.26, -0.11), _COUNTER_LEFT, _counter_right(-0.4),
             controlled=(7, 8, 9, 10)),
    Scenario(
        "academy_single_goal_versus_lazy", (-0.48, -0.06356), _FULL_KICKOFF,
        (_FULL_RECEIVING[0], *(p._replace(lazy=True) for p in _FULL_RECEIVING[1:])),
        controlled=tuple(range(1, 11)), time_limit=3000, end_on_possession_change=False,
    ),
    Scenario(
        "5_vs_5", (0.0, 0.0), _FIVE_KICKOFF, _FIVE_RECEIVING, controlled=(1, 2, 3, 4),
        controllable=(1, 2, 3, 4),  # GRF's file: the keepers are not controllable
        time_limit=3000, end_on_possession_change=False, end_on_out_of_play=False,
        restarts=True, left_difficulty=0.05, right_difficulty=0.05,
        kickoff=_FIVE_KICKOFF, receiving=_FIVE_RECEIVING,
    ),
):  # fmt: skip
    register_scenario(_scenario)
