"""Who plays the enemies: SMAC's built-in opponent, or a policy on the mirrored side.

* :class:`BuiltInOpponent` follows the map's trigger (an attack-move towards the
  agents' spawn or the map's attack point; unit-targeted attacks on the closest
  agent; or no order), and its difficulty level: lower levels hold some steps and
  engage only what is in weapon range, higher ones focus fire on the weakest agent
  in range. Stock units fire at what enters their range.
* :class:`Mirror` is the battle seen from the enemies' side (their units first):
  their SMAC observation, their actions' orders and their reward, by the same rules
  and observer the agents have. An ``opponent_policy`` (``policy(observation, key)
  -> actions``) plays on it, or a self-play loop gives the enemies' actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from marl.env import play_as_fallback
from marl.envs.smac import rules, sim
from marl.envs.smac.generators import Generator, observer_for
from marl.envs.smac.observer import gaps
from marl.types import Array, Observation, PRNGKey


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


def difficulty_level(difficulty: int) -> Difficulty:
    if difficulty not in DIFFICULTIES:
        valid = sorted(DIFFICULTIES)
        raise ValueError(f"difficulty must be one of {valid} (7 is SMAC's), got {difficulty!r}")
    return DIFFICULTIES[difficulty]


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
        auto_target=renumber(swapped.auto_target),
    )


class HeldOrders(NamedTuple):
    """The orders a step's hold or focus fire replaced; they come back after the step."""

    mask: Array  # [U] units whose order was replaced for one step
    order: Array
    order_unit: Array


class BuiltInOpponent:
    """The map's trigger and one difficulty level's micro."""

    def __init__(self, generator: Generator, difficulty: int):
        self.level = difficulty_level(difficulty)
        self.num_agents = generator.num_agents
        self.num_enemies = generator.num_enemies
        self.enemy_order = generator.enemy_order
        self.enemy_target = generator.enemy_target
        self.enemy_target_segment = generator.enemy_target_segment

    def initial_orders(self, battle: sim.Battle, key: PRNGKey) -> sim.Battle:
        enemies = slice(self.num_agents, None)
        if self.enemy_order == "attack_move":
            if self.enemy_target is not None:
                point = jnp.asarray(self.enemy_target, jnp.float32)
            else:
                start, end = (jnp.asarray(p, jnp.float32) for p in self.enemy_target_segment)
                point = start + jax.random.uniform(key) * (end - start)
            return battle.replace(
                order=battle.order.at[enemies].set(sim.ORDER_ATTACK_MOVE),
                order_point=battle.order_point.at[enemies].set(point),
            )
        if self.enemy_order == "attack_units":
            return self.attack_closest_agent(battle)
        return battle

    def attack_closest_agent(self, battle: sim.Battle) -> sim.Battle:
        """Every enemy without a living target attacks the agent closest to it."""
        n = self.num_agents
        enemies = slice(n, None)
        gap = jnp.linalg.norm(battle.position[enemies, None] - battle.position[None, :n], axis=-1)
        closest = jnp.argmin(jnp.where(battle.alive[None, :n], gap, jnp.inf), 1)
        current = battle.order_unit[enemies]
        keep = (current >= 0) & battle.alive[jnp.maximum(current, 0)]
        target = jnp.where(keep, current, closest).astype(jnp.int32)
        return battle.replace(
            order=battle.order.at[enemies].set(
                jnp.where(battle.alive[enemies], sim.ORDER_ATTACK, sim.ORDER_STOP)
            ),
            order_unit=battle.order_unit.at[enemies].set(target),
        )

    def orders(
        self, battle: sim.Battle, key: PRNGKey, unit_data: dict[str, Array]
    ) -> tuple[sim.Battle, HeldOrders]:
        """This step's orders: the trigger's retargeting, then the level's hold and
        focus-fire orders (returned for :meth:`end_step` to undo)."""
        if self.enemy_order == "attack_units":
            battle = self.attack_closest_agent(battle)
        n = self.num_agents
        enemies = slice(n, None)
        held = HeldOrders(jnp.zeros_like(battle.alive), battle.order, battle.order_unit)
        level = self.level
        if level.reaction >= 1.0 and level.focus_fire <= 0.0:
            return battle, held
        hold_key, focus_key = jax.random.split(key)
        order, order_unit = battle.order[enemies], battle.order_unit[enemies]
        changed = jnp.zeros(self.num_enemies, bool)
        if level.focus_fire > 0.0:
            weapon_range = jnp.asarray(unit_data["weapon_range"])[enemies]
            radius = jnp.asarray(unit_data["radius"])
            gap = gaps(battle.position[enemies], battle.position[:n])[2]
            edge = gap - radius[enemies, None] - radius[None, :n]
            shootable = battle.alive[None, :n] & (edge <= weapon_range[:, None])
            stock = battle.health[:n] + battle.shield[:n]
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
        return battle, held._replace(mask=mask)

    @staticmethod
    def end_step(battle: sim.Battle, held: HeldOrders) -> sim.Battle:
        """The orders a step's hold or focus fire replaced, back."""
        return battle.replace(
            order=jnp.where(held.mask & battle.alive, held.order, battle.order),
            order_unit=jnp.where(held.mask, held.order_unit, battle.order_unit),
        )


class Mirror:
    """The battle from the enemies' side: ``generator.mirrored()`` with the agents'
    interface flags and reward settings."""

    def __init__(self, generator: Generator, own_position: bool, settings: rules.RewardSettings):
        self.num_agents = generator.num_agents  # of the side being mirrored
        self.generator = generator.mirrored()
        self.observer = observer_for(self.generator, own_position)
        self.settings = settings

    def swap(self, battle: sim.Battle) -> sim.Battle:
        return swap_sides(battle, self.num_agents)

    def observation(self, battle: sim.Battle, last_action: Array, step_count: Array) -> Observation:
        """The enemies' observation; ``last_action`` is theirs."""
        swapped = self.swap(battle)
        return self.observer.observe(
            swapped, last_action, step_count, self.generator.roster(swapped)
        )

    def apply_actions(self, battle: sim.Battle, action: Array) -> tuple[sim.Battle, Array]:
        """The battle with the enemies' (valid) ``action`` ordered, and those actions."""
        swapped = self.swap(battle)
        roster = self.generator.roster(swapped)
        action = jnp.asarray(action, jnp.int32)
        action = play_as_fallback(self.observer.action_mask(swapped, roster), action, 0)
        swapped = rules.apply_actions(swapped, action, self.generator.num_agents, roster)
        return swap_sides(swapped, self.generator.num_agents), action

    def reward(self, before: sim.Battle, after: sim.Battle, won: Array, lost: Array) -> Array:
        """The enemies' reward for a step the agents ``won`` or ``lost``."""
        before, after = self.swap(before), self.swap(after)
        roster = self.generator.roster(before)
        return rules.reward(
            before,
            after,
            lost,
            won,
            self.generator.num_agents,
            self.generator.max_reward(roster),
            self.settings,
        )
