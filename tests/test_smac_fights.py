"""Scripted SMAC fights whose outcome follows from StarCraft II's numbers, worked out by hand.

Both sides are scripted and re-ordered every agent step (0.5 game s, SMAC's 8 game
loops), as SMAC's agents are; neither side has SC2's stock behaviour (idle units
firing on their own), so every shot is one the script ordered. Unit numbers (game
seconds, SMAC v1's SC2 4.x data, ``envs/smac/units.py``):

* marine: 45 HP, armour 0, 6 damage every 0.8608 s, range 5;
* marauder: 125 HP, armour 1 (a marine's hit does 6 - 1 = 5);
* stalker: 80 HP + 80 shields, armour 1, 13 damage (+5 vs armoured) every 1.87 s, range
  6, speed 2.9531;
* zealot: 100 HP + 50 shields, armour 1, two blades of 8 every 1.2 s, melee (range
  0.1), speed 2.25;
* medivac: heals 9 HP per s at 1 energy per 3 HP, starts with 50 energy, regains
  0.5625 per s, starts no heal below 5 energy.

Tolerances. With ``weapon_delay`` off, SC2's arithmetic is exact and the simulator
adds only its time grid: a shot lands at the end of the 0.125 s sub-step in which
its cooldown runs out (at most one sub-step late), and a unit that dies shows as dead
at the end of that agent step. A time computed by hand at ``t`` is therefore checked
as "the battle ends in the agent step that contains ``t`` (or, when ``t`` falls in
the step's last sub-step, the next)". Where hits fall on the same sub-step on both
sides the simulator resolves them together (SC2 applies them in its own update
order, which is not documented); the fights below are laid out so that the winner
does not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.smac import sim
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES

MARINE = UNIT_TYPES[UNIT_INDEX["marine"]]
STALKER = UNIT_TYPES[UNIT_INDEX["stalker"]]
ZEALOT = UNIT_TYPES[UNIT_INDEX["zealot"]]
MEDIVAC = UNIT_TYPES[UNIT_INDEX["medivac"]]
MARAUDER = UNIT_TYPES[UNIT_INDEX["marauder"]]
SUBSTEPS = 4
SUBSTEP_SECONDS = sim.STEP_SECONDS / SUBSTEPS
# Both sides scripted: no team has SC2's stock auto-attack.
SCRIPTED = sim.ALL_MECHANICS._replace(stock_team=-1)

Orders = dict[int, tuple[int, int, tuple[float, float] | None]]
Script = Callable[[sim.Battle], Orders]


@pytest.fixture(scope="module")
def advance():
    terrain = sim.open_terrain()
    return jax.jit(
        lambda battle, delay: sim.advance(
            battle, terrain, SUBSTEPS, mechanics=SCRIPTED, weapon_delay=delay
        )
    )


def battle_of(units: list[str], positions: list[tuple[float, float]], teams: list[int]):
    types = jnp.asarray([UNIT_INDEX[name] for name in units], jnp.int32)
    return sim.new_battle(types, jnp.asarray(teams), jnp.asarray(positions, jnp.float32))


def with_orders(battle: sim.Battle, orders: Orders) -> sim.Battle:
    order = np.asarray(battle.order).copy()
    unit = np.asarray(battle.order_unit).copy()
    point = np.asarray(battle.order_point).copy()
    for index, (kind, target, goal) in orders.items():
        order[index], unit[index] = kind, target
        if goal is not None:
            point[index] = goal
    return battle.replace(
        order=jnp.asarray(order), order_unit=jnp.asarray(unit), order_point=jnp.asarray(point)
    )


def play(advance, battle, script: Script, max_steps: int, key=None) -> list[sim.Battle]:
    """Runs the fight until one team is gone (or ``max_steps``): every step's battle."""
    history = [battle]
    num_units = battle.unit_type.shape[0]
    for _ in range(max_steps):
        alive, team = np.asarray(battle.alive), np.asarray(battle.team)
        if not (alive & (team == 0)).any() or not (alive & (team == 1)).any():
            break
        battle = with_orders(battle, script(battle))
        delay = None
        if key is not None:
            key, step_key = jax.random.split(key)
            delay = sim.weapon_delays(step_key, SUBSTEPS, num_units)
        battle, _, _ = advance(battle, delay)
        history.append(battle)
    return history


