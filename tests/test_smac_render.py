"""SMAC replays: frames of hand-made states, and ``marl-evaluate ... replay=PATH.gif``."""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.smac import render
from marl.envs.smac.env import SMAC
from marl.wrappers import MetricsState

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent

# 3m: agents 0-2, enemies 3-5. Agent 0 and enemy 3 face each other along y = 20;
# the others stand well away from that line and from each other.
POSITIONS = [(6.0, 20.0), (6.0, 12.0), (14.0, 12.0), (26.0, 20.0), (26.0, 12.0), (20.0, 16.0)]


@pytest.fixture(scope="module")
def env() -> SMAC:
    return SMAC("3m")


@pytest.fixture(scope="module")
def state(env):
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    battle = state.battle.replace(position=jnp.asarray(POSITIONS, jnp.float32))
    return state.replace(battle=battle)


def _with(state, **fields):
    battle = state.battle
    fields = {
        name: jnp.asarray(value, getattr(battle, name).dtype) for name, value in fields.items()
    }
    return state.replace(battle=battle.replace(**fields))


def _centre(frame, unit, position=None):
    """Pixel (row, column) of a unit's centre in a frame."""
    x, y = POSITIONS[unit] if position is None else position
    cell = frame.shape[1] // 32
    header = frame.shape[0] - frame.shape[1]
    return int(round(header + (32 - y) * cell)), int(round(x * cell))


def _count(frame, colour, rows, cols):
    window = frame[rows[0] : rows[1], cols[0] : cols[1]]
    return int(np.all(window == np.asarray(colour, np.uint8), axis=-1).sum())


def _bar_pixels(env, frame, unit, colour, below=False):
    row, col = _centre(frame, unit)
    rows = (row + 2, row + 14) if below else (row - 14, row - 2)
    return _count(frame, colour, rows, (col - 12, col + 13))


def test_frame_shape_dtype_and_team_colours(env, state):
    frame = env.render(state)
    assert frame.dtype == np.uint8
    assert frame.shape == (384 + render.LINE_HEIGHT, 384, 3)
    for unit in range(6):
        row, col = _centre(frame, unit)
        expected = render.AGENT_COLOUR if unit < 3 else render.ENEMY_COLOUR
        assert tuple(frame[row, col]) == expected, unit
    assert (frame[: render.LINE_HEIGHT].max(axis=-1) > 150).sum() > 50  # header text
    # The wrappers of marl.make_env pass render through to the SMAC environment.
    wrapped = marl.make_env("smac/3m").render(MetricsState(state, jnp.float32(0), jnp.int32(0)))
    np.testing.assert_array_equal(wrapped, frame)


def test_dead_unit_is_not_drawn_as_alive(env, state):
    alive = np.ones(6, bool)
    alive[1] = False
    frame = env.render(_with(state, alive=alive))
    row, col = _centre(frame, 1)
    assert tuple(frame[row, col]) != render.AGENT_COLOUR
    assert _count(frame, render.AGENT_COLOUR, (row - 8, row + 9), (col - 8, col + 9)) == 0
    assert _bar_pixels(env, frame, 1, render.HEALTH_COLOUR) == 0
    assert _bar_pixels(env, frame, 2, render.HEALTH_COLOUR) > 0
    # The header counts the living agents: it differs from the all-alive frame's.
    assert not np.array_equal(frame[: render.LINE_HEIGHT], env.render(state)[: render.LINE_HEIGHT])


def test_health_bar_length_is_proportional_to_health(env, state):
    full = _bar_pixels(env, env.render(state), 2, render.HEALTH_COLOUR)
    health = np.asarray(state.battle.health).copy()
    health[2] *= 0.5
    half = _bar_pixels(env, env.render(_with(state, health=health)), 2, render.HEALTH_COLOUR)
    assert full >= render.MIN_BAR_LENGTH * render.BAR_HEIGHT
    assert half == pytest.approx(full / 2, abs=render.BAR_HEIGHT)
    # Marines have no shields: no shield bar.
    assert _bar_pixels(env, env.render(state), 2, render.SHIELD_COLOUR, below=True) == 0


def test_lines_only_where_acted_on_is_set(env, state):
    none = np.full(6, -1, np.int32)
    row, col = _centre(env.render(state), 0, position=(16.0, 20.0))  # agent 0 - enemy 3
    window = (row - 2, row + 3), (col - 2, col + 3)
    heal_row, heal_col = _centre(env.render(state), 1, position=(10.0, 12.0))  # agents 1-2
    heal_window = (heal_row - 2, heal_row + 3), (heal_col - 2, heal_col + 3)

    idle = env.render(_with(state, acted_on=none))
    for colour in (render.AGENT_COLOUR, render.ENEMY_COLOUR):
        assert _count(idle, colour, *window) == 0
    assert _count(idle, render.HEAL_COLOUR, *heal_window) == 0

    agent_fires = env.render(_with(state, acted_on=[3, -1, -1, -1, -1, -1]))
    assert _count(agent_fires, render.AGENT_COLOUR, *window) > 0
    assert _count(agent_fires, render.ENEMY_COLOUR, *window) == 0
    enemy_fires = env.render(_with(state, acted_on=[-1, -1, -1, 0, -1, -1]))
    assert _count(enemy_fires, render.ENEMY_COLOUR, *window) > 0
    heals = env.render(_with(state, acted_on=[-1, 2, -1, -1, -1, -1]))  # a teammate: a heal
    assert _count(heals, render.HEAL_COLOUR, *heal_window) > 0
    assert _count(heals, render.AGENT_COLOUR, *window) == 0


