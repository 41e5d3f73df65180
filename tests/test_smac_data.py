"""The SMAC unit and map data against the facts of the shared SMAC reference (smac.md).

Pure numpy: nothing here compiles JAX code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from marl.envs.smac.maps import SMAC_MAPS, cliff_grid, get_map, walkable_grid
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES, unit_table


def unit(name: str):
    return UNIT_TYPES[UNIT_INDEX[name]]


# §1a: map -> (n_agents, n_enemies, limit, races, unit_type_bits, map_type).
REGISTRY = {
    "3m": (3, 3, 60, "T/T", 0, "marines"),
    "8m": (8, 8, 120, "T/T", 0, "marines"),
    "25m": (25, 25, 150, "T/T", 0, "marines"),
    "5m_vs_6m": (5, 6, 70, "T/T", 0, "marines"),
    "8m_vs_9m": (8, 9, 120, "T/T", 0, "marines"),
    "10m_vs_11m": (10, 11, 150, "T/T", 0, "marines"),
    "27m_vs_30m": (27, 30, 180, "T/T", 0, "marines"),
    "MMM": (10, 10, 150, "T/T", 3, "MMM"),
    "MMM2": (10, 12, 180, "T/T", 3, "MMM"),
    "2s3z": (5, 5, 120, "P/P", 2, "stalkers_and_zealots"),
    "3s5z": (8, 8, 150, "P/P", 2, "stalkers_and_zealots"),
    "3s5z_vs_3s6z": (8, 9, 170, "P/P", 2, "stalkers_and_zealots"),
    "3s_vs_3z": (3, 3, 150, "P/P", 0, "stalkers"),
    "3s_vs_4z": (3, 4, 200, "P/P", 0, "stalkers"),
    "3s_vs_5z": (3, 5, 250, "P/P", 0, "stalkers"),
    "1c3s5z": (9, 9, 180, "P/P", 3, "colossi_stalkers_zealots"),
    "2m_vs_1z": (2, 1, 150, "T/P", 0, "marines"),
    "corridor": (6, 24, 400, "P/Z", 0, "zealots"),
    "6h_vs_8z": (6, 8, 150, "Z/P", 0, "hydralisks"),
    "2s_vs_1sc": (2, 1, 300, "P/Z", 0, "stalkers"),
    "so_many_baneling": (7, 32, 100, "P/Z", 0, "zealots"),
    "bane_vs_bane": (24, 24, 200, "Z/Z", 2, "bane"),
    "2c_vs_64zg": (2, 64, 400, "P/Z", 0, "colossus"),
}

# §1a: per-type counts where a map mixes types.
MIXED_ARMIES = {
    "MMM": ({"marine": 7, "marauder": 2, "medivac": 1},) * 2,
    "MMM2": (
        {"marine": 7, "marauder": 2, "medivac": 1},
        {"marine": 8, "marauder": 3, "medivac": 1},
    ),
    "2s3z": ({"stalker": 2, "zealot": 3},) * 2,
    "3s5z": ({"stalker": 3, "zealot": 5},) * 2,
    "3s5z_vs_3s6z": ({"stalker": 3, "zealot": 5}, {"stalker": 3, "zealot": 6}),
    "1c3s5z": ({"colossus": 1, "stalker": 3, "zealot": 5},) * 2,
    "bane_vs_bane": ({"zergling": 20, "baneling": 4},) * 2,
}


def counts(groups: tuple[tuple[str, int], ...]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name, count in groups:
        totals[name] = totals.get(name, 0) + count
    return totals


def on_walkable_cell(grid: np.ndarray, point: tuple[float, float]) -> bool:
    return bool(grid[math.floor(point[0]), math.floor(point[1])])


def reachable(grid: np.ndarray, start: tuple[float, float]) -> np.ndarray:
    """Walkable cells 8-connected to the cell of ``start``."""
    seen = np.zeros_like(grid)
    stack = [(math.floor(start[0]), math.floor(start[1]))]
    while stack:
        x, y = stack.pop()
        if not (0 <= x < 32 and 0 <= y < 32) or seen[x, y] or not grid[x, y]:
            continue
        seen[x, y] = True
        stack.extend((x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
    return seen


def extent(cells: np.ndarray) -> tuple[int, int, int, int]:
    xs, ys = np.nonzero(cells)
    return int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())


# ---------------------------------------------------------------- units (§6a, §6b, §6c)


def test_unit_order_is_the_type_index():
    names = [u.name for u in UNIT_TYPES]
    assert names == [
        "marine",
        "marauder",
        "medivac",
        "stalker",
        "zealot",
        "colossus",
        "zergling",
        "baneling",
        "hydralisk",
        "spine_crawler",
    ]
    assert all(UNIT_INDEX[name] == i for i, name in enumerate(names))


def test_terran_units():
    marine = unit("marine")
    assert (marine.health, marine.damage, marine.cooldown) == (45, 6, 0.8608)
    assert (marine.weapon_range, marine.radius, marine.speed) == (5, 0.375, 2.25)
    assert marine.light and marine.biological and marine.targets_air
    marauder = unit("marauder")
    assert (marauder.health, marauder.armor, marauder.damage) == (125, 1, 10)
    assert (marauder.bonus_damage, marauder.bonus_vs, marauder.cooldown) == (10, "armored", 1.5)
    medivac = unit("medivac")
    assert medivac.air and medivac.damage == 0 and medivac.cooldown == 0
    assert (medivac.speed, medivac.enemy_speed) == (2.75, 2.5)
    assert (medivac.heal_rate, medivac.heal_range, medivac.hp_per_energy) == (9, 4, 3)
    assert medivac.weapon_range == 0 and not medivac.targets_air
    assert [u.name for u in UNIT_TYPES if u.heal_rate > 0 or u.heal_range > 0] == ["medivac"]
    assert (medivac.max_energy, medivac.start_energy, medivac.energy_regen) == (200, 50, 0.5625)


def test_protoss_units():
    stalker = unit("stalker")
    assert (stalker.health, stalker.shield, stalker.armor) == (80, 80, 1)
    assert (stalker.damage, stalker.bonus_damage, stalker.bonus_vs) == (13, 5, "armored")
    assert (stalker.cooldown, stalker.speed, stalker.smac_max_shield) == (1.87, 2.9531, 80)
    zealot = unit("zealot")
    assert (zealot.health, zealot.shield, zealot.hits, zealot.damage) == (100, 50, 2, 8)
    assert (zealot.weapon_range, zealot.cooldown, zealot.smac_max_shield) == (0.1, 1.2, 50)
    colossus = unit("colossus")
    assert (colossus.health, colossus.shield, colossus.smac_max_shield) == (200, 150, 150)
    assert (colossus.hits, colossus.damage, colossus.bonus_damage) == (2, 10, 5)
    assert colossus.bonus_vs == "light" and colossus.massive and colossus.cliff_walker
    assert colossus.splash_radius == 0
    assert [u.name for u in UNIT_TYPES if u.line_splash] == ["colossus"]
    assert all(unit(n).regenerates_shield for n in ("stalker", "zealot", "colossus"))
    assert sum(u.cliff_walker for u in UNIT_TYPES) == 1


def test_zerg_units():
    zerg = ("zergling", "baneling", "hydralisk", "spine_crawler")
    assert all(unit(n).health_regen == 0.2734 for n in zerg)
    assert all(u.health_regen == 0 for u in UNIT_TYPES if u.name not in zerg)
    assert (unit("zergling").health, unit("zergling").cooldown) == (35, 0.696)
    hydralisk = unit("hydralisk")
    assert (hydralisk.health, hydralisk.cooldown, hydralisk.damage) == (80, 0.825, 12)
    baneling = unit("baneling")
    assert baneling.damage + baneling.bonus_damage == 35 and baneling.bonus_vs == "light"
    assert not baneling.light and baneling.dies_on_attack
    assert (baneling.splash_radius, baneling.weapon_range) == (2.2, 0.25)
    crawler = unit("spine_crawler")
    assert (crawler.speed, crawler.weapon_range, crawler.health, crawler.armor) == (0, 7, 300, 2)
    assert crawler.structure and crawler.armored and crawler.biological


def test_v2_ranges():
    expected = {
        "stalker": (10, 6),
        "zealot": (9, 2),
        "colossus": (10, 7),
        "zergling": (8, 2),
        "baneling": (8, 2),
        "hydralisk": (9, 5),
        "marine": (9, 5),
        "marauder": (10, 6),
        "medivac": (11, 4),
    }
    for name, (sight, shoot) in expected.items():
        assert (unit(name).v2_sight, unit(name).v2_shoot_range) == (sight, shoot), name


def test_unit_table():
    table = unit_table()
    assert all(len(column) == 10 for column in table.values())
    assert "name" not in table and "bonus_vs" not in table
    assert table["health"].dtype == np.float32 and table["hits"].dtype == np.int32
    assert table["air"].dtype == bool
    np.testing.assert_array_equal(
        np.nonzero(table["bonus_vs_armored"])[0],
        [UNIT_INDEX[n] for n in ("marauder", "stalker", "spine_crawler")],
    )
    np.testing.assert_array_equal(
        np.nonzero(table["bonus_vs_light"])[0], [UNIT_INDEX["colossus"], UNIT_INDEX["baneling"]]
    )
    assert table["health"][UNIT_INDEX["marine"]] == 45


# ---------------------------------------------------------------- maps (§1a, §1b)


def test_every_registry_map_is_present():
    assert set(SMAC_MAPS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_map_matches_registry(name):
    spec = get_map(name)
    n_agents, n_enemies, limit, races, type_bits, map_type = REGISTRY[name]
    assert (spec.n_agents, spec.n_enemies, spec.episode_limit) == (n_agents, n_enemies, limit)
    assert f"{spec.ally_race}/{spec.enemy_race}" == races
    assert (spec.unit_type_bits, spec.map_type) == (type_bits, map_type)
    if name in MIXED_ARMIES:
        allies, enemies = MIXED_ARMIES[name]
        assert counts(spec.ally_units) == allies
        assert counts(spec.enemy_units) == enemies


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spawns_and_targets_are_walkable(name):
    spec = get_map(name)
    grid = walkable_grid(spec)
    assert grid.shape == (32, 32) and grid.dtype == bool
    assert len(spec.ally_spawns) == len(spec.ally_units)
    assert len(spec.enemy_spawns) == len(spec.enemy_units)
    for point in spec.ally_spawns + spec.enemy_spawns:
        assert on_walkable_cell(grid, point), point
    if spec.enemy_target is not None:
        assert on_walkable_cell(grid, spec.enemy_target)
    if spec.enemy_target_segment is not None:
        start, end = np.asarray(spec.enemy_target_segment)
        for t in np.linspace(0.0, 1.0, 25):
            assert on_walkable_cell(grid, tuple(start + t * (end - start)))
    # All ally groups start in one connected region.
    ally_region = reachable(grid, spec.ally_spawns[0])
    assert all(on_walkable_cell(ally_region, p) for p in spec.ally_spawns)


def test_allies_follow_smac_agent_order():
    assert [n for n, _ in get_map("MMM").ally_units] == ["marauder", "marine", "medivac"]
    assert [n for n, _ in get_map("1c3s5z").ally_units] == ["colossus", "stalker", "zealot"]
    assert [n for n, _ in get_map("bane_vs_bane").ally_units] == ["baneling", "zergling"]
    assert get_map("2m_vs_1z").ally_spawns == ((13.0, 12.0), (19.0, 12.0))


def test_enemy_orders():
    assert get_map("3m").enemy_target == (9.0, 16.0)
    assert get_map("bane_vs_bane").enemy_target == (16.0, 8.0)
    assert get_map("corridor").enemy_target == (4.47, 4.33)
    assert get_map("6h_vs_8z").enemy_target == get_map("6h_vs_8z").ally_spawns[0]
    two_marines = get_map("2m_vs_1z")
    assert two_marines.enemy_target is None
    assert two_marines.enemy_target_segment == two_marines.ally_spawns
    assert get_map("2s_vs_1sc").enemy_order == "none"
    assert get_map("2c_vs_64zg").enemy_order == "attack_units"
    assert get_map("2c_vs_64zg").enemy_target is None


BAND_MAPS = (
    "3m",
    "8m",
    "25m",
    "5m_vs_6m",
    "8m_vs_9m",
    "10m_vs_11m",
    "27m_vs_30m",
    "MMM",
    "MMM2",
    "2s3z",
    "3s5z",
    "3s5z_vs_3s6z",
    "1c3s5z",
)


def test_band_maps_walkable_exactly_y_8_to_23():
    expected = np.zeros((32, 32), dtype=bool)
    expected[:, 8:24] = True
    for name in BAND_MAPS:
        np.testing.assert_array_equal(walkable_grid(get_map(name)), expected, err_msg=name)
        assert (cliff_grid(get_map(name))[:, 8:24] == 1).all()


def test_stalker_kiting_maps_are_open():
    for n_zealots in (3, 4, 5):
        assert walkable_grid(get_map(f"3s_vs_{n_zealots}z")).all()


def test_corridor_choke():
    grid = walkable_grid(get_map("corridor"))
    assert grid[12:14, 12:14].all()
    # Of the twelve cells ringing the 2x2 choke only the south-west corner (11, 11), into
    # the room, and the north-east corner (14, 14), into the corridor, are walkable.
    ring = [
        (x, y)
        for x in range(11, 15)
        for y in range(11, 15)
        if not (12 <= x <= 13 and 12 <= y <= 13)
    ]
    open_ring = {cell for cell in ring if grid[cell]}
    assert open_ring == {(11, 11), (14, 14)}
    # The 10 x 10 room at x 2..11, y 2..11.
    assert grid[2:12, 2:12].all() and not grid[:2, :].any()
    # The zerglings can reach the attack point only through the choke.
    from_zerglings = reachable(grid, (27.91, 28.24))
    assert from_zerglings[4, 4]
    grid[12:14, 12:14] = False
    assert not reachable(grid, (27.91, 28.24))[4, 4]


def test_enclosed_plateaus():
    six_h = get_map("6h_vs_8z")
    assert extent(reachable(walkable_grid(six_h), six_h.ally_spawns[0])) == (8, 21, 8, 19)
    two_s = get_map("2s_vs_1sc")
    assert extent(reachable(walkable_grid(two_s), two_s.ally_spawns[0])) == (8, 19, 8, 23)


def test_octagon_and_baneling_band():
    grid = walkable_grid(get_map("bane_vs_bane"))
    assert extent(grid) == (6, 25, 6, 25)
    np.testing.assert_array_equal(grid, walkable_grid(get_map("2m_vs_1z")))
    band = get_map("so_many_baneling")
    assert reachable(walkable_grid(band), band.enemy_spawns[0])[4, 4]


def test_2c_vs_64zg_heights():
    spec = get_map("2c_vs_64zg")
    cliff = cliff_grid(spec)
    assert cliff.shape == (32, 32) and set(np.unique(cliff)) == {0, 1, 2}
    assert cliff[16, 16] == 2 and cliff[16, 9] == 1
    grid = walkable_grid(spec)
    # The bottom area reaches higher ground only through the gaps at x 0..3 and 28..31.
    assert not grid[4:28, 12:14].any() and grid[0:4, 12:14].all() and grid[28:32, 12:14].all()
    # Walkable plateau cells are level 2; the walkable rest is level 1.
    assert set(np.unique(cliff[grid])) == {1, 2}
    assert (cliff[8:24, 14:20][grid[8:24, 14:20]] == 2).all()


def test_get_map_error_lists_valid_names():
    with pytest.raises(ValueError) as error:
        get_map("nope")
    message = str(error.value)
    assert message.startswith("unknown SMAC map 'nope'; valid: ")
    assert message.endswith(", ".join(sorted(SMAC_MAPS)))
