"""RGB frames of a football match, for replays (host side: NumPy and Pillow).

:func:`render_frame` draws one unbatched :class:`~marl.envs.football.env.FootballState`
seen from above, ``+x`` (the right team's goal) to the right and ``+y`` (the bottom
touch line) down, as in the observation, at ``size / 116`` pixels per metre:

* the pitch (:data:`PITCH_COLOUR`) inside a rim of :data:`~marl.envs.football.sim.PITCH_RIM`
  metres (:data:`RIM_COLOUR`; the simulator lets players run that far beyond the
  lines), with its lines in :data:`LINE_COLOUR`: touch lines, goal lines, the halfway
  line, the centre circle (9.15 m) and spot, the penalty areas (16.5 m deep, 40.32 m
  wide) with their spots and arcs, the goal areas (5.5 m by 18.32 m) and the corner
  arcs; each goal as a :data:`GOAL_COLOUR` rectangle behind its goal line (a 7.4 m
  mouth, :data:`GOAL_DEPTH` deep);
* every player as a filled circle of :data:`PLAYER_RADIUS` metres (at least
  :data:`MIN_PLAYER_PIXELS`) in its team's colour (:data:`LEFT_COLOUR`,
  :data:`RIGHT_COLOUR`; keepers :data:`LEFT_KEEPER_COLOUR`,
  :data:`RIGHT_KEEPER_COLOUR`, see :func:`player_colours`), with a short
  :data:`HEADING_COLOUR` line from its edge along its heading; a player in a sliding
  tackle (``slide > 0``: lunging, then on the ground) is faded towards the pitch
  (:data:`SLIDE_ALPHA` of its colour);
* the players the agents drive with a :data:`CONTROLLED_OUTLINE` and their agent
  index next to them;
* the ball's owner, if any, inside an :data:`OWNER_COLOUR` ring;
* the ball as a :data:`BALL_COLOUR` circle with a :data:`BALL_OUTLINE`, over a
  :data:`SHADOW_COLOUR` shadow on the ground at its ``(x, y)``: a ball in the air is
  drawn :data:`BALL_LIFT` metres up the screen per metre of height above the ground
  and larger by :data:`BALL_GROWTH` per metre (at most :data:`MAX_BALL_GROWTH`), so a
  lofted ball stands apart from its shadow;
* a header with the scenario's name, the step count over the step limit, the score
  (left team - right team) and the game mode when play is not normal (a kick-off,
  goal kick, ...).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from marl.envs.football.sim import (
    BALL_RADIUS,
    GOAL_HALF_WIDTH,
    HALF_LENGTH,
    HALF_WIDTH,
    PITCH_RIM,
)

if TYPE_CHECKING:
    from marl.envs.football.env import Football, FootballState

Colour = tuple[int, int, int]

PITCH_COLOUR: Colour = (52, 128, 56)
RIM_COLOUR: Colour = (40, 104, 44)
LINE_COLOUR: Colour = (228, 236, 228)
GOAL_COLOUR: Colour = (176, 180, 186)
LEFT_COLOUR: Colour = (40, 110, 235)
RIGHT_COLOUR: Colour = (220, 50, 45)
LEFT_KEEPER_COLOUR: Colour = (70, 215, 230)
RIGHT_KEEPER_COLOUR: Colour = (245, 150, 30)
CONTROLLED_OUTLINE: Colour = (255, 255, 255)
HEADING_COLOUR: Colour = (15, 15, 20)
OWNER_COLOUR: Colour = (255, 225, 40)
BALL_COLOUR: Colour = (250, 250, 250)
BALL_OUTLINE: Colour = (20, 20, 20)
SHADOW_COLOUR: Colour = (22, 60, 26)
LABEL_COLOUR: Colour = (255, 255, 255)
LABEL_STROKE: Colour = (0, 0, 0)
HEADER_BACKGROUND: Colour = (12, 12, 16)
HEADER_TEXT: Colour = (235, 235, 235)
TEAM_COLOURS: tuple[Colour, Colour] = (LEFT_COLOUR, RIGHT_COLOUR)
KEEPER_COLOURS: tuple[Colour, Colour] = (LEFT_KEEPER_COLOUR, RIGHT_KEEPER_COLOUR)
# GRF's game modes, by number (the header names every mode but the first).
GAME_MODES = ("normal", "kick-off", "goal kick", "free kick", "corner", "throw-in", "penalty")

# Pitch markings, metres (FIFA's; the simulator has only the pitch and the goal mouth).
CENTRE_CIRCLE = 9.15
PENALTY_AREA_DEPTH = 16.5
PENALTY_AREA_HALF_WIDTH = 20.16
GOAL_AREA_DEPTH = 5.5
GOAL_AREA_HALF_WIDTH = 9.16
PENALTY_SPOT = 11.0  # from the goal line
CORNER_ARC = 1.0
SPOT_RADIUS = 0.35
GOAL_DEPTH = 2.55
LINE_METRES = 0.3  # drawn line width (real ones are 0.12 m), at least one pixel

PLAYER_RADIUS = 1.0  # metres
MIN_PLAYER_PIXELS = 4.0  # smallest drawn radius
HEADING_PIXELS = 5.0  # the heading line's length beyond the player's edge
OWNER_RING_GAP = 2.0  # pixels between a player's edge and the owner ring
SLIDE_ALPHA = 0.45  # of a sliding player's colour, over the pitch
BALL_PIXELS = 3.0  # the ball's radius on the ground (it is 0.11 m: drawn larger)
BALL_LIFT = 1.0  # screen metres up per metre of height
BALL_GROWTH = 0.12  # larger by this fraction per metre of height
MAX_BALL_GROWTH = 1.0
LINE_HEIGHT = 16  # of the header, in pixels
DEFAULT_SIZE = 480

PITCH_METRES = (2 * (HALF_LENGTH + PITCH_RIM), 2 * (HALF_WIDTH + PITCH_RIM))  # x, y extent


def _blend(colour: Colour, background: Colour, alpha: float) -> Colour:
    return tuple(  # type: ignore[return-value]
        int(round(alpha * c + (1 - alpha) * b)) for c, b in zip(colour, background, strict=True)
    )


def _font(pixels: int) -> Any:
    try:
        return ImageFont.load_default(size=pixels)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def frame_shape(size: int = DEFAULT_SIZE) -> tuple[int, int]:
    """``(height, width)`` of a frame ``size`` pixels wide, header included."""
    return LINE_HEIGHT + int(round(PITCH_METRES[1] * size / PITCH_METRES[0])), size


def to_pixels(x: Any, y: Any, size: int = DEFAULT_SIZE) -> tuple[Any, Any]:
    """Pitch metres to (column, row) pixel coordinates of a frame ``size`` wide
    (floats; pixel ``(c, r)`` covers ``[c, c + 1) x [r, r + 1)``)."""
    scale = size / PITCH_METRES[0]
    column = (np.asarray(x, np.float64) + HALF_LENGTH + PITCH_RIM) * scale
    row = LINE_HEIGHT + (np.asarray(y, np.float64) + HALF_WIDTH + PITCH_RIM) * scale
    return column, row


def player_colours(team: np.ndarray, keeper: np.ndarray) -> np.ndarray:
    """Each player's fill colour, ``uint8 [P, 3]``: its team's, or its team's keeper's."""
    team = np.asarray(team, np.int32)
    keeper = np.asarray(keeper, bool)
    colours = np.asarray(TEAM_COLOURS, np.uint8)[team]
    return np.where(keeper[:, None], np.asarray(KEEPER_COLOURS, np.uint8)[team], colours)


def pitch_image(size: int = DEFAULT_SIZE) -> Image.Image:
    """The empty pitch with its markings and goals, without the header."""
    return _pitch(size).copy()


@functools.lru_cache(maxsize=4)
def _pitch(size: int) -> Image.Image:
    height, width = frame_shape(size)
    image = Image.new("RGB", (width, height - LINE_HEIGHT), RIM_COLOUR)
    draw = ImageDraw.Draw(image)
    scale = size / PITCH_METRES[0]
    line = max(1, int(round(LINE_METRES * scale)))

    def at(x: float, y: float) -> tuple[float, float]:
        column, row = to_pixels(x, y, size)
        return float(column), float(row) - LINE_HEIGHT

    def box(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
        (a, b), (c, d) = at(min(x0, x1), min(y0, y1)), at(max(x0, x1), max(y0, y1))
        return [(a, b), (c, d)]

    def circle(x: float, y: float, radius: float) -> list[float]:
        cx, cy = at(x, y)
        r = radius * scale
        return [cx - r, cy - r, cx + r, cy + r]

    draw.rectangle(box(-HALF_LENGTH, -HALF_WIDTH, HALF_LENGTH, HALF_WIDTH), fill=PITCH_COLOUR)
    for side in (-1.0, 1.0):  # goals: behind the goal lines
        goal_line = side * HALF_LENGTH
        draw.rectangle(
            box(goal_line, -GOAL_HALF_WIDTH, goal_line + side * GOAL_DEPTH, GOAL_HALF_WIDTH),
            fill=GOAL_COLOUR,
            outline=LINE_COLOUR,
            width=line,
        )
    draw.rectangle(
        box(-HALF_LENGTH, -HALF_WIDTH, HALF_LENGTH, HALF_WIDTH), outline=LINE_COLOUR, width=line
    )
    draw.line([at(0.0, -HALF_WIDTH), at(0.0, HALF_WIDTH)], fill=LINE_COLOUR, width=line)
    draw.ellipse(circle(0.0, 0.0, CENTRE_CIRCLE), outline=LINE_COLOUR, width=line)
    spot = max(SPOT_RADIUS, line / scale)
    draw.ellipse(circle(0.0, 0.0, spot), fill=LINE_COLOUR)
    # The D outside each penalty area: the arc of the circle around the penalty spot.
    arc = math.degrees(math.acos((PENALTY_AREA_DEPTH - PENALTY_SPOT) / CENTRE_CIRCLE))
    for side in (-1.0, 1.0):
        goal_line = side * HALF_LENGTH
        inward = -side
        draw.rectangle(
            box(
                goal_line,
                -PENALTY_AREA_HALF_WIDTH,
                goal_line + inward * PENALTY_AREA_DEPTH,
                PENALTY_AREA_HALF_WIDTH,
            ),
            outline=LINE_COLOUR,
            width=line,
        )
        draw.rectangle(
            box(
                goal_line,
                -GOAL_AREA_HALF_WIDTH,
                goal_line + inward * GOAL_AREA_DEPTH,
                GOAL_AREA_HALF_WIDTH,
            ),
            outline=LINE_COLOUR,
            width=line,
        )
        spot_x = goal_line + inward * PENALTY_SPOT
        draw.ellipse(circle(spot_x, 0.0, spot), fill=LINE_COLOUR)
        facing = 0.0 if inward > 0 else 180.0  # Pillow's angles: clockwise from +x
        draw.arc(
            circle(spot_x, 0.0, CENTRE_CIRCLE), facing - arc, facing + arc,
            fill=LINE_COLOUR, width=line,
        )  # fmt: skip
        for top in (-1.0, 1.0):  # corner arcs, a quarter inside the pitch each
            start = {(-1.0, -1.0): 0, (-1.0, 1.0): 270, (1.0, -1.0): 90, (1.0, 1.0): 180}
            draw.arc(
                circle(goal_line, top * HALF_WIDTH, CORNER_ARC),
                start[(side, top)], start[(side, top)] + 90,
                fill=LINE_COLOUR, width=line,
            )  # fmt: skip
    return image


def _header(env: Football, state: FootballState) -> str:
    match = state.match
    score = np.asarray(match.score).tolist()
    step = int(np.asarray(state.step_count))
    text = f"{env.scenario.name}   step {step}/{env.time_limit}   score {score[0]} - {score[1]}"
    mode = int(np.asarray(match.game_mode))
    if 0 < mode < len(GAME_MODES):
        text += f"   {GAME_MODES[mode]}"
    return text


def render_frame(env: Football, state: FootballState, size: int = DEFAULT_SIZE) -> np.ndarray:
    """One frame of ``state`` (a single, unbatched state of ``env``), as RGB ``uint8``.

    Args:
        env: the :class:`~marl.envs.football.env.Football` environment ``state``
            belongs to (its scenario's name and step limit, which players are keepers,
            which ones the agents drive).
        state: one state (no batch axes); NumPy or JAX arrays.
        size: the frame's width in pixels; the pitch and its rim (116 m) span it.

    Returns:
        ``[H, W, 3]`` with ``W = size`` and ``H`` (see :func:`frame_shape`) the rim's
        78 m at the same scale plus a header of :data:`LINE_HEIGHT` pixels.
    """
    match = state.match
    px, py = to_pixels(np.asarray(match.x), np.asarray(match.y), size)
    heading = np.asarray(match.heading, np.float64)
    slide = np.asarray(match.slide, np.int32)
    owner = int(np.asarray(match.owner))
    ball = match.ball
    ball_x, ball_y, ball_z = (float(np.asarray(v)) for v in (ball.x, ball.y, ball.z))
    statics = env.statics
    colours = player_colours(statics.team, statics.keeper)
    controlled = np.asarray(state.control.controlled)
    agent_of = {int(player): agent for agent, player in enumerate(controlled)}
    num_players = len(colours)

    height, width = frame_shape(size)
    scale = size / PITCH_METRES[0]
    image = Image.new("RGB", (width, height), HEADER_BACKGROUND)
    image.paste(_pitch(size), (0, LINE_HEIGHT))
    draw = ImageDraw.Draw(image)
    radius = max(PLAYER_RADIUS * scale, MIN_PLAYER_PIXELS)
    font = _font(LINE_HEIGHT - 4)
    label_font = _font(max(9, int(round(2.5 * radius))))

    # The ball's shadow, on the ground under the players.
    shadow_x, shadow_y = (float(v) for v in to_pixels(ball_x, ball_y, size))
    lift = max(ball_z - BALL_RADIUS, 0.0)
    growth = 1.0 + min(BALL_GROWTH * lift, MAX_BALL_GROWTH)
    ball_r = BALL_PIXELS * growth
    shadow_r = BALL_PIXELS
    draw.ellipse(
        [shadow_x - shadow_r, shadow_y - 0.6 * shadow_r, shadow_x + shadow_r,
         shadow_y + 0.6 * shadow_r],
        fill=SHADOW_COLOUR,
    )  # fmt: skip

    # Players lying or lunging first, so that standing ones are drawn over them.
    for player in sorted(range(num_players), key=lambda p: slide[p] == 0):
        cx, cy = float(px[player]), float(py[player])
        fill: Colour = tuple(int(c) for c in colours[player])  # type: ignore[assignment]
        if slide[player] > 0:
            fill = _blend(fill, PITCH_COLOUR, SLIDE_ALPHA)
        r = radius
        tip = r + HEADING_PIXELS
        dx, dy = math.cos(heading[player]), math.sin(heading[player])
        draw.line(
            [(cx + r * dx, cy + r * dy), (cx + tip * dx, cy + tip * dy)],
            fill=HEADING_COLOUR,
            width=2,
        )
        outline = CONTROLLED_OUTLINE if player in agent_of else None
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=outline, width=2)
        if player == owner:
            ring = r + OWNER_RING_GAP + 2
            draw.ellipse(
                [cx - ring, cy - ring, cx + ring, cy + ring], outline=OWNER_COLOUR, width=2
            )
    for player, agent in agent_of.items():  # the agent indices, over every circle
        cx, cy = float(px[player]), float(py[player])
        label = str(agent)
        bottom = draw.textbbox((0, 0), label, font=label_font)[3]
        draw.text(
            (cx + radius, cy - radius - bottom),
            label,
            fill=LABEL_COLOUR,
            font=label_font,
            stroke_width=1,
            stroke_fill=LABEL_STROKE,
        )

    # The ball, lifted up the screen by its height.
    bx, by = shadow_x, shadow_y - BALL_LIFT * lift * scale
    draw.ellipse(
        [bx - ball_r, by - ball_r, bx + ball_r, by + ball_r],
        fill=BALL_COLOUR,
        outline=BALL_OUTLINE,
        width=1,
    )

    draw.rectangle([0, 0, width - 1, LINE_HEIGHT - 1], fill=HEADER_BACKGROUND)
    draw.text((4, 1), _header(env, state), fill=HEADER_TEXT, font=font)
    return np.asarray(image, np.uint8)
