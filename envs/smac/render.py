"""RGB frames of a SMAC battle, for replays (host side: NumPy and Pillow).

:func:`render_frame` draws one unbatched :class:`~marl.envs.smac.env.SMACState`,
seen from above with north (+y) up, at ``size // 32`` pixels per map cell:

* the terrain: unwalkable cells dark, walkable ones lighter the higher their cliff
  level;
* every living unit as a filled circle of its radius (at least
  :data:`MIN_UNIT_PIXELS`) in its team's colour (:data:`AGENT_COLOUR`,
  :data:`ENEMY_COLOUR`), one shade of it per unit type (see :func:`unit_colours`;
  on one-type maps the colour itself); air units have a white outline;
* above each living unit a health bar (:data:`HEALTH_COLOUR` on
  :data:`BAR_BACKGROUND`) whose filled length is proportional to health over
  maximum health, and below each protoss unit a shield bar
  (:data:`SHIELD_COLOUR`) for shields over their true maximum;
* dead units as a faint cross in their team's colour (no circle, no bars);
* a line from each living unit to the unit it fired at (in its team's colour) or
  healed (:data:`HEAL_COLOUR`) during the last agent step (``battle.acted_on``);
* a header with the map name, the step count over the step limit and the living
  units of each team, and, on maps where a team has several unit types, a legend
  of the shades;
* where a unit is drawn at least :data:`MARK_MIN_RADIUS` pixels wide, its type's
  letter (:data:`TYPE_MARKS`) on it.

A frame shows the whole map by default, or a square :class:`View` of it: a replay
(:func:`render_episode`) frames the box around every unit that lived during the
episode, with a margin, the same for every frame, so that the fight fills the frame
and nothing jumps; bars grow with the zoom (:data:`BAR_CELLS` of a cell, at least
:data:`BAR_HEIGHT` pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from marl.envs.smac.units import UNIT_TYPES

if TYPE_CHECKING:
    from marl.envs.smac.env import SMAC, SMACState

Colour = tuple[int, int, int]

AGENT_COLOUR: Colour = (40, 110, 235)
ENEMY_COLOUR: Colour = (220, 50, 45)
HEALTH_COLOUR: Colour = (60, 200, 60)
SHIELD_COLOUR: Colour = (80, 200, 250)
HEAL_COLOUR: Colour = (150, 255, 110)
BAR_BACKGROUND: Colour = (25, 25, 25)
AIR_OUTLINE: Colour = (245, 245, 245)
UNWALKABLE_COLOUR: Colour = (28, 28, 34)
GROUND_COLOUR: Colour = (84, 90, 72)  # walkable, cliff level 0
CLIFF_STEP = 26  # lighter per cliff level
HEADER_BACKGROUND: Colour = (12, 12, 16)
HEADER_TEXT: Colour = (235, 235, 235)
TEAM_COLOURS: tuple[Colour, Colour] = (AGENT_COLOUR, ENEMY_COLOUR)
# Shades by unit type (see unit_colours): blend towards white (> 0) or black (< 0).
TYPE_SHADES = (0.0, 0.45, -0.4, 0.7, -0.65)
MIN_UNIT_PIXELS = 3.0  # smallest drawn radius
DEAD_ALPHA = 0.5  # of the team colour in a dead unit's cross, over the terrain
BAR_HEIGHT = 3
MIN_BAR_LENGTH = 12
LINE_HEIGHT = 16  # of a header line, in pixels
DEFAULT_SIZE = 384
BAR_CELLS = 0.18  # bar height as a fraction of a cell, when that beats BAR_HEIGHT
MARK_MIN_RADIUS = 6.0  # pixels: smaller units carry no letter
MARK_COLOUR: Colour = (250, 250, 250)
MARK_OUTLINE: Colour = (10, 10, 10)
#: The letter drawn on each unit type (upper case for the larger of two that share one).
TYPE_MARKS = {
    "marine": "m", "marauder": "M", "medivac": "V", "stalker": "S", "zealot": "Z",
    "colossus": "C", "zergling": "z", "baneling": "b", "hydralisk": "H", "spine_crawler": "P",
}  # fmt: skip
VIEW_MARGIN = 2.0  # cells around the units' box in an episode's view
MIN_VIEW_CELLS = 8  # the closest a view zooms in
MAX_VIEW_ASPECT = 2.5  # the longer side of a view over the shorter, at most


class View(NamedTuple):
    """A window of the map in whole cells: ``x0 <= x < x0 + width``, ``y0 <= y < y0 + height``."""

    x0: int
    y0: int
    width: int
    height: int


def _shade(colour: Colour, amount: float) -> Colour:
    towards = 255.0 if amount > 0 else 0.0
    a = abs(amount)
    return tuple(int(round(c + a * (towards - c))) for c in colour)  # type: ignore[return-value]


def _blend(colour: Colour, background: Colour, alpha: float) -> Colour:
    return tuple(  # type: ignore[return-value]
        int(round(alpha * c + (1 - alpha) * b)) for c, b in zip(colour, background, strict=True)
    )


def unit_colours(unit_type: np.ndarray, team: np.ndarray) -> np.ndarray:
    """Each unit's fill colour, ``uint8 [U, 3]``: its team's colour, shaded by unit type.

    The unit types present in the battle are ranked by their index in
    :data:`~marl.envs.smac.units.UNIT_TYPES`; rank ``k`` gets ``TYPE_SHADES[k]`` of the
    team colour, so a battle with one unit type (3m, 8m, ...) shows the team colours
    themselves, and a type has the same shade in both teams.
    """
    unit_type = np.asarray(unit_type, np.int32)
    kinds = sorted({int(t) for t in unit_type})
    colours = np.zeros((len(unit_type), 3), np.uint8)
    for unit, (kind, side) in enumerate(zip(unit_type, np.asarray(team), strict=True)):
        shade = TYPE_SHADES[kinds.index(int(kind)) % len(TYPE_SHADES)]
        colours[unit] = _shade(TEAM_COLOURS[int(side)], shade)
    return colours


def terrain_image(env: SMAC, cell: int, view: View | None = None) -> np.ndarray:
    """The map's terrain (or ``view``'s part of it), ``uint8 [H * cell, W * cell, 3]`` with
    north (+y) up."""
    walkable = np.asarray(env.generator.walkable, bool)
    level = np.asarray(env.generator.cliff_level, np.int32)
    if view is not None:
        window = (slice(view.x0, view.x0 + view.width), slice(view.y0, view.y0 + view.height))
        walkable, level = walkable[window], level[window]
    ground = np.asarray(GROUND_COLOUR, np.int32) + CLIFF_STEP * level[..., None]
    blocked = np.asarray(UNWALKABLE_COLOUR, np.int32) + 6 * level[..., None]
    grid = np.clip(np.where(walkable[..., None], ground, blocked), 0, 255).astype(np.uint8)
    grid = np.transpose(grid, (1, 0, 2))[::-1]  # [x, y] -> rows from north to south
    return np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)


def _font(pixels: int) -> Any:
    try:
        return ImageFont.load_default(size=pixels)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _header_lines(env: SMAC, alive: np.ndarray, team: np.ndarray, step: int) -> list[str]:
    counts = [
        f"{name} {int((alive & (team == side)).sum())}/{int((team == side).sum())}"
        for side, name in enumerate(("agents", "enemies"))
    ]
    return [f"{env.generator.name}   step {step}/{env.time_limit}   " + "   ".join(counts)]


def _legend(unit_type: np.ndarray, team: np.ndarray) -> list[tuple[list[Colour], str]]:
    """(the shade of each team that has it, name) per unit type; nothing when every
    team has a single type."""
    if all(len(set(unit_type[team == side].tolist())) <= 1 for side in (0, 1)):
        return []
    colours = unit_colours(unit_type, team)
    legend = []
    for kind in sorted(set(unit_type.tolist())):
        swatches = []
        for side in (0, 1):
            units = np.flatnonzero((unit_type == kind) & (team == side))
            if len(units):
                swatches.append(tuple(int(c) for c in colours[units[0]]))
        legend.append((swatches, UNIT_TYPES[kind].name))
    return legend  # type: ignore[return-value]


def episode_view(env: SMAC, states: Sequence[SMACState], margin: float = VIEW_MARGIN) -> View:
    """The :class:`View` of the box around every unit alive in any of ``states``, with
    ``margin`` cells on each side, at least :data:`MIN_VIEW_CELLS` a side and no longer
    than :data:`MAX_VIEW_ASPECT` times its width or height, inside the map."""
    map_width, map_height = np.asarray(env.generator.walkable).shape
    points = [
        np.asarray(state.battle.position)[np.asarray(state.battle.alive, bool)] for state in states
    ]
    points = [p for p in points if len(p)]
    if not points:
        return View(0, 0, map_width, map_height)
    every = np.concatenate(points)
    low, high = every.min(axis=0) - margin, every.max(axis=0) + margin
    width, height = (int(np.ceil(side)) for side in high - low)
    width = max(width, MIN_VIEW_CELLS, int(np.ceil(height / MAX_VIEW_ASPECT)))
    height = max(height, MIN_VIEW_CELLS, int(np.ceil(width / MAX_VIEW_ASPECT)))
    width, height = min(width, map_width), min(height, map_height)
    centre = (low + high) / 2.0
    x0 = int(np.clip(np.floor(centre[0] - width / 2.0), 0, map_width - width))
    y0 = int(np.clip(np.floor(centre[1] - height / 2.0), 0, map_height - height))
    return View(x0, y0, width, height)


def render_episode(
    env: SMAC, states: Sequence[SMACState], size: int = DEFAULT_SIZE
) -> list[np.ndarray]:
    """Frames of an episode's states, all framed by one :func:`episode_view`."""
    view = episode_view(env, states)
    return [render_frame(env, state, size, view) for state in states]


