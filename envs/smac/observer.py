"""What the agents see of a battle: SMAC's action mask, observation and global state.

The observer reads the battle as the first ``num_agents`` units (the agents) and
the rest (their enemies), with per-unit facts from a :class:`Roster`; its sizes
and flags are a :class:`Layout`. Built on the swapped battle's layout, the same
observer gives a policy-controlled opponent its own SMAC observation.

* Action mask: moves where the cell one step that way is walkable; attacks on
  living enemies within the unit's shoot range (a medivac: heals on living
  non-medivac allies); no-op only for dead agents.
* Observation, within the agent's sight range: the enemies ``[attackable,
  distance, dx, dy, health, (shield), type]`` and the other agents ``[visible,
  distance, dx, dy, health, (shield), type]``, then its own ``[health, (shield),
  (x, y), type]``; distances are divided by the sight range, health and shields by
  their maxima.
* Global state: every ally ``[health, cooldown, x, y, (shield), type]``, every
  enemy ``[health, x, y, (shield), type]`` (positions relative to the centre,
  divided by 32) and every agent's last action.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.smac import sim
from marl.types import Array, Observation

MAP_CENTRE = 16.0
MAP_EXTENT = 32.0
NUM_FIXED_ACTIONS = 6


class Roster(NamedTuple):
    """Per-unit facts the interface reads, agents then enemies ``[U]``: constants on a
    fixed-roster map, looked up from the battle's unit types when teams are random."""

    type_slot: Array  # one-hot slot of the unit type (-1: no type bits)
    max_health: Array
    max_shield: Array  # SMAC's shield normaliser
    full_shield: Array  # the unit type's shields
    cooldown_scale: Array  # the state's weapon-cooldown (medivac: energy) normaliser
    is_medivac: Array
    sight: Array  # observation range, centre to centre
    shoot: Array  # range of the attack action's availability, centre to centre


@dataclasses.dataclass(frozen=True)
class Layout:
    """The sizes and flags of one side's SMAC interface.

    ``num_targets`` is the number of target actions (SMAC: one per enemy; SMACv2
    with medivacs: as many as the larger team, since heals index the allies).
    """

    num_agents: int
    num_enemies: int
    num_targets: int
    ally_shield_bits: int
    enemy_shield_bits: int
    type_bits: int
    heal: bool  # medivacs can be among the agents
    own_position: bool  # the agent's own x, y in its observation (SMACv2)

    @property
    def num_actions(self) -> int:
        return NUM_FIXED_ACTIONS + self.num_targets

    @property
    def enemy_feature_dim(self) -> int:
        return 4 + 1 + self.enemy_shield_bits + self.type_bits

    @property
    def ally_feature_dim(self) -> int:
        return 4 + 1 + self.ally_shield_bits + self.type_bits

    @property
    def obs_dim(self) -> int:
        return (
            4
            + self.num_enemies * self.enemy_feature_dim
            + (self.num_agents - 1) * self.ally_feature_dim
            + 1
            + self.ally_shield_bits
            + 2 * self.own_position
            + self.type_bits
        )

    @property
    def state_dim(self) -> int:
        return (
            self.num_agents * (4 + self.ally_shield_bits + self.type_bits)
            + self.num_enemies * (3 + self.enemy_shield_bits + self.type_bits)
            + self.num_agents * self.num_actions
        )


def gaps(origin: Array, other: Array) -> tuple[Array, Array, Array]:
    """``other[j] - origin[i]`` by axis and the distance, ``[len(origin), len(other)]`` each
    (coordinates split: a trailing axis of 2 is slow on XLA:CPU)."""
    dx = other[None, :, 0] - origin[:, None, 0]
    dy = other[None, :, 1] - origin[:, None, 1]
    return dx, dy, jnp.sqrt(dx * dx + dy * dy)


