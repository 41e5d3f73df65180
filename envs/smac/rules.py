"""SMAC's rules over a battle: what an action orders, who won, what a step pays.

The functions take the side whose part they play as the first ``num_agents``
units of the battle, so the same rules serve the agents and, on the swapped
battle (:func:`marl.envs.smac.opponent.swap_sides`), a policy-controlled opponent.

* Actions: ``0`` no-op (only for dead agents), ``1`` stop, ``2..5`` move north,
  south, east, west (a point 2 cells away), ``6 + k`` attack enemy ``k`` (a medivac:
  heal ally ``k``). An unavailable action is replaced by the no-op, which changes
  nothing (the unit keeps its order), and counted.
* Outcome: a side is beaten when none of its fighting units (all but medivacs) is
  alive; on SMAC's MMM maps, with one medivac per side, this is SMAC's rule that a
  lone medivac has lost.
* Reward: SMAC's shaped reward (damage and shield damage dealt, 10 per kill, 200
  for a win; with ``only_positive``, v1 takes the absolute value of a step's total
  and SMACv2 clips it at 0) scaled so that a perfect episode earns 20, or with
  ``sparse`` +1 for a win and -1 for a loss.
* Multi-objective reward (``mo-smac``): that shaped reward as the first objective,
  and as the second what the side loses of its own (health and shields, 10 per
  death), negated and scaled the same way: 0 for an episode without losses, -20
  when every unit dies. Heals and regeneration pay it back.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from marl.envs.smac import sim
from marl.envs.smac.observer import Roster
from marl.types import Array

NUM_FIXED_ACTIONS = 6
MOVE_AMOUNT = 2.0
DEATH_REWARD = 10.0
WIN_REWARD = 200.0
POSITIVE_REWARDS = ("abs", "clip")


class RewardSettings(NamedTuple):
    sparse: bool  # +1 win, -1 loss, 0 otherwise
    only_positive: bool  # the shaped reward does not count damage taken
    positive: str  # "abs" (SMAC v1) or "clip" (SMACv2) of a step's total


def apply_actions(battle: sim.Battle, action: Array, num_agents: int, roster: Roster) -> sim.Battle:
    """The orders of the first ``num_agents`` units after their (valid) ``action``."""
    agents = slice(0, num_agents)
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
    target_unit = jnp.where(medivac, target, num_agents + target)
    order_unit = jnp.where(is_target, target_unit, battle.order_unit[agents])
    order_unit = jnp.where(is_move | (action == 1), sim.NO_TARGET, order_unit)
    point = position + MOVE_AMOUNT * moves[jnp.minimum(action, 5)]
    order_point = jnp.where(is_move[:, None], point, battle.order_point[agents])

    def live(new: Array, old: Array) -> Array:
        return jnp.where(alive.reshape(alive.shape + (1,) * (new.ndim - 1)), new, old)

    return battle.replace(
        order=battle.order.at[agents].set(live(order, battle.order[agents])),
        order_unit=battle.order_unit.at[agents].set(live(order_unit, battle.order_unit[agents])),
        order_point=battle.order_point.at[agents].set(
            live(order_point, battle.order_point[agents])
        ),
    )


def outcome(battle: sim.Battle, num_agents: int, roster: Roster) -> tuple[Array, Array, Array]:
    """``(won, lost, draw)`` of the first ``num_agents`` units' side."""
    fighting = battle.alive & ~roster.is_medivac
    agents_left = fighting[:num_agents].any()
    enemies_left = fighting[num_agents:].any()
    return (
        agents_left & ~enemies_left,
        ~agents_left & enemies_left,
        ~agents_left & ~enemies_left,
    )


def reward(
    before: sim.Battle,
    after: sim.Battle,
    won: Array,
    lost: Array,
    num_agents: int,
    max_reward: Array | float,
    settings: RewardSettings,
) -> Array:
    """What a step from ``before`` to ``after`` pays the first ``num_agents`` units' side."""
    if settings.sparse:
        return jnp.where(won, 1.0, jnp.where(lost, -1.0, 0.0))
    enemies = slice(num_agents, None)
    was_alive = before.alive[enemies]
    before_total = before.health[enemies] + before.shield[enemies]
    after_total = after.health[enemies] + after.shield[enemies]
    died = was_alive & ~after.alive[enemies]
    delta_enemy = jnp.where(was_alive, before_total - after_total, 0.0).sum()
    delta_deaths = DEATH_REWARD * died.sum()
    if settings.only_positive:
        dealt = delta_enemy + delta_deaths
        value = jnp.abs(dealt) if settings.positive == "abs" else jnp.maximum(dealt, 0.0)
    else:
        ally_lost, ally_deaths = _losses(before, after, num_agents)
        value = delta_enemy + delta_deaths - 0.5 * DEATH_REWARD * ally_deaths
        value = value - 0.5 * ally_lost
    value = value + jnp.where(won, WIN_REWARD, 0.0)
    return value / (max_reward / 20.0)


#: The objectives of the multi-objective reward, in order.
OBJECTIVE_NAMES = ("damage_dealt", "health_kept")
#: The hypervolume's reference point: no damage dealt and every unit lost, each
#: objective's worst episode return (both are scaled to a range of 20).
HYPERVOLUME_REFERENCE = (0.0, -20.0)


def _losses(before: sim.Battle, after: sim.Battle, num_agents: int) -> tuple[Array, Array]:
    """The health and shields the first ``num_agents`` units lost in a step, and how
    many of them died."""
    agents = slice(0, num_agents)
    was_alive = before.alive[agents]
    lost = jnp.where(
        was_alive,
        (before.health[agents] + before.shield[agents])
        - (after.health[agents] + after.shield[agents]),
        0.0,
    ).sum()
    return lost, (was_alive & ~after.alive[agents]).sum()


def own_losses(before: sim.Battle, after: sim.Battle, num_agents: int, roster: Roster) -> Array:
    """The second objective of a step: minus what the first ``num_agents`` units lost
    (health, shields and 10 per death), scaled so that losing everything is -20."""
    lost, deaths = _losses(before, after, num_agents)
    everything = DEATH_REWARD * num_agents + jnp.sum(
        roster.max_health[:num_agents] + roster.full_shield[:num_agents]
    )
    return -(lost + DEATH_REWARD * deaths) / (everything / 20.0)
