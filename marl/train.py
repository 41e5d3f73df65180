"""The host side of training: chunks, evaluation, logging and checkpoints.

:func:`train` takes a checked :class:`marl.config.TrainConfig` and runs it to the
end, resuming from the run directory's latest checkpoint when asked. This is the
one place that builds an environment and an algorithm from a config
(:func:`build_runner`). Everything between two host calls is one compiled chunk
of :class:`marl.loop.Runner`.
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import sys
import threading
import time
import typing
from typing import Any

import jax
import numpy as np

from marl import __version__ as marl_version
from marl import distributed
from marl.algorithm import ReportsUpdateCosts
from marl.checkpoint import (
    Checkpointer,
    CheckpointLayoutError,
    ConfigMismatchError,
    config_differences,
    config_hash,
    read_config,
    without_replay,
    write_config,
)
from marl.config import ConfigError, TrainConfig
from marl.env import env_spec
from marl.files import RunFileError
from marl.logging import RunLogger, WandbSettings
from marl.loop import EvaluationReport, Runner, RunnerState, Task, check_objectives
from marl.options import OptionError
from marl.registry import build_algorithm, make_env, make_raw_env
from marl.rundir import RunLock, check_writable_run_dir, is_run


class RunExistsError(ValueError):
    """The run directory already holds checkpoints and ``resume`` was not asked for."""


class RunBuildError(ValueError):
    """The environment or the algorithm refused the config (one line)."""


class TrainingDivergedError(RuntimeError):
    """The loss or the parameters became non-finite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was written."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


def build_runner(config: TrainConfig) -> Runner:
    """The :class:`Runner` a (checked) config describes: its env and algorithm.

    Raises :class:`RunBuildError` in one line when the env or the algorithm
    refuses the config (an algorithm's option under ``algo.``).
    """
    arch = config.arch
    try:
        add_agent_id = config.env.add_agent_id
        tasks = [
            Task(task.name, make_env(task.name, add_agent_id=add_agent_id, **task.kwargs))
            for task in config.env.task_list()
        ]
        num_devices = arch.devices(jax.local_device_count())  # of each process
        envs_per_device = arch.envs_per_device(num_devices * distributed.process_count())
        specs = [env_spec(task.env) for task in tasks]
        # Before the learner is built: a scalar learner's own checks would speak of
        # shapes, not of the choice the user has.
        for task, spec in zip(tasks, specs, strict=True):
            learns = spec.num_objectives if type(config.algo).multi_objective else 1
            check_objectives(task.env, learns, task.name, config.algo.name)
        algorithm = build_algorithm(config.algo, specs, envs_per_device)
    except OptionError as error:
        raise RunBuildError(str(error.within("algo"))) from None
    except ValueError as error:
        raise RunBuildError(str(error)) from None
    iterations, _ = arch.chunk_layout()
    try:
        return Runner(
            tasks,
            algorithm,
            envs_per_device=envs_per_device,
            rollout_length=arch.rollout_length,
            iterations_per_chunk=iterations,
            num_seeds=arch.num_seeds,
            num_devices=num_devices,
        )
    except OptionError:
        raise
    except (ImportError, ValueError) as error:  # pymoo or a reference point missing
        raise RunBuildError(str(error)) from None


def replay_fields(runner: Runner) -> tuple[str, ...]:
    """The algorithm state's replay fields (none for on-policy learners)."""
    return tuple(getattr(runner.algorithm, "replay_fields", ()))


def evaluation_key(config: TrainConfig, chunk: int) -> jax.Array:
    # Evaluation draws from its own stream so that evaluating (or not) never
    # changes what training does.
    return jax.random.fold_in(jax.random.PRNGKey(config.seed + 7919), chunk)


def _warn(message: str) -> None:
    print(f"marl-lab: warning: {message}", file=sys.stderr)


