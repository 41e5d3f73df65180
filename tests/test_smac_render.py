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
        assert image.size == (384, 384 + render.LINE_HEIGHT)
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
