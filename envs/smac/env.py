"""SMAC's v1 environment on the JAX battle simulator: ``smac/<map>``.

Observations, global state, actions, reward and episode end follow SMAC v1 with its
default flags (the shared reference, sections 2 and 3):

* actions ``0`` no-op (only for dead agents), ``1`` stop, ``2..5`` move north, south,
  east, west (a point 2 cells away), ``6 + k`` attack enemy ``k`` (a medivac: heal
  ally ``k``). Moves are available where the cell one step that way is walkable;
  attacks on living enemies within a centre distance of 6 (heals: living non-medivac
  allies);
* each agent sees, within sight range 9, the enemies ``[attackable, distance, dx, dy,
  health, (shield), type]`` and the other agents ``[visible, distance, dx, dy,
  health, (shield), type]``, then its own ``[health, (shield), type]``; distances are
  divided by 9, health and shields by their maxima;
* the global state holds every ally ``[health, cooldown, x, y, (shield), type]``, every
  enemy ``[health, x, y, (shield), type]`` (positions relative to the centre, divided
  by 32) and every agent's last action;
* the reward is SMAC's shaped reward (damage and shield damage dealt, 10 per kill,
  200 for a win; ``abs`` of the step's total as in v1) scaled so that a perfect
  episode earns 20, or with ``reward_sparse`` +1 for a win and -1 for a loss;
* an episode ends when one side is gone (MMM maps: when only medivacs are left) or
  after the map's step limit (a time-limit cut, not a loss, but never a win).

The opponent follows each map's trigger: an attack-move towards the agents' spawn
(or the map's attack point), unit-targeted attacks on the colossi on 2c_vs_64zg, no
order for the spine crawler. Stock units fire at what enters their range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jumanji.types import TimeStep, restart

from marl.env import MultiAgentEnv, count_invalid, team_timestep
from marl.envs.smac import sim
from marl.envs.smac.maps import SMAC_MAPS, MapSpec, cliff_grid, get_map, walkable_grid
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES
from marl.types import Array, Observation, PRNGKey

SIGHT_RANGE = 9.0
SHOOT_RANGE = 6.0
MOVE_AMOUNT = 2.0
MAP_CENTRE = 16.0
MAP_EXTENT = 32.0
NUM_FIXED_ACTIONS = 6
DEATH_REWARD = 10.0
WIN_REWARD = 200.0
SPAWN_SPREAD = 0.5  # the radius of the cluster SC2 places a spawned group in

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

# Type one-hot slots per map type (allies, enemies); v1 swaps stalker and zealot for
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


@struct.dataclass
class SMACState:
    battle: sim.Battle
    last_action: Array  # [n_agents] int32
    step_count: Array
    key: PRNGKey  # the built-in opponent's or the opponent policy's randomness
    opponent_last_action: Array  # [n_enemies] int32; -1 unless a policy controls them


class Difficulty(NamedTuple):
    """How the built-in opponent plays at one difficulty level (see ``DIFFICULTIES``)."""

    name: str
    reaction: float  # chance that an opponent unit acts in a step (else it holds)
    attack_move_sight: bool  # attack-moving units engage within sight (else weapon range)
    focus_fire: float  # chance that a unit in range turns on the weakest agent in range


#: The built-in opponent's difficulty levels, named as SC2's. SC2's difficulty changes
#: its macro, not its micro, so SC2 and SMAC play these maps alike at every level; these
#: are marl-lab's own: 7 (SMAC's setting) is the SC2 behaviour, lower levels react
#: slower (units hold some steps) and engage only what is in weapon range, higher ones
#: focus fire on the weakest agent in range.
DIFFICULTIES = {
    1: Difficulty("VeryEasy", 0.4, False, 0.0),
    2: Difficulty("Easy", 0.5, False, 0.0),
    3: Difficulty("Medium", 0.6, False, 0.0),
    4: Difficulty("MediumHard", 0.7, True, 0.0),
    5: Difficulty("Hard", 0.8, True, 0.0),
    6: Difficulty("Harder", 0.9, True, 0.0),
    7: Difficulty("VeryHard", 1.0, True, 0.0),
    8: Difficulty("CheatVision", 1.0, True, 1 / 3),
    9: Difficulty("CheatMoney", 1.0, True, 2 / 3),
    10: Difficulty("CheatInsane", 1.0, True, 1.0),
}

#: ``opponent_policy(observation, key) -> actions``: the opponents' SMAC observation
#: (:meth:`SMAC.opponent_observation`) to one action per opponent unit.
OpponentPolicy = Callable[[Observation, PRNGKey], Array]


class Roster(NamedTuple):
    """Per-unit facts the interface reads, allies then enemies ``[U]``: constants on a
    fixed-roster map, looked up from the battle's unit types when teams are random."""

    type_slot: Array  # one-hot slot of the unit type (-1: no type bits)
    max_health: Array
    max_shield: Array  # SMAC's shield normaliser
    full_shield: Array  # the unit type's shields
    cooldown_scale: Array  # the state's weapon-cooldown (medivac: energy) normaliser
    is_medivac: Array
    sight: Array  # observation range, centre to centre
    shoot: Array  # range of the attack action's availability, centre to centre


