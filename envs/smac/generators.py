"""Where a SMAC episode starts: the teams, their start positions and the map.

A generator describes a scenario to the environment (:class:`marl.envs.smac.env.SMAC`):
its sizes, terrain and per-unit facts, and how each episode's battle is drawn.
:class:`MapGenerator` plays one of SMAC's fixed maps (the same teams every
episode); SMACv2's random teams are ``RandomTeamsGenerator`` in
:mod:`marl.envs.smac.v2`. ``mirrored()`` gives the same scenario seen from the
other side, for self-play.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.smac import sim
from marl.envs.smac.maps import MapSpec, cliff_grid, get_map, walkable_grid
from marl.envs.smac.observer import Layout, Roster, SMACObserver
from marl.envs.smac.placement import place_units
from marl.envs.smac.rules import DEATH_REWARD, WIN_REWARD
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES
from marl.types import Array, PRNGKey

SIGHT_RANGE = 9.0
SHOOT_RANGE = 6.0

# Weapon-cooldown normalisers of SMAC's state (in game loops; medivac: energy).
STATE_COOLDOWN_SCALE = {
    "marine": 15.0,
    "marauder": 25.0,
    "medivac": 200.0,
    "stalker": 35.0,
    "zealot": 22.0,
    "colossus": 24.0,
    "hydralisk": 10.0,
    "zergling": 11.0,
    "baneling": 1.0,
}
DEFAULT_COOLDOWN_SCALE = 15.0

# Type one-hot slots per map type (agents, enemies); v1 swaps stalker and zealot for
# enemies on the stalker-and-zealot maps.
ALLY_TYPE_SLOTS = {
    "MMM": {"marauder": 0, "marine": 1, "medivac": 2},
    "stalkers_and_zealots": {"stalker": 0, "zealot": 1},
    "colossi_stalkers_zealots": {"colossus": 0, "stalker": 1, "zealot": 2},
    "bane": {"baneling": 0, "zergling": 1},
}
ENEMY_TYPE_SLOTS = {
    "MMM": {"marauder": 0, "marine": 1, "medivac": 2},
    "stalkers_and_zealots": {"zealot": 0, "stalker": 1},
    "colossi_stalkers_zealots": {"colossus": 0, "stalker": 1, "zealot": 2},
    "bane": {"baneling": 0, "zergling": 1},
}


class Generator(Protocol):
    """A SMAC scenario: sizes, terrain, per-unit facts and each episode's battle."""

    name: str
    num_agents: int
    num_enemies: int
    num_targets: int  # target actions: one per enemy (SMACv2 with medivacs: see Layout)
    ally_shield_bits: int
    enemy_shield_bits: int
    type_bits: int
    time_limit: int
    walkable: np.ndarray  # [32, 32] bool
    cliff_level: np.ndarray  # [32, 32] int
    possible_unit_types: np.ndarray  # every unit type an episode can hold
    # The built-in opponent's map trigger: "attack_move" (to enemy_target, or a point
    # of enemy_target_segment), "attack_units" (each the closest agent) or "none".
    enemy_order: str
    enemy_target: tuple[float, float] | None
    enemy_target_segment: Any

    def reset(self, key: PRNGKey) -> tuple[sim.Battle, PRNGKey, PRNGKey]:
        """A new battle, the key the episode keeps and a key for the opponent's first
        orders."""
        ...

    def roster(self, battle: sim.Battle) -> Roster: ...

    def unit_data(self, battle: sim.Battle) -> dict[str, Array]: ...

    def max_reward(self, roster: Roster) -> Array | float:
        """The shaped reward of a perfect episode (its scale)."""
        ...

    def mirrored(self) -> Generator:
        """The scenario with the two sides swapped (the enemies first)."""
        ...


def spawn_offsets(key: PRNGKey, num_units: int, spread: float) -> Array:
    """Uniform points in a disc of radius ``spread``, one per unit ``[U, 2]``."""
    angle = jax.random.uniform(key, (num_units,), maxval=2 * jnp.pi)
    radius = spread * jnp.sqrt(jax.random.uniform(jax.random.fold_in(key, 1), (num_units,)))
    return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)


def _expand(groups: tuple[tuple[str, int], ...], spawns: tuple) -> tuple[list[str], list]:
    names, points = [], []
    for (name, count), point in zip(groups, spawns, strict=True):
        names += [name] * count
        points += [point] * count
    return names, points