def test_protoss_units_have_shield_bars():
    env = SMAC("2s3z")
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    positions = np.asarray([(4.0 + 5 * (i % 5), 10.0 + 6 * (i // 5)) for i in range(10)])
    state = state.replace(battle=state.battle.replace(position=jnp.asarray(positions, jnp.float32)))
    frame = env.render(state)
    cell = frame.shape[1] // 32
    header = frame.shape[0] - frame.shape[1]

    def shield_pixels(frame, unit):
        x, y = positions[unit]
        row, col = int(round(header + (32 - y) * cell)), int(round(x * cell))
        return _count(frame, render.SHIELD_COLOUR, (row + 2, row + 14), (col - 12, col + 13))

    full = shield_pixels(frame, 0)  # a stalker
    assert full > 0
    shield = np.asarray(state.battle.shield).copy()
    shield[0] = 0.0
    assert shield_pixels(env.render(_with(state, shield=shield)), 0) == 0


def _run(args, cwd, check=True):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=check)


@pytest.mark.slow
def test_replay_of_a_trained_smac_run(tmp_path):
    from PIL import Image

    run_dir = tmp_path / "run"
    train = [
        str(BIN / "marl-train"),
        "env=smac/3m",
        "algo=vdn",
        "arch=single_device",
        "arch.num_envs=2",
        "arch.rollout_length=60",
        "arch.total_timesteps=120",
        "arch.eval_interval=120",
        "arch.eval_episodes=1",
        "arch.num_seeds=2",
        "algo.batch_size=2",
        "algo.buffer_size=124",  # a window of 62 steps for each of the 2 envs
        "algo.hidden_dim=8",
        "logger=quiet",
        f"run_dir={run_dir}",
    ]
    _run(train, tmp_path)
    gif = tmp_path / "new" / "dir" / "replay.gif"  # the directory does not exist yet
    evaluate = [str(BIN / "marl-evaluate"), f"checkpoint={run_dir}"]
    result = _run([*evaluate, f"replay={gif}", "replay_seed=1"], tmp_path)
    assert str(gif) in result.stdout and "greedy episode of seed 1:" in result.stdout
    match = re.search(r"return (-?[\d.]+), (?:won|not won), (\d+) steps", result.stdout)
    replay_return, length = float(match[1]), int(match[2])
    # The replay is the first episode the evaluation plays for that seed.
    summary = json.loads(_run([*evaluate, "episodes=1", "json=true"], tmp_path).stdout)
    assert abs(summary["return_per_seed"][1] - replay_return) < 1e-3
    with Image.open(gif) as image:
        assert image.n_frames == length + 1
        # Framed on the fight: 3m's units span less than the map, so the frame is as
        # wide as asked (to within one cell) and less tall than the whole map's.
        width, height = image.size
        assert 384 - 384 // 8 < width <= 384
        assert height < 384 + render.LINE_HEIGHT
        assert image.info["loop"] == 0


def test_replay_errors_are_one_line(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from marl.checkpoint import write_config
    from marl.config import register_schema
    from marl.experiments.train import CONFIG_PATH, compose_config

    evaluate = str(BIN / "marl-evaluate")
    result = _run([evaluate, f"checkpoint={tmp_path}", "replay=out.mp4"], tmp_path, check=False)
    assert result.returncode == 2
    assert (
        result.stderr
        == "marl-evaluate: error: replay must be a path ending in .gif, got 'out.mp4'\n"
    )

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base=None):
        cfg = compose(config_name="config", overrides=["env=matrix/one_step"])
    GlobalHydra.instance().clear()
    write_config(tmp_path, compose_config(cfg).to_dict())
    result = _run([evaluate, f"checkpoint={tmp_path}", "replay=out.gif"], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr == (
        "marl-evaluate: error: env 'matrix/one_step' has no RGB render; replays need an "
        "environment with an RGB `render`, e.g. smac/*\n"
    )
    assert not (tmp_path / "out.gif").exists()
    for args, message in [
        (["replay_seed=1"], "replay_seed needs replay=PATH.gif"),
        (
            ["replay=out.gif", "replay_seed=-1"],
            "replay_seed must be a non-negative integer, got '-1'",
        ),
        (
            ["replay=out.gif", "replay_seed=3"],
            "replay_seed must be one of the run's seeds 0-0, got 3",
        ),
    ]:
        result = _run([evaluate, f"checkpoint={tmp_path}", *args], tmp_path, check=False)
        assert (result.returncode, result.stderr) == (2, f"marl-evaluate: error: {message}\n")


def _episode_states(env, state, shifts):
    """States of a made-up episode: the units of ``state`` moved by each of ``shifts``."""
    position = np.asarray(state.battle.position)
    return [_with(state, position=position + np.asarray(shift, np.float32)) for shift in shifts]


def test_an_episode_is_framed_on_its_units_with_one_view(env, state):
    # The units span x 6-26 and y 12-20 over the episode (one step moves them 1 north).
    states = _episode_states(env, state, [(0.0, 0.0), (0.0, 1.0)])
    view = render.episode_view(env, states)
    margin = render.VIEW_MARGIN
    assert view.x0 <= 6.0 - margin and view.x0 + view.width >= 26.0 + margin
    assert view.y0 <= 12.0 - margin and view.y0 + view.height >= 21.0 + margin
    assert view.width <= 20 + 2 * margin + 1 and view.height <= 9 + 2 * margin + 1
    frames = env.render_episode(states)
    assert len(frames) == 2 and frames[0].shape == frames[1].shape
    cell = 384 // view.width
    assert cell > 384 // 32  # zoomed in
    assert frames[0].shape[:2] == (render.LINE_HEIGHT + view.height * cell, view.width * cell)
    # The same unit sits where the view puts it: agent 0 at (6, 20) in the first frame.
    x, y = POSITIONS[0]
    row = int(round(render.LINE_HEIGHT + (view.y0 + view.height - y) * cell))
    col = int(round((x - view.x0) * cell))
    # (its circle, around the letter drawn on its centre)
    window = frames[0][row - 5 : row + 6, col - 5 : col + 6].reshape(-1, 3)
    assert sum(tuple(pixel) == render.AGENT_COLOUR for pixel in window) > 10
    # A unit dead all episode long does not widen the view.
    alive = np.asarray(state.battle.alive).copy()
    alive[3:5] = False  # the enemies at x = 26
    narrower = render.episode_view(env, [_with(s, alive=alive) for s in states])
    assert narrower.x0 + narrower.width < view.x0 + view.width


def test_zoomed_units_carry_their_type_letter_and_thicker_bars():
    from marl.envs.smac.units import UNIT_INDEX

    env = SMAC("MMM")
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    # All 20 units on a 5 x 4 grid 3 cells apart: a view of about 16 x 13 cells.
    grid = [(8.0 + 3.0 * (i % 5), 10.0 + 3.0 * (i // 5)) for i in range(20)]
    state = _with(state, position=grid)
    view = render.episode_view(env, [state])
    frame = render.render_frame(env, state, 384, view)
    cell = 384 // view.width
    header = frame.shape[0] - view.height * cell

    def centre(unit):
        x, y = grid[unit]
        return int(round(header + (view.y0 + view.height - y) * cell)), int(
            round((x - view.x0) * cell)
        )

    medivac = int(np.flatnonzero(np.asarray(state.battle.unit_type) == UNIT_INDEX["medivac"])[0])
    row, col = centre(medivac)
    half = int(0.75 * cell / 2)
    near = frame[row - half : row + half, col - half : col + half]
    assert np.all(near == np.asarray(render.MARK_COLOUR, np.uint8), axis=-1).sum() >= 5  # a V
    # The health bar above the medivac: as many rows as the zoom gives it.
    bar = max(render.BAR_HEIGHT, int(round(render.BAR_CELLS * cell)))
    assert bar > render.BAR_HEIGHT
    top = row - int(round(0.75 * cell)) - 2 - bar
    column = frame[top - 3 : top + bar + 3, col]
    green = np.all(column == np.asarray(render.HEALTH_COLOUR, np.uint8), axis=-1)
    assert green.sum() == bar
    # The whole map's frame: a marine (radius 0.375) is too small for a letter.
    whole = render.render_frame(env, state)
    small = 384 // 32
    assert 0.375 * small < render.MARK_MIN_RADIUS
    marine = int(np.flatnonzero(np.asarray(state.battle.unit_type) == UNIT_INDEX["marine"])[0])
    x, y = grid[marine]
    whole_header = whole.shape[0] - 32 * small
    row, col = int(round(whole_header + (32 - y) * small)), int(round(x * small))
    assert tuple(whole[row, col]) != tuple(render.GROUND_COLOUR)  # on the marine
    near = whole[row - 4 : row + 5, col - 4 : col + 5]
    assert np.all(near == np.asarray(render.MARK_COLOUR, np.uint8), axis=-1).sum() == 0