def _expand(groups: tuple[tuple[str, int], ...], spawns: tuple) -> tuple[list[str], list]:
    names, points = [], []
    for (name, count), point in zip(groups, spawns, strict=True):
        names += [name] * count
        points += [point] * count
    return names, points


def _gaps(origin: Array, other: Array) -> tuple[Array, Array, Array]:
    """``other[j] - origin[i]`` by axis and the distance, ``[len(origin), len(other)]`` each
    (coordinates split: a trailing axis of 2 is slow on XLA:CPU)."""
    dx = other[None, :, 0] - origin[:, None, 0]
    dy = other[None, :, 1] - origin[:, None, 1]
    return dx, dy, jnp.sqrt(dx * dx + dy * dy)


class _Held(NamedTuple):
    mask: Array  # [U] units whose order was replaced for one step
    order: Array  # the replaced orders
    order_unit: Array


def _valid_or_no_op(mask: Array, action: Array) -> Array:
    """Each action where the mask allows it, else the no-op (which changes nothing)."""
    allowed = jnp.take_along_axis(mask, action[:, None], 1)[:, 0]
    return jnp.where(allowed, action, 0)


def _drop_diagonal(pairs: Array) -> Array:
    """``[n, n, F] -> [n, n - 1, F]`` without the ``[i, i]`` entries, in order (by
    slicing: cheaper than a gather)."""
    n, features = pairs.shape[0], pairs.shape[2]
    if n == 1:
        return pairs[:, :0]
    flat = pairs.reshape(n * n, features)[1:].reshape(n - 1, n + 1, features)
    return flat[:, :n].reshape(n, n - 1, features)


def swap_sides(battle: sim.Battle, num_first: int) -> sim.Battle:
    """The battle with its two sides swapped: the last ``U - num_first`` units come
    first, teams are flipped and unit references follow the new numbering."""
    num_units = battle.alive.shape[0]
    order = np.concatenate([np.arange(num_first, num_units), np.arange(num_first)])
    new_index = jnp.asarray(np.argsort(order), jnp.int32)

    def renumber(unit: Array) -> Array:
        return jnp.where(unit >= 0, new_index[jnp.maximum(unit, 0)], unit)

    swapped = jax.tree.map(lambda x: x[order] if x.ndim else x, battle)
    return swapped.replace(
        team=1 - swapped.team,
        order_unit=renumber(swapped.order_unit),
        acted_on=renumber(swapped.acted_on),
    )


