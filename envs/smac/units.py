"""Unit data for the SMAC battle simulator: one :class:`UnitType` per SC2 unit.

Units. Every time-based value is in SC2 *game* time: 16 game loops per game second, the
clock of the SC2 data files and of the SMAC maps' ``UnitData.xml`` (one SMAC agent step
is 8 loops = 0.5 game s). Speeds are distances per game second, ``cooldown`` is the
weapon period in game seconds, regeneration and healing are amounts per game second.
Distances are in map cells. ``weapon_range`` is SC2's edge-to-edge range, whereas
``v2_shoot_range`` (like SMAC's flat shoot range of 6) is measured centre to centre.

Sources, by section of the shared SMAC reference (``smac.md``):

* §6a: health, shields, armor, attributes, speed, sight, radius and regeneration (taken
  from the SMAC maps' ``<Type>_RL`` ally copies where those exist);
* §6b: weapons (stock data: the allies' weapons link to the stock ones);
* §6c: shield and zerg regeneration, medivac healing and energy, baneling burst and
  splash, colossus line splash, colossus cliff walking;
* §1c: the ally medivac's speed 2.75 (the stock medivac, used by enemies, has 2.5);
* §2c: the hard-coded shield normalisers of the v1 observation;
* §5d: the SMACv2 per-type sight and shoot ranges.

Where SC2 patches differ, the SMAC v1 (SC2 4.x, the versions the SMAC results were run
on) values are used:

* colossus 200 HP and 150 shields (250 / 100 from 5.0.14);
* hydralisk 80 HP (the ally ``Hydralisk_RL`` restates 80; stock is 90 from 4.11) and a
  0.825 game s weapon period (shorter in recent patches);
* baneling 16 damage +19 vs light, i.e. 35 vs light; older LotV data split it 20 +15,
  which gives the same 35 vs light. The baneling's 80 damage against structures is not
  modelled: no SMAC map pits banelings against a building.

Values that are not a plain transcription:

* The medivac has no weapon (``damage``, ``cooldown`` and ``weapon_range`` 0); its heal
  reaches ``heal_range`` 4 (§6b).
* The baneling has no weapon period (``cooldown`` 0): it bursts once and dies.
* The colossus's ``splash_radius`` is 0: its beams sweep a line across the target rather
  than a disc (§6c), flagged by ``line_splash``; the simulator models the line's
  geometry. ``hits`` counts the two beams.
* The spine crawler never appears in SMACv2, so it has no §5d entry; its v2 ranges are
  its stock sight 11 and range 7 (7 already exceeds the minimum shoot range of 2).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Zerg units regain this much HP per game second, always (§6c).
ZERG_HEALTH_REGEN = 0.2734

#: SMACv2 raises every shoot range below this to it (``min_attack_range``, §5d).
V2_MIN_SHOOT_RANGE = 2.0


@dataclasses.dataclass(frozen=True)
class UnitType:
    """Static data of one unit type; time-based values are in game seconds."""

    name: str
    health: float
    shield: float
    armor: float
    light: bool
    armored: bool
    biological: bool
    mechanical: bool
    massive: bool
    structure: bool
    air: bool
    speed: float  # the ally (RL) unit's speed, distance per game second
    enemy_speed: float  # the stock unit's speed; differs from ``speed`` only for the medivac
    sight: float
    radius: float
    damage: float  # per hit, before bonus and armor
    bonus_damage: float  # added per hit against targets with the ``bonus_vs`` attribute
    bonus_vs: str  # "", "armored" or "light"
    hits: int  # hits per attack (zealot 2 blades, colossus 2 beams)
    cooldown: float  # weapon period in game seconds; 0 when there is no repeating weapon
    weapon_range: float  # SC2 edge-to-edge range
    targets_air: bool
    health_regen: float  # HP per game second
    regenerates_shield: bool
    splash_radius: float  # disc splash around the target (baneling)
    line_splash: bool  # the attack sweeps a line across the target (colossus)
    dies_on_attack: bool
    heal_rate: float  # HP per game second
    heal_range: float  # edge to edge, like weapon_range
    max_energy: float
    start_energy: float
    energy_regen: float  # energy per game second
    hp_per_energy: float  # HP healed per point of energy spent
    v2_sight: float  # SMACv2 sight, centre to centre
    v2_shoot_range: float  # SMACv2 shoot range, centre to centre, after max(value, 2)
    smac_max_shield: float  # SMAC v1's hard-coded shield normaliser (0: never normalised)
    cliff_walker: bool  # can walk up and down cliffs


def _unit(
    name: str,
    *,
    health: float,
    armor: float,
    speed: float,
    sight: float,
    radius: float,
    v2_sight: float,
    v2_shoot_range: float,
    shield: float = 0.0,
    light: bool = False,
    armored: bool = False,
    biological: bool = False,
    mechanical: bool = False,
    massive: bool = False,
    structure: bool = False,
    air: bool = False,
    enemy_speed: float | None = None,
    damage: float = 0.0,
    bonus_damage: float = 0.0,
    bonus_vs: str = "",
    hits: int = 1,
    cooldown: float = 0.0,
    weapon_range: float = 0.0,
    targets_air: bool = False,
    health_regen: float = 0.0,
    regenerates_shield: bool = False,
    splash_radius: float = 0.0,
    line_splash: bool = False,
    dies_on_attack: bool = False,
    heal_rate: float = 0.0,
    heal_range: float = 0.0,
    max_energy: float = 0.0,
    start_energy: float = 0.0,
    energy_regen: float = 0.0,
    hp_per_energy: float = 0.0,
    smac_max_shield: float = 0.0,
    cliff_walker: bool = False,
) -> UnitType:
    # Keyword-only with defaults so that each table entry below states only what is
    # particular to its unit, and a misplaced value cannot land in the wrong column.
    return UnitType(
        name=name,
        health=health,
        shield=shield,
        armor=armor,
        light=light,
        armored=armored,
        biological=biological,
        mechanical=mechanical,
        massive=massive,
        structure=structure,
        air=air,
        speed=speed,
        enemy_speed=speed if enemy_speed is None else enemy_speed,
        sight=sight,
        radius=radius,
        damage=damage,
        bonus_damage=bonus_damage,
        bonus_vs=bonus_vs,
        hits=hits,
        cooldown=cooldown,
        weapon_range=weapon_range,
        targets_air=targets_air,
        health_regen=health_regen,
        regenerates_shield=regenerates_shield,
        splash_radius=splash_radius,
        line_splash=line_splash,
        dies_on_attack=dies_on_attack,
        heal_rate=heal_rate,
        heal_range=heal_range,
        max_energy=max_energy,
        start_energy=start_energy,
        energy_regen=energy_regen,
        hp_per_energy=hp_per_energy,
        v2_sight=v2_sight,
        v2_shoot_range=v2_shoot_range,
        smac_max_shield=smac_max_shield,
        cliff_walker=cliff_walker,
    )


#: Every unit type; a type's position here is its type index.
UNIT_TYPES: tuple[UnitType, ...] = (
    _unit(
        "marine",
        health=45.0,
        armor=0.0,
        light=True,
        biological=True,
        speed=2.25,
        sight=9.0,
        radius=0.375,
        damage=6.0,
        cooldown=0.8608,
        weapon_range=5.0,
        targets_air=True,
        v2_sight=9.0,
        v2_shoot_range=5.0,
    ),
    _unit(
        "marauder",
        health=125.0,
        armor=1.0,
        armored=True,
        biological=True,
        speed=2.25,
        sight=10.0,
        radius=0.5625,
        damage=10.0,
        bonus_damage=10.0,
        bonus_vs="armored",
        cooldown=1.5,
        weapon_range=6.0,
        v2_sight=10.0,
        v2_shoot_range=6.0,
    ),
    _unit(
        "medivac",
        health=150.0,
        armor=1.0,
        armored=True,
        mechanical=True,
        air=True,
        speed=2.75,  # Medivac_RL in the SMAC maps (§1c)
        enemy_speed=2.5,  # stock medivac
        sight=11.0,
        radius=0.75,
        heal_rate=9.0,
        heal_range=4.0,
        max_energy=200.0,
        start_energy=50.0,
        energy_regen=0.5625,
        hp_per_energy=3.0,
        v2_sight=11.0,
        v2_shoot_range=4.0,
    ),
    _unit(
        "stalker",
        health=80.0,
        shield=80.0,
        armor=1.0,
        armored=True,
        mechanical=True,
        speed=2.9531,
        sight=10.0,
        radius=0.625,
        damage=13.0,
        bonus_damage=5.0,
        bonus_vs="armored",
        cooldown=1.87,
        weapon_range=6.0,
        targets_air=True,
        regenerates_shield=True,
        v2_sight=10.0,
        v2_shoot_range=6.0,
        smac_max_shield=80.0,
    ),
    _unit(
        "zealot",
        health=100.0,
        shield=50.0,
        armor=1.0,
        light=True,
        biological=True,
        speed=2.25,
        sight=9.0,
        radius=0.5,
        damage=8.0,
        hits=2,
        cooldown=1.2,
        weapon_range=0.1,  # melee
        regenerates_shield=True,
        v2_sight=9.0,
        v2_shoot_range=V2_MIN_SHOOT_RANGE,
        smac_max_shield=50.0,
    ),
    _unit(
        "colossus",
        health=200.0,
        shield=150.0,
        armor=1.0,
        armored=True,
        mechanical=True,
        massive=True,
        speed=2.25,
        sight=10.0,
        radius=1.0,
        damage=10.0,
        bonus_damage=5.0,
        bonus_vs="light",
        hits=2,  # two beam sweeps per attack
        cooldown=1.5,
        weapon_range=7.0,
        regenerates_shield=True,
        line_splash=True,
        v2_sight=10.0,
        v2_shoot_range=7.0,
        smac_max_shield=150.0,
        cliff_walker=True,
    ),
    _unit(
        "zergling",
        health=35.0,
        armor=0.0,
        light=True,
        biological=True,
        speed=2.9531,
        sight=8.0,
        radius=0.375,
        damage=5.0,
        cooldown=0.696,
        weapon_range=0.1,  # melee
        health_regen=ZERG_HEALTH_REGEN,
        v2_sight=8.0,
        v2_shoot_range=V2_MIN_SHOOT_RANGE,
    ),
    _unit(
        "baneling",
        health=30.0,
        armor=0.0,
        biological=True,  # not light
        speed=2.5,
        sight=8.0,
        radius=0.375,
        damage=16.0,
        bonus_damage=19.0,
        bonus_vs="light",
        weapon_range=0.25,  # burst trigger distance
        health_regen=ZERG_HEALTH_REGEN,
        splash_radius=2.2,
        dies_on_attack=True,
        v2_sight=8.0,
        v2_shoot_range=V2_MIN_SHOOT_RANGE,
    ),
    _unit(
        "hydralisk",
        health=80.0,
        armor=0.0,
        light=True,
        biological=True,
        speed=2.25,  # off creep; SMAC maps have no creep
        sight=9.0,
        radius=0.625,
        damage=12.0,
        cooldown=0.825,
        weapon_range=5.0,
        targets_air=True,
        health_regen=ZERG_HEALTH_REGEN,
        v2_sight=9.0,
        v2_shoot_range=5.0,
    ),
    _unit(
        "spine_crawler",
        health=300.0,
        armor=2.0,
        armored=True,
        biological=True,
        structure=True,
        speed=0.0,  # rooted
        sight=11.0,
        radius=1.125,
        damage=25.0,
        bonus_damage=5.0,
        bonus_vs="armored",
        cooldown=1.85,
        weapon_range=7.0,
        health_regen=ZERG_HEALTH_REGEN,
        v2_sight=11.0,
        v2_shoot_range=7.0,
    ),
)

#: Type index of each unit name.
UNIT_INDEX: dict[str, int] = {unit.name: index for index, unit in enumerate(UNIT_TYPES)}

_BONUS_TARGETS = ("", "armored", "light")


def unit_table() -> dict[str, np.ndarray]:
    """Every numeric and boolean field of :data:`UNIT_TYPES` as an array over type index.

    Floats are ``float32``, ints ``int32`` and flags ``bool``, ready to hand to JAX.
    The string field ``bonus_vs`` becomes the two flags ``bonus_vs_armored`` and
    ``bonus_vs_light``; ``name`` is left out (see :data:`UNIT_INDEX`).
    """
    dtypes = {"bool": bool, "int": np.int32, "float": np.float32}
    table: dict[str, np.ndarray] = {}
    for field in dataclasses.fields(UnitType):
        if field.name in ("name", "bonus_vs"):
            continue
        # ``field.type`` is the annotation's text because of ``from __future__ import
        # annotations``; choosing the dtype from it keeps a 0 typed as int a float.
        values = [getattr(unit, field.name) for unit in UNIT_TYPES]
        table[field.name] = np.asarray(values, dtype=dtypes[str(field.type)])
    table["bonus_vs_armored"] = np.asarray([u.bonus_vs == "armored" for u in UNIT_TYPES])
    table["bonus_vs_light"] = np.asarray([u.bonus_vs == "light" for u in UNIT_TYPES])
    return table


def _check_unit_types() -> None:
    # Catch a mistyped table entry at import rather than deep inside a simulation.
    for unit in UNIT_TYPES:
        if unit.bonus_vs not in _BONUS_TARGETS:
            raise ValueError(f"{unit.name}: bonus_vs {unit.bonus_vs!r} not in {_BONUS_TARGETS}")
        if (unit.bonus_damage > 0) != (unit.bonus_vs != ""):
            raise ValueError(f"{unit.name}: bonus_damage and bonus_vs disagree")


_check_unit_types()
