"""``marl-train``: the Hydra app that trains any registered algorithm on any env.

    marl-train                                   # QMIX on LBF 8x8-2p-2f, a few minutes
    marl-train algo=vdn env=matrix/two_step arch.total_timesteps=20000
    marl-train -m algo=iql,vdn,qmix seed=0,1,2   # a sweep
    marl-train resume=true                       # continue the run in run_dir

Before Hydra runs anything, every combination of the command line's overrides is
composed against the typed schema (:class:`marl.config.TrainConfig`) and checked,
so a bad key or value stops the program with one line.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import sys
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from marl.config import ConfigError, TrainConfig, register_schema
from marl.options import OptionError
from marl.plugins import PluginError
from marl.rundir import RunDirError, probe_run_dir

CONFIG_MODULE = "marl.experiments.conf"
CONFIG_PATH = str(pathlib.Path(__file__).resolve().parent / "conf")
_MAX_PREFLIGHT_COMBINATIONS = 256
_GROUPS = ("algo", "env", "arch", "logger", "hydra/launcher")
# OmegaConf reads any integer as a bool (3 -> true); the command line takes these only.
_BOOL_WORDS = ("true", "false", "yes", "no", "on", "off", "0", "1")
# Command-line flags of Hydra's that ask for information rather than a run.
_INFO_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--version",
    "--shell-completion",
    "-sc",
)


def _group_options(group: str) -> list[str]:
    """The options of a config group: YAMLs in marl-lab's and the plugins' config
    dirs, and the names registered without one (:func:`marl.config.register_schema`)."""
    from marl import registry
    from marl.config import config_dirs

    options = set()
    for directory in config_dirs():
        root = directory / group
        options.update(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    if group == "algo":
        options.update(registry.algorithm_names())
    if group == "env":
        options.update(registry.exact_env_names())
    return sorted(options)


def plugin_search_path() -> list[str]:
    """The override that puts installed plugins' config packages on Hydra's search
    path (none without plugins)."""
    from marl.plugins import config_search_path

    entries = config_search_path()
    return [f"hydra.searchpath=[{','.join(entries)}]"] if entries else []


def _valid_keys(defaults: dict[str, Any], dotted: str) -> list[str]:
    node: Any = defaults
    for part in dotted.split(".")[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return sorted(node) if isinstance(node, dict) else []


def _is_empty_table(defaults: dict[str, Any], dotted: str) -> bool:
    node: Any = defaults
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node == {}


def _one_line(error: BaseException, defaults: dict[str, Any] | None = None) -> str:
    """Hydra's and OmegaConf's multi-line errors, reduced to what the user must change."""
    text = str(error)
    for group in ("algo", "env", "arch", "logger"):
        marker = f"Could not find '{group}/"
        if marker in text:
            option = text.split(marker, 1)[1].split("'", 1)[0]
            return f"{group}: unknown option '{option}'; valid: {', '.join(_group_options(group))}"
    cause: BaseException | None = error
    while cause is not None and "full_key:" not in str(cause):
        cause = cause.__cause__
    if cause is None:
        return text.strip().splitlines()[0] if text.strip() else type(error).__name__
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    full_key = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:"))
    if " not in " in lines[0]:
        if _is_empty_table(defaults or {}, full_key.rsplit(".", 1)[0]):
            # e.g. MANSA's algo.il_options: a table of another learner's options
            return f"'{full_key}' is a new key of a free-form table: write +{full_key}=..."
        valid = _valid_keys(defaults or {}, full_key)
        hint = f"; valid keys here: {', '.join(valid)}" if valid else ""
        return f"unknown config key '{full_key}'{hint}"
    return f"{full_key}: {lines[0]}"


def _user_overrides(argv: list[str]) -> list[str] | None:
    """The key=value overrides of the command line, or None when Hydra only informs."""
    if any(arg in _INFO_FLAGS or arg.startswith("--cfg") for arg in argv):
        return None
    overrides, skip_next = [], False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"):
            skip_next = True
            continue
        if arg.startswith("-"):
            continue
        overrides.append(arg)
    return overrides


# Free-form tables whose keys another signature checks: the chosen env's keyword
# arguments (marl.config.EnvConfig.check) and MANSA's parts' options (their options
# classes, MANSAOptions.part_options).
ADDABLE_TABLES = ("env.kwargs.", "algo.il_options.", "algo.cl_options.")


def addable_env_kwargs(overrides: list[str]) -> list[str]:
    """``env.kwargs.<key>=v`` as ``++env.kwargs.<key>=v`` (likewise MANSA's
    ``algo.il_options`` and ``algo.cl_options``): every keyword argument of the chosen
    env can be set, not only those its YAML lists."""
    return ["++" + o if o.startswith(ADDABLE_TABLES) and "=" in o else o for o in overrides]


def _combinations(overrides: list[str]) -> list[list[str]]:
    """Every override list a sweep of ``overrides`` would run (the first few hundred)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        choices.append([f"{key}={value}" for value in values])
    return [
        list(c) for c in itertools.islice(itertools.product(*choices), _MAX_PREFLIGHT_COMBINATIONS)
    ]