def end_step(seconds: float) -> int:
    """The agent step at whose end a death at ``seconds`` of game time shows."""
    substep = max(1, math.ceil(seconds / SUBSTEP_SECONDS - 1e-6))
    return math.ceil(substep / SUBSTEPS)


# ------------------------------------------------- 3 marines focusing vs 3 spreading
def focus_against_spread(battle: sim.Battle) -> Orders:
    """Team 0 fires at the lowest-index living enemy; team 1 gives each unit its own target
    (unit ``j`` of team 1 takes living enemy number ``j`` mod the number living)."""
    alive = np.asarray(battle.alive)
    living_enemies = 3 + np.flatnonzero(alive[3:])
    living_allies = np.flatnonzero(alive[:3])
    orders: Orders = {}
    for unit in living_allies:
        orders[int(unit)] = (sim.ORDER_ATTACK, int(living_enemies[0]), None)
    for offset in np.flatnonzero(alive[3:]):
        target = living_allies[offset % len(living_allies)]
        orders[3 + int(offset)] = (sim.ORDER_ATTACK, int(target), None)
    return orders


MARINE_LINES = [(10.0, 15.0), (10.0, 16.0), (10.0, 17.0), (14.0, 15.0), (14.0, 16.0), (14.0, 17.0)]


def test_focused_fire_beats_spread_fire_as_sc2_arithmetic_says(advance):
    # Every marine is in range of every enemy (at most 4.5 apart, range 5 + 2 radii).
    # A marine dies to 8 hits (45 / 6 = 7.5). Volleys at k * P, P = 0.8608 s:
    # * the focusing side puts 3 hits a volley into one marine: the first enemy dies in
    #   volley 2 (hits 7-9), the second in volley 5, the third in volley 8;
    # * the spreading side puts 1 hit a volley into each of its targets: the marine
    #   facing enemy 0 takes 3 hits (volleys 0-2), the one facing enemy 1 takes 6
    #   (volleys 0-5), the one facing enemy 2 takes 8 by volley 7 and dies then;
    # * the last enemy then has 3 + 3 hits (volleys 6 and 7, the dying marine's shot
    #   landing with the one that kills it) and dies to the 2 hits of volley 8, its own
    #   last shot going to the first living marine (unit 0: 3 hits + 1).
    period = MARINE.cooldown
    history = play(
        advance,
        battle_of(["marine"] * 6, MARINE_LINES, [0] * 3 + [1] * 3),
        focus_against_spread,
        max_steps=40,
    )
    last = history[-1]
    assert not np.asarray(last.alive[3:]).any()
    np.testing.assert_array_equal(np.asarray(last.alive[:3]), [True, True, False])
    np.testing.assert_array_equal(np.asarray(last.health[:3]), [45 - 4 * 6, 45 - 6 * 6, 0])
    assert len(history) - 1 == end_step(8 * period)  # 6.89 game s: the 14th step
    deaths = {
        unit: next(i for i, b in enumerate(history) if not b.alive[unit]) for unit in (2, 3, 4, 5)
    }
    assert deaths[3] == end_step(2 * period)
    assert deaths[4] == end_step(5 * period)
    assert deaths[2] == end_step(7 * period)
    assert deaths[5] == end_step(8 * period)


def test_focused_fire_wins_under_sc2s_random_weapon_delays(advance):
    # SC2 adds -1..+2 game loops to every shot's cooldown, so shots on both sides drift
    # apart. The focusing side still kills its first two targets in 3 volleys each (its
    # marines have taken at most 6 hits by then); the third needs volleys 6, 7 and 8, or a
    # 9th when the marine dying around volley 7 no longer gets its shot in first. So the
    # fight ends 8 or 9 periods after the first volley, each period P - 1 to P + 2 loops:
    # between 8 (P - 1/16) = 6.4 s and 9 (P + 2/16) = 8.9 s. The spreading side kills at
    # most one marine: its 2nd and 3rd targets need 8 hits each, and by volley 6 only
    # one of its shooters is left.
    period = MARINE.cooldown
    first = end_step(8 * (period - 1.0 / sim.LOOPS_PER_SECOND))
    last = end_step(9 * (period + 2.0 / sim.LOOPS_PER_SECOND) + SUBSTEP_SECONDS)
    for seed in range(24):
        history = play(
            advance,
            battle_of(["marine"] * 6, MARINE_LINES, [0] * 3 + [1] * 3),
            focus_against_spread,
            max_steps=40,
            key=jax.random.PRNGKey(seed),
        )
        final = history[-1]
        assert not np.asarray(final.alive[3:]).any(), seed
        assert int(np.asarray(final.alive[:3]).sum()) >= 2, seed
        assert first <= len(history) - 1 <= last, (seed, len(history) - 1)