def _non_finite(metrics: dict[str, np.ndarray], host_params: Any) -> str | None:
    """The first of the losses, the gradient norm and the parameters (host copies)
    that is not finite (for any seed), or None."""
    for name, value in metrics.items():
        if ("loss" in name or name == "grad_norm") and not np.all(np.isfinite(value)):
            return f"the metric '{name}'"
    for leaf in jax.tree_util.tree_leaves(host_params):
        if np.issubdtype(leaf.dtype, np.inexact) and not np.all(np.isfinite(leaf)):
            return "a parameter"
    return None


class _StopSignals:
    """Turns the first SIGINT or SIGTERM into a request to stop after the current
    chunk (with a checkpoint); a second one stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.received = number
        for restored, handler in self._previous.items():
            signal.signal(restored, handler)
        print(
            f"\nmarl-lab: {signal.Signals(number).name} received: stopping after this chunk "
            "with a checkpoint (send it again to stop at once, without one)",
            file=sys.stderr,
        )

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _resume_checks(config: TrainConfig, run_dir: pathlib.Path, chunks: list[int]) -> None:
    if not config.resume:
        raise RunExistsError(
            f"run_dir '{run_dir}' already holds a run (checkpoint at chunk {chunks[-1]}); "
            "pass resume=true to continue it or choose another run_dir"
        )
    saved = read_config(run_dir)
    if saved is None:
        raise RunFileError(
            f"'{run_dir}' holds checkpoints but no config.yaml, so they cannot be checked "
            "against this config: restore config.yaml, or start a new run_dir"
        )
    differences = config_differences(saved, config.to_dict())
    if differences:
        raise ConfigMismatchError(
            f"checkpoint in '{run_dir}' was made under a different config; "
            f"differing keys: {', '.join(differences)}"
        )


def _layout_notes(config: TrainConfig, steps_per_chunk: int, num_chunks: int) -> list[str]:
    arch = config.arch
    notes = []
    if steps_per_chunk != arch.eval_interval:
        notes.append(
            f"arch.eval_interval={arch.eval_interval:,} runs as {steps_per_chunk:,} env steps "
            f"per chunk: whole iterations of rollout_length x num_envs "
            f"({arch.rollout_length} x {arch.num_envs})"
        )
    if num_chunks * steps_per_chunk != arch.total_timesteps:
        notes.append(
            f"arch.total_timesteps={arch.total_timesteps:,} runs as "
            f"{num_chunks * steps_per_chunk:,} env steps: {num_chunks} whole chunks"
        )
    return notes


class BestPolicy:
    """Each seed's parameters at its best greedy evaluation so far (on the host).

    marl-eval's absolute metric is the best policy's score, evaluated again with
    ten times the episodes of a regular evaluation (Gorsane et al., 2022). The score
    is :attr:`marl.loop.EvaluationReport.score`: the mean return, or a
    multi-objective learner's hypervolume.
    """

    def __init__(self, params: Any, num_seeds: int):
        self.params = params  # leaves [num_seeds, ...]
        self.score = np.full(num_seeds, -np.inf)
        self.step = np.zeros(num_seeds, np.int64)

    def update(self, score: np.ndarray, params: Any, step: int) -> None:
        better = np.nan_to_num(score, nan=-np.inf) > self.score

        def pick(new: np.ndarray, old: np.ndarray) -> np.ndarray:
            return np.where(better.reshape(-1, *[1] * (np.ndim(new) - 1)), new, old)

        self.params = jax.tree_util.tree_map(pick, params, self.params)
        self.score = np.where(better, score, self.score)
        self.step = np.where(better, step, self.step)

    def tree(self) -> dict[str, Any]:
        return {"params": self.params, "score": self.score, "step": self.step}

    def load(self, tree: dict[str, Any]) -> None:
        self.params, self.score, self.step = tree["params"], tree["score"], tree["step"]


def _host_params(state: RunnerState) -> Any:
    """The first device's parameters, leaves ``[num_seeds, ...]``, on the host."""
    return jax.tree_util.tree_map(np.asarray, distributed.first_device(state.algo_state.params))


