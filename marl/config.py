"""The typed training config, checked once.

A :class:`TrainConfig` says everything a run needs: the algorithm's options (its
own dataclass, :class:`marl.algorithm.AlgorithmOptions`), the environment, the
architecture (devices, envs, seeds, budgets) and the logger. The Hydra app
(``marl-train``) composes it from ``experiments/conf`` against this schema, with
each algorithm's options dataclass as the schema of its ``algo`` node, so Hydra
itself rejects unknown keys and ill-typed values; :meth:`TrainConfig.check` then
checks values, and :func:`marl.train.train` takes the checked object.

A value's path from the command line: ``algo.gamma=0.9`` is parsed by Hydra into
the typed node, :func:`omegaconf.OmegaConf.to_object` makes it the options
dataclass's field, and the learner reads ``options.gamma``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from marl import plugins, registry
from marl.algorithm import AlgorithmOptions
from marl.loop import check_num_devices
from marl.options import OptionError


class ConfigError(ValueError):
    """A config value is invalid; the message is one line for the user."""


@dataclass
class TaskConfig:
    """One task of a task set: a registered env name and its constructor's kwargs."""

    name: str = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


TASK_SET_FAMILY = "multitask"


@dataclass
class EnvConfig:
    """``name`` is a registered env (``family/task``); ``kwargs`` go to its constructor.

    A task set (``env=multitask/<set>``) is named ``multitask/<set>`` and lists its
    ``tasks`` (each a registered env with its own kwargs); one env is the set of one.
    """

    name: str = "lbf/8x8-2p-2f"
    add_agent_id: bool = True
    kwargs: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskConfig] = field(default_factory=list)

    def __post_init__(self) -> None:  # from config.yaml: plain dicts
        self.tasks = [TaskConfig(**t) if isinstance(t, dict) else t for t in self.tasks]

    @property
    def is_task_set(self) -> bool:
        return self.name.partition("/")[0] == TASK_SET_FAMILY or bool(self.tasks)

    def task_list(self) -> list[TaskConfig]:
        """The run's tasks: the set's, or this env as the set of one."""
        if self.is_task_set:
            return list(self.tasks)
        return [TaskConfig(self.name, dict(self.kwargs))]

    def check(self) -> None:
        if self.is_task_set:
            self._check_task_set()
            return
        self._check_task(self.name, self.kwargs)

    @staticmethod
    def _check_task(name: str, kwargs: dict[str, Any]) -> None:
        if not registry.is_env_name(name):
            valid = ", ".join(registry.env_names())
            raise OptionError("name", f"unknown env '{name}'; valid: {valid}")
        if kwargs:
            registry.check_env_kwargs(name, kwargs)
            try:  # the environment checks its own values (cheap: nothing is compiled)
                registry.make_raw_env(name, **kwargs)
            except (TypeError, ValueError) as error:
                raise OptionError("kwargs", str(error)) from None

    def _check_task_set(self) -> None:
        family, _, set_name = self.name.partition("/")
        if family != TASK_SET_FAMILY or not set_name:
            raise OptionError(
                "name", f"a task set is named {TASK_SET_FAMILY}/<set>, got '{self.name}'"
            )
        if not self.tasks:
            raise OptionError(
                "tasks",
                f"the task set '{self.name}' lists no tasks; give env.tasks=[{{name: smac/3m}}, "
                "...] or choose a preset (env=multitask/smac_cpu)",
            )
        if self.kwargs:
            raise OptionError(
                "kwargs", "a task set takes kwargs per task (env.tasks[i].kwargs), not env.kwargs"
            )
        names = [task.name for task in self.tasks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise OptionError("tasks", f"each task may appear once; repeated: {repeated}")
        for index, task in enumerate(self.tasks):
            try:
                self._check_task(task.name, task.kwargs)
            except OptionError as error:
                raise error.within(f"tasks[{index}]") from None


# The loop counts env steps in int32 (per seed), and array sizes must fit an int32 too.
MAX_TIMESTEPS = 2**31 - 1
MAX_ENVS = 2**20

_POSITIVE_ARCH = (
    "num_envs",
    "num_seeds",
    "total_timesteps",
    "rollout_length",
    "eval_interval",
    "eval_episodes",
    "checkpoint_interval",
)


@dataclass
class ArchConfig:
    """How a run is laid out: ``num_envs`` environments per seed over ``num_devices``
    local devices (0: every local device) of each of ``num_processes`` processes,
    ``num_seeds`` vmapped seeds; one compiled chunk per ``eval_interval`` env-steps, a
    checkpoint every ``checkpoint_interval`` chunks, with the replay
    (``checkpoint_replay``: exact resumption) or without it (a fraction of the size; a
    resumed run refills it).

    Several processes (:mod:`marl.distributed`): ``num_processes`` > 1 with this one's
    ``process_id`` and process 0's ``coordinator`` (``host:port``), or 0 to let JAX
    detect them from the cluster (Slurm, Open MPI, a TPU pod slice);
    ``distributed_timeout`` seconds to wait for the others to join, and for a
    silent one before the run ends.
    """

    num_devices: int = 0
    num_envs: int = 8
    num_seeds: int = 1
    total_timesteps: int = 100_000
    rollout_length: int = 20
    eval_interval: int = 10_000
    eval_episodes: int = 32
    checkpoint_interval: int = 1
    checkpoint_replay: bool = True
    num_processes: int = 1
    process_id: int = 0
    coordinator: str = ""
    distributed_timeout: int = 120

    def check(self) -> None:
        for key in _POSITIVE_ARCH:
            if getattr(self, key) < 1:
                raise OptionError(key, f"must be a positive integer, got {getattr(self, key)}")
        if self.total_timesteps > MAX_TIMESTEPS:
            raise OptionError(
                "total_timesteps",
                f"{self.total_timesteps:,} is beyond the {MAX_TIMESTEPS:,} env steps a run "
                "counts (an int32 counter)",
            )
        if self.eval_interval > self.total_timesteps:
            raise OptionError(
                "eval_interval",
                f"{self.eval_interval:,} is more than total_timesteps "
                f"({self.total_timesteps:,}): a run trains in chunks of one evaluation "
                "interval, so it must fit in the run",
            )
        if self.num_envs * self.num_seeds > MAX_ENVS:
            raise OptionError(
                "num_envs",
                f"{self.num_envs:,} envs x {self.num_seeds} seeds is beyond the "
                f"{MAX_ENVS:,} environments one run can hold",
            )
        if self.num_devices < 0:
            raise OptionError(
                "num_devices", f"must be 0 (all local devices) or positive, got {self.num_devices}"
            )
        self.check_processes()

    def check_processes(self) -> None:
        """The multi-process keys alone (read before the runtime starts)."""
        if self.num_processes < 0:
            raise OptionError(
                "num_processes",
                f"must be 1 (this process alone), more, or 0 (detected from the cluster), "
                f"got {self.num_processes}",
            )
        if self.distributed_timeout < 1:
            raise OptionError(
                "distributed_timeout",
                f"must be a positive number of seconds, got {self.distributed_timeout}",
            )
        if self.num_processes <= 1:
            return
        if not 0 <= self.process_id < self.num_processes:
            raise OptionError(
                "process_id",
                f"must be in 0..{self.num_processes - 1} for {self.num_processes} processes, "
                f"got {self.process_id}",
            )
        host, _, port = self.coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise OptionError(
                "coordinator",
                f"must be process 0's host:port (e.g. 10.0.0.1:12355) for "
                f"{self.num_processes} processes, got {self.coordinator!r}",
            )

    def devices(self, local_devices: int) -> int:
        """How many devices the run uses."""
        return self.num_devices or local_devices

    def envs_per_device(self, num_devices: int) -> int:
        """The environments of one device and seed; ``num_envs`` must divide evenly."""
        if self.num_envs % num_devices:
            raise OptionError(
                "num_envs", f"{self.num_envs} is not divisible by the {num_devices} devices"
            )
        return self.num_envs // num_devices

    def chunk_layout(self) -> tuple[int, int]:
        """``(iterations_per_chunk, num_chunks)``: one chunk per evaluation interval."""
        steps_per_iteration = self.rollout_length * self.num_envs
        iterations = max(1, self.eval_interval // steps_per_iteration)
        num_chunks = max(1, math.ceil(self.total_timesteps / (iterations * steps_per_iteration)))
        return iterations, num_chunks


WANDB_MODES = ("offline", "online")


@dataclass
class LoggerConfig:
    """Where a run's metrics go besides ``metrics.jsonl`` and ``results.json``.

    ``wandb`` adds one Weights & Biases run per seed (``pip install
    'marl-lab[wandb]'``), grouped under ``wandb_group`` (default: the run dir).
    ``wandb_mode=offline`` writes under ``run_dir/wandb`` without a network, for
    ``wandb sync`` later; ``online`` streams to ``wandb_entity``/``wandb_project``.
    """

    tensorboard: bool = True
    progress_bar: bool = True
    wandb: bool = False
    wandb_project: str = "marl-lab"
    wandb_entity: str = ""
    wandb_group: str = ""
    wandb_mode: str = "offline"

    def check(self) -> None:
        if self.wandb_mode not in WANDB_MODES:
            raise OptionError(
                "wandb_mode", f"must be one of {', '.join(WANDB_MODES)}, got '{self.wandb_mode}'"
            )
        if self.wandb:
            if not self.wandb_project.strip():
                raise OptionError("wandb_project", "must name a W&B project, got an empty string")
            if importlib.util.find_spec("wandb") is None:
                raise OptionError("wandb", "needs the wandb package: pip install 'marl-lab[wandb]'")


@dataclass
class TrainConfig:
    """A whole run. ``seed`` is the first seed (the run's seeds are ``seed`` ..
    ``seed + num_seeds - 1``); with ``resume``, the run in ``run_dir`` continues."""

    algo: AlgorithmOptions = MISSING
    env: EnvConfig = field(default_factory=EnvConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    run_dir: str = "runs/default"
    resume: bool = False
    # Hydra's selector of the family-wide tuned settings (conf/family/, always
    # empty): an env config names its family, and
    # conf/family_tuned/<family>/<algo>.yaml then applies.
    family: dict[str, Any] = field(default_factory=dict)

    def check(self, local_devices: int | None = None) -> None:
        """Raises :class:`ConfigError` with one line for the first invalid value.

        ``local_devices``, when given, is checked against ``arch.num_devices`` and
        the envs per device against the algorithm's options.
        """
        envs_per_device = None
        if not self.run_dir.strip():
            raise ConfigError("run_dir: must name a directory, got an empty string")
        _within("algo", _known_algorithm, self.algo)
        _within("env", self.env.check)
        _within("arch", self.arch.check)
        _within("logger", self.logger.check)
        if local_devices is not None:
            devices = self.arch.devices(local_devices)
            _within("arch", check_num_devices, devices)
            # Detected processes (num_processes 0) count once the runtime has joined them.
            processes = max(self.arch.num_processes, 1)
            envs_per_device = _within("arch", self.arch.envs_per_device, devices * processes)
        _within("algo", self.algo.check, envs_per_device)

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.arch.num_seeds)]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what ``config.yaml`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        """The config a ``config.yaml`` holds; unknown or missing keys raise
        :class:`ConfigError` in one line."""
        try:
            algo = dict(config["algo"])
            options = registry.algorithm_options(algo.pop("name"), **algo)
            return cls(
                algo=options,
                env=EnvConfig(**config["env"]),
                arch=ArchConfig(**config["arch"]),
                logger=LoggerConfig(**config["logger"]),
                seed=config["seed"],
                run_dir=config["run_dir"],
                resume=config["resume"],
                family=config.get("family", {}),
            )
        except OptionError as error:
            raise ConfigError(str(error.within("algo"))) from None
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"not a config of this marl-lab version ({error})") from None


def _within(prefix: str, check: Any, *args: Any) -> Any:
    """``check(*args)``, its :class:`OptionError` a one-line :class:`ConfigError` whose
    key sits under ``prefix``."""
    try:
        return check(*args)
    except OptionError as error:
        raise ConfigError(str(error.within(prefix))) from None


def _known_algorithm(options: Any) -> None:
    if not isinstance(options, AlgorithmOptions):
        raise OptionError("name", f"expected an algorithm's options, got {options!r}")
    if options.name not in registry.algorithm_names():
        valid = ", ".join(registry.algorithm_names())
        raise OptionError("name", f"unknown algorithm '{options.name}'; valid: {valid}")


def seed_label(seed: int, num_seeds: int) -> str:
    """How a run directory names its seeds: ``seed3``, or ``seeds0-3`` for 0, 1, 2, 3."""
    seed, num_seeds = int(seed), int(num_seeds)
    return f"seed{seed}" if num_seeds == 1 else f"seeds{seed}-{seed + num_seeds - 1}"


def config_dirs() -> list[Any]:
    """Where ``marl-train``'s YAML groups live: marl-lab's own ``conf`` and every
    installed plugin's config package (:mod:`marl.plugins`)."""
    import importlib.resources
    import pathlib

    own = pathlib.Path(str(importlib.resources.files("marl.experiments.conf")))
    return [own, *plugins.config_dirs()]


def register_schema() -> None:
    """Registers the schema with Hydra: ``train_schema`` and, for every registered
    algorithm, its options as ``schema/algo/<name>`` (what ``conf/algo/<name>.yaml``
    extends).

    An algorithm or exact env name registered without a YAML of its own (from
    Python, or by a plugin that ships none) gets a node built from its defaults
    (``algo/<name>``, ``env/<family>/<task>``), so ``algo=<name>`` and
    ``env=<name>`` work for it on the command line too.
    """
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("seed_label", seed_label, replace=True)
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    directories = config_dirs()

    def has_yaml(group: str, name: str) -> bool:
        return any((directory / group / f"{name}.yaml").is_file() for directory in directories)

    for name in registry.algorithm_names():
        options_class = registry.algorithm_options_class(name)
        store.store(group="schema/algo", name=name, node=options_class)
        if not has_yaml("algo", name):
            store.store(group="algo", name=name, node=options_class)
    for name in registry.exact_env_names():
        if not has_yaml("env", name):
            group, _, task = f"env/{name}".rpartition("/")
            node = {"name": name, "add_agent_id": True, "kwargs": {}}
            store.store(group=group, name=task, node=node)