# --------------------------------------------------------- a stalker against a zealot
STALKER_HITS_TO_KILL_ZEALOT = 13  # shields: 3 x 13 + 11 (the 4th lets 2 - 1 = 1 through)
ZEALOT_EDGE_START = 6.0  # the stalker's range: it fires at once


def zealot_charges(battle: sim.Battle) -> Orders:
    return {1: (sim.ORDER_ATTACK, 0, None)}


def test_zealot_hand_computation_is_the_one_the_tests_use():
    hits, shield, health = 0, ZEALOT.shield, ZEALOT.health
    while health > 0:
        through = max(STALKER.damage - shield, 0.0)
        shield = max(shield - STALKER.damage, 0.0)
        health -= max(through - ZEALOT.armor, 0.5) if through > 0 else 0.0
        hits += 1
    assert hits == STALKER_HITS_TO_KILL_ZEALOT


def test_a_standing_stalker_loses_to_a_zealot(advance):
    # The zealot walks 6 - 0.1 = 5.9 at 2.25 per s (2.62 s) and then needs 11 attacks of
    # 2 x 8 (80 shields = 10 blades, then 80 HP at 8 - 1 = 7 a blade = 12 blades): the
    # stalker dies 10 periods of 1.2 s later, at 14.6 s. By then it has fired
    # floor(14.6 / 1.87) + 1 = 8 shots: 4 for the shields, 4 x 12 off the zealot's 99 HP.
    def stand_and_fire(battle):
        return {0: (sim.ORDER_ATTACK, 1, None), 1: (sim.ORDER_ATTACK, 0, None)}

    start = (16.0, 16.0)
    gap = ZEALOT_EDGE_START + STALKER.radius + ZEALOT.radius
    battle = battle_of(["stalker", "zealot"], [start, (start[0] + gap, start[1])], [0, 1])
    history = play(advance, battle, stand_and_fire, max_steps=60)
    final = history[-1]
    arrival = (ZEALOT_EDGE_START - ZEALOT.weapon_range) / ZEALOT.speed
    death = arrival + 10 * ZEALOT.cooldown
    assert not final.alive[0] and final.alive[1]
    # The zealot strikes one sub-step after the one in which it arrives (it checks its
    # range at the start of a sub-step): one more sub-step than the hand figure.
    assert len(history) - 1 == end_step(death + SUBSTEP_SECONDS)
    shots = math.floor(death / STALKER.cooldown) + 1
    assert shots == 8
    assert float(final.health[1]) == 99.0 - (shots - 4) * (STALKER.damage - ZEALOT.armor)


def test_a_kiting_stalker_kills_a_zealot_untouched(advance):
    # The stalker is faster (2.95 against 2.25): it fires when its weapon is ready and
    # the zealot in range, and otherwise runs round a circle of radius 12 about the map's
    # centre (a straight run would hit the map's edge first). The zealot never reaches
    # it, so the stalker fires on cooldown: 13 shots, the last 12 x 1.87 = 22.4 s after
    # the first, and ends with all 80 + 80.
    centre, radius = np.array([16.0, 16.0]), 12.0

    def kite(battle):
        position = np.asarray(battle.position)
        edge = np.linalg.norm(position[0] - position[1]) - STALKER.radius - ZEALOT.radius
        orders = zealot_charges(battle)
        if float(battle.cooldown[0]) <= sim.STEP_SECONDS and edge <= STALKER.weapon_range:
            orders[0] = (sim.ORDER_ATTACK, 1, None)
        else:
            outward = position[0] - centre
            distance = np.linalg.norm(outward)
            outward = outward / distance
            heading = np.array([-outward[1], outward[0]]) + 0.5 * (radius - distance) * outward
            goal = position[0] + 3.0 * heading / np.linalg.norm(heading)
            orders[0] = (sim.ORDER_MOVE, sim.NO_TARGET, (float(goal[0]), float(goal[1])))
        return orders

    start = centre + np.array([radius, 0.0])
    gap = ZEALOT_EDGE_START + STALKER.radius + ZEALOT.radius
    zealot = start - np.array([0.0, gap])  # behind it on the circle
    battle = battle_of(["stalker", "zealot"], [tuple(start), tuple(zealot)], [0, 1])
    history = play(advance, battle, kite, max_steps=80)
    final = history[-1]
    assert final.alive[0] and not final.alive[1]
    assert (float(final.health[0]), float(final.shield[0])) == (STALKER.health, STALKER.shield)
    assert len(history) - 1 == end_step((STALKER_HITS_TO_KILL_ZEALOT - 1) * STALKER.cooldown)


