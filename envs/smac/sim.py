"""The battle simulation behind the SMAC-style environments: units, orders, combat.

Model (work in progress for issue 4; the environment, maps and opponent build on it):

* Time is SC2's game time, 16 game loops per game second; one agent step is SMAC's
  ``step_mul = 8`` loops (0.5 game s), simulated as ``substeps`` equal sub-steps.
  Weapon cooldowns count down continuously and carry their remainder over when a
  unit fires, so the fire rate (and damage per second) equals SC2's in expectation
  whatever the sub-step; a shot is only delayed to the next sub-step boundary.
* Orders persist until replaced: stop, move to a point, attack a unit (approach to
  weapon range, then fire at every cooldown), attack-move (walk to a point, engage
  the closest opponent in sight on the way) and heal a unit (medivac).
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
  energy.
* Movement is straight toward the goal at the unit's speed, clamped to the map and
  blocked by unwalkable cells (per axis, so units slide along walls); cliff walkers
  ignore cliffs. Ground units that overlap are pushed apart by half their overlap.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from marl.envs.smac.units import unit_table
from marl.types import Array

LOOPS_PER_SECOND = 16.0
STEP_LOOPS = 8  # SMAC's step_mul
STEP_SECONDS = STEP_LOOPS / LOOPS_PER_SECOND

ORDER_STOP, ORDER_MOVE, ORDER_ATTACK, ORDER_ATTACK_MOVE, ORDER_HEAL = range(5)

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


@struct.dataclass
class Terrain:
    walkable: Array  # [32, 32] bool, indexed [x, y]
    cliff_level: Array  # [32, 32] int32


class UnitData:
    """The unit table as jnp arrays, gathered per unit at call time (no arrays at import)."""

    def __init__(self) -> None:
        self.table = unit_table()

    def per_unit(self, unit_type: Array) -> dict[str, Array]:
        return {name: jnp.asarray(values)[unit_type] for name, values in self.table.items()}


def new_battle(unit_types: Array, teams: Array, positions: Array) -> Battle:
    """A battle at time 0: full health, shields and starting energy, weapons ready, no orders."""
    data = UnitData().per_unit(unit_types)
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
    # One row per hit, in attacker order, so each hit sees the shields the earlier left.
    first = jnp.where(hit_count >= 1, hit_damage, 0.0)
    second = jnp.where(hit_count >= 2, hit_damage, 0.0)
    hits = jnp.stack([first, second], axis=1).reshape(-1, hit_damage.shape[1])
    absorbed_before = jnp.cumsum(hits, axis=0) - hits
    shield_left = jnp.maximum(shield[None] - absorbed_before, 0.0)
    to_shield = jnp.minimum(hits, shield_left)
    through = hits - to_shield
    to_health = jnp.where(through > 0, jnp.maximum(through - armor[None], MIN_DAMAGE_PER_HIT), 0.0)
    shield_damage = to_shield.sum(0)
    health_damage = jnp.minimum(to_health.sum(0), health)
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


def _walkable_at(terrain: Terrain, point: Array, cliff_walker: Array, level: Array) -> Array:
    cell = jnp.clip(jnp.floor(point).astype(jnp.int32), 0, 31)
    inside = jnp.all((point >= 0.0) & (point < 32.0), axis=-1)
    walkable = terrain.walkable[cell[..., 0], cell[..., 1]]
    same_level = terrain.cliff_level[cell[..., 0], cell[..., 1]] == level
    return inside & (cliff_walker | (walkable & same_level))


def substep(battle: Battle, terrain: Terrain, dt: float) -> tuple[Battle, Array, Array]:
    """Advances the battle by ``dt`` game seconds.

    Returns the new battle and the health and shield damage each unit took ``[U]``.
    """
    data = UnitData().per_unit(battle.unit_type)
    num_units = battle.unit_type.shape[0]
    index = jnp.arange(num_units)
    alive = battle.alive
    opponents = (battle.team[:, None] != battle.team[None]) & alive[None] & alive[:, None]
    edge = _edge_distance(battle.position, data["radius"])
    centre = edge + data["radius"][:, None] + data["radius"][None]
    can_hit = opponents & (~data["air"][None] | data["targets_air"][:, None])
    can_hit = can_hit & (data["damage"][:, None] > 0)

    # Targets: the ordered unit, or for attack-move and idle stock units the closest
    # opponent within sight (attack-move) or weapon range (idle).
    ordered = battle.order_unit
    ordered_ok = (ordered >= 0) & alive[jnp.maximum(ordered, 0)]
    attack_ok = (battle.order == ORDER_ATTACK) & ordered_ok
    attack_ok = attack_ok & can_hit[index, jnp.maximum(ordered, 0)]
    acquire_range = jnp.where(
        battle.order == ORDER_ATTACK_MOVE,
        data["sight"],
        jnp.where((battle.order == ORDER_STOP) & (battle.team == 1), data["weapon_range"], -1.0),
    )
    candidates = can_hit & (edge <= acquire_range[:, None])
    closest = jnp.argmin(jnp.where(candidates, centre, jnp.inf), axis=1)
    acquired = candidates.any(axis=1)
    target = jnp.where(attack_ok, ordered, jnp.where(acquired, closest, NO_TARGET))
    has_target = target >= 0
    safe_target = jnp.maximum(target, 0)
    target_edge = edge[index, safe_target]
    in_range = has_target & (target_edge <= data["weapon_range"])

    heal_target = jnp.maximum(ordered, 0)
    heal_ok = (battle.order == ORDER_HEAL) & ordered_ok & (battle.team[heal_target] == battle.team)
    max_health = data["health"]
    missing = max_health[heal_target] - battle.health[heal_target]
    heal_ok = heal_ok & (missing > 0) & (data["heal_rate"] > 0)
    heal_in_range = heal_ok & (edge[index, heal_target] <= data["heal_range"])

    # Movement goals.
    goal = jnp.where(has_target[:, None], battle.position[safe_target], battle.order_point)
    goal = jnp.where(heal_ok[:, None], battle.position[heal_target], goal)
    wants_to_move = (
        (has_target & ~in_range)
        | (heal_ok & ~heal_in_range)
        | ((battle.order == ORDER_MOVE) | (battle.order == ORDER_ATTACK_MOVE)) & ~has_target
    ) & alive
    offset = goal - battle.position
    distance = jnp.linalg.norm(offset, axis=-1)
    speed = jnp.where(battle.team == 0, data["speed"], data["enemy_speed"])
    step_length = jnp.minimum(speed * dt, distance)
    direction = offset / jnp.maximum(distance, 1e-6)[:, None]
    moved = battle.position + jnp.where(wants_to_move[:, None], direction * step_length[:, None], 0)
    level = terrain.cliff_level[
        jnp.clip(battle.position[:, 0].astype(jnp.int32), 0, 31),
        jnp.clip(battle.position[:, 1].astype(jnp.int32), 0, 31),
    ]
    walker = data["cliff_walker"] | data["air"]
    x_only = battle.position.at[:, 0].set(moved[:, 0])
    y_only = battle.position.at[:, 1].set(moved[:, 1])
    position = jnp.where(
        _walkable_at(terrain, moved, walker, level)[:, None],
        moved,
        jnp.where(
            _walkable_at(terrain, x_only, walker, level)[:, None],
            x_only,
            jnp.where(
                _walkable_at(terrain, y_only, walker, level)[:, None], y_only, battle.position
            ),
        ),
    )
    arrived = (battle.order == ORDER_MOVE) & (distance <= speed * dt)
    order = jnp.where(
        arrived | ((battle.order == ORDER_ATTACK) & ~attack_ok), ORDER_STOP, battle.order
    )
    order = jnp.where((battle.order == ORDER_HEAL) & ~heal_ok, ORDER_STOP, order)

    # Fire.
    cooldown = jnp.maximum(battle.cooldown - dt, -dt)
    fires = in_range & (cooldown <= 0.0) & alive & (data["cooldown"] > 0)
    cooldown = jnp.where(fires, cooldown + data["cooldown"], cooldown)
    bursts = in_range & alive & data["dies_on_attack"]
    per_hit = hit_damage_matrix(data, data)
    aimed = jax.nn.one_hot(target, num_units, dtype=bool) & fires[:, None]
    hit_count = jnp.where(aimed, data["hits"][:, None], 0)
    # Colossus beams: every opposing ground unit near the line through the target,
    # perpendicular to the line of fire, is hit once per beam.
    fire_direction = battle.position[safe_target] - battle.position
    fire_direction = fire_direction / jnp.maximum(
        jnp.linalg.norm(fire_direction, axis=-1, keepdims=True), 1e-6
    )
    from_target = battle.position[None] - battle.position[safe_target][:, None]
    along = jnp.einsum("atk,ak->at", from_target, fire_direction)
    across = jnp.abs(
        from_target[..., 0] * fire_direction[:, None, 1]
        - from_target[..., 1] * fire_direction[:, None, 0]
    )
    reach = COLOSSUS_LINE_SEARCH_RADIUS + data["radius"][None]
    in_line = (jnp.abs(along) <= reach) & (across <= COLOSSUS_LINE_HALF_LENGTH + reach)
    line_splash = (fires & data["line_splash"])[:, None] & in_line & can_hit & ~data["air"][None]
    hit_count = jnp.where(line_splash, data["hits"][:, None], hit_count)
    # Banelings: everything opposing and on the ground within the splash radius.
    splash = (
        bursts[:, None]
        & opponents
        & ~data["air"][None]
        & (centre - data["radius"][None] <= data["splash_radius"][:, None])
    )
    hit_count = jnp.where(splash, 1, hit_count)
    health, shield, health_damage, shield_damage = resolve_hits(
        battle.health, battle.shield, data["armor"], per_hit, hit_count
    )

    # Heal, regenerate.
    heal_amount = jnp.where(
        heal_in_range & (battle.energy >= HEAL_MIN_ENERGY),
        jnp.minimum(
            jnp.minimum(data["heal_rate"] * dt, missing),
            battle.energy * data["hp_per_energy"],
        ),
        0.0,
    )
    health = health.at[heal_target].add(heal_amount)
    energy = battle.energy - jnp.where(
        heal_amount > 0, heal_amount / jnp.maximum(data["hp_per_energy"], 1e-6), 0.0
    )
    energy = jnp.minimum(energy + data["energy_regen"] * dt, data["max_energy"])
    damaged = (health_damage + shield_damage) > 0
    quiet_time = jnp.where(damaged, 0.0, battle.quiet_time + dt)
    regen_shield = data["regenerates_shield"] & (quiet_time >= SHIELD_REGEN_DELAY)
    shield = jnp.where(
        regen_shield, jnp.minimum(shield + SHIELD_REGEN_RATE * dt, data["shield"]), shield
    )
    health = jnp.where(
        health > 0, jnp.minimum(health + data["health_regen"] * dt, max_health), health
    )

    alive = alive & (health > 0) & ~bursts
    health = jnp.where(alive, health, 0.0)
    shield = jnp.where(alive, shield, 0.0)
    position = _separate(position, data, alive)
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
    )
    return new_battle, health_damage, shield_damage


def _separate(position: Array, data: dict[str, Array], alive: Array) -> Array:
    """Pushes overlapping living ground units apart, each by half the overlap."""
    ground = alive & ~data["air"] & (data["speed"] > 0)
    offset = position[:, None] - position[None]
    distance = jnp.linalg.norm(offset, axis=-1)
    overlap = data["radius"][:, None] + data["radius"][None] - distance
    pair = ground[:, None] & (alive & ~data["air"])[None] & (overlap > 0)
    pair = pair & ~jnp.eye(position.shape[0], dtype=bool)
    # Coincident units separate along a fixed direction that differs per pair.
    fallback = jnp.stack(
        [
            jnp.cos(jnp.arange(position.shape[0]) * 2.399),
            jnp.sin(jnp.arange(position.shape[0]) * 2.399),
        ],
        axis=-1,
    )
    direction = jnp.where(
        (distance > 1e-6)[..., None],
        offset / jnp.maximum(distance, 1e-6)[..., None],
        fallback[:, None] - fallback[None],
    )
    push = jnp.where(pair[..., None], 0.5 * overlap[..., None] * direction, 0.0).sum(1)
    return jnp.clip(position + push, 0.0, 32.0 - 1e-3)


def advance(
    battle: Battle, terrain: Terrain, substeps: int = 4, seconds: float = STEP_SECONDS
) -> tuple[Battle, Array, Array]:
    """One agent step (``seconds`` of game time in ``substeps`` sub-steps): the new battle and
    the health and shield damage every unit took over the step."""
    dt = seconds / substeps

    def body(carry: Battle, _: Any) -> tuple[Battle, tuple[Array, Array]]:
        carry, health_damage, shield_damage = substep(carry, terrain, dt)
        return carry, (health_damage, shield_damage)

    battle, (health_damage, shield_damage) = jax.lax.scan(body, battle, None, substeps)
    return battle, health_damage.sum(0), shield_damage.sum(0)
