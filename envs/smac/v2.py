"""SMACv2-style scenarios on the JAX simulator: ``smacv2/<race>_<n>_vs_<m>``.

Every episode draws new teams and start positions (the shared reference, section 5):

* **Teams.** The agents' unit types are ``n`` independent draws with the scenario's
  weights, redrawn while every one of them is an exception type (a team of only
  medivacs or only banelings). The opponents mirror them: the same types, plus
  ``m - n`` further draws when there are more opponents (or the first ``m`` when
  fewer). Agents are numbered by (unit type in alphabetical order, x, y), as SMACv2
  numbers them.
* **Start positions**, ``surrounded_and_reflect``: with probability ``p_reflect`` (0.5)
  the agents stand anywhere in the west half (x in [0, 15)) and each mirrored opponent
  at the reflected point ``(32 - x, y)``, extra opponents anywhere in the east half;
  otherwise the agents start at the centre and the opponents in one to four groups,
  each on its own diagonal at a uniform point between the corner and 2 cells off the
  centre. Units placed on one point spread out as SC2 does, by the simulator's
  separation.
* **Map**: a flat, fully walkable 32 x 32 map (SMACv2's ``32x32_flat``); episode limit
  200 steps.
* **Opponent**: SMACv2's map trigger, every step: each opponent without a living target
  attacks the agent closest to it.

The interface is SMAC v1's with SMACv2's changes (section 5d, 5e):

* per-type sight and shoot ranges (centre to centre; shoot ranges raised to at least
  2), distances and offsets in the observation divided by the observing agent's own
  sight range; the agent's own ``x / 32, y / 32`` after its health and shields; a
  3-slot type one-hot per race (protoss stalker, zealot, colossus; terran marine,
  marauder, medivac; zerg zergling, hydralisk, baneling) for agents and opponents;
* the positive-only reward clips the step's total at 0 (v1 takes its absolute value);
* on terran scenarios a side whose only survivors are medivacs has lost.

Deliberate differences from SMACv2 (documented in the README as well):

* the reward's scale is computed from each episode's own opponents, so a perfect
  episode always earns 20; SMACv2 fixes it from the first episode's team;
* ``prob_obs_enemy`` is 1 (SMACv2's default): an agent sees what is within its sight
  range. SMACv2's bug that blanks lower-indexed enemies' features when an enemy has not
  been sighted yet (oxwhirl/smacv2 #50) is not reproduced. Conic field of view and the
  extended-partial-observability variants are not provided.

The environment is :class:`marl.envs.smac.env.SMAC` with a
:class:`RandomTeamsGenerator` and SMACv2's interface flags: :func:`smacv2` builds
it. Users add scenarios with :func:`register_scenario`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.smac import sim
from marl.envs.smac.env import SMAC
from marl.envs.smac.generators import (
    DEFAULT_COOLDOWN_SCALE,
    STATE_COOLDOWN_SCALE,
    spawn_offsets,
)
from marl.envs.smac.maps import MAP_SIZE
from marl.envs.smac.observer import Roster
from marl.envs.smac.opponent import OpponentPolicy
from marl.envs.smac.rules import DEATH_REWARD, NUM_FIXED_ACTIONS, WIN_REWARD
from marl.envs.smac.units import UNIT_INDEX, UNIT_TYPES, V2_MIN_SHOOT_RANGE
from marl.types import Array, PRNGKey

#: The type one-hot slots of each race (the same for agents and opponents).
RACE_TYPE_SLOTS = {
    "protoss": ("stalker", "zealot", "colossus"),
    "terran": ("marine", "marauder", "medivac"),
    "zerg": ("zergling", "hydralisk", "baneling"),
}
#: SMACv2 numbers the agents by their type's rank in this (alphabetical) order.
ALLY_TYPE_ORDER = (
    "baneling",
    "colossus",
    "hydralisk",
    "marauder",
    "marine",
    "medivac",
    "stalker",
    "zealot",
    "zergling",
)
START_POSITIONS = ("surrounded_and_reflect", "surrounded", "reflect")
CORNERS = ((0.0, 0.0), (0.0, 32.0), (32.0, 32.0), (32.0, 0.0))
CENTRE_OFFSET = 2.0  # a surrounding group stands at least this far off the centre, per axis
# SMACv2 creates many units on one point (all agents at the centre when surrounded),
# which SC2 spreads out. Until placement runs under jit (marl.envs.smac.placement is
# host-side), a random disc of this radius stands in for it.
V2_SPAWN_SPREAD = 0.5


@dataclasses.dataclass(frozen=True)
class V2Scenario:
    """A SMACv2-style scenario: random teams of one race and random start positions."""

    name: str
    race: str  # "protoss", "terran" or "zerg"
    num_agents: int
    num_enemies: int
    unit_types: tuple[str, ...]
    weights: tuple[float, ...]
    exceptions: tuple[str, ...] = ()  # a team made only of these is redrawn
    start_positions: str = "surrounded_and_reflect"
    p_reflect: float = 0.5  # chance of "reflect" under surrounded_and_reflect
    episode_limit: int = 200

    def __post_init__(self) -> None:
        where = f"scenario {self.name!r}"
        if self.race not in RACE_TYPE_SLOTS:
            raise ValueError(f"{where}: race {self.race!r}; valid: {sorted(RACE_TYPE_SLOTS)}")
        slots = RACE_TYPE_SLOTS[self.race]
        for unit in self.unit_types:
            if unit not in slots:
                raise ValueError(f"{where}: unit type {unit!r}; valid for {self.race}: {slots}")
        if len(self.weights) != len(self.unit_types) or not self.unit_types:
            raise ValueError(f"{where}: one weight per unit type is needed")
        if min(self.weights) < 0 or abs(sum(self.weights) - 1.0) > 1e-6:
            raise ValueError(f"{where}: weights must be non-negative and sum to 1")
        if not set(self.exceptions) <= set(self.unit_types):
            raise ValueError(f"{where}: exceptions {self.exceptions} not among the unit types")
        drawable = [u for u, w in zip(self.unit_types, self.weights, strict=True) if w > 0]
        if set(drawable) <= set(self.exceptions):
            raise ValueError(f"{where}: every drawable unit type is an exception")
        if self.num_agents < 1 or self.num_enemies < 1:
            raise ValueError(f"{where}: team sizes must be positive")
        if self.start_positions not in START_POSITIONS:
            raise ValueError(
                f"{where}: start_positions {self.start_positions!r}; valid: {START_POSITIONS}"
            )
        if not 0.0 <= self.p_reflect <= 1.0:
            raise ValueError(f"{where}: p_reflect must be in [0, 1]")
        if self.episode_limit < 1:
            raise ValueError(f"{where}: episode_limit must be positive")

    @property
    def unit_type_bits(self) -> int:
        return len(RACE_TYPE_SLOTS[self.race])


_RACE_TEAMS = {
    "protoss": (("stalker", "zealot", "colossus"), (0.45, 0.45, 0.1), ()),
    "terran": (("marine", "marauder", "medivac"), (0.45, 0.45, 0.1), ("medivac",)),
    "zerg": (("zergling", "hydralisk", "baneling"), (0.45, 0.45, 0.1), ("baneling",)),
}
_SIZES = ((5, 5), (10, 10), (10, 11), (20, 20), (20, 23))

#: The SMACv2 scenarios of the reference (section 5a), by name; extended by
#: :func:`register_scenario`.
SMACV2_SCENARIOS: dict[str, V2Scenario] = {
    f"{race}_{n}_vs_{m}": V2Scenario(
        name=f"{race}_{n}_vs_{m}",
        race=race,
        num_agents=n,
        num_enemies=m,
        unit_types=types,
        weights=weights,
        exceptions=exceptions,
    )
    for race, (types, weights, exceptions) in _RACE_TEAMS.items()
    for n, m in _SIZES
}


def register_scenario(scenario: V2Scenario, overwrite: bool = False) -> None:
    """Makes ``smacv2/<scenario.name>`` available to :func:`marl.make_env`."""
    if scenario.name in SMACV2_SCENARIOS and not overwrite:
        raise ValueError(
            f"a SMACv2 scenario named {scenario.name!r} exists; pass overwrite=True to replace it"
        )
    SMACV2_SCENARIOS[scenario.name] = scenario


def get_scenario(name: str) -> V2Scenario:
    """The scenario registered as ``name``; raises ``ValueError`` listing the valid names."""
    try:
        return SMACV2_SCENARIOS[name]
    except KeyError:
        valid = ", ".join(sorted(SMACV2_SCENARIOS))
        raise ValueError(f"unknown SMACv2 scenario '{name}'; valid: {valid}") from None


# ----------------------------------------------------------------- sampling
def draw_teams(key: PRNGKey, scenario: V2Scenario) -> tuple[Array, Array]:
    """Unit-type indices (into ``UNIT_TYPES``) of the agents ``[n]`` and opponents ``[m]``."""
    n, m = scenario.num_agents, scenario.num_enemies
    type_index = jnp.asarray([UNIT_INDEX[u] for u in scenario.unit_types], jnp.int32)
    is_exception = jnp.asarray([u in scenario.exceptions for u in scenario.unit_types])
    weights = jnp.asarray(scenario.weights, jnp.float32)

    def draw(draw_key: PRNGKey, count: int) -> Array:
        return jax.random.choice(draw_key, len(scenario.unit_types), (count,), p=weights)

    def only_exceptions(carry: tuple[PRNGKey, Array]) -> Array:
        return jnp.all(is_exception[carry[1]])

    def redraw(carry: tuple[PRNGKey, Array]) -> tuple[PRNGKey, Array]:
        loop_key, draw_key = jax.random.split(carry[0])
        return loop_key, draw(draw_key, n)

    team_key, extra_key = jax.random.split(key)
    _, allies = jax.lax.while_loop(only_exceptions, redraw, redraw((team_key, jnp.zeros(n, int))))
    if m > n:
        enemies = jnp.concatenate([allies, draw(extra_key, m - n)])
    else:
        enemies = allies[:m]
    return type_index[allies], type_index[enemies]


def start_positions(key: PRNGKey, scenario: V2Scenario) -> tuple[Array, Array]:
    """Start points of the agents ``[n, 2]`` and opponents ``[m, 2]``."""
    n, m = scenario.num_agents, scenario.num_enemies
    choice_key, reflect_key, surround_key = jax.random.split(key, 3)
    reflect = _reflect(reflect_key, n, m)
    surrounded = _surrounded(surround_key, n, m)
    if scenario.start_positions == "reflect":
        return reflect
    if scenario.start_positions == "surrounded":
        return surrounded
    use_reflect = jax.random.uniform(choice_key) < scenario.p_reflect
    return jax.tree.map(lambda a, b: jnp.where(use_reflect, a, b), reflect, surrounded)


def _reflect(key: PRNGKey, n: int, m: int) -> tuple[Array, Array]:
    ally_key, extra_key = jax.random.split(key)
    half = MAP_SIZE / 2
    allies = jax.random.uniform(ally_key, (n, 2)) * jnp.asarray([half - 1, MAP_SIZE])
    mirrored = allies[: min(n, m)] * jnp.asarray([-1.0, 1.0]) + jnp.asarray([MAP_SIZE, 0.0])
    extra = jax.random.uniform(extra_key, (max(m - n, 0), 2)) * jnp.asarray([half, MAP_SIZE])
    enemies = jnp.concatenate([mirrored, extra + jnp.asarray([half, 0.0])])
    return allies, enemies


def _surrounded(key: PRNGKey, n: int, m: int) -> tuple[Array, Array]:
    count_key, member_key, corner_key, t_key = jax.random.split(key, 4)
    centre = jnp.full((2,), MAP_SIZE / 2)
    allies = jnp.broadcast_to(centre, (n, 2))
    num_groups = jax.random.randint(count_key, (), 1, 5)
    # Multinomial group sizes: every opponent joins one of the groups uniformly.
    group = jax.random.randint(member_key, (m,), 0, num_groups)
    corners = jnp.asarray(CORNERS)[jax.random.permutation(corner_key, 4)]
    near_centre = centre + CENTRE_OFFSET * jnp.sign(corners - centre)
    t = jax.random.uniform(t_key, (4, 1))
    group_points = t * near_centre + (1 - t) * corners
    return allies, group_points[group]


# ---------------------------------------------------------------- generator
def _type_table(values: dict[str, float], default: float) -> np.ndarray:
    return np.asarray([values.get(u.name, default) for u in UNIT_TYPES], np.float32)


class RandomTeamsGenerator:
    """A SMACv2-style scenario's battles: new teams and start positions every episode
    on a flat 32 x 32 map; the per-unit facts are looked up from the unit types."""

    enemy_order = "attack_units"  # SMACv2's map trigger
    enemy_target = None
    enemy_target_segment = None

    def __init__(self, scenario: str | V2Scenario):
        spec = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.scenario = spec
        self.name = spec.name
        self.num_agents, self.num_enemies = spec.num_agents, spec.num_enemies
        self.teams = np.asarray([0] * self.num_agents + [1] * self.num_enemies, np.int32)
        self.possible_unit_types = np.asarray([UNIT_INDEX[u] for u in spec.unit_types], np.int32)
        self.ally_shield_bits = self.enemy_shield_bits = int(spec.race == "protoss")
        self.type_bits = spec.unit_type_bits
        self.walkable = np.ones((MAP_SIZE, MAP_SIZE), bool)
        self.cliff_level = np.zeros((MAP_SIZE, MAP_SIZE), np.int32)
        self.time_limit = spec.episode_limit
        # Terran medivacs index their heal targets among the agents.
        self.num_targets = self.num_enemies
        if "medivac" in spec.unit_types:
            self.num_targets = max(self.num_enemies, self.num_agents)
        slots = {name: slot for slot, name in enumerate(RACE_TYPE_SLOTS[spec.race])}
        self.type_tables = {
            "type_slot": np.asarray([slots.get(u.name, -1) for u in UNIT_TYPES], np.int32),
            "max_health": np.asarray([u.health for u in UNIT_TYPES], np.float32),
            "max_shield": np.asarray([u.smac_max_shield for u in UNIT_TYPES], np.float32),
            "full_shield": np.asarray([u.shield for u in UNIT_TYPES], np.float32),
            "cooldown_scale": _type_table(STATE_COOLDOWN_SCALE, DEFAULT_COOLDOWN_SCALE),
            "is_medivac": np.asarray([u.name == "medivac" for u in UNIT_TYPES]),
            "sight": np.asarray([u.v2_sight for u in UNIT_TYPES], np.float32),
            "shoot": np.asarray(
                [max(u.v2_shoot_range, V2_MIN_SHOOT_RANGE) for u in UNIT_TYPES], np.float32
            ),
        }
        self.ally_rank = np.full(len(UNIT_TYPES), len(ALLY_TYPE_ORDER), np.int32)
        for rank, name in enumerate(ALLY_TYPE_ORDER):
            self.ally_rank[UNIT_INDEX[name]] = rank

    def __repr__(self) -> str:
        return f"RandomTeamsGenerator({self.name!r})"

    def reset(self, key: PRNGKey) -> tuple[sim.Battle, PRNGKey, PRNGKey]:
        key, team_key, position_key, spread_key = jax.random.split(key, 4)
        ally_types, enemy_types = draw_teams(team_key, self.scenario)
        ally_points, enemy_points = start_positions(position_key, self.scenario)
        rank = jnp.asarray(self.ally_rank)[ally_types]
        order = jnp.lexsort((ally_points[:, 1], ally_points[:, 0], rank))
        unit_types = jnp.concatenate([ally_types[order], enemy_types])
        points = jnp.concatenate([ally_points[order], enemy_points])
        points = points + spawn_offsets(spread_key, len(self.teams), V2_SPAWN_SPREAD)
        points = jnp.clip(points, 0.0, MAP_SIZE - 1e-3)
        battle = sim.new_battle(unit_types, jnp.asarray(self.teams), points)
        # The trigger's first orders (each opponent attacks its closest agent) draw
        # nothing, so this key is never used.
        return battle, key, jax.random.fold_in(key, 1)

    def roster(self, battle: sim.Battle) -> Roster:
        tables = self.type_tables
        return Roster(
            **{field: jnp.asarray(tables[field])[battle.unit_type] for field in Roster._fields}
        )

    def unit_data(self, battle: sim.Battle) -> dict[str, Array]:
        return sim.unit_data(battle.unit_type)

    def max_reward(self, roster: Roster) -> Array:
        # Per episode: the opponents' total health and shields change with every draw.
        enemies = slice(self.num_agents, None)
        stock = roster.max_health[enemies] + roster.full_shield[enemies]
        return DEATH_REWARD * self.num_enemies + WIN_REWARD + jnp.sum(stock)

    def mirrored(self) -> RandomTeamsGenerator:
        return RandomTeamsGenerator(
            dataclasses.replace(
                self.scenario,
                name=f"{self.scenario.name}_mirrored",
                num_agents=self.num_enemies,
                num_enemies=self.num_agents,
            )
        )


def smacv2(
    scenario: str | V2Scenario = "protoss_5_vs_5",
    reward_sparse: bool = False,
    reward_only_positive: bool = True,
    substeps: int = 4,
    difficulty: int = 7,
    opponent_policy: OpponentPolicy | None = None,
    weapon_delay: bool = True,
) -> SMAC:
    """A SMACv2-style scenario: SMAC with random teams, the agent's own position in its
    observation and the positive reward clipped at 0 (``weapon_delay`` as in
    :class:`marl.envs.smac.env.SMAC`)."""
    return SMAC(
        RandomTeamsGenerator(scenario),
        reward_sparse,
        reward_only_positive,
        substeps,
        difficulty,
        opponent_policy,
        own_position=True,
        positive_reward="clip",
        weapon_delay=weapon_delay,
    )


SMACV2_PATTERN = "{race}_{n}_vs_{m} (" + ", ".join(sorted(SMACV2_SCENARIOS)) + ")"


def smacv2_accepts(task: str) -> bool:
    return task in SMACV2_SCENARIOS


#: The family's factory: ``smacv2(task, **kwargs)`` names its own keywords.
make_smacv2 = smacv2


__all__ = [
    "NUM_FIXED_ACTIONS",
    "SMACV2_SCENARIOS",
    "RandomTeamsGenerator",
    "V2Scenario",
    "draw_teams",
    "get_scenario",
    "register_scenario",
    "smacv2",
    "start_positions",
]