# ----------------------------------------------- a medivac keeping a marauder alive
def test_a_medivac_keeps_a_marauder_alive_as_long_as_its_energy_allows(advance):
    # A marine does 5 a hit to the marauder every 0.8608 s: 5.81 HP per s; alone, the
    # marauder's 125 HP last 25 hits, the last landing 24 periods = 20.7 s after the first.
    # The medivac heals what is lost (9 HP per s is faster than the marine) until its
    # energy runs down to the 5 it needs to start a heal, and from then on heals what it
    # regains: every point of energy it ever has beyond those 5 buys 3 HP. The marauder
    # dies when the damage dealt reaches 125 plus all healing:
    #   5 * (T / P + 1) = 125 + 3 * (50 - 5 + 0.5625 * T)  =>  T = 61.9 s,
    # to within one marine hit (5 HP: 1.2 s at the net 4.1 HP per s) and the grid.
    def marine_on_marauder(with_medivac):
        def script(battle):
            orders = {0: (sim.ORDER_HOLD, sim.NO_TARGET, None), 1: (sim.ORDER_ATTACK, 0, None)}
            if with_medivac:
                orders[2] = (sim.ORDER_HEAL, 0, None)
            return orders

        return script

    period = MARINE.cooldown
    hit = MARINE.damage - MARAUDER.armor
    marauder, marine, medivac = (16.0, 16.0), (16.0 + 5.9, 16.0), (15.0, 16.0)
    alone = play(
        advance,
        battle_of(["marauder", "marine"], [marauder, marine], [0, 1]),
        marine_on_marauder(False),
        max_steps=200,
    )
    assert not alone[-1].alive[0]
    assert len(alone) - 1 == end_step((MARAUDER.health / hit - 1) * period)

    battle = battle_of(["marauder", "marine", "medivac"], [marauder, marine, medivac], [0, 1, 0])
    healed = play(advance, battle, marine_on_marauder(True), max_steps=140)
    assert not healed[-1].alive[0]
    regen, per_energy = MEDIVAC.energy_regen, MEDIVAC.hp_per_energy
    spare = MEDIVAC.start_energy - sim.HEAL_MIN_ENERGY
    # 5 (T / P + 1) = 125 + 3 (45 + 0.5625 T), solved for T.
    death = (MARAUDER.health + per_energy * spare - hit) / (hit / period - per_energy * regen)
    assert abs(death - 61.9) < 0.05
    # The medivac outlives it (it is not shot at): the step the marauder died in.
    seconds = next(i for i, b in enumerate(healed) if not b.alive[0]) * sim.STEP_SECONDS
    assert abs(seconds - death) <= hit / (hit / period - per_energy * regen) + sim.STEP_SECONDS
    # While it has energy to spare the marauder never drops more than one hit below full.
    sustained = [b for b in healed if b.alive[0] and float(b.energy[2]) > sim.HEAL_MIN_ENERGY + 1.0]
    assert len(sustained) * sim.STEP_SECONDS > 25.0
    assert min(float(b.health[0]) for b in sustained) >= MARAUDER.health - 2 * hit
    # The energy it has when the marauder dies is the threshold it waits at.
    dying = next(b for b in healed if not b.alive[0])
    assert abs(float(dying.energy[2]) - sim.HEAL_MIN_ENERGY) < 0.5
