"""Where SMAC's units start (SC2's placement around each map point) and where a fight's
randomness comes from (SC2's weapon delays, not the start)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.smac.env import SMAC
from marl.envs.smac.generators import MapGenerator
from marl.envs.smac.placement import PLACEMENT_STEP, candidate_offsets, place_units
from marl.envs.smac.rules import NUM_FIXED_ACTIONS
from marl.envs.smac.units import UNIT_TYPES


def _layout(generator):
    types = [UNIT_TYPES[t] for t in generator.unit_types]
    return np.asarray([t.radius for t in types]), np.asarray([t.air for t in types])


@pytest.mark.parametrize("name", ["3m", "MMM", "2s3z", "27m_vs_30m", "2c_vs_64zg", "corridor"])
def test_each_group_starts_on_its_point_packed_without_overlap_on_walkable_ground(name):
    generator = MapGenerator(name)
    radius, air = _layout(generator)
    spawns, points = generator.spawns.astype(np.float64), generator.spawn_points
    # The first unit of each group (and layer) stands on the map point itself.
    for layer in (False, True):
        seen = set()
        for index in np.flatnonzero(air == layer):
            point = tuple(points[index])
            if point not in seen:
                seen.add(point)
                np.testing.assert_allclose(spawns[index], points[index], atol=1e-5)
    # No two units of a layer overlap; each ground unit stands on a walkable cell.
    gap = np.hypot(*(spawns[:, None] - spawns[None]).transpose(2, 0, 1))
    touching = radius[:, None] + radius[None] - 1e-4
    same_layer = (air[:, None] == air[None]) & ~np.eye(len(air), dtype=bool)
    assert np.all(gap[same_layer] >= touching[same_layer])
    cells = np.floor(spawns[~air]).astype(int)
    assert generator.walkable[cells[:, 0], cells[:, 1]].all()
    # Packed: each unit within a few unit widths of its point (64 zerglings need ~4.5).
    assert np.all(np.hypot(*(spawns - points).T) < 5.0)


def test_three_marines_form_a_triangle_of_touching_marines():
    generator = MapGenerator("3m")
    marine = UNIT_TYPES[generator.unit_types[0]].radius
    # Nearest first, ties counterclockwise from east: the point, east, then north.
    np.testing.assert_allclose(
        generator.spawns[:3], [(9.0, 16.0), (9.0 + 2 * marine, 16.0), (9.0, 16.0 + 2 * marine)]
    )
    # The enemy group has the same shape around its own point: the engine's search
    # does not know where the other side is.
    np.testing.assert_allclose(generator.spawns[3:] - (23.0 - 9.0, 0.0), generator.spawns[:3])


def test_air_units_do_not_make_room_for_ground_units():
    generator = MapGenerator("MMM")
    radius, air = _layout(generator)
    (medivac,) = np.flatnonzero(air[: generator.num_agents])
    # The medivac is the only air unit of its group: it takes the point, above the
    # marauder that stands there too.
    np.testing.assert_allclose(generator.spawns[medivac], generator.spawn_points[medivac])
    assert np.any(np.all(generator.spawns[~air] == generator.spawns[medivac], axis=1))


def test_placement_searches_a_grid_nearest_first_and_says_when_there_is_no_room():
    offsets = candidate_offsets(reach=1.0)
    distance = np.hypot(*offsets.T)
    assert np.all(np.diff(distance) >= -1e-9) and distance[0] == 0.0
    np.testing.assert_allclose(np.mod(offsets / PLACEMENT_STEP, 1.0), 0.0, atol=1e-9)
    rotated = candidate_offsets(reach=1.0, first_angle=math.pi / 2)
    np.testing.assert_allclose(rotated[1], (0.0, PLACEMENT_STEP))
    walkable = np.zeros((32, 32), bool)
    walkable[10, 10] = True  # one cell: room for a marine or two, not for nine
    with pytest.raises(ValueError, match="no room for a unit of radius 0.375"):
        place_units(
            np.full((9, 2), 10.5), np.full(9, 0.375), np.zeros(9, bool), walkable, np.ones((32, 32))
        )


def test_the_mirrored_map_starts_from_the_same_positions_seen_from_the_other_side():
    generator = MapGenerator("2s3z")
    mirrored = generator.mirrored()
    n = generator.num_agents
    np.testing.assert_array_equal(mirrored.spawns[: generator.num_enemies], generator.spawns[n:])
    np.testing.assert_array_equal(mirrored.spawns[generator.num_enemies :], generator.spawns[:n])


def _focus_fire(mask):
    """Every agent attacks the lowest-index enemy it can, else moves east."""
    attack = mask[:, NUM_FIXED_ACTIONS:]
    return jnp.where(attack.any(-1), jnp.argmax(attack, -1) + NUM_FIXED_ACTIONS, 4)


def _health_trace(env, keys):
    def episode(key):
        state, timestep = env.reset(key)

        def body(carry, _):
            state, timestep = carry
            state, timestep = env.step(state, _focus_fire(timestep.observation.action_mask))
            return (state, timestep), state.battle.health

        (_, _), health = jax.lax.scan(body, (state, timestep), None, length=30)
        return state.battle.position, health

    return jax.jit(jax.vmap(episode))(keys)


def test_starts_are_the_same_every_episode_and_weapon_delays_make_fights_differ():
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    exact = SMAC("3m", weapon_delay=False)
    start, health = _health_trace(exact, keys)
    # SMAC: the same start every episode; with exact cooldowns, the same fight too.
    np.testing.assert_array_equal(start, np.broadcast_to(start[0], start.shape))
    np.testing.assert_array_equal(health, np.broadcast_to(health[0], health.shape))
    start, health = _health_trace(SMAC("3m"), keys)  # SC2's weapon delays (the default)
    np.testing.assert_array_equal(start, np.broadcast_to(start[0], start.shape))
    assert len({np.asarray(h).tobytes() for h in health}) == len(keys)


def test_spawn_jitter_moves_each_start_within_its_radius_and_is_checked():
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    env = SMAC("3m", spawn_jitter=0.5)
    start = np.asarray(jax.vmap(lambda key: env.reset(key)[0].battle.position)(keys))
    moved = np.hypot(*(start - env.generator.spawns).transpose(2, 0, 1))
    assert moved.max() <= 0.5 + 1e-5 and moved.mean() > 0.2
    with pytest.raises(ValueError, match="spawn_jitter must not be negative"):
        SMAC("3m", spawn_jitter=-1.0)