class SMAC(MultiAgentEnv):
    """One SMAC map on the JAX simulator; see the module docstring for the interface."""

    def __init__(
        self,
        map_name: str | MapSpec = "3m",
        reward_sparse: bool = False,
        reward_only_positive: bool = True,
        substeps: int = 4,
        difficulty: int = 7,
        opponent_policy: OpponentPolicy | None = None,
    ):
        self.map: MapSpec = get_map(map_name) if isinstance(map_name, str) else map_name
        self.reward_sparse = reward_sparse
        self.reward_only_positive = reward_only_positive
        self.substeps = substeps
        spec = self.map
        ally_names, ally_points = _expand(spec.ally_units, spec.ally_spawns)
        enemy_names, enemy_points = _expand(spec.enemy_units, spec.enemy_spawns)
        self.num_agents, self.num_enemies = len(ally_names), len(enemy_names)
        self.unit_names = ally_names + enemy_names
        self.unit_types = np.asarray([UNIT_INDEX[n] for n in self.unit_names], np.int32)
        self.unit_data = sim.unit_data(self.unit_types)
        self.mechanics = sim.mechanics_for(self.unit_types)
        self._set_opponent(difficulty, opponent_policy)
        self.teams = np.asarray([0] * self.num_agents + [1] * self.num_enemies, np.int32)
        self.spawns = np.asarray(ally_points + enemy_points, np.float32)
        self.ally_shield_bits = int(spec.ally_race == "P")
        self.enemy_shield_bits = int(spec.enemy_race == "P")
        self.type_bits = spec.unit_type_bits
        self.type_slot = np.asarray(
            [self._slot(n, ALLY_TYPE_SLOTS) for n in ally_names]
            + [self._slot(n, ENEMY_TYPE_SLOTS) for n in enemy_names],
            np.int32,
        )
        self.max_health = np.asarray([UNIT_TYPES[t].health for t in self.unit_types], np.float32)
        self.max_shield = np.asarray(
            [UNIT_TYPES[t].smac_max_shield for t in self.unit_types], np.float32
        )
        self.cooldown_scale = np.asarray(
            [STATE_COOLDOWN_SCALE.get(n, DEFAULT_COOLDOWN_SCALE) for n in self.unit_names],
            np.float32,
        )
        self.is_medivac = np.asarray([n == "medivac" for n in self.unit_names])
        num_units = len(self.unit_names)
        self.roster = Roster(
            type_slot=self.type_slot,
            max_health=self.max_health,
            max_shield=self.max_shield,
            full_shield=np.asarray([UNIT_TYPES[t].shield for t in self.unit_types], np.float32),
            cooldown_scale=self.cooldown_scale,
            is_medivac=self.is_medivac,
            sight=np.full(num_units, SIGHT_RANGE, np.float32),
            shoot=np.full(num_units, SHOOT_RANGE, np.float32),
        )
        enemy_stock = self.max_health[self.num_agents :] + np.asarray(
            [UNIT_TYPES[t].shield for t in self.unit_types[self.num_agents :]], np.float32
        )
        self.max_reward = DEATH_REWARD * self.num_enemies + WIN_REWARD + float(enemy_stock.sum())
        self.walkable = walkable_grid(spec)
        self.cliff_level = cliff_grid(spec)
        self.time_limit = spec.episode_limit
        self.own_position = False  # SMACv2 adds the agent's own x, y
        self.positive_reward = "abs"  # v1's reward_only_positive; SMACv2 clips at 0
        self._set_sizes(num_targets=self.num_enemies)
        super().__init__()

    def _set_opponent(self, difficulty: int, opponent_policy: OpponentPolicy | None) -> None:
        if difficulty not in DIFFICULTIES:
            valid = sorted(DIFFICULTIES)
            raise ValueError(f"difficulty must be one of {valid} (7 is SMAC's), got {difficulty!r}")
        if opponent_policy is not None and not callable(opponent_policy):
            raise ValueError("opponent_policy must be a function (observation, key) -> actions")
        self.difficulty = DIFFICULTIES[difficulty]
        self.opponent_policy = opponent_policy
        self.mechanics = self.mechanics._replace(
            attack_move_sight=self.difficulty.attack_move_sight,
            # Policy-controlled opponents only act on orders, like the agents.
            stock_team=1 if opponent_policy is None else -1,
        )
        self._mirror_env: SMAC | None = None

    def _set_sizes(self, num_targets: int) -> None:
        """Action count, observation and state sizes from the team sizes and flags."""
        self.num_targets = num_targets
        self.num_actions = NUM_FIXED_ACTIONS + num_targets
        self.enemy_feature_dim = 4 + 1 + self.enemy_shield_bits + self.type_bits
        self.ally_feature_dim = 4 + 1 + self.ally_shield_bits + self.type_bits
        self.obs_dim = (
            4
            + self.num_enemies * self.enemy_feature_dim
            + (self.num_agents - 1) * self.ally_feature_dim
            + 1
            + self.ally_shield_bits
            + 2 * self.own_position
            + self.type_bits
        )
        self.state_dim = (
            self.num_agents * (4 + self.ally_shield_bits + self.type_bits)
            + self.num_enemies * (3 + self.enemy_shield_bits + self.type_bits)
            + self.num_agents * self.num_actions
        )

    def _roster(self, battle: sim.Battle) -> Roster:
        """This map's per-unit facts (constants: the teams never change)."""
        return Roster(*(jnp.asarray(value) for value in self.roster))

    def _slot(self, name: str, slots: dict[str, dict[str, int]]) -> int:
        if self.map.unit_type_bits == 0:
            return -1
        table = slots[self.map.map_type]
        return table.get(name, self.map.unit_type_bits - 1)

    # ------------------------------------------------------------------ reset
    def _terrain(self) -> sim.Terrain:
        return sim.Terrain(jnp.asarray(self.walkable), jnp.asarray(self.cliff_level, jnp.int32))

    def reset(self, key: PRNGKey) -> tuple[SMACState, TimeStep]:
        key, spread_key, target_key = jax.random.split(key, 3)
        battle = sim.new_battle(
            jnp.asarray(self.unit_types),
            jnp.asarray(self.teams),
            jnp.asarray(self.spawns) + self._spawn_offsets(spread_key),
        )
        battle = self._enemy_orders(battle, target_key)
        return self._first_timestep(battle, key)

    def _first_timestep(self, battle: sim.Battle, key: PRNGKey) -> tuple[SMACState, TimeStep]:
        if self.opponent_policy is not None:  # the policy gives the opponents' orders
            enemies = slice(self.num_agents, None)
            battle = battle.replace(
                order=battle.order.at[enemies].set(sim.ORDER_STOP),
                order_unit=battle.order_unit.at[enemies].set(sim.NO_TARGET),
                order_point=battle.order_point.at[enemies].set(battle.position[enemies]),
            )
        state = SMACState(
            battle=battle,
            last_action=jnp.full(self.num_agents, -1, jnp.int32),  # no action yet: zeros
            step_count=jnp.int32(0),
            key=key,
            opponent_last_action=jnp.full(self.num_enemies, -1, jnp.int32),
        )
        extras = {"won": jnp.float32(0.0), "invalid_actions": jnp.int32(0)}
        if self.opponent_policy is not None:
            extras["opponent_reward"] = jnp.float32(0.0)
        return state, restart(self._observation(state), extras=extras, shape=self.num_agents)

    def _spawn_offsets(self, key: PRNGKey) -> Array:
        """Uniform points in a disc of radius SPAWN_SPREAD, one per unit ``[U, 2]``: SC2
        places a group spawned on one point in a small cluster."""
        num_units = len(self.teams)
        angle = jax.random.uniform(key, (num_units,), maxval=2 * jnp.pi)
        radius = SPAWN_SPREAD * jnp.sqrt(
            jax.random.uniform(jax.random.fold_in(key, 1), (num_units,))
        )
        return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)

    def _enemy_orders(self, battle: sim.Battle, key: PRNGKey) -> sim.Battle:
        spec, enemies = self.map, slice(self.num_agents, None)
        if spec.enemy_order == "attack_move":
            if spec.enemy_target is not None:
                point = jnp.asarray(spec.enemy_target, jnp.float32)
            else:
                start, end = (jnp.asarray(p, jnp.float32) for p in spec.enemy_target_segment)
                point = start + jax.random.uniform(key) * (end - start)
            return battle.replace(
                order=battle.order.at[enemies].set(sim.ORDER_ATTACK_MOVE),
                order_point=battle.order_point.at[enemies].set(point),
            )
        if spec.enemy_order == "attack_units":
            return self._attack_closest_agent(battle)
        return battle

    def _attack_closest_agent(self, battle: sim.Battle) -> sim.Battle:
        """Every enemy without a living target attacks the agent closest to it."""
        enemies = slice(self.num_agents, None)
        gap = jnp.linalg.norm(
            battle.position[enemies, None] - battle.position[None, : self.num_agents], axis=-1
        )
        closest = jnp.argmin(jnp.where(battle.alive[None, : self.num_agents], gap, jnp.inf), 1)
        current = battle.order_unit[enemies]
        keep = (current >= 0) & battle.alive[jnp.maximum(current, 0)]
        target = jnp.where(keep, current, closest).astype(jnp.int32)
        return battle.replace(
            order=battle.order.at[enemies].set(
                jnp.where(battle.alive[enemies], sim.ORDER_ATTACK, sim.ORDER_STOP)
            ),
            order_unit=battle.order_unit.at[enemies].set(target),
        )

    # ------------------------------------------------------------------- step
    def step(self, state: SMACState, action: Array) -> tuple[SMACState, TimeStep]:
        """One agent step against the built-in opponent, or the ``opponent_policy``."""
        if self.opponent_policy is None:
            return self._step(state, action, None)
        key, policy_key = jax.random.split(state.key)
        opponent_action = self.opponent_policy(self.opponent_observation(state), policy_key)
        return self._step(state.replace(key=key), action, opponent_action)

    def step_with_opponent(
        self, state: SMACState, action: Array, opponent_action: Array
    ) -> tuple[SMACState, TimeStep]:
        """One step with the opponents' actions given (self-play); needs an env built with
        an ``opponent_policy`` (the built-in opponent would give them orders too)."""
        if self.opponent_policy is None:
            raise ValueError("step_with_opponent needs an env built with an opponent_policy")
        return self._step(state, action, opponent_action)

    def _step(
        self, state: SMACState, action: Array, opponent_action: Array | None
    ) -> tuple[SMACState, TimeStep]:
        battle = state.battle
        roster = self._roster(battle)
        mask = self._action_mask(battle, roster)
        invalid = count_invalid(mask, action)
        action = _valid_or_no_op(mask, action)
        battle = self._apply_actions(battle, action, roster)
        key, opponent_key = jax.random.split(state.key)
        opponent_last_action = state.opponent_last_action
        held = None
        if opponent_action is not None:
            battle, opponent_last_action = self._apply_opponent_actions(battle, opponent_action)
        else:
            if self.map.enemy_order == "attack_units":
                battle = self._attack_closest_agent(battle)
            battle, held = self._difficulty_orders(battle, opponent_key)
        before = battle
        battle, _, _ = sim.advance(
            battle,
            self._terrain(),
            self.substeps,
            data=self._unit_data(battle),
            mechanics=self.mechanics,
        )
        if held is not None:  # one step's hold or focus-fire order ends with the step
            battle = battle.replace(
                order=jnp.where(held.mask & battle.alive, held.order, battle.order),
                order_unit=jnp.where(held.mask, held.order_unit, battle.order_unit),
            )
        step_count = state.step_count + 1
        won, lost, draw = self._outcome(battle, roster)
        reward = self._reward(before, battle, won, lost, roster)
        terminated = won | lost | draw
        truncated = ~terminated & (step_count >= self.time_limit)
        state = SMACState(battle, action.astype(jnp.int32), step_count, key, opponent_last_action)
        extras = {"won": won.astype(jnp.float32), "invalid_actions": invalid}
        if opponent_action is not None:
            mirror = self._mirror()
            swapped_before = swap_sides(before, self.num_agents)
            swapped_after = swap_sides(battle, self.num_agents)
            extras["opponent_reward"] = mirror._reward(
                swapped_before, swapped_after, lost, won, mirror._roster(swapped_before)
            )
        timestep = team_timestep(
            reward, self._observation(state), terminated, truncated, extras, self.num_agents
        )
        return state, timestep

    # --------------------------------------------------------------- opponent
    def _difficulty_orders(self, battle: sim.Battle, key: PRNGKey) -> tuple[sim.Battle, _Held]:
        """This step's hold and focus-fire orders of the built-in opponent; the orders
        they replace come back after the step."""
        enemies = slice(self.num_agents, None)
        saved = _Held(jnp.zeros_like(battle.alive), battle.order, battle.order_unit)
        level = self.difficulty
        if level.reaction >= 1.0 and level.focus_fire <= 0.0:
            return battle, saved
        hold_key, focus_key = jax.random.split(key)
        order, order_unit = battle.order[enemies], battle.order_unit[enemies]
        changed = jnp.zeros(self.num_enemies, bool)
        if level.focus_fire > 0.0:
            data = self._unit_data(battle)
            weapon_range = jnp.asarray(data["weapon_range"])[enemies]
            radius = jnp.asarray(data["radius"])
            gap = _gaps(battle.position[enemies], battle.position[: self.num_agents])[2]
            edge = gap - radius[enemies, None] - radius[None, : self.num_agents]
            shootable = battle.alive[None, : self.num_agents] & (edge <= weapon_range[:, None])
            stock = battle.health[: self.num_agents] + battle.shield[: self.num_agents]
            weakest = jnp.argmin(jnp.where(shootable, stock[None], jnp.inf), axis=1)
            focus = shootable.any(axis=1) & (
                jax.random.uniform(focus_key, (self.num_enemies,)) < level.focus_fire
            )
            order = jnp.where(focus, sim.ORDER_ATTACK, order)
            order_unit = jnp.where(focus, weakest, order_unit)
            changed = changed | focus
        if level.reaction < 1.0:
            hold = jax.random.uniform(hold_key, (self.num_enemies,)) >= level.reaction
            order = jnp.where(hold, sim.ORDER_HOLD, order)
            changed = changed | hold
        changed = changed & battle.alive[enemies]
        battle = battle.replace(
            order=battle.order.at[enemies].set(jnp.where(changed, order, battle.order[enemies])),
            order_unit=battle.order_unit.at[enemies].set(
                jnp.where(changed, order_unit, battle.order_unit[enemies])
            ),
        )
        mask = jnp.zeros_like(battle.alive).at[enemies].set(changed)
        return battle, saved._replace(mask=mask)

    def _mirror(self) -> SMAC:
        """The same battle seen from the opponents' side (their units first)."""
        if self._mirror_env is None:
            spec = self.map
            mirrored = dataclasses.replace(
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
            )
            # Built on first use, possibly while tracing: its specs need concrete arrays.
            with jax.ensure_compile_time_eval():
                self._mirror_env = SMAC(mirrored, self.reward_sparse, self.reward_only_positive)
        return self._mirror_env

    def opponent_observation(self, state: SMACState) -> Observation:
        """The opponents' SMAC observation of ``state``: their own units play the agents'
        part (observation, action mask and global state in the same layout)."""
        mirror = self._mirror()
        swapped = SMACState(
            battle=swap_sides(state.battle, self.num_agents),
            last_action=state.opponent_last_action,
            step_count=state.step_count,
            key=state.key,
            opponent_last_action=state.last_action,
        )
        return mirror._observation(swapped)

    def _apply_opponent_actions(
        self, battle: sim.Battle, opponent_action: Array
    ) -> tuple[sim.Battle, Array]:
        mirror = self._mirror()
        swapped = swap_sides(battle, self.num_agents)
        roster = mirror._roster(swapped)
        opponent_action = jnp.asarray(opponent_action, jnp.int32)
        opponent_action = _valid_or_no_op(mirror._action_mask(swapped, roster), opponent_action)
        swapped = mirror._apply_actions(swapped, opponent_action, roster)
        return swap_sides(swapped, self.num_enemies), opponent_action

    def _unit_data(self, battle: sim.Battle) -> dict[str, Array]:
        return self.unit_data

    def _apply_actions(self, battle: sim.Battle, action: Array, roster: Roster) -> sim.Battle:
        agents = slice(0, self.num_agents)
        alive = battle.alive[agents]
        position = battle.position[agents]
        moves = jnp.asarray([[0, 0], [0, 0], [0, 1], [0, -1], [1, 0], [-1, 0]], jnp.float32)
        is_move = (action >= 2) & (action <= 5)
        is_target = action >= NUM_FIXED_ACTIONS
        target = action - NUM_FIXED_ACTIONS
        medivac = roster.is_medivac[agents]
        order = battle.order[agents]
        order = jnp.where(action == 1, sim.ORDER_STOP, order)
        order = jnp.where(is_move, sim.ORDER_MOVE, order)
        order = jnp.where(is_target, jnp.where(medivac, sim.ORDER_HEAL, sim.ORDER_ATTACK), order)
        target_unit = jnp.where(medivac, target, self.num_agents + target)
        order_unit = jnp.where(is_target, target_unit, battle.order_unit[agents])
        order_unit = jnp.where(is_move | (action == 1), sim.NO_TARGET, order_unit)
        point = position + MOVE_AMOUNT * moves[jnp.minimum(action, 5)]
        order_point = jnp.where(is_move[:, None], point, battle.order_point[agents])
        live = lambda new, old: jnp.where(  # noqa: E731
            alive.reshape(alive.shape + (1,) * (new.ndim - 1)), new, old
        )
        return battle.replace(
            order=battle.order.at[agents].set(live(order, battle.order[agents])),
            order_unit=battle.order_unit.at[agents].set(
                live(order_unit, battle.order_unit[agents])
            ),
            order_point=battle.order_point.at[agents].set(
                live(order_point, battle.order_point[agents])
            ),
        )

    def _outcome(self, battle: sim.Battle, roster: Roster) -> tuple[Array, Array, Array]:
        agents_alive = battle.alive[: self.num_agents]
        enemies_alive = battle.alive[self.num_agents :]
        fighting_agents = agents_alive & ~roster.is_medivac[: self.num_agents]
        fighting_enemies = enemies_alive & ~roster.is_medivac[self.num_agents :]
        if self.map.map_type == "MMM":
            agents_left = fighting_agents.any()
            only_medivac = (enemies_alive.sum() == 1) & ~fighting_enemies.any()
            enemies_left = enemies_alive.any() & ~only_medivac
        else:
            agents_left, enemies_left = agents_alive.any(), enemies_alive.any()
        won = agents_left & ~enemies_left
        lost = ~agents_left & enemies_left
        draw = ~agents_left & ~enemies_left
        return won, lost, draw

    def _reward(
        self, before: sim.Battle, after: sim.Battle, won: Array, lost: Array, roster: Roster
    ) -> Array:
        if self.reward_sparse:
            return jnp.where(won, 1.0, jnp.where(lost, -1.0, 0.0))
        enemies = slice(self.num_agents, None)
        was_alive = before.alive[enemies]
        before_total = before.health[enemies] + before.shield[enemies]
        after_total = after.health[enemies] + after.shield[enemies]
        died = was_alive & ~after.alive[enemies]
        delta_enemy = jnp.where(was_alive, before_total - after_total, 0.0).sum()
        delta_deaths = DEATH_REWARD * died.sum()
        agents = slice(0, self.num_agents)
        ally_lost = jnp.where(
            before.alive[agents],
            (before.health[agents] + before.shield[agents])
            - (after.health[agents] + after.shield[agents]),
            0.0,
        ).sum()
        if self.reward_only_positive:
            dealt = delta_enemy + delta_deaths
            reward = jnp.abs(dealt) if self.positive_reward == "abs" else jnp.maximum(dealt, 0.0)
        else:
            ally_deaths = (before.alive[agents] & ~after.alive[agents]).sum()
            reward = delta_enemy + delta_deaths - 0.5 * DEATH_REWARD * ally_deaths
            reward = reward - 0.5 * ally_lost
        reward = reward + jnp.where(won, WIN_REWARD, 0.0)
        return reward / (self._max_reward(roster) / 20.0)

    def _max_reward(self, roster: Roster) -> Array | float:
        return self.max_reward

    # ------------------------------------------------------------ observation
    def _action_mask(self, battle: sim.Battle, roster: Roster) -> Array:
        agents = slice(0, self.num_agents)
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
        enemy_gap = _gaps(position, battle.position[self.num_agents :])[2]
        shoot = roster.shoot[agents, None]
        targets = battle.alive[None, self.num_agents :] & (enemy_gap <= shoot)
        extra = self.num_targets - self.num_enemies
        targets = jnp.pad(targets, ((0, 0), (0, extra)))
        if self.mechanics.heal:
            medivac = roster.is_medivac[agents]
            ally_gap = _gaps(position, position)[2]
            can_heal = alive[None] & ~medivac[None] & (ally_gap <= shoot)
            extra = max(self.num_targets - self.num_agents, 0)
            can_heal = jnp.pad(can_heal, ((0, 0), (0, extra)))[:, : self.num_targets]
            targets = jnp.where(medivac[:, None], can_heal, targets)
        living = jnp.concatenate(
            [
                jnp.zeros((self.num_agents, 1), bool),
                jnp.ones((self.num_agents, 1), bool),
                can_move,
                targets,
            ],
            axis=1,
        )
        dead = jnp.zeros_like(living).at[:, 0].set(True)
        return jnp.where(alive[:, None], living, dead)

    def _type_one_hot(self, units: slice, roster: Roster) -> Array:
        slots = roster.type_slot[units]
        return (
            jax.nn.one_hot(slots, self.type_bits)
            if self.type_bits
            else jnp.zeros((slots.shape[0], 0))
        )

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

    def _observation(self, state: SMACState) -> Observation:
        battle = state.battle
        n, m = self.num_agents, self.num_enemies
        agents, enemies = slice(0, n), slice(n, None)
        roster = self._roster(battle)
        mask = self._action_mask(battle, roster)
        position = battle.position
        alive = battle.alive
        sight = roster.sight[agents, None]  # distances are in units of the viewer's sight

        enemy_dx, enemy_dy, enemy_distance = _gaps(position[agents], position[enemies])  # [n, m]
        enemy_seen = alive[None, enemies] & (enemy_distance < sight)
        enemy_static = jnp.concatenate(
            [
                self._health_block(battle, enemies, self.enemy_shield_bits, roster),
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

        ally_dx, ally_dy, ally_distance = _gaps(position[agents], position[agents])  # [n, n]
        ally_seen = alive[None, agents] & (ally_distance < sight)
        ally_health = self._health_block(battle, agents, self.ally_shield_bits, roster)
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
        if self.own_position:
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
        enemy_health = enemy_static[:, : 1 + self.enemy_shield_bits]
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
                jax.nn.one_hot(state.last_action, self.num_actions).reshape(-1),
            ]
        )
        return Observation(
            agents_view=agents_view.astype(jnp.float32),
            action_mask=mask,
            global_state=global_state.astype(jnp.float32),
            step_count=state.step_count,
        )

    # ---------------------------------------------------------------- render
    def render(self, state: SMACState) -> np.ndarray:
        """An RGB frame (``uint8 [H, W, 3]``, host side) of one unbatched ``state``.

        Terrain, units with health and shield bars, attacks and heals of the last
        step and a header; see :mod:`marl.envs.smac.render`.
        """
        from marl.envs.smac.render import render_frame

        return render_frame(self, state)


SMAC_PATTERN = "{" + ",".join(sorted(SMAC_MAPS)) + "}"


def smac_accepts(task: str) -> bool:
    return task in SMAC_MAPS


def make_smac(task: str, **kwargs) -> SMAC:
    return SMAC(task, **kwargs)