def render_frame(
    env: SMAC, state: SMACState, size: int = DEFAULT_SIZE, view: View | None = None
) -> np.ndarray:
    """One frame of ``state`` (a single, unbatched state of ``env``), as RGB ``uint8``.

    Args:
        env: the :class:`~marl.envs.smac.env.SMAC` environment ``state`` belongs to
            (its map's name, step limit and terrain; the units come from ``state``,
            so SMACv2's random teams are drawn as they are).
        state: one state (no batch axes); NumPy or JAX arrays.
        size: the frame's width in pixels, rounded down to a multiple of the width in
            cells shown (the map's 32, or the view's).
        view: the part of the map to show (None: all of it).

    Returns:
        ``[H, W, 3]``: ``W = width * cell`` and the map's (or view's) ``height * cell``
        plus a header of :data:`LINE_HEIGHT` pixels per line (one, two with a legend),
        where ``cell = size // width``.
    """
    battle = state.battle
    position = np.asarray(battle.position, np.float64)
    alive = np.asarray(battle.alive, bool)
    health = np.asarray(battle.health, np.float64)
    shield = np.asarray(battle.shield, np.float64)
    team = np.asarray(battle.team, np.int32)
    acted_on = np.asarray(battle.acted_on, np.int32)
    types = np.asarray(battle.unit_type, np.int32)
    step = int(np.asarray(state.step_count))
    num_units = len(types)

    width_cells, height_cells = np.asarray(env.generator.walkable).shape
    x0, y0 = (0, 0) if view is None else (view.x0, view.y0)
    if view is not None:
        width_cells, height_cells = view.width, view.height
    cell = max(1, size // width_cells)
    bar_height = max(BAR_HEIGHT, int(round(BAR_CELLS * cell)))
    colours = unit_colours(types, team)
    legend = _legend(types, team)
    lines = _header_lines(env, alive, team, step)
    header = LINE_HEIGHT * (len(lines) + bool(legend))

    terrain = terrain_image(env, cell, view)
    frame = np.empty((header + terrain.shape[0], terrain.shape[1], 3), np.uint8)
    frame[:header] = HEADER_BACKGROUND
    frame[header:] = terrain
    image = Image.fromarray(frame, "RGB")
    draw = ImageDraw.Draw(image)

    def pixel(unit: int) -> tuple[float, float]:
        x, y = position[unit]
        return (x - x0) * cell, header + (y0 + height_cells - y) * cell

    radius = np.asarray(
        [max(UNIT_TYPES[t].radius * cell, MIN_UNIT_PIXELS) for t in types], np.float64
    )

    # Dead units: a faint cross in the team colour.
    for unit in np.flatnonzero(~alive):
        cx, cy = pixel(unit)
        r = max(radius[unit], MIN_UNIT_PIXELS + 1)
        row = int(np.clip(cy, 0, frame.shape[0] - 1))
        col = int(np.clip(cx, 0, frame.shape[1] - 1))
        ground = tuple(int(c) for c in frame[row, col])
        faint = _blend(TEAM_COLOURS[team[unit]], ground, DEAD_ALPHA)  # type: ignore[arg-type]
        draw.line([(cx - r, cy - r), (cx + r, cy + r)], fill=faint, width=2)
        draw.line([(cx - r, cy + r), (cx + r, cy - r)], fill=faint, width=2)

    # What each living unit fired at or healed during the last step.
    for unit in np.flatnonzero(alive):
        target = int(acted_on[unit])
        if not 0 <= target < num_units:
            continue
        heal = team[target] == team[unit]
        colour = HEAL_COLOUR if heal else TEAM_COLOURS[team[unit]]
        draw.line([pixel(unit), pixel(target)], fill=colour, width=2)

    # Living units, then their bars (so that no circle hides a bar).
    for unit in np.flatnonzero(alive):
        cx, cy = pixel(unit)
        r = radius[unit]
        fill = tuple(int(c) for c in colours[unit])
        box = [cx - r, cy - r, cx + r, cy + r]
        if UNIT_TYPES[types[unit]].air:
            draw.ellipse(box, fill=fill, outline=AIR_OUTLINE, width=2)
        else:
            draw.ellipse(box, fill=fill)
        if r >= MARK_MIN_RADIUS:
            mark = TYPE_MARKS.get(UNIT_TYPES[types[unit]].name, UNIT_TYPES[types[unit]].name[0])
            draw.text(
                (cx, cy),
                mark,
                fill=MARK_COLOUR,
                font=_font(int(round(1.2 * r))),
                anchor="mm",
                stroke_width=1,
                stroke_fill=MARK_OUTLINE,
            )
    for unit in np.flatnonzero(alive):
        cx, cy = pixel(unit)
        r = radius[unit]
        kind = UNIT_TYPES[types[unit]]
        length = max(int(round(2 * r)), MIN_BAR_LENGTH)
        left = int(round(cx - length / 2))
        _bar(
            draw,
            left,
            int(round(cy - r)) - 2 - bar_height,
            length,
            health[unit] / kind.health,
            HEALTH_COLOUR,
            bar_height,
        )
        if kind.shield > 0:
            _bar(
                draw,
                left,
                int(round(cy + r)) + 2,
                length,
                shield[unit] / kind.shield,
                SHIELD_COLOUR,
                bar_height,
            )

    font = _font(LINE_HEIGHT - 4)
    for i, line in enumerate(lines):
        draw.text((4, i * LINE_HEIGHT + 1), line, fill=HEADER_TEXT, font=font)
    if legend:
        x, y = 4, len(lines) * LINE_HEIGHT
        for swatches, name in legend:
            for colour in swatches:
                draw.rectangle([x, y + 4, x + 7, y + 11], fill=colour)
                x += 9
            draw.text((x + 1, y + 1), name, fill=HEADER_TEXT, font=font)
            x += 1 + int(draw.textlength(name, font=font)) + 10
    return np.asarray(image, np.uint8)


def _bar(
    draw: ImageDraw.ImageDraw,
    left: int,
    top: int,
    length: int,
    fraction: float,
    colour: Colour,
    height: int = BAR_HEIGHT,
) -> None:
    """A ``length``-pixel bar at (left, top), its first ``fraction`` filled with ``colour``."""
    draw.rectangle([left, top, left + length - 1, top + height - 1], fill=BAR_BACKGROUND)
    filled = int(round(length * float(np.clip(fraction, 0.0, 1.0))))
    if fraction > 0:
        filled = max(filled, 1)
    if filled:
        draw.rectangle([left, top, left + filled - 1, top + height - 1], fill=colour)
