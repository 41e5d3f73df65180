"""The host side of training: chunks, evaluation, logging and checkpoints.

:func:`train` takes a checked :class:`marl.config.TrainConfig` and runs it to the
end, resuming from the run directory's latest checkpoint when asked. This is the
one place that builds an environment and an algorithm from a config
(:func:`build_runner`). Everything between two host calls is one compiled chunk
of :class:`marl.loop.Runner`.
"""

from __future__ import annotations

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
from marl.config import ConfigError, TrainConfig
from marl.env import env_spec
from marl.logging import RunLogger
from marl.loop import Runner, RunnerState
from marl.registry import build_algorithm, make_env, make_raw_env


class RunExistsError(ValueError):
    """The run directory already holds checkpoints and ``resume`` was not asked for."""


class RunBuildError(ValueError):
    """The environment or the algorithm refused the config (one line)."""


def build_runner(config: TrainConfig) -> Runner:
    """The :class:`Runner` a (checked) config describes: its env and algorithm."""
    arch = config.arch
    env = make_env(config.env.name, add_agent_id=config.env.add_agent_id, **config.env.kwargs)
    num_devices = arch.devices(jax.local_device_count())
    envs_per_device = arch.envs_per_device(num_devices)
    algorithm = build_algorithm(config.algo, env_spec(env), envs_per_device)
    iterations, _ = arch.chunk_layout()
    return Runner(
        env,
        algorithm,
        envs_per_device=envs_per_device,
        rollout_length=arch.rollout_length,
        iterations_per_chunk=iterations,
        num_seeds=arch.num_seeds,
        num_devices=num_devices,
    )


def evaluation_key(config: TrainConfig, chunk: int) -> jax.Array:
    # Evaluation draws from its own stream so that evaluating (or not) never
    # changes what training does.
    return jax.random.fold_in(jax.random.PRNGKey(config.seed + 7919), chunk)


