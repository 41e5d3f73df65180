"""The host side of training: chunks, evaluation, logging and checkpoints.

:func:`train` takes a plain config dict (the Hydra app's schema, see
``marl.experiments.config``) and runs it to the end, resuming from the run
directory's latest checkpoint when asked. Everything between two host calls is
one compiled chunk of :class:`marl.loop.Runner`.
"""

from __future__ import annotations

import math
import pathlib
import time
import typing
from typing import Any

import jax
import numpy as np

from marl.checkpoint import (
    Checkpointer,
    ConfigMismatchError,
    config_differences,
    read_config,
    write_config,
)
from marl.logging import RunLogger
from marl.loop import Runner, RunnerState
from marl.registry import make_env, make_raw_env


class RunExistsError(ValueError):
    """The run directory already holds checkpoints and ``resume`` was not asked for."""


class RunBuildError(ValueError):
    """The environment or the algorithm refused the config (one line)."""


def chunk_layout(arch: dict[str, Any]) -> tuple[int, int]:
    """``(iterations_per_chunk, num_chunks)``: one chunk per evaluation interval."""
    steps_per_iteration = arch["rollout_length"] * arch["num_envs"]
    iterations = max(1, arch["eval_interval"] // steps_per_iteration)
    num_chunks = max(1, math.ceil(arch["total_timesteps"] / (iterations * steps_per_iteration)))
    return iterations, num_chunks


def build_runner(config: dict[str, Any]) -> Runner:
    """The :class:`Runner` a config describes."""
    arch = config["arch"]
    env_cfg = config["env"]
    env = make_env(env_cfg["name"], add_agent_id=env_cfg["add_agent_id"], **env_cfg["kwargs"])
    algo = dict(config["algo"])
    name = algo.pop("name")
    iterations, _ = chunk_layout(arch)
    return Runner(
        env,
        name,
        algo,
        num_envs=arch["num_envs"],
        rollout_length=arch["rollout_length"],
        iterations_per_chunk=iterations,
        num_seeds=arch["num_seeds"],
        num_devices=arch["num_devices"] or jax.local_device_count(),
    )


def seeds_of(config: dict[str, Any]) -> list[int]:
    return [config["seed"] + i for i in range(config["arch"]["num_seeds"])]


def evaluation_key(config: dict[str, Any], chunk: int) -> jax.Array:
    # Evaluation draws from its own stream so that evaluating (or not) never
    # changes what training does.
    return jax.random.fold_in(jax.random.PRNGKey(config["seed"] + 7919), chunk)


def restore_state(runner: Runner, checkpointer: Checkpointer, chunk: int, like: RunnerState):
    host_state = checkpointer.restore(chunk, like)
    return jax.device_put(host_state, runner.sharding)


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Trains as ``config`` says and returns the final greedy evaluation.

    Returns a dict with ``returns`` and ``won`` (``[num_seeds, eval_episodes]``),
    ``env_steps``, ``run_dir``, ``params`` (device 0's parameters, per seed) and
    ``chunks``.
    """
    run_dir = pathlib.Path(config["run_dir"])
    arch = config["arch"]
    log_cfg = config["logger"]
    checkpointer = Checkpointer(run_dir)
    latest = checkpointer.latest_chunk()
    if latest is not None:
        problem = None
        if not config["resume"]:
            problem = RunExistsError(
                f"run_dir '{run_dir}' already holds a run (checkpoint at chunk {latest}); "
                "pass resume=true to continue it or choose another run_dir"
            )
        else:
            differences = config_differences(read_config(run_dir) or {}, config)
            if differences:
                problem = ConfigMismatchError(
                    f"checkpoint in '{run_dir}' was made under a different config; "
                    f"differing keys: {', '.join(differences)}"
                )
        if problem is not None:
            checkpointer.close()
            raise problem
    try:
        runner = build_runner(config)
    except ValueError as error:
        checkpointer.close()
        raise RunBuildError(str(error)) from None
    iterations, num_chunks = chunk_layout(arch)
    state = runner.init(seeds_of(config))
    start_chunk = 0
    if latest is not None:
        state = restore_state(runner, checkpointer, latest, state)
        start_chunk = latest + 1
    write_config(run_dir, config)

    env_name, _, task_name = config["env"]["name"].partition("/")
    steps_per_chunk = runner.steps_per_chunk
    logger = RunLogger(
        run_dir,
        env_name=env_name,
        task_name=task_name or env_name,
        algo_name=config["algo"]["name"],
        num_seeds=arch["num_seeds"],
        total_timesteps=num_chunks * steps_per_chunk,
        use_tensorboard=log_cfg["tensorboard"],
        progress_bar=log_cfg["progress_bar"],
        resume_step=start_chunk * steps_per_chunk,
    )
    returns = won = None
    try:
        for chunk in range(start_chunk, num_chunks):
            started = time.perf_counter()
            state, metrics = runner.run_chunk(state)
            metrics["sps"] = steps_per_chunk / (time.perf_counter() - started)
            step = (chunk + 1) * steps_per_chunk
            logger.log_train(step, metrics)
            returns, won = runner.evaluate(
                state, arch["eval_episodes"], evaluation_key(config, chunk)
            )
            logger.log_eval(step, returns, won)
            last = chunk == num_chunks - 1
            if last or (chunk + 1) % arch["checkpoint_interval"] == 0:
                checkpointer.save(chunk, state)
        if returns is None:  # resumed a finished run: evaluate once more for the report
            returns, won = runner.evaluate(
                state, arch["eval_episodes"], evaluation_key(config, num_chunks - 1)
            )
        logger.close(final_eval=(returns, won))
    finally:
        checkpointer.close()
    params = jax.tree_util.tree_map(lambda x: np.asarray(x)[0], state.algo_state.params)
    return {
        "returns": returns,
        "won": won,
        "env_steps": num_chunks * steps_per_chunk,
        "run_dir": str(run_dir),
        "params": params,
        "chunks": num_chunks,
        "iterations_per_chunk": iterations,
    }


class NoRGBRenderError(ValueError):
    """A replay was asked of an environment whose ``render`` gives no RGB frame."""


def has_rgb_render(env: Any) -> bool:
    """Whether ``env``'s innermost ``render`` is declared to return an RGB frame.

    That is a ``render(state) -> np.ndarray`` giving ``uint8 [H, W, 3]``, as
    :meth:`marl.envs.smac.SMAC.render` does; the wrappers pass it through.
    """
    try:
        hints = typing.get_type_hints(type(env.unwrapped).render)
    except Exception:  # unresolvable annotations: not declared as an array
        return False
    return hints.get("return") is np.ndarray


def _read_run_config(run_dir: pathlib.Path) -> dict[str, Any]:
    config = read_config(run_dir)
    if config is None:
        raise FileNotFoundError(f"no config.json in '{run_dir}': not a marl-lab run directory")
    return config


def _restore_run(run_dir: pathlib.Path, config: dict[str, Any]) -> tuple[Runner, RunnerState, int]:
    """The run's :class:`Runner`, its latest checkpoint's state and that chunk's index."""
    checkpointer = Checkpointer(run_dir)
    try:
        latest = checkpointer.latest_chunk()
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in '{run_dir / 'checkpoints'}'")
        runner = build_runner(config)
        state = restore_state(runner, checkpointer, latest, runner.init(seeds_of(config)))
    finally:
        checkpointer.close()
    return runner, state, latest


def evaluate_run(run_dir: str | pathlib.Path, num_episodes: int | None = None) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and plays greedy episodes with it."""
    run_dir = pathlib.Path(run_dir)
    config = _read_run_config(run_dir)
    runner, state, latest = _restore_run(run_dir, config)
    episodes = num_episodes or config["arch"]["eval_episodes"]
    returns, won = runner.evaluate(state, episodes, evaluation_key(config, 10**6 + latest))
    return {"returns": returns, "won": won, "chunk": latest, "config": config}


class NoSuchSeedError(ValueError):
    """A replay was asked of a seed the run does not have."""


def replay_run(run_dir: str | pathlib.Path, seed: int | None = None) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and records one greedy episode as RGB frames.

    The episode is the first one :func:`evaluate_run` plays for ``seed`` (one of the
    run's seeds as :func:`seeds_of` numbers them; the first when None; see
    :meth:`marl.loop.Runner.greedy_episode`). Returns ``frames`` (``uint8 [H, W, 3]``
    per state, from the reset to the end: ``length + 1``), ``return``, ``won``,
    ``length``, ``seed``, ``chunk`` and ``config``. Raises :class:`NoRGBRenderError`
    or :class:`NoSuchSeedError`, before loading anything, when the run's environment
    cannot render RGB frames or the run has no such seed.
    """
    run_dir = pathlib.Path(run_dir)
    config = _read_run_config(run_dir)
    seeds = seeds_of(config)
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise NoSuchSeedError(
            f"replay_seed must be one of the run's seeds {seeds[0]}-{seeds[-1]}, got {seed}"
        )
    env_cfg = config["env"]
    if not has_rgb_render(make_raw_env(env_cfg["name"], **env_cfg["kwargs"])):
        raise NoRGBRenderError(
            f"env '{env_cfg['name']}' has no RGB render; replays need an environment with "
            "an RGB `render`, e.g. smac/*"
        )
    runner, state, latest = _restore_run(run_dir, config)
    key = evaluation_key(config, 10**6 + latest)
    episode = runner.greedy_episode(state, key, seeds.index(seed))
    frames = [runner.env.render(env_state) for env_state in episode.pop("states")]
    return {**episode, "frames": frames, "seed": seed, "chunk": latest, "config": config}
