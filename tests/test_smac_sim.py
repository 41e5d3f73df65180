"""The battle simulation's rules on hand-made fights with known outcomes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.smac import sim
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES


def battle_of(units, positions, teams):
    types = jnp.asarray([UNIT_INDEX[name] for name in units], jnp.int32)
    return sim.new_battle(types, jnp.asarray(teams), jnp.asarray(positions, jnp.float32))


def order(battle, unit, kind, target=sim.NO_TARGET, point=None):
    battle = battle.replace(
        order=battle.order.at[unit].set(kind), order_unit=battle.order_unit.at[unit].set(target)
    )
    if point is not None:
        battle = battle.replace(order_point=battle.order_point.at[unit].set(jnp.asarray(point)))
    return battle


@pytest.fixture(scope="module")
def step():
    terrain = sim.open_terrain()
    return jax.jit(lambda battle: sim.advance(battle, terrain))


@pytest.fixture(scope="module")
def fine_step():
    terrain = sim.open_terrain()
    return jax.jit(lambda battle: sim.advance(battle, terrain, substeps=16))


def run(step, battle, num_steps):
    history = [battle]
    for _ in range(num_steps):
        battle, _, _ = step(battle)
        history.append(battle)
    return history


def test_resolve_hits_shields_armour_bonus_and_the_minimum():
    stalker = UNIT_TYPES[UNIT_INDEX["stalker"]]
    marauder = UNIT_TYPES[UNIT_INDEX["marauder"]]
    hit = marauder.damage + marauder.bonus_damage  # 20 against the armoured stalker
    health, shield = jnp.array([stalker.health]), jnp.array([stalker.shield])
    armor = jnp.array([stalker.armor])
    seen = []
    for _ in range(9):
        health, shield, _, _ = sim.resolve_hits(
            health, shield, armor, jnp.array([[hit]]), jnp.array([[1]])
        )
        seen.append((float(health[0]), float(shield[0])))
    # Shields take four whole hits (80), then every hit loses one to armour: 19 per hit.
    assert seen[3] == (80.0, 0.0)
    assert seen[4] == (61.0, 0.0)
    assert seen[7] == (4.0, 0.0)
    assert seen[8] == (0.0, 0.0)
    # A hit that breaks the shield: the rest goes through, minus armour.
    health, shield, health_damage, shield_damage = sim.resolve_hits(
        jnp.array([80.0]), jnp.array([10.0]), armor, jnp.array([[20.0]]), jnp.array([[1]])
    )
    assert (float(health[0]), float(shield[0])) == (71.0, 0.0)
    assert (float(health_damage[0]), float(shield_damage[0])) == (9.0, 10.0)
    # A zealot's two hits in one sub-step: the second sees what the first left.
    zealot_pair = (jnp.array([[8.0]]), jnp.array([[2]]))
    health, shield, _, _ = sim.resolve_hits(
        jnp.array([100.0]), jnp.array([10.0]), jnp.array([1.0]), *zealot_pair
    )
    assert (float(health[0]), float(shield[0])) == (95.0, 0.0)
    # Armour never takes a hit below 0.5.
    health, _, _, _ = sim.resolve_hits(
        jnp.array([300.0]), jnp.array([0.0]), jnp.array([2.0]), jnp.array([[1.0]]), jnp.array([[1]])
    )
    assert float(health[0]) == 299.5


def test_marine_kills_marine_in_eight_hits(step):
    battle = battle_of(["marine", "marine"], [(10.0, 16.0), (14.0, 16.0)], [0, 1])
    battle = order(battle, 0, sim.ORDER_ATTACK, target=1)
    history = run(step, battle, 14)
    health = [float(b.health[1]) for b in history]
    # The first shot at t = 0, then one every 0.8608 game s: the 8th (45 / 6 = 7.5)
    # lands at 7 x 0.8608 = 6.03 game s, i.e. during the 13th half-second step.
    assert health[1] == 45.0 - 6.0 * 1
    assert history[12].alive[1] and not history[13].alive[1]
    # A period is 1.72 steps, so every hit falls in a step of its own: 8 of them.
    assert np.count_nonzero(np.diff(health) < 0) == 8
    # The idle enemy marine fires back at the marine in its range: both die together.
    assert not history[13].alive[0]


def test_automatic_targets_stay_until_out_of_range_and_threats_come_first(step):
    """SC2's automatic targeting (stock units on stop or attack-move): a target stays
    chosen while valid and in weapon range, even when another comes closer; one out of
    range is dropped for the closest; a unit that can fire back comes first."""
    # The idle enemy marine (2) has agent marine 0 in range (edge 3.25 of 5), 1 not.
    battle = battle_of(["marine"] * 3, [(12.0, 16.0), (9.0, 16.0), (16.0, 16.0)], [0, 0, 1])
    battle, _, _ = step(battle)
    assert int(battle.auto_target[2]) == 0 and int(battle.acted_on[2]) == 0
    closer = battle.replace(position=battle.position.at[1].set(jnp.array([14.5, 16.0])))
    kept = run(step, closer, 3)
    assert [int(b.auto_target[2]) for b in kept[1:]] == [0, 0, 0]
    assert float(kept[-1].health[1]) == 45.0 and float(kept[-1].health[0]) < 45.0 - 6.0
    away = kept[-1].replace(position=kept[-1].position.at[0].set(jnp.array([8.0, 16.0])))
    switched, _, _ = step(away)
    assert int(switched.auto_target[2]) == 1
    # A medivac (no weapon) closer than a marine: the marine is shot first ...
    units = ["medivac", "marine", "marine"]
    battle = battle_of(units, [(14.0, 16.0), (12.5, 16.0), (16.0, 16.0)], [0, 0, 1])
    battle, _, _ = step(battle)
    assert int(battle.auto_target[2]) == 1 and int(battle.acted_on[2]) == 1
    # ... and a marine entering range takes over from a medivac being shot.
    battle = battle_of(units, [(14.0, 16.0), (8.0, 16.0), (16.0, 16.0)], [0, 0, 1])
    battle, _, _ = step(battle)
    assert int(battle.auto_target[2]) == 0
    battle = battle.replace(position=battle.position.at[1].set(jnp.array([12.5, 16.0])))
    battle, _, _ = step(battle)
    assert int(battle.auto_target[2]) == 1
    # Units under an explicit order keep no automatic target.
    ordered = order(battle, 2, sim.ORDER_ATTACK, target=0)
    ordered, _, _ = step(ordered)
    assert int(ordered.auto_target[2]) == sim.NO_TARGET


def test_fire_rate_matches_the_weapon_period_in_expectation(step, fine_step):
    stalker = UNIT_TYPES[UNIT_INDEX["stalker"]]
    crawler = UNIT_TYPES[UNIT_INDEX["spine_crawler"]]
    for advance in (step, fine_step):
        battle = battle_of(["stalker", "spine_crawler"], [(10.0, 16.0), (14.0, 16.0)], [0, 1])
        battle = order(battle, 0, sim.ORDER_ATTACK, target=1)
        battle = battle.replace(cooldown=battle.cooldown.at[1].set(1e9))  # never fires back
        history = run(advance, battle, 60)  # 30 game s; the crawler (300 HP) survives
        regenerated = crawler.health_regen * 30.0
        damage = float(history[0].health[1] - history[-1].health[1]) + regenerated
        hits = damage / (stalker.damage + stalker.bonus_damage - crawler.armor)
        # A shot at 0 and one per 1.87 game s: 17 in 30 s, with 4 or 16 sub-steps a step.
        np.testing.assert_allclose(hits, np.floor(30.0 / stalker.cooldown) + 1, atol=0.05)


def test_weapon_delays_lengthen_each_period_by_the_delay_drawn_for_it():
    stalker = UNIT_TYPES[UNIT_INDEX["stalker"]]
    crawler = UNIT_TYPES[UNIT_INDEX["spine_crawler"]]
    terrain = sim.open_terrain()
    fine = jax.jit(lambda b, delay: sim.advance(b, terrain, substeps=16, weapon_delay=delay))
    battle = battle_of(["stalker", "spine_crawler"], [(10.0, 16.0), (14.0, 16.0)], [0, 1])
    battle = order(battle, 0, sim.ORDER_ATTACK, target=1)
    battle = battle.replace(cooldown=battle.cooldown.at[1].set(1e9))
    # The largest delay SC2 draws, +2 game loops, on every shot.
    longest = jnp.full((16, 2), 2.0 / sim.LOOPS_PER_SECOND)
    for _ in range(60):  # 30 game s
        battle, _, _ = fine(battle, longest)
    damage = crawler.health - float(battle.health[1]) + crawler.health_regen * 30.0
    hits = damage / (stalker.damage + stalker.bonus_damage - crawler.armor)
    period = stalker.cooldown + 2.0 / sim.LOOPS_PER_SECOND
    # 17 shots without delays (the test above), 16 with every period 0.125 s longer.
    assert np.floor(30.0 / period) + 1 == 16
    np.testing.assert_allclose(hits, np.floor(30.0 / period) + 1, atol=0.05)


def test_weapon_delays_are_uniform_between_minus_one_and_plus_two_game_loops():
    delays = np.asarray(sim.weapon_delays(jax.random.PRNGKey(0), 4, 5000)) * sim.LOOPS_PER_SECOND
    assert delays.shape == (4, 5000)
    assert delays.min() >= -1.0 and delays.max() <= 2.0
    np.testing.assert_allclose(delays.mean(), 0.5, atol=0.02)
    np.testing.assert_allclose(np.mean(delays < 0.0), 1.0 / 3.0, atol=0.01)
    # Eight random bits per delay: 256 evenly spaced levels, each drawn about as often.
    levels = np.round((delays + 1.0) / 3.0 * 256 - 0.5).astype(int)
    np.testing.assert_allclose((levels + 0.5) / 256 * 3.0 - 1.0, delays, atol=1e-4)
    counts = np.bincount(levels.ravel(), minlength=256)
    assert counts.size == 256 and counts.min() > 0.5 * counts.mean()


def test_one_draw_gives_two_independent_keys_and_the_delay_words():
    from marl.envs.smac.env import split_with_bits

    for key in (jax.random.PRNGKey(3), jax.random.key(3)):
        first, second, words = split_with_bits(key, 5)
        assert words.shape == (5,) and words.dtype == jnp.uint32
        assert first.dtype == key.dtype and first.shape == key.shape
        draws = [np.asarray(jax.random.uniform(k, (1000,))) for k in (first, second, key)]
        # Different streams: no two keys give correlated numbers.
        correlation = np.corrcoef(draws)
        assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.1


def test_shields_regenerate_after_ten_quiet_seconds(step):
    battle = battle_of(["stalker"], [(10.0, 16.0)], [0])
    battle = battle.replace(shield=jnp.array([0.0]))
    history = run(step, battle, 24)  # 12 game s
    assert float(history[19].shield[0]) == 0.0  # 9.5 s: still waiting
    np.testing.assert_allclose(float(history[24].shield[0]), 2.0 * 2.0, atol=0.5)


def test_zerg_regenerate_health(step):
    battle = battle_of(["zergling"], [(10.0, 16.0)], [0])
    battle = battle.replace(health=jnp.array([10.0]))
    history = run(step, battle, 20)  # 10 game s
    np.testing.assert_allclose(float(history[-1].health[0]), 10.0 + 2.734, atol=1e-3)


def test_medivac_heals_and_spends_energy(step):
    battle = battle_of(["medivac", "marine"], [(10.0, 16.0), (11.0, 16.0)], [0, 0])
    battle = battle.replace(health=battle.health.at[1].set(20.0))
    battle = order(battle, 0, sim.ORDER_HEAL, target=1)
    history = run(step, battle, 2)  # 1 game s
    np.testing.assert_allclose(float(history[-1].health[1]), 20.0 + 9.0, atol=1e-4)
    np.testing.assert_allclose(float(history[-1].energy[0]), 50.0 - 3.0 + 0.5625, atol=1e-4)
    # Healed to full, the order ends and no more energy is spent.
    history = run(step, history[-1], 8)
    assert float(history[-1].health[1]) == 45.0
    assert int(history[-1].order[0]) == sim.ORDER_STOP


def test_stock_medivac_heals_on_its_own_and_agents_medivac_waits(step):
    units = ["medivac", "marine", "marauder"]
    positions = [(10.0, 16.0), (13.0, 16.0), (10.0, 20.0)]  # the marauder is unhurt
    for team in (1, 0):  # stock units autocast; the agents' medivac waits for an order
        battle = battle_of(units, positions, [team] * 3)
        battle = battle.replace(health=battle.health.at[1].set(20.0))
        after = run(step, battle, 3)[-1]  # 1.5 game s: within heal range 4 at once, heal
        if team == 1:
            assert 20.0 < float(after.health[1]) <= 20.0 + 9.0 * 1.5
            assert int(after.acted_on[0]) == 1
        else:
            assert float(after.health[1]) == 20.0 and int(after.acted_on[0]) == sim.NO_TARGET


def test_baneling_splashes_everything_in_radius_and_dies(step):
    battle = battle_of(
        ["baneling", "marine", "marine", "marine"],
        [(10.0, 16.0), (10.6, 16.0), (11.0, 17.5), (15.0, 16.0)],
        [1, 0, 0, 0],
    )
    battle = order(battle, 0, sim.ORDER_ATTACK, target=1)
    after, health_damage, _ = step(battle)
    assert not after.alive[0]
    # 16 + 19 vs light = 35 on each marine within 2.2 (edge), none on the far one.
    np.testing.assert_allclose(np.asarray(health_damage[1:]), [35.0, 35.0, 0.0])


def test_units_move_at_their_speed_and_walls_block(step):
    battle = battle_of(["marine"], [(10.0, 16.0)], [0])
    battle = order(battle, 0, sim.ORDER_MOVE, point=(20.0, 16.0))
    after, _, _ = step(battle)
    np.testing.assert_allclose(np.asarray(after.position[0]), [10.0 + 1.125, 16.0], atol=1e-5)
    walls = sim.Terrain(
        jnp.ones((32, 32), bool).at[11:, :].set(False), jnp.zeros((32, 32), jnp.int32)
    )
    blocked, _, _ = sim.advance(battle, walls)
    assert float(blocked.position[0, 0]) < 11.0


def test_dead_units_stay_dead_and_do_nothing(step):
    battle = battle_of(["marine", "marine"], [(10.0, 16.0), (14.0, 16.0)], [0, 1])
    battle = battle.replace(health=battle.health.at[1].set(3.0))
    battle = order(battle, 0, sim.ORDER_ATTACK, target=1)
    history = run(step, battle, 4)
    assert not history[1].alive[1]
    assert all(float(b.health[1]) == 0.0 for b in history[1:])
    assert int(history[-1].order[0]) == sim.ORDER_STOP  # its target died


def test_two_medivacs_never_heal_past_full_health():
    units = ["medivac", "medivac", "marine"]
    battle = battle_of(units, [(10.0, 16.0), (10.0, 17.0), (11.0, 16.5)], [0, 0, 0])
    battle = battle.replace(health=battle.health.at[2].set(44.0))
    battle = order(order(battle, 0, sim.ORDER_HEAL, target=2), 1, sim.ORDER_HEAL, target=2)
    # The roster's own mechanics (no regeneration, whose cap would hide an overshoot).
    mechanics = sim.mechanics_for([UNIT_INDEX[name] for name in units])
    after, _, _ = sim.advance(battle, sim.open_terrain(), mechanics=mechanics)
    assert float(after.health[2]) == 45.0