def _drop_diagonal(pairs: Array) -> Array:
    """``[n, n, F] -> [n, n - 1, F]`` without the ``[i, i]`` entries, in order (by
    slicing: cheaper than a gather)."""
    n, features = pairs.shape[0], pairs.shape[2]
    if n == 1:
        return pairs[:, :0]
    flat = pairs.reshape(n * n, features)[1:].reshape(n - 1, n + 1, features)
    return flat[:, :n].reshape(n, n - 1, features)


class SMACObserver:
    """SMAC's mask, observation and state for one :class:`Layout` on a map whose
    walkable cells are ``walkable`` (``[32, 32]`` bool)."""

    def __init__(self, layout: Layout, walkable: np.ndarray):
        self.layout = layout
        self.walkable = np.asarray(walkable, bool)

    def action_mask(self, battle: sim.Battle, roster: Roster) -> Array:
        """``[num_agents, num_actions]`` bool."""
        layout = self.layout
        n = layout.num_agents
        agents = slice(0, n)
        position = battle.position[agents]
        alive = battle.alive[agents]
        walkable = jnp.asarray(self.walkable)
        probes = np.asarray([[0, 1], [0, -1], [1, 0], [-1, 0]], np.float32)
        probe_x = position[:, 0, None] + probes[None, :, 0]
        probe_y = position[:, 1, None] + probes[None, :, 1]
        inside = (probe_x >= 0) & (probe_x < MAP_EXTENT) & (probe_y >= 0) & (probe_y < MAP_EXTENT)
        cell_x = jnp.clip(probe_x.astype(jnp.int32), 0, 31)
        cell_y = jnp.clip(probe_y.astype(jnp.int32), 0, 31)
        can_move = inside & walkable[cell_x, cell_y]
        enemy_gap = gaps(position, battle.position[n:])[2]
        shoot = roster.shoot[agents, None]
        targets = battle.alive[None, n:] & (enemy_gap <= shoot)
        targets = jnp.pad(targets, ((0, 0), (0, layout.num_targets - layout.num_enemies)))
        if layout.heal:
            medivac = roster.is_medivac[agents]
            ally_gap = gaps(position, position)[2]
            can_heal = alive[None] & ~medivac[None] & (ally_gap <= shoot)
            extra = max(layout.num_targets - n, 0)
            can_heal = jnp.pad(can_heal, ((0, 0), (0, extra)))[:, : layout.num_targets]
            targets = jnp.where(medivac[:, None], can_heal, targets)
        living = jnp.concatenate(
            [jnp.zeros((n, 1), bool), jnp.ones((n, 1), bool), can_move, targets], axis=1
        )
        dead = jnp.zeros_like(living).at[:, 0].set(True)
        return jnp.where(alive[:, None], living, dead)

    def _type_one_hot(self, units: slice, roster: Roster) -> Array:
        slots = roster.type_slot[units]
        bits = self.layout.type_bits
        return jax.nn.one_hot(slots, bits) if bits else jnp.zeros((slots.shape[0], 0))

    def _health_block(
        self, battle: sim.Battle, units: slice, shield_bits: int, roster: Roster
    ) -> Array:
        health = (battle.health[units] / roster.max_health[units])[:, None]
        if not shield_bits:
            return health
        max_shield = roster.max_shield[units]
        shield = jnp.where(
            max_shield > 0, battle.shield[units] / jnp.maximum(max_shield, 1e-6), 0.0
        )
        return jnp.concatenate([health, shield[:, None]], axis=1)

    def observe(
        self, battle: sim.Battle, last_action: Array, step_count: Array, roster: Roster
    ) -> Observation:
        """The observation of ``battle``; ``last_action`` ``[num_agents]`` (-1: none yet)."""
        layout = self.layout
        n, m = layout.num_agents, layout.num_enemies
        agents, enemies = slice(0, n), slice(n, None)
        mask = self.action_mask(battle, roster)
        position = battle.position
        alive = battle.alive
        sight = roster.sight[agents, None]  # distances are in units of the viewer's sight

        enemy_dx, enemy_dy, enemy_distance = gaps(position[agents], position[enemies])  # [n, m]
        enemy_seen = alive[None, enemies] & (enemy_distance < sight)
        enemy_static = jnp.concatenate(
            [
                self._health_block(battle, enemies, layout.enemy_shield_bits, roster),
                self._type_one_hot(enemies, roster),
            ],
            axis=1,
        )
        # SMAC's "attackable" is the attack action's availability (a medivac's: healing
        # the ally with that index).
        attackable = mask[:, NUM_FIXED_ACTIONS : NUM_FIXED_ACTIONS + m]
        enemy_features = jnp.concatenate(
            [
                attackable[..., None].astype(jnp.float32),
                enemy_distance[..., None] / sight[..., None],
                enemy_dx[..., None] / sight[..., None],
                enemy_dy[..., None] / sight[..., None],
                jnp.broadcast_to(enemy_static[None], (n, m, enemy_static.shape[-1])),
            ],
            axis=-1,
        )
        enemy_features = jnp.where(enemy_seen[..., None], enemy_features, 0.0)

        ally_dx, ally_dy, ally_distance = gaps(position[agents], position[agents])  # [n, n]
        ally_seen = alive[None, agents] & (ally_distance < sight)
        ally_health = self._health_block(battle, agents, layout.ally_shield_bits, roster)
        ally_types = self._type_one_hot(agents, roster)
        ally_static = jnp.concatenate([ally_health, ally_types], axis=1)
        ally_features = jnp.concatenate(
            [
                jnp.ones((n, n, 1)),
                ally_distance[..., None] / sight[..., None],
                ally_dx[..., None] / sight[..., None],
                ally_dy[..., None] / sight[..., None],
                jnp.broadcast_to(ally_static[None], (n, n, ally_static.shape[-1])),
            ],
            axis=-1,
        )
        ally_features = jnp.where(ally_seen[..., None], ally_features, 0.0)
        ally_features = _drop_diagonal(ally_features)  # every agent but the viewer

        own = [ally_health]
        if layout.own_position:
            own.append(position[agents] / MAP_EXTENT)
        own.append(ally_types)
        agents_view = jnp.concatenate(
            [
                mask[:, 2:NUM_FIXED_ACTIONS].astype(jnp.float32),
                enemy_features.reshape(n, -1),
                ally_features.reshape(n, -1),
                *own,
            ],
            axis=1,
        )
        agents_view = jnp.where(alive[agents, None], agents_view, 0.0)

        centre_offset = (position - MAP_CENTRE) / MAP_EXTENT
        cooldown = (
            jnp.where(
                roster.is_medivac[agents],
                battle.energy[agents],
                jnp.maximum(battle.cooldown[agents], 0.0) * sim.LOOPS_PER_SECOND,
            )
            / roster.cooldown_scale[agents]
        )
        ally_rows = jnp.concatenate(
            [
                ally_health[:, :1],
                cooldown[:, None],
                centre_offset[agents],
                ally_health[:, 1:],
                ally_types,
            ],
            axis=1,
        )
        enemy_health = enemy_static[:, : 1 + layout.enemy_shield_bits]
        enemy_rows = jnp.concatenate(
            [
                enemy_health[:, :1],
                centre_offset[enemies],
                enemy_health[:, 1:],
                self._type_one_hot(enemies, roster),
            ],
            axis=1,
        )
        global_state = jnp.concatenate(
            [
                jnp.where(alive[agents, None], ally_rows, 0.0).reshape(-1),
                jnp.where(alive[enemies, None], enemy_rows, 0.0).reshape(-1),
                jax.nn.one_hot(last_action, layout.num_actions).reshape(-1),
            ]
        )
        return Observation(
            agents_view=agents_view.astype(jnp.float32),
            action_mask=mask,
            global_state=global_state.astype(jnp.float32),
            step_count=step_count,
        )
