"""The battle simulation behind the SMAC-style environments: units, orders, combat.

Model:

* Time is SC2's game time, 16 game loops per game second; one agent step is SMAC's
  ``step_mul = 8`` loops (0.5 game s), simulated as ``substeps`` equal sub-steps.
  Weapon cooldowns count down continuously and carry their remainder over when a
  unit fires, so the fire rate (and damage per second) equals SC2's in expectation
  whatever the sub-step; a shot is only delayed to the next sub-step boundary.
  SC2 adds a random delay of -1 to +2 game loops to each shot's cooldown (PySC2's
  docs, "Determinism and Randomness": it is why a fair 1v1 has a random outcome);
  :func:`advance` takes those delays when given (:func:`weapon_delays`).
* Orders persist until replaced: stop, hold (no move, no fire), move to a point,
  attack a unit (approach to weapon range, then fire at every cooldown), attack-move
  (walk to a point, engage the closest opponent in sight on the way) and heal a unit
  (medivac). Idle stock units (SC2's own, the opponent's) fire at the closest
  opponent that enters their weapon range; the agents' units only act on orders.
* Ranges are SC2's, edge to edge: a unit fires when the distance between the two
  centres minus both radii is at most its weapon range.
* Damage (SC2 rules): bonus damage by attribute is added first; shields absorb 1:1;
  what passes them loses the target's armour, per hit, with a floor of 0.5 per
  hit. Hits that land on the same target in one sub-step are resolved one after
  another, so shields, armour and the 0.5 floor apply as in the game.
* Zealots hit twice per attack; colossi sweep two beams over a 2.5-wide line
  through the target (each unit in it hit once per beam); banelings burst on
  contact, splash every opposing ground unit within 2.2 of their centre (edge
  distance) and die. No friendly fire.
* Protoss shields regenerate 2 per game s after 10 game s without damage; zerg
  units regenerate 0.2734 HP per game s. Medivacs heal 9 HP per game s at one
  energy per 3 HP, regenerate 0.5625 energy per game s and start no heal below 5
  energy. A stock medivac without a heal order heals the closest wounded friendly
  biological unit in its sight (SC2's autocast).
* Movement is straight toward the goal at the unit's speed, clamped to the map and
  blocked by unwalkable cells (per axis, so units slide along walls); cliff walkers
  ignore cliffs. Ground units that overlap (measured at the start of a sub-step) are
  pushed apart by half their overlap.

Deviations from SC2: no pathfinding, acceleration, turning or attack animation (a shot
lands when the cooldown allows, at most one sub-step late), no projectile travel time,
no high-ground vision rule, no random update order, and a simple separation push.
The numerical layout is tuned for XLA:CPU: coordinates are handled as separate x and y
arrays, per-unit lookups are gathers, and the mechanics a roster lacks are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.smac.units import unit_table
from marl.types import Array, PRNGKey

LOOPS_PER_SECOND = 16.0
STEP_LOOPS = 8  # SMAC's step_mul
STEP_SECONDS = STEP_LOOPS / LOOPS_PER_SECOND
#: The random delay SC2 adds to a shot's cooldown, in game loops (PySC2's docs).
WEAPON_DELAY_LOOPS = (-1.0, 2.0)

ORDER_STOP, ORDER_MOVE, ORDER_ATTACK, ORDER_ATTACK_MOVE, ORDER_HEAL, ORDER_HOLD = range(6)

MIN_DAMAGE_PER_HIT = 0.5
SHIELD_REGEN_DELAY = 10.0  # game seconds without damage
SHIELD_REGEN_RATE = 2.0  # per game second
HEAL_MIN_ENERGY = 5.0
COLOSSUS_LINE_HALF_LENGTH = 1.25
COLOSSUS_LINE_SEARCH_RADIUS = 0.15
NO_TARGET = -1


@struct.dataclass
class Battle:
    """Every unit of both teams (allies first), as arrays over units ``[U]``."""

    unit_type: Array  # int32
    team: Array  # int32: 0 agents' team, 1 opponents
    position: Array  # [U, 2] float32
    health: Array
    shield: Array
    energy: Array
    cooldown: Array  # game seconds until the weapon is ready (may be slightly negative)
    quiet_time: Array  # game seconds since the unit last took damage
    order: Array  # int32, ORDER_*
    order_unit: Array  # int32 target unit of ORDER_ATTACK / ORDER_HEAL, NO_TARGET otherwise
    order_point: Array  # [U, 2] goal of ORDER_MOVE / ORDER_ATTACK_MOVE
    alive: Array  # bool
    time: Array  # game seconds since the battle started
    # The unit each unit last fired at or healed during the current agent step
    # (NO_TARGET if none); kept for replays, not read by the simulation.
    acted_on: Array  # int32
    # The target SC2's automatic targeting chose for a unit that picks its own targets
    # (attack-move, idle stock units): kept while it is valid and in weapon range.
    auto_target: Array  # int32, NO_TARGET if none


@struct.dataclass
class Terrain:
    walkable: Array  # [32, 32] bool, indexed [x, y]
    cliff_level: Array  # [32, 32] int32


def unit_data(unit_type: Array | np.ndarray) -> dict[str, Array]:
    """Every unit's row of the unit table, by field.

    A NumPy ``unit_type`` (a fixed roster, as on every SMAC v1 map) gives NumPy arrays,
    which XLA sees as constants: nothing is gathered per environment at run time.
    """
    table = unit_table()
    if isinstance(unit_type, np.ndarray):
        return {name: values[unit_type] for name, values in table.items()}
    return {name: jnp.asarray(values)[unit_type] for name, values in table.items()}


class Mechanics(NamedTuple):
    """The mechanics a battle needs and how stock units behave (static).

    Leaving out mechanics no unit of a roster has (no shields on a marine map, no splash
    without colossi or banelings) changes no result and saves their cost.
    """

    line_splash: bool = True
    burst: bool = True
    heal: bool = True
    shields: bool = True
    health_regen: bool = True
    air: bool = True
    # The team of SC2's stock units, whose idle units fire at what enters their weapon
    # range (-1: none, e.g. when a policy controls the opponents).
    stock_team: int = 1
    # Attack-moving units engage opponents within their sight (SC2); with False only
    # within weapon range (the built-in opponent's low difficulties).
    attack_move_sight: bool = True


ALL_MECHANICS = Mechanics()


def mechanics_for(unit_types: Sequence[int]) -> Mechanics:
    """The :class:`Mechanics` of a battle whose units are drawn from ``unit_types``."""
    table = unit_table()
    types = np.unique(np.asarray(unit_types, np.int32))
    return Mechanics(
        line_splash=bool(table["line_splash"][types].any()),
        burst=bool(table["dies_on_attack"][types].any()),
        heal=bool((table["heal_rate"][types] > 0).any()),
        shields=bool((table["shield"][types] > 0).any()),
        health_regen=bool((table["health_regen"][types] > 0).any()),
        air=bool(table["air"][types].any()),
    )


def new_battle(unit_types: Array, teams: Array, positions: Array) -> Battle:
    """A battle at time 0: full health, shields and starting energy, weapons ready, no orders."""
    data = unit_data(unit_types)
    num_units = unit_types.shape[0]
    return Battle(
        unit_type=jnp.asarray(unit_types, jnp.int32),
        team=jnp.asarray(teams, jnp.int32),
        position=jnp.asarray(positions, jnp.float32),
        health=data["health"].astype(jnp.float32),
        shield=data["shield"].astype(jnp.float32),
        energy=data["start_energy"].astype(jnp.float32),
        cooldown=jnp.zeros(num_units, jnp.float32),
        quiet_time=jnp.zeros(num_units, jnp.float32),
        order=jnp.full(num_units, ORDER_STOP, jnp.int32),
        order_unit=jnp.full(num_units, NO_TARGET, jnp.int32),
        order_point=jnp.asarray(positions, jnp.float32),
        alive=jnp.ones(num_units, bool),
        time=jnp.float32(0.0),
        acted_on=jnp.full(num_units, NO_TARGET, jnp.int32),
        auto_target=jnp.full(num_units, NO_TARGET, jnp.int32),
    )


def open_terrain() -> Terrain:
    """A flat, fully walkable 32 x 32 map."""
    return Terrain(jnp.ones((32, 32), bool), jnp.zeros((32, 32), jnp.int32))


# ------------------------------------------------------------------ damage
def resolve_hits(
    health: Array,
    shield: Array,
    armor: Array,
    hit_damage: Array,
    hit_count: Array,
) -> tuple[Array, Array, Array, Array]:
    """Applies every hit of a sub-step, attacker by attacker, to every target.

    ``hit_damage [A, T]`` is the damage of one hit of attacker ``a`` on target ``t``
    (bonus included) and ``hit_count [A, T]`` how many hits land (0, 1 or 2). Returns
    the new health and shields ``[T]`` and the health and shield damage dealt ``[T]``.
    """
    # Hits land in attacker order, each seeing the shields the earlier ones left: the
    # damage before attacker ``a`` is a prefix sum over attackers, written out row by
    # row (a few times cheaper than a cumsum or a triangular matmul on XLA:CPU).
    total = hit_count * hit_damage
    rows = [jnp.zeros_like(total[0])]
    for attacker in range(hit_damage.shape[0] - 1):
        rows.append(rows[-1] + total[attacker])
    before = jnp.stack(rows)
    shield_left = jnp.maximum(shield[None] - before, 0.0)
    to_shield, to_health = [], []
    for hit in (1, 2):  # the second hit of a double attack sees what the first left
        lands = hit_count >= hit
        absorbed = jnp.where(lands, jnp.minimum(hit_damage, shield_left), 0.0)
        through = jnp.where(lands, hit_damage - absorbed, 0.0)
        to_shield.append(absorbed)
        to_health.append(
            jnp.where(through > 0, jnp.maximum(through - armor[None], MIN_DAMAGE_PER_HIT), 0.0)
        )
        shield_left = shield_left - absorbed
    shield_damage = (to_shield[0] + to_shield[1]).sum(0)
    health_damage = jnp.minimum((to_health[0] + to_health[1]).sum(0), health)
    return health - health_damage, shield - shield_damage, health_damage, shield_damage


def hit_damage_matrix(attacker: dict[str, Array], target: dict[str, Array]) -> Array:
    """Damage of one hit of every unit on every unit, bonus by attribute included: ``[U, U]``."""
    bonus = attacker["bonus_damage"][:, None] * (
        (attacker["bonus_vs_armored"][:, None] & target["armored"][None])
        | (attacker["bonus_vs_light"][:, None] & target["light"][None])
    )
    return attacker["damage"][:, None] + bonus


# -------------------------------------------------------------- simulation
def _edge_distance(position: Array, radius: Array) -> Array:
    centre = jnp.linalg.norm(position[:, None] - position[None], axis=-1)
    return centre - radius[:, None] - radius[None]


def _terrain_level(terrain: Terrain) -> Array:
    """The cliff level of every cell, ``-1`` where units cannot stand."""
    return jnp.where(terrain.walkable, terrain.cliff_level, -1)


def _walkable_at(level_grid: Array, x: Array, y: Array, cliff_walker: Array, level: Array) -> Array:
    inside = (x >= 0.0) & (x < 32.0) & (y >= 0.0) & (y < 32.0)
    cell_x = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, 31)
    cell_y = jnp.clip(jnp.floor(y).astype(jnp.int32), 0, 31)
    return inside & (cliff_walker | (level_grid[cell_x, cell_y] == level))


def _pair_offsets(x: Array, y: Array) -> tuple[Array, Array, Array]:
    """``x[i] - x[j]``, ``y[i] - y[j]`` and the distance, ``[U, U]`` each.

    Coordinates are kept as separate arrays: a trailing axis of 2 is the slow layout on
    XLA:CPU (a norm over it costs twice the whole split computation).
    """
    dx = x[:, None] - x[None]
    dy = y[:, None] - y[None]
    return dx, dy, jnp.sqrt(dx * dx + dy * dy)


def substep(
    battle: Battle,
    terrain: Terrain,
    dt: float,
    data: dict[str, Array] | None = None,
    mechanics: Mechanics = ALL_MECHANICS,
    weapon_delay: Array | None = None,
) -> tuple[Battle, Array, Array]:
    """Advances the battle by ``dt`` game seconds.

    ``data`` is :func:`unit_data` of the battle's unit types (looked up when omitted);
    ``mechanics`` may leave out mechanics no unit of the battle has; ``weapon_delay``
    ``[U]`` (game seconds) is added to the cooldown of each unit that fires (none:
    no delay). Returns the new battle and the health and shield damage each unit took
    ``[U]``.
    """
    if data is None:
        data = unit_data(battle.unit_type)
    num_units = battle.unit_type.shape[0]
    index = jnp.arange(num_units)
    alive = battle.alive
    opponents = (battle.team[:, None] != battle.team[None]) & alive[None] & alive[:, None]
    x, y = battle.position[:, 0], battle.position[:, 1]
    pair_dx, pair_dy, centre = _pair_offsets(x, y)
    radius = jnp.asarray(data["radius"])
    edge = centre - radius[:, None] - radius[None]
    can_hit = opponents & (data["damage"][:, None] > 0)
    if mechanics.air:
        can_hit = can_hit & (~data["air"][None] | data["targets_air"][:, None])

    # Targets: the ordered unit, or for attack-move and idle stock units SC2's automatic
    # targeting (Liquipedia, "Automatic Targeting"): a chosen target stays chosen until
    # it is no longer valid or leaves weapon range, or a higher-priority target (a
    # threat: one that can fire back) enters weapon range; a new one is the closest
    # threat, else the closest opponent, within sight (attack-move) or weapon range.
    ordered = battle.order_unit
    safe_ordered = jnp.maximum(ordered, 0)
    ordered_ok = (ordered >= 0) & alive[safe_ordered]
    # can_hit covers both units being alive.
    attack_ok = (battle.order == ORDER_ATTACK) & (ordered >= 0) & can_hit[index, safe_ordered]
    idle_stock = (battle.order == ORDER_STOP) & (battle.team == mechanics.stock_team)
    acquire_range = jnp.where(
        battle.order == ORDER_ATTACK_MOVE,
        data["sight"] if mechanics.attack_move_sight else data["weapon_range"],
        jnp.where(idle_stock, data["weapon_range"], -1.0),
    )
    # Laid out [target, unit] (``edge`` and ``centre`` are symmetric): vmapped, XLA:CPU
    # finds the minimum over a short middle axis about 5x faster than over the last.
    candidates = can_hit.T & (edge <= acquire_range[None])
    threats = candidates & can_hit  # [target, unit]: the target can fire on the unit
    any_threat = threats.any(axis=0)
    preferred = jnp.where(any_threat[None], threats, candidates)
    closest = jnp.argmin(jnp.where(preferred, centre, jnp.inf), axis=0)
    acquired = candidates.any(axis=0)
    # The previous target's tests as [target, unit] masks reduced over targets, in the
    # layout above, rather than as gathers.
    previous = battle.auto_target
    in_weapon_range = can_hit.T & (edge <= data["weapon_range"][None])
    was_previous = index[:, None] == previous[None]
    threat_in_range = (in_weapon_range & can_hit).any(axis=0)
    keeps = (acquire_range >= 0.0) & (
        was_previous & in_weapon_range & (can_hit | ~threat_in_range[None])
    ).any(axis=0)
    automatic = jnp.where(keeps, previous, jnp.where(acquired, closest, NO_TARGET))
    target = jnp.where(attack_ok, ordered, automatic)
    has_target = target >= 0
    safe_target = jnp.maximum(target, 0)
    target_edge = edge[index, safe_target]
    in_range = has_target & (target_edge <= data["weapon_range"])

    max_health = data["health"]
    if mechanics.heal:
        # Stock healers not told otherwise heal (autocast) the closest wounded friendly
        # biological unit in sight, following it off their attack-move path.
        wounded = alive & data["biological"] & (battle.health < max_health)
        friends = (battle.team[:, None] == battle.team[None]) & wounded[:, None]  # [friend, unit]
        friends = friends & ~np.eye(num_units, dtype=bool) & (edge <= data["sight"][None])
        autocast = (
            (battle.team == mechanics.stock_team)
            & (battle.order != ORDER_HEAL)
            & (battle.order != ORDER_HOLD)
            & (data["heal_rate"] > 0)
            & friends.any(axis=0)
        )
        closest_wounded = jnp.argmin(jnp.where(friends, centre, jnp.inf), axis=0)
        heal_unit = jnp.where(autocast, closest_wounded, safe_ordered)
        heal_ok = ((battle.order == ORDER_HEAL) & ordered_ok) | autocast
        heal_ok = heal_ok & (battle.team[heal_unit] == battle.team)
        missing = (max_health - battle.health)[heal_unit]
        heal_ok = heal_ok & (missing > 0) & (data["heal_rate"] > 0)
        heal_in_range = heal_ok & (edge[index, heal_unit] <= data["heal_range"])
    else:
        heal_ok = heal_in_range = jnp.zeros(num_units, bool)

    # Movement goals.
    target_x, target_y = x[safe_target], y[safe_target]
    goal_x = jnp.where(has_target, target_x, battle.order_point[:, 0])
    goal_y = jnp.where(has_target, target_y, battle.order_point[:, 1])
    wants_to_move = (has_target & ~in_range) | (
        ((battle.order == ORDER_MOVE) | (battle.order == ORDER_ATTACK_MOVE)) & ~has_target
    )
    if mechanics.heal:
        goal_x = jnp.where(heal_ok, x[heal_unit], goal_x)
        goal_y = jnp.where(heal_ok, y[heal_unit], goal_y)
        wants_to_move = wants_to_move | (heal_ok & ~heal_in_range)
    wants_to_move = wants_to_move & alive
    offset_x, offset_y = goal_x - x, goal_y - y
    distance = jnp.sqrt(offset_x * offset_x + offset_y * offset_y)
    speed = jnp.where(battle.team == 0, data["speed"], data["enemy_speed"])
    step_length = jnp.where(wants_to_move, jnp.minimum(speed * dt, distance), 0.0)
    step_scale = step_length / jnp.maximum(distance, 1e-6)
    moved_x, moved_y = x + offset_x * step_scale, y + offset_y * step_scale
    # Try the full move, then each axis alone: units slide along walls.
    level_grid = _terrain_level(terrain)
    level = level_grid[jnp.clip(x.astype(jnp.int32), 0, 31), jnp.clip(y.astype(jnp.int32), 0, 31)]
    walker = data["cliff_walker"] | data["air"]
    full_ok = _walkable_at(level_grid, moved_x, moved_y, walker, level)
    x_ok = _walkable_at(level_grid, moved_x, y, walker, level)
    y_ok = _walkable_at(level_grid, x, moved_y, walker, level)
    new_x = jnp.where(full_ok | x_ok, moved_x, x)
    new_y = jnp.where(full_ok | (~x_ok & y_ok), moved_y, y)
    arrived = (battle.order == ORDER_MOVE) & (distance <= speed * dt)
    order = jnp.where(
        arrived | ((battle.order == ORDER_ATTACK) & ~attack_ok), ORDER_STOP, battle.order
    )
    if mechanics.heal:
        order = jnp.where((battle.order == ORDER_HEAL) & ~heal_ok, ORDER_STOP, order)

    # Fire.
    cooldown = jnp.maximum(battle.cooldown - dt, -dt)
    fires = in_range & (cooldown <= 0.0) & alive & (data["cooldown"] > 0)
    reload = data["cooldown"] if weapon_delay is None else data["cooldown"] + weapon_delay
    cooldown = jnp.where(fires, cooldown + reload, cooldown)
    per_hit = hit_damage_matrix(data, data)
    aimed = (target[:, None] == index[None]) & fires[:, None]
    hit_count = jnp.where(aimed, data["hits"][:, None], 0)
    ground = ~data["air"] if mechanics.air else jnp.ones(num_units, bool)
    if mechanics.line_splash:
        # Colossus beams: every opposing ground unit near the line through the target,
        # perpendicular to the line of fire, is hit once per beam.
        fire_x, fire_y = target_x - x, target_y - y
        fire_length = jnp.maximum(jnp.sqrt(fire_x * fire_x + fire_y * fire_y), 1e-6)
        fire_x, fire_y = fire_x / fire_length, fire_y / fire_length
        from_target_x = x[None] - target_x[:, None]  # [attacker, unit]
        from_target_y = y[None] - target_y[:, None]
        along = from_target_x * fire_x[:, None] + from_target_y * fire_y[:, None]
        across = jnp.abs(from_target_x * fire_y[:, None] - from_target_y * fire_x[:, None])
        reach = COLOSSUS_LINE_SEARCH_RADIUS + radius[None]
        in_line = (jnp.abs(along) <= reach) & (across <= COLOSSUS_LINE_HALF_LENGTH + reach)
        line_splash = (fires & data["line_splash"])[:, None] & in_line & can_hit & ground[None]
        hit_count = jnp.where(line_splash, data["hits"][:, None], hit_count)
    if mechanics.burst:
        # Banelings: everything opposing and on the ground within the splash radius.
        bursts = in_range & alive & data["dies_on_attack"]
        splash = (
            bursts[:, None]
            & opponents
            & ground[None]
            & (centre - radius[None] <= data["splash_radius"][:, None])
        )
        hit_count = jnp.where(splash, 1, hit_count)
    if mechanics.shields:
        health, shield, health_damage, shield_damage = resolve_hits(
            battle.health, battle.shield, data["armor"], per_hit, hit_count
        )
    else:
        health, health_damage = _resolve_unshielded_hits(
            battle.health, data["armor"], per_hit, hit_count
        )
        shield, shield_damage = battle.shield, jnp.zeros_like(health_damage)

    # Heal, regenerate.
    energy = battle.energy
    if mechanics.heal:
        heal_amount = jnp.where(
            heal_in_range & (battle.energy >= HEAL_MIN_ENERGY),
            jnp.minimum(
                jnp.minimum(data["heal_rate"] * dt, missing),
                battle.energy * data["hp_per_energy"],
            ),
            0.0,
        )
        # Two healers on one target each cover what it missed: cap at full health.
        health = jnp.minimum(health.at[heal_unit].add(heal_amount), max_health)
        energy = energy - jnp.where(
            heal_amount > 0, heal_amount / jnp.maximum(data["hp_per_energy"], 1e-6), 0.0
        )
        energy = jnp.minimum(energy + data["energy_regen"] * dt, data["max_energy"])
    damaged = (health_damage + shield_damage) > 0
    quiet_time = jnp.where(damaged, 0.0, battle.quiet_time + dt)
    if mechanics.shields:
        regen_shield = data["regenerates_shield"] & (quiet_time >= SHIELD_REGEN_DELAY)
        shield = jnp.where(
            regen_shield, jnp.minimum(shield + SHIELD_REGEN_RATE * dt, data["shield"]), shield
        )
    if mechanics.health_regen:
        health = jnp.where(
            health > 0, jnp.minimum(health + data["health_regen"] * dt, max_health), health
        )

    acted_on = jnp.where(fires, target, battle.acted_on)
    if mechanics.heal:
        acted_on = jnp.where(heal_amount > 0, heal_unit, acted_on)
    alive = alive & (health > 0)
    if mechanics.burst:
        acted_on = jnp.where(bursts, target, acted_on)
        alive = alive & ~bursts
    health = jnp.where(alive, health, 0.0)
    shield = jnp.where(alive, shield, 0.0)
    push_x, push_y = _separate(pair_dx, pair_dy, centre, data, alive, mechanics)
    upper = 32.0 - 1e-3
    new_x = jnp.clip(new_x + push_x, 0.0, upper)
    new_y = jnp.clip(new_y + push_y, 0.0, upper)
    position = jnp.stack([new_x, new_y], axis=-1)
    new_battle = battle.replace(
        position=position,
        health=health,
        shield=shield,
        energy=energy,
        cooldown=cooldown,
        quiet_time=quiet_time,
        order=jnp.where(alive, order, ORDER_STOP),
        alive=alive,
        time=battle.time + dt,
        acted_on=acted_on,
        auto_target=jnp.where(attack_ok | ~alive, NO_TARGET, automatic),
    )
    return new_battle, health_damage, shield_damage


def _resolve_unshielded_hits(
    health: Array, armor: Array, hit_damage: Array, hit_count: Array
) -> tuple[Array, Array]:
    """:func:`resolve_hits` without shields: every hit loses the armour on its own."""
    per_hit = jnp.maximum(hit_damage - armor[None], MIN_DAMAGE_PER_HIT)
    damage = jnp.minimum(jnp.sum(hit_count * per_hit, axis=0), health)
    return health - damage, damage


def _separate(
    dx: Array,
    dy: Array,
    distance: Array,
    data: dict[str, Array],
    alive: Array,
    mechanics: Mechanics = ALL_MECHANICS,
) -> tuple[Array, Array]:
    """How far each living ground unit is pushed to undo half of every overlap: ``(x, y)``.

    Measured on the sub-step's starting positions (``dx[i, j] = x[i] - x[j]``, ...), so an
    overlap made by a move is undone from the next sub-step on, as SC2's separation
    settles over a few game loops.
    """
    num_units = distance.shape[0]
    on_ground = alive & ~data["air"] if mechanics.air else alive
    ground = on_ground & (data["speed"] > 0)
    overlap = data["radius"][:, None] + data["radius"][None] - distance
    pair = ground[:, None] & on_ground[None] & (overlap > 0)
    pair = pair & ~np.eye(num_units, dtype=bool)
    # Coincident units separate along a fixed direction that differs per pair.
    angle = np.arange(num_units) * 2.399
    fallback_x = (np.cos(angle)[:, None] - np.cos(angle)[None]).astype(np.float32)
    fallback_y = (np.sin(angle)[:, None] - np.sin(angle)[None]).astype(np.float32)
    apart = distance > 1e-6
    half_overlap = jnp.where(pair, 0.5 * overlap, 0.0)
    scale = half_overlap / jnp.maximum(distance, 1e-6)
    push_x = jnp.where(apart, dx * scale, half_overlap * fallback_x).sum(1)
    push_y = jnp.where(apart, dy * scale, half_overlap * fallback_y).sum(1)
    return push_x, push_y


#: Random bits per delay: a 32-bit word gives four sub-steps' delays of one unit.
DELAY_BITS = 8


def weapon_delay_words(substeps: int) -> int:
    """How many 32-bit random words per unit :func:`weapon_delays_from_bits` needs."""
    return -(-substeps * DELAY_BITS // 32)


def weapon_delays_from_bits(words: Array, substeps: int) -> Array:
    """SC2's random delays of each shot ``[substeps, U]`` in game seconds, from random words
    ``[weapon_delay_words(substeps), U]`` (uint32): uniform over 256 levels spanning -1 to
    +2 game loops (PySC2's docs; SMAX draws the same range).

    Eight bits per delay keep the draw to one word per unit and agent step (4 sub-steps),
    a quarter of a float per delay: random numbers are a large share of a small batch's
    step on XLA:CPU. The levels are 0.012 loops apart, far below the sub-step (2 loops).
    """
    low, high = WEAPON_DELAY_LOOPS
    shifts = jnp.arange(32 // DELAY_BITS, dtype=jnp.uint32) * DELAY_BITS
    levels = (words[:, None, :] >> shifts[None, :, None]) & ((1 << DELAY_BITS) - 1)
    levels = levels.reshape(-1, words.shape[-1])[:substeps]
    fraction = (levels.astype(jnp.float32) + 0.5) / (1 << DELAY_BITS)
    return (low + fraction * (high - low)) / LOOPS_PER_SECOND


def weapon_delays(key: PRNGKey, substeps: int, num_units: int) -> Array:
    """SC2's random delays of each shot ``[substeps, U]``, in game seconds, drawn from
    ``key`` (see :func:`weapon_delays_from_bits`)."""
    words = jax.random.bits(key, (weapon_delay_words(substeps), num_units), jnp.uint32)
    return weapon_delays_from_bits(words, substeps)


def advance(
    battle: Battle,
    terrain: Terrain,
    substeps: int = 4,
    seconds: float = STEP_SECONDS,
    data: dict[str, Array] | None = None,
    mechanics: Mechanics = ALL_MECHANICS,
    weapon_delay: Array | None = None,
) -> tuple[Battle, Array, Array]:
    """One agent step (``seconds`` of game time in ``substeps`` sub-steps): the new battle and
    the health and shield damage every unit took over the step.

    ``data`` and ``mechanics`` are as in :func:`substep`; the unit data is looked up once
    per call when omitted. ``weapon_delay`` ``[substeps, U]`` gives each sub-step's
    delays (:func:`weapon_delays`); None fires with SC2's cooldowns exactly.
    """
    dt = seconds / substeps
    if data is None:
        data = unit_data(battle.unit_type)
    health_damage = shield_damage = jnp.zeros(battle.health.shape, jnp.float32)
    battle = battle.replace(acted_on=jnp.full_like(battle.acted_on, NO_TARGET))

    def one_substep(index, carry):
        battle, health_damage, shield_damage = carry
        delay = None if weapon_delay is None else weapon_delay[index]
        battle, step_health, step_shield = substep(battle, terrain, dt, data, mechanics, delay)
        return battle, health_damage + step_health, shield_damage + step_shield

    # A rolled loop, never unrolled: unrolled, XLA:CPU fuses across the sub-steps and
    # recomputes shared values inside each fusion; 3m ran 1.8x (1 env) to 4.4x (64 envs)
    # slower a step, 2s3z 3.8x and 3.1x (benchmarks/smac_throughput.py).
    return jax.lax.fori_loop(0, substeps, one_substep, (battle, health_damage, shield_damage))