def restore_state(runner: Runner, checkpointer: Checkpointer, chunk: int, like: RunnerState):
    host_state = checkpointer.restore(chunk, like)
    return jax.device_put(host_state, runner.sharding)


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains as ``config`` says and returns the final greedy evaluation.

    The config is checked first (:meth:`TrainConfig.check`, raising
    :class:`marl.config.ConfigError`). Returns a dict with ``returns`` and ``won``
    (``[num_seeds, eval_episodes]``), ``env_steps``, ``run_dir``, ``params``
    (device 0's parameters, per seed) and ``chunks``.
    """
    config.check(jax.local_device_count())
    run_dir = pathlib.Path(config.run_dir)
    arch = config.arch
    checkpointer = Checkpointer(run_dir)
    latest = checkpointer.latest_chunk()
    if latest is not None:
        problem = None
        if not config.resume:
            problem = RunExistsError(
                f"run_dir '{run_dir}' already holds a run (checkpoint at chunk {latest}); "
                "pass resume=true to continue it or choose another run_dir"
            )
        else:
            differences = config_differences(read_config(run_dir) or {}, config.to_dict())
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
    iterations, num_chunks = arch.chunk_layout()
    state = runner.init(config.seeds())
    start_chunk = 0
    if latest is not None:
        state = restore_state(runner, checkpointer, latest, state)
        start_chunk = latest + 1
    write_config(run_dir, config.to_dict())

    env_name, _, task_name = config.env.name.partition("/")
    steps_per_chunk = runner.steps_per_chunk
    logger = RunLogger(
        run_dir,
        env_name=env_name,
        task_name=task_name or env_name,
        algo_name=config.algo.name,
        num_seeds=arch.num_seeds,
        total_timesteps=num_chunks * steps_per_chunk,
        use_tensorboard=config.logger.tensorboard,
        progress_bar=config.logger.progress_bar,
        resume_step=start_chunk * steps_per_chunk,
    )
    returns = won = None
    try:
        for chunk in range(start_chunk, num_chunks):
            started = time.perf_counter()
            state, metrics = runner.run_chunk(state)
            seconds = time.perf_counter() - started
            step = (chunk + 1) * steps_per_chunk
            logger.log_train(step, {**metrics.as_dict(), "sps": steps_per_chunk / seconds})
            returns, won = runner.evaluate(state, arch.eval_episodes, evaluation_key(config, chunk))
            logger.log_eval(step, returns, won)
            last = chunk == num_chunks - 1
            if last or (chunk + 1) % arch.checkpoint_interval == 0:
                checkpointer.save(chunk, state)
        if returns is None:  # resumed a finished run: evaluate once more for the report
            returns, won = runner.evaluate(
                state, arch.eval_episodes, evaluation_key(config, num_chunks - 1)
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


def read_run_config(run_dir: pathlib.Path) -> TrainConfig:
    """The config of the run in ``run_dir``; raises ``FileNotFoundError`` when there is
    none and :class:`marl.config.ConfigError` when it is not this version's."""
    config = read_config(run_dir)
    if config is None:
        raise FileNotFoundError(f"no config.json in '{run_dir}': not a marl-lab run directory")
    try:
        return TrainConfig.from_dict(config)
    except ConfigError as error:
        raise ConfigError(f"config.json in '{run_dir}': {error}") from None


def restore_run(run_dir: pathlib.Path, config: TrainConfig) -> tuple[Runner, RunnerState, int]:
    """The run's :class:`Runner`, its latest checkpoint's state and that chunk's index."""
    checkpointer = Checkpointer(run_dir)
    try:
        latest = checkpointer.latest_chunk()
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in '{run_dir / 'checkpoints'}'")
        runner = build_runner(config)
        state = restore_state(runner, checkpointer, latest, runner.init(config.seeds()))
    finally:
        checkpointer.close()
    return runner, state, latest


def evaluate_run(run_dir: str | pathlib.Path, num_episodes: int | None = None) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and plays greedy episodes with it."""
    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    runner, state, latest = restore_run(run_dir, config)
    episodes = num_episodes or config.arch.eval_episodes
    returns, won = runner.evaluate(state, episodes, evaluation_key(config, 10**6 + latest))
    return {"returns": returns, "won": won, "chunk": latest, "config": config}


class NoSuchSeedError(ValueError):
    """A replay was asked of a seed the run does not have."""


def replay_run(run_dir: str | pathlib.Path, seed: int | None = None) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and records one greedy episode as RGB frames.

    The episode is the first one :func:`evaluate_run` plays for ``seed`` (one of the
    run's seeds, :meth:`TrainConfig.seeds`; the first when None; see
    :meth:`marl.loop.Runner.greedy_episode`). Returns ``frames`` (``uint8 [H, W, 3]``
    per state, from the reset to the end: ``length + 1``), ``return``, ``won``,
    ``length``, ``seed``, ``chunk`` and ``config``. Raises :class:`NoRGBRenderError`
    or :class:`NoSuchSeedError`, before loading anything, when the run's environment
    cannot render RGB frames or the run has no such seed.
    """
    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    seeds = config.seeds()
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise NoSuchSeedError(
            f"replay_seed must be one of the run's seeds {seeds[0]}-{seeds[-1]}, got {seed}"
        )
    if not has_rgb_render(make_raw_env(config.env.name, **config.env.kwargs)):
        raise NoRGBRenderError(
            f"env '{config.env.name}' has no RGB render; replays need an environment with "
            "an RGB `render`, e.g. smac/*"
        )
    runner, state, latest = restore_run(run_dir, config)
    key = evaluation_key(config, 10**6 + latest)
    episode = runner.greedy_episode(state, key, seeds.index(seed))
    frames = [runner.env.render(env_state) for env_state in episode.pop("states")]
    return {**episode, "frames": frames, "seed": seed, "chunk": latest, "config": config}