def _checkpoint_metadata(config: TrainConfig, runner: Runner, env_steps: int) -> dict[str, Any]:
    return {
        "env_steps": int(env_steps),
        "marl_lab_version": marl_version,
        "config_hash": config_hash(config.to_dict()),
        "layout": {"num_devices": runner.num_devices, "num_seeds": runner.num_seeds},
        "algo": config.algo.name,
        "env": config.env.name,
    }


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains as ``config`` says and returns the final greedy evaluation.

    A run of several processes (``arch.num_processes``) first joins JAX's distributed
    runtime (:mod:`marl.distributed`). The config is checked
    (:meth:`TrainConfig.check`, raising :class:`marl.config.ConfigError`), then the
    run directory (created, writable, not someone else's, not in use:
    :class:`marl.rundir.RunDirError`). With ``resume`` the newest intact checkpoint is
    restored (a damaged newer one is set aside, with a warning). A run whose loss or
    parameters turn non-finite stops with :class:`TrainingDivergedError`, keeping the
    last good checkpoint; SIGINT or SIGTERM stop it after the current chunk, with a
    checkpoint, raising :class:`TrainingInterrupted`. Returns a dict with ``returns``
    and ``won`` (``[num_seeds, eval_episodes]``; a multi-objective learner's: every
    evaluation preference's episodes, each return scalarised by its preference),
    ``pareto`` (the front's metrics per seed, empty for scalar learners), ``front``
    (``[num_seeds, num_preferences, num_objectives]`` or None), ``env_steps``,
    ``run_dir``, ``params`` (the first device's parameters, per seed), ``chunks`` and
    ``process_index``. Only process 0 touches the run directory, evaluates and logs;
    the other processes of a run return ``params``, ``env_steps`` and ``chunks``.
    """
    arch = config.arch
    distributed.initialize(
        arch.num_processes, arch.process_id, arch.coordinator, arch.distributed_timeout
    )
    config.check(jax.local_device_count())
    if arch.num_processes == 0:  # detected: check the layout the cluster gave
        try:
            arch.envs_per_device(arch.devices(jax.local_device_count()) * jax.process_count())
        except OptionError as error:
            raise ConfigError(str(error.within("arch"))) from None
    with contextlib.ExitStack() as stack:
        run_dir = None
        try:
            if distributed.is_main_process():
                run_dir = _agreed(lambda: check_writable_run_dir(config.run_dir))
                stack.enter_context(RunLock(run_dir))
            else:
                _agreed(lambda: None)
            return _train_locked(config, run_dir)
        except (jax.errors.JaxRuntimeError, ValueError) as error:
            if distributed.process_count() == 1 or not distributed.lost_process(error):
                raise
            # A collective failed: another process died or its host went away.
            text = str(error).strip()
            first = text.splitlines()[0][:200] if text else type(error).__name__
            kept = f"in '{run_dir}'" if run_dir is not None else "in process 0's run_dir"
            raise distributed.DistributedError(
                f"process {distributed.process_index()} lost another process of the run "
                f"({first}); the checkpoints written before are kept {kept}"
            ) from None


def _agreed(action: typing.Callable[[], Any]) -> Any:
    """``action``'s result, once every process of the run has heard whether it failed:
    the process it failed on raises its error, the others a :class:`DistributedError`
    pointing to it, so that none waits forever in the next collective."""
    error: BaseException | None = None
    result = None
    try:
        result = action()
    except Exception as caught:  # re-raised below, after the others have been told
        error = caught
    if distributed.any_process(error is not None):
        if error is not None:
            raise error
        raise distributed.DistributedError("process 0 refused the run; its output says why")
    return result


def _train_locked(config: TrainConfig, run_dir: pathlib.Path | None) -> dict[str, Any]:
    """The run, on every process; ``run_dir`` (process 0's only) is locked."""
    arch = config.arch
    main = run_dir is not None
    checkpointer = Checkpointer(run_dir) if main else None
    try:

        def read_checkpoints() -> list[int]:
            chunks = checkpointer.chunks()
            if chunks:
                _resume_checks(config, run_dir, chunks)
            elif config.resume and is_run(run_dir):
                _warn(f"'{run_dir}' holds no finished checkpoint; starting the run from scratch")
            return chunks

        chunks = _agreed(read_checkpoints if main else lambda: [])
        runner = build_runner(config)
        iterations, num_chunks = arch.chunk_layout()
        steps_per_chunk = runner.steps_per_chunk
        state = runner.init(config.seeds())
        replay = () if arch.checkpoint_replay else replay_fields(runner)
        start_chunk = 0
        if int(distributed.broadcast(np.asarray(len(chunks), np.int32))):
            # Process 0 restores the whole run's state on the host and hands it to all.
            like = state if distributed.process_count() == 1 else distributed.gather(state)

            def restore() -> tuple[Any, int]:
                _check_layout(checkpointer, chunks[-1], runner)
                host_state, latest, notes = checkpointer.restore_latest(like, replay_fields(runner))
                for note in notes:
                    _warn(note)
                done = (latest + 1) * steps_per_chunk
                if done > num_chunks * steps_per_chunk:
                    raise ConfigError(
                        f"arch.total_timesteps: the run in '{run_dir}' has trained {done:,} "
                        f"env steps already; ask for at least that many to resume it"
                    )
                return host_state, latest

            host_state, latest = _agreed(restore if main else lambda: (like, 0))
            start_chunk = int(distributed.broadcast(np.asarray(latest, np.int32))) + 1
            state = jax.device_put(distributed.broadcast(host_state), runner.sharding)
        if main:
            for note in _layout_notes(config, steps_per_chunk, num_chunks):
                print(f"marl-train: {note}")
            write_config(run_dir, config.to_dict())
        return _run_chunks(
            config, runner, state, checkpointer, start_chunk, num_chunks, replay, iterations
        )
    finally:
        if checkpointer is not None:
            checkpointer.close()


def _check_layout(checkpointer: Checkpointer, chunk: int, runner: Runner) -> None:
    """Refuses, in one line, to resume a checkpoint of another number of devices in all
    (each device's envs and replay are part of the state)."""
    layout = (checkpointer.metadata(chunk) or {}).get("layout") or {}
    saved = layout.get("num_devices")
    if saved is None or saved == runner.num_devices:
        return
    processes = distributed.process_count()
    raise CheckpointLayoutError(
        f"arch.num_devices: the checkpoint in '{checkpointer.run_dir}' holds the state of "
        f"{saved} devices in all (every device's envs and replay), and this run has "
        f"{runner.num_devices} ({processes} process{'es' if processes > 1 else ''} x "
        f"{runner.num_devices // processes}); resume with {saved} devices in all, e.g. "
        f"arch.num_processes={saved} arch.num_devices=1, or one process with "
        f"arch.num_devices={saved}"
    )


def _wandb_settings(config: TrainConfig) -> WandbSettings | None:
    logger = config.logger
    if not logger.wandb:
        return None
    return WandbSettings(
        project=logger.wandb_project,
        entity=logger.wandb_entity,
        group=logger.wandb_group,
        mode=logger.wandb_mode,
        config=config.to_dict(),
    )


def _run_chunks(
    config: TrainConfig,
    runner: Runner,
    state: RunnerState,
    checkpointer: Checkpointer | None,
    start_chunk: int,
    num_chunks: int,
    replay: tuple[str, ...],
    iterations: int,
) -> dict[str, Any]:
    """The chunks from ``start_chunk`` on, on every process of the run; process 0
    (the one with a ``checkpointer``) also evaluates, logs and saves."""
    arch = config.arch
    main = checkpointer is not None
    env_name, _, task_name = config.env.name.partition("/")
    steps_per_chunk = runner.steps_per_chunk
    logger = best = None
    if main:
        run_dir = checkpointer.run_dir
        logger = RunLogger(
            run_dir,
            env_name=env_name,
            task_name=task_name or env_name,
            tasks=[marl_eval_names(name) for name in runner.task_names],
            algo_name=config.algo.name,
            num_seeds=arch.num_seeds,
            total_timesteps=num_chunks * steps_per_chunk,
            use_tensorboard=config.logger.tensorboard,
            progress_bar=config.logger.progress_bar,
            resume_step=start_chunk * steps_per_chunk,
            first_seed=config.seed,
            wandb=_wandb_settings(config),
        )
        best = BestPolicy(_host_params(state), arch.num_seeds)
        if start_chunk > 0:
            saved_best = checkpointer.restore_best(start_chunk - 1, best.tree())
            if saved_best is not None:
                best.load(saved_best)
        if start_chunk == 0 and isinstance(runner.algorithm, ReportsUpdateCosts):
            costs = runner.algorithm.update_costs(
                runner.env, arch.rollout_length, jax.random.PRNGKey(config.seed)
            )
            if costs:
                logger.log_update_costs(costs)
        if distributed.process_count() > 1:
            logger.note(
                f"{distributed.process_count()} processes, {runner.num_devices} devices in "
                "all; this one (0) evaluates, logs and saves"
            )

    def save(chunk: int) -> None:
        # Every process takes part in gathering the state; process 0 writes it.
        host_state = distributed.gather(without_replay(state, replay))
        if main:
            metadata = _checkpoint_metadata(config, runner, (chunk + 1) * steps_per_chunk)
            checkpointer.save(chunk, host_state, metadata, replay_fields=replay, best=best.tree())

    where = f"'{checkpointer.run_dir}'" if main else "process 0's run_dir"
    reports = None
    saved_chunk = start_chunk - 1
    with _StopSignals() as stop, _closed_on_error(logger):
        for chunk in range(start_chunk, num_chunks):
            if main and chunk == start_chunk:
                logger.note(
                    f"compiling the training chunk ({steps_per_chunk:,} env steps per seed); "
                    "a compile already in the compilation cache loads in seconds"
                )
            started = time.perf_counter()
            new_state, metrics = runner.run_chunk(state)
            seconds = time.perf_counter() - started
            step = (chunk + 1) * steps_per_chunk
            if main and chunk == start_chunk:
                logger.note(f"first chunk done in {seconds:.1f} s, compilation included")
            metric_arrays = metrics.as_dict()
            params = _host_params(new_state)  # identical on every device (pmean)
            problem = _non_finite(metric_arrays, params)
            if problem is not None:  # the same on every process: all stop here
                if main:
                    logger.close()
                kept = (
                    f"the last good checkpoint (chunk {saved_chunk}, "
                    f"{(saved_chunk + 1) * steps_per_chunk:,} env steps) is kept"
                    if saved_chunk >= 0
                    else "no checkpoint was written"
                )
                raise TrainingDivergedError(
                    f"training diverged in the chunk ending at env step {step:,}: {problem} is "
                    f"not finite; {kept} in {where}; lower algo.learning_rate or check "
                    "the env's rewards"
                )
            state = new_state
            if main:
                logger.log_train(step, {**metric_arrays, "sps": steps_per_chunk / seconds})
                key = evaluation_key(config, chunk)
                reports = evaluate_tasks(runner, state, arch.eval_episodes, key)
                for task, report in enumerate(reports):
                    logger.log_eval(step, report.returns, report.won, report.metrics or None, task)
                    if report.front is not None:
                        logger.log_front(
                            step, report.front, runner.preferences, runner.objective_names
                        )
                best.update(task_score(reports), params, step)
            last = chunk == num_chunks - 1
            stopping = distributed.any_process(bool(stop.received))
            if last or (chunk + 1) % arch.checkpoint_interval == 0 or stopping:
                save(chunk)
                saved_chunk = chunk
            if stopping and not last:
                number = stop.received or signal.SIGTERM
                if main:
                    logger.close()
                raise TrainingInterrupted(
                    f"stopped by {signal.Signals(number).name} at env step {step:,} of "
                    f"{num_chunks * steps_per_chunk:,}; checkpoint of chunk {chunk} written "
                    f"in {where}",
                    number,
                )
    params = _host_params(state)
    if not main:
        return {
            "env_steps": num_chunks * steps_per_chunk,
            "params": params,
            "chunks": num_chunks,
            "iterations_per_chunk": iterations,
            "process_index": distributed.process_index(),
        }
    if reports is None:  # resumed a finished run: evaluate once more for the report
        reports = evaluate_tasks(
            runner, state, arch.eval_episodes, evaluation_key(config, num_chunks - 1)
        )
    # The absolute metric: each seed's best parameters, ten times the episodes.
    key = evaluation_key(config, 2 * 10**6)
    per = "per seed" if runner.preferences is None else "per seed and preference"
    if runner.num_tasks > 1:
        per += " and task"
    if np.all(np.isfinite(best.score)):
        absolute = evaluate_tasks(runner, state, 10 * arch.eval_episodes, key, best.params)
        steps = ", ".join(f"{int(s):,}" for s in best.step)
        source = f"best policy (at step {steps}), {10 * arch.eval_episodes} episodes {per}"
    else:  # no evaluation finished an episode: the final parameters instead
        absolute = evaluate_tasks(runner, state, 10 * arch.eval_episodes, key)
        source = f"final policy, {10 * arch.eval_episodes} episodes {per}"
    finals = [(a.returns, a.won, a.metrics) if a.metrics else (a.returns, a.won) for a in absolute]
    logger.close(final_eval=finals if runner.num_tasks > 1 else finals[0], final_source=source)
    return {
        **_outcome(runner, reports),
        "env_steps": num_chunks * steps_per_chunk,
        "run_dir": str(checkpointer.run_dir),
        "params": params,
        "chunks": num_chunks,
        "iterations_per_chunk": iterations,
        "process_index": 0,
    }


@contextlib.contextmanager
def _closed_on_error(logger: RunLogger | None) -> typing.Iterator[None]:
    """Closes ``logger`` (its files flushed and summarised) when the chunks stop on an
    error; closing is a no-op for a logger closed already."""
    try:
        yield
    except BaseException:
        if logger is not None:
            logger.close()
        raise


def _outcome(runner: Runner, reports: list[EvaluationReport]) -> dict[str, Any]:
    """The first task's evaluation (the only one's, but for a task set) and every
    task's returns and wins by name."""
    report = reports[0]
    return {
        "returns": report.returns,
        "won": report.won,
        "pareto": report.metrics,
        "front": report.front,
        "tasks": {
            name: {"returns": r.returns, "won": r.won}
            for name, r in zip(runner.task_names, reports, strict=True)
        },
    }


def marl_eval_names(task_name: str) -> tuple[str, str]:
    """marl-eval's (environment, task) for a task name: ``smac/3m`` -> ``(smac, 3m)``."""
    env_name, _, task = task_name.partition("/")
    return env_name, task or env_name


def evaluate_tasks(
    runner: Runner, state: RunnerState, num_episodes: int, key: jax.Array, params: Any = None
) -> list[EvaluationReport]:
    """Greedy episodes of every task of the run, one :class:`EvaluationReport` each."""
    return [
        runner.report(*runner.evaluate(state, num_episodes, key, params=params, task=task))
        for task in range(runner.num_tasks)
    ]


def task_score(reports: list[EvaluationReport]) -> np.ndarray:
    """What ranks a run's evaluations, per seed: the mean over its tasks of each
    task's score (:attr:`marl.loop.EvaluationReport.score`)."""
    return np.mean(np.stack([report.score for report in reports]), axis=0)


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
        raise FileNotFoundError(f"no config.yaml in '{run_dir}': not a marl-lab run directory")
    try:
        return TrainConfig.from_dict(config)
    except ConfigError as error:
        raise ConfigError(f"config.yaml in '{run_dir}': {error}") from None


def restore_run(run_dir: pathlib.Path, config: TrainConfig) -> tuple[Runner, RunnerState, int]:
    """The run's :class:`Runner`, its latest checkpoint's state and that chunk's index."""
    checkpointer = Checkpointer(run_dir, create=False)
    try:
        if checkpointer.latest_chunk() is None:
            raise FileNotFoundError(f"no checkpoint in '{run_dir / 'checkpoints'}'")
        runner = build_runner(config)
        host_state, latest, notes = checkpointer.restore_latest(
            runner.init(config.seeds()), replay_fields(runner)
        )
        for note in notes:
            _warn(note)
    finally:
        checkpointer.close()
    return runner, jax.device_put(host_state, runner.sharding), latest


def evaluate_run(run_dir: str | pathlib.Path, num_episodes: int | None = None) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and plays greedy episodes with it.

    ``returns``, ``won``, ``pareto`` and ``front`` are the first task's (the only
    one's, unless the run trained a task set); ``tasks`` maps every task's name to its
    ``returns`` and ``won``.
    """
    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    runner, state, latest = restore_run(run_dir, config)
    episodes = num_episodes or config.arch.eval_episodes
    reports = evaluate_tasks(runner, state, episodes, evaluation_key(config, 10**6 + latest))
    return {
        **_outcome(runner, reports),
        "chunk": latest,
        "config": config,
    }


class NoSuchSeedError(ValueError):
    """A replay was asked of a seed the run does not have."""


class NoSuchTaskError(ValueError):
    """A replay was asked of a task the run does not have."""


def replay_run(
    run_dir: str | pathlib.Path, seed: int | None = None, task: str | None = None
) -> dict[str, Any]:
    """Reloads a run's latest checkpoint and records one greedy episode as RGB frames.

    The episode is the first one :func:`evaluate_run` plays for ``seed`` (one of the
    run's seeds, :meth:`TrainConfig.seeds`; the first when None; see
    :meth:`marl.loop.Runner.greedy_episode`) on ``task`` (one of a task-set run's
    tasks, by name; the first when None). Returns ``frames`` (``uint8 [H, W, 3]``
    per state, from the reset to the end: ``length + 1``), ``return``, ``won``,
    ``length``, ``seed``, ``task``, ``chunk`` and ``config``. Raises
    :class:`NoRGBRenderError`, :class:`NoSuchSeedError` or :class:`NoSuchTaskError`,
    before loading anything, when the task's environment cannot render RGB frames or
    the run has no such seed or task.
    """
    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    seeds = config.seeds()
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise NoSuchSeedError(
            f"replay_seed must be one of the run's seeds {seeds[0]}-{seeds[-1]}, got {seed}"
        )
    tasks = config.env.task_list()
    names = [t.name for t in tasks]
    task = names[0] if task is None else task
    if task not in names:
        raise NoSuchTaskError(
            f"replay_task must be one of the run's tasks ({', '.join(names)}), got '{task}'"
        )
    index = names.index(task)
    if not has_rgb_render(make_raw_env(task, **tasks[index].kwargs)):
        raise NoRGBRenderError(
            f"env '{task}' has no RGB render; replays need an environment with "
            "an RGB `render`, e.g. smac/*"
        )
    runner, state, latest = restore_run(run_dir, config)
    key = evaluation_key(config, 10**6 + latest)
    episode = runner.greedy_episode(state, key, seeds.index(seed), task=index)
    states = episode.pop("states")
    env = runner.tasks[index].env
    if hasattr(env, "render_episode"):  # one view for the whole episode (SMAC)
        frames = env.render_episode(states)
    else:
        frames = [env.render(env_state) for env_state in states]
    return {
        **episode,
        "frames": frames,
        "seed": seed,
        "task": task,
        "chunk": latest,
        "config": config,
    }