def _chosen_defaults(combo: list[str]) -> dict[str, Any]:
    """The config of ``combo``'s group choices alone (``algo=vdn``, not ``algo.gamma=1``):
    what the valid keys are for what the user chose."""
    from hydra import compose

    choices = [o for o in combo if o.split("=", 1)[0].split("@")[0] in _GROUPS]
    try:
        return OmegaConf.to_container(
            compose(config_name="config", overrides=plugin_search_path() + choices)
        )
    except Exception:  # a bad group choice: its own error is reported
        return {}


def _check_bool_words(cfg: DictConfig, combo: list[str]) -> None:
    for override in combo:
        key, _, value = override.lstrip("+~").partition("=")
        if isinstance(OmegaConf.select(cfg, key), bool) and value.lower() not in _BOOL_WORDS:
            raise ConfigError(f"{key}: expected true or false, got {value!r}")


def compose_config(cfg: DictConfig) -> TrainConfig:
    """The typed config of a composed Hydra config (interpolations resolved)."""
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, TrainConfig), type(config)
    return config


def tuned_config(algo: str, env: str, *overrides: str, **settings: Any) -> TrainConfig:
    """The :class:`TrainConfig` ``marl-train algo=<algo> env=<env> ...`` would run:
    the same YAML defaults and tuned settings (``conf/tuned/<env>/<algo>.yaml``,
    ``conf/family_tuned/...``), checked the same way. ``overrides`` are
    command-line words (``"arch.num_seeds=2"``); ``settings`` are dotted keys with
    ``.`` written as ``__`` (``arch__total_timesteps=20_000``), for Python's syntax.
    Raises :class:`marl.config.ConfigError` with one line."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    words = [f"algo={algo}", f"env={env}", *overrides]
    words += [f"{key.replace('__', '.')}={_hydra_value(value)}" for key, value in settings.items()]
    words = plugin_search_path() + addable_env_kwargs(words)
    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_PATH, version_base=None):
            try:
                config = compose_config(compose(config_name="config", overrides=words))
            except Exception as error:
                raise ConfigError(_one_line(error, _chosen_defaults(words))) from None
    finally:
        GlobalHydra.instance().clear()
    config.check()
    return config


def _hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)  # numbers and lists read the same in Hydra's grammar


def preflight(overrides: list[str]) -> None:
    """Composes and checks every combination; raises ConfigError with one line."""
    import jax
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schema()
    try:
        combos = _combinations(addable_env_kwargs(overrides))
    except Exception as error:  # the override grammar's own errors
        raise ConfigError(_one_line(error)) from None
    GlobalHydra.instance().clear()
    probed: set[str] = set()
    with initialize_config_dir(config_dir=CONFIG_PATH, version_base=None):
        for combo in combos:
            try:
                cfg = compose(config_name="config", overrides=plugin_search_path() + combo)
                config = compose_config(cfg)
            except Exception as error:
                raise ConfigError(_one_line(error, _chosen_defaults(combo))) from None
            _check_bool_words(cfg, combo)
            _join_processes(config)
            config.check(local_devices=jax.local_device_count())
            if config.run_dir not in probed and len(probed) < 16:
                try:
                    probe_run_dir(config.run_dir)
                except RunDirError as error:
                    raise ConfigError(str(error)) from None
                probed.add(config.run_dir)
    GlobalHydra.instance().clear()


def _join_processes(config: TrainConfig) -> None:
    """Joins the run's other processes before anything touches a device (JAX's
    distributed runtime must start first); one line when they cannot be reached."""
    from marl.distributed import DistributedError, initialize

    arch = config.arch
    try:
        arch.check_processes()
        initialize(
            arch.num_processes,
            arch.process_id,
            arch.coordinator,
            arch.distributed_timeout,
            program="marl-train",
        )
    except OptionError as error:
        raise ConfigError(str(error.within("arch"))) from None
    except DistributedError as error:
        raise ConfigError(str(error)) from None


def resolve_run_dir(config: TrainConfig) -> str:
    """Where this run writes: ``run_dir`` itself, or with ``resume=false`` and a run
    already there, the first free ``run_dir-N`` (nothing earlier is overwritten).
    With ``resume=true`` the newest of ``run_dir`` and its ``-N`` siblings that has a
    finished checkpoint (a folder left without one, by a run killed while
    compiling, is passed over), else the newest that holds a run at all."""
    from marl.rundir import has_checkpoint, is_run

    base = pathlib.Path(config.run_dir)
    siblings = [base]
    while pathlib.Path(f"{base}-{len(siblings)}").exists():
        siblings.append(pathlib.Path(f"{base}-{len(siblings)}"))
    taken = [path for path in siblings if is_run(path)]
    if config.resume:
        resumable = [path for path in taken if has_checkpoint(path)] or taken
        return str(resumable[-1]) if resumable else str(base)
    if not taken:
        return str(base)
    return f"{base}-{siblings.index(taken[-1]) + 1}"


def _resume_command(run_dir: str) -> str:
    words = [
        arg
        for arg in sys.argv[1:]
        if not arg.startswith(("resume=", "run_dir=", "hydra.searchpath="))
    ]
    return " ".join(["marl-train", *words, f"run_dir={run_dir}", "resume=true"])


def _link_from_sweep(run_dir: str) -> None:
    """In a sweep (``-m``), ``multirun/<time>/<job>/run`` points to the job's run
    directory, so that one folder reaches every run of the sweep, whichever launcher
    ran it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    job_dir = pathlib.Path(HydraConfig.get().runtime.output_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    link = job_dir / "run"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(pathlib.Path(run_dir).absolute(), target_is_directory=True)


def _exit_lost_run(code: int) -> None:
    """Exits with ``code``. A run whose processes lost one another exits at once: JAX's
    runtime would otherwise wait at exit for the lost process, then abort."""
    import jax

    if jax.process_count() == 1:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Hydra's task function: train (which checks the config), report. Every
    failure the user can act on ends in one line: exit 2 for a config or a run
    directory that cannot be used, 3 for a run that diverged, 4 for a run whose
    processes could not join or lost one another, 128 + the signal's number for a run
    stopped by SIGINT or SIGTERM (after writing a checkpoint)."""
    from marl.checkpoint import CheckpointDamagedError, CheckpointLayoutError, ConfigMismatchError
    from marl.compile_cache import enable_compile_cache
    from marl.distributed import DistributedError
    from marl.files import RunFileError
    from marl.logging import WandbError
    from marl.rundir import RunDirError
    from marl.train import (
        RunBuildError,
        RunExistsError,
        TrainingDivergedError,
        TrainingInterrupted,
        train,
    )

    enable_compile_cache("marl-train")  # also in a launcher's worker process
    config = compose_config(cfg)
    run_dir = resolve_run_dir(config)
    if run_dir != config.run_dir:
        print(f"marl-train: {'resuming' if config.resume else 'writing'} {run_dir}")
        config.run_dir = run_dir
    _link_from_sweep(run_dir)
    try:
        result = train(config)
    except (
        ConfigError,
        ConfigMismatchError,
        CheckpointLayoutError,
        CheckpointDamagedError,
        RunExistsError,
        RunBuildError,
        RunDirError,
        RunFileError,
        PluginError,
        WandbError,
        ImportError,
    ) as error:
        print(f"marl-train: error: {error}", file=sys.stderr)
        sys.exit(2)
    except DistributedError as error:
        print(f"marl-train: error: {error}", file=sys.stderr)
        _exit_lost_run(4)
    except TrainingDivergedError as error:
        print(f"marl-train: error: {error}", file=sys.stderr)
        sys.exit(3)
    except TrainingInterrupted as error:
        print(f"marl-train: {error}; to resume: {_resume_command(run_dir)}", file=sys.stderr)
        sys.exit(128 + error.signal_number)
    except OSError as error:  # the disk filled up, a file system went read-only, ...
        where = f" '{error.filename}'" if error.filename else ""
        print(
            f"marl-train: error: writing{where} in '{run_dir}' failed "
            f"({error.strerror or error}); checkpoints written before are kept",
            file=sys.stderr,
        )
        sys.exit(2)
    if result.get("process_index", 0) != 0:  # process 0 evaluates, logs and reports
        print(
            f"marl-train: process {result['process_index']} done after "
            f"{result['env_steps']:,} env steps; process 0 reports the results"
        )
        return {"process_index": result["process_index"], "env_steps": result["env_steps"]}
    returns, won = result["returns"], result["won"]
    tasks = result.get("tasks", {})
    if len(tasks) > 1:  # a task set: its figures pooled over every task's episodes
        returns = np.concatenate([task["returns"] for task in tasks.values()], axis=1)
        won = np.concatenate([task["won"] for task in tasks.values()], axis=1)
    outcome = {"return": float(returns.mean()), "win_rate": float(won.mean()), "run_dir": run_dir}
    if len(tasks) > 1:
        outcome["tasks"] = {
            name: {"return": float(task["returns"].mean()), "win_rate": float(task["won"].mean())}
            for name, task in tasks.items()
        }
    headline = f"greedy mean return {returns.mean():.3f}"
    if result["pareto"]:  # a multi-objective learner: its front's hypervolume leads
        hypervolumes = [float(v) for v in result["pareto"]["hypervolume"]]
        outcome["hypervolume"] = sum(hypervolumes) / len(hypervolumes)
        headline = (
            f"greedy hypervolume {outcome['hypervolume']:.3f}, mean utility {returns.mean():.3f}"
        )
    print(
        f"{config.algo.name} on {config.env.name}: after {result['env_steps']:,} "
        f"env steps, {headline} and win rate {won.mean():.2f} "
        f"over {returns.size} episodes; results in {run_dir}"
    )
    for name, figures in outcome.get("tasks", {}).items():
        print(f"  {name}: return {figures['return']:.3f}, win rate {figures['win_rate']:.2f}")
    return outcome


def main() -> None:
    """Entry point of ``marl-train``."""
    from marl.compile_cache import enable_compile_cache

    enable_compile_cache("marl-train")
    sys.argv[1:] = addable_env_kwargs(sys.argv[1:])
    overrides = _user_overrides(sys.argv[1:])
    try:
        if overrides is not None:
            preflight(overrides)
        register_schema()
        search_path = plugin_search_path()
    except (ConfigError, PluginError) as error:
        print(f"marl-train: error: {error}", file=sys.stderr)
        sys.exit(2)
    # After the user's words: the resume command printed on a stop leaves it out.
    sys.argv[1:] = sys.argv[1:] + search_path
    # The task function lives in a module that imports nothing of marl-lab's, so that a
    # job a launcher starts in a fresh process can join its run's processes first.
    from marl.experiments.cli import task

    hydra.main(config_path="conf", config_name="config", version_base=None)(task)()


if __name__ == "__main__":
    main()