class MapGenerator:
    """One of SMAC's fixed maps: the same teams and start positions every episode, as
    SC2 places each group around its map point (:mod:`marl.envs.smac.placement`).

    ``spawn_jitter`` > 0 moves every unit by a uniform random offset within that
    radius each episode, a departure from SMAC for those who want varied starts
    (SMACv2 is the benchmark built for that).
    """

    def __init__(self, map_spec: str | MapSpec, spawn_jitter: float = 0.0):
        spec = get_map(map_spec) if isinstance(map_spec, str) else map_spec
        if not spawn_jitter >= 0.0:
            raise ValueError(f"spawn_jitter must not be negative, got {spawn_jitter}")
        self.spec = spec
        self.spawn_jitter = float(spawn_jitter)
        self.name = spec.name
        ally_names, ally_points = _expand(spec.ally_units, spec.ally_spawns)
        enemy_names, enemy_points = _expand(spec.enemy_units, spec.enemy_spawns)
        self.num_agents, self.num_enemies = len(ally_names), len(enemy_names)
        self.num_targets = self.num_enemies
        self.unit_names = ally_names + enemy_names
        self.unit_types = np.asarray([UNIT_INDEX[n] for n in self.unit_names], np.int32)
        self.possible_unit_types = self.unit_types
        self.teams = np.asarray([0] * self.num_agents + [1] * self.num_enemies, np.int32)
        #: Each group's map point, per unit; the start positions SC2 gives them follow.
        self.spawn_points = np.asarray(ally_points + enemy_points, np.float32)
        self.ally_shield_bits = int(spec.ally_race == "P")
        self.enemy_shield_bits = int(spec.enemy_race == "P")
        self.type_bits = spec.unit_type_bits
        self.time_limit = spec.episode_limit
        self.walkable = walkable_grid(spec)
        self.cliff_level = cliff_grid(spec)
        types = [UNIT_TYPES[t] for t in self.unit_types]
        #: Every unit's start position ``[U, 2]``, the same each episode.
        self.spawns = place_units(
            self.spawn_points,
            np.asarray([t.radius for t in types]),
            np.asarray([t.air for t in types]),
            self.walkable,
            self.cliff_level,
        )
        self.enemy_order = spec.enemy_order
        self.enemy_target = spec.enemy_target
        self.enemy_target_segment = spec.enemy_target_segment
        self._unit_data = sim.unit_data(self.unit_types)
        num_units = len(self.unit_names)
        self._roster = Roster(
            type_slot=np.asarray(
                [self._slot(n, ALLY_TYPE_SLOTS) for n in ally_names]
                + [self._slot(n, ENEMY_TYPE_SLOTS) for n in enemy_names],
                np.int32,
            ),
            max_health=np.asarray([t.health for t in types], np.float32),
            max_shield=np.asarray([t.smac_max_shield for t in types], np.float32),
            full_shield=np.asarray([t.shield for t in types], np.float32),
            cooldown_scale=np.asarray(
                [STATE_COOLDOWN_SCALE.get(n, DEFAULT_COOLDOWN_SCALE) for n in self.unit_names],
                np.float32,
            ),
            is_medivac=np.asarray([n == "medivac" for n in self.unit_names]),
            sight=np.full(num_units, SIGHT_RANGE, np.float32),
            shoot=np.full(num_units, SHOOT_RANGE, np.float32),
        )
        enemies = slice(self.num_agents, None)
        enemy_stock = self._roster.max_health[enemies] + self._roster.full_shield[enemies]
        #: The map's shaped reward of a perfect episode (fixed: the teams never change).
        self.map_max_reward = (
            DEATH_REWARD * self.num_enemies + WIN_REWARD + float(enemy_stock.sum())
        )

    def __repr__(self) -> str:
        return f"MapGenerator({self.name!r})"

    def _slot(self, name: str, slots: dict[str, dict[str, int]]) -> int:
        if self.spec.unit_type_bits == 0:
            return -1
        return slots[self.spec.map_type].get(name, self.spec.unit_type_bits - 1)

    def reset(self, key: PRNGKey) -> tuple[sim.Battle, PRNGKey, PRNGKey]:
        key, spread_key, order_key = jax.random.split(key, 3)
        positions = jnp.asarray(self.spawns)
        if self.spawn_jitter > 0.0:
            positions = positions + spawn_offsets(spread_key, len(self.teams), self.spawn_jitter)
        battle = sim.new_battle(jnp.asarray(self.unit_types), jnp.asarray(self.teams), positions)
        return battle, key, order_key

    def roster(self, battle: sim.Battle) -> Roster:
        return Roster(*(jnp.asarray(value) for value in self._roster))

    def unit_data(self, battle: sim.Battle) -> dict[str, Array]:
        return self._unit_data

    def max_reward(self, roster: Roster) -> float:
        return self.map_max_reward

    def mirrored(self) -> MapGenerator:
        spec = self.spec
        mirror = MapGenerator(
            dataclasses.replace(
                spec,
                name=f"{spec.name}_mirrored",
                ally_units=spec.enemy_units,
                enemy_units=spec.ally_units,
                ally_race=spec.enemy_race,
                enemy_race=spec.ally_race,
                ally_spawns=spec.enemy_spawns,
                enemy_spawns=spec.ally_spawns,
                enemy_order="none",
                enemy_target=None,
                enemy_target_segment=None,
            ),
            self.spawn_jitter,
        )
        # The same battle from the other side: the same start positions, enemies first.
        n = self.num_agents
        mirror.spawns = np.concatenate([self.spawns[n:], self.spawns[:n]])
        return mirror


def observer_for(generator: Generator, own_position: bool) -> SMACObserver:
    """SMAC's observer of ``generator``'s agents (with SMACv2's own position if asked)."""
    layout = Layout(
        num_agents=generator.num_agents,
        num_enemies=generator.num_enemies,
        num_targets=generator.num_targets,
        ally_shield_bits=generator.ally_shield_bits,
        enemy_shield_bits=generator.enemy_shield_bits,
        type_bits=generator.type_bits,
        heal=sim.mechanics_for(generator.possible_unit_types).heal,
        own_position=own_position,
    )
    return SMACObserver(layout, generator.walkable)
