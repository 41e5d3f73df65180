"""Where StarCraft II puts the units a SMAC map creates together at one point.

SMAC's map triggers create each group with one call at one fixed point (the shared
reference, SMAC §1b: ``CreateUnitsWithDefaultFacing(n, type, point)``), so every
episode of a map starts from the same positions: SMACv2 was made to randomise them
(its README, "Differences to SMAC"), and SMAC's authors say units are spawned on a
fixed point (oxwhirl/smac issue #86). Of a group, only the first unit stands on the
point; SC2 puts each later one nearby, where there is room (oxwhirl/smac issue #91,
Samvelyan: the point "becomes the initial position for just 1 unit whereas others get
spawned nearby ... since it is now occupied").

SC2 does not publish its placement search. Ours puts each unit, in creation order, at
the nearest position to its group's point on a grid of :data:`PLACEMENT_STEP` where it
overlaps no unit already placed in its layer (ground units avoid ground units, air
units air units) and, on the ground, stands on a walkable cell of the point's cliff
level. Among positions equally near, the search takes them counterclockwise from
``first_angle`` (east by default): like SC2's, it does not depend on where the enemy
is, so both sides get the same shape. It runs once per map, on the host.
"""

from __future__ import annotations

import math

import numpy as np

#: The spacing of the candidate positions (map cells).
PLACEMENT_STEP = 0.125
#: How far from its point a unit may be put (map cells); 64 zerglings need about 4.5.
PLACEMENT_REACH = 8.0


def candidate_offsets(
    step: float = PLACEMENT_STEP, reach: float = PLACEMENT_REACH, first_angle: float = 0.0
) -> np.ndarray:
    """Offsets ``[C, 2]`` within ``reach``, nearest first; ties counterclockwise from
    ``first_angle`` (radians)."""
    count = int(round(reach / step))
    grid = np.arange(-count, count + 1) * step
    dx, dy = np.meshgrid(grid, grid, indexing="ij")
    offsets = np.stack([dx.ravel(), dy.ravel()], -1)
    distance = np.round(np.hypot(offsets[:, 0], offsets[:, 1]), 9)
    angle = np.round(np.mod(np.arctan2(offsets[:, 1], offsets[:, 0]) - first_angle, 2 * math.pi), 9)
    order = np.lexsort((angle, distance))
    offsets = offsets[order]
    return offsets[distance[order] <= reach]


def place_units(
    points: np.ndarray,
    radius: np.ndarray,
    air: np.ndarray,
    walkable: np.ndarray,
    cliff_level: np.ndarray,
    first_angle: float = 0.0,
) -> np.ndarray:
    """Start positions ``[U, 2]`` of units created in order at ``points`` ``[U, 2]``.

    ``radius`` and ``air`` are per unit; ``walkable`` and ``cliff_level`` are the map's
    ``[x, y]`` grids. Raises ``ValueError`` when a unit finds no room within
    :data:`PLACEMENT_REACH`.
    """
    offsets = candidate_offsets(first_angle=first_angle)
    size_x, size_y = walkable.shape
    placed = np.zeros((0, 2))
    placed_radius = np.zeros(0)
    placed_air = np.zeros(0, bool)
    for point, unit_radius, unit_air in zip(points, radius, air, strict=True):
        candidates = np.asarray(point, np.float64) + offsets
        cell_x = np.floor(candidates[:, 0]).astype(int)
        cell_y = np.floor(candidates[:, 1]).astype(int)
        inside = (cell_x >= 0) & (cell_x < size_x) & (cell_y >= 0) & (cell_y < size_y)
        cell_x, cell_y = np.clip(cell_x, 0, size_x - 1), np.clip(cell_y, 0, size_y - 1)
        fits = inside
        if not unit_air:
            home = cliff_level[int(math.floor(point[0])), int(math.floor(point[1]))]
            fits = fits & walkable[cell_x, cell_y] & (cliff_level[cell_x, cell_y] == home)
        same_layer = placed_air == unit_air
        if same_layer.any():
            gap = np.hypot(
                candidates[:, None, 0] - placed[None, same_layer, 0],
                candidates[:, None, 1] - placed[None, same_layer, 1],
            )
            # A hair of slack: touching is allowed, overlapping is not.
            fits = fits & (gap >= placed_radius[None, same_layer] + unit_radius - 1e-6).all(1)
        if not fits.any():
            raise ValueError(
                f"no room for a unit of radius {unit_radius} within {PLACEMENT_REACH} of "
                f"{tuple(point)}"
            )
        chosen = candidates[np.argmax(fits)]
        placed = np.concatenate([placed, chosen[None]])
        placed_radius = np.append(placed_radius, unit_radius)
        placed_air = np.append(placed_air, unit_air)
    return placed.astype(np.float32)
