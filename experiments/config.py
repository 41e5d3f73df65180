"""The training config's schema and its validation.

The Hydra app composes ``conf/config.yaml`` against :class:`TrainConfig` (a
structured config, so unknown keys and ill-typed values are rejected while
composing) and then :func:`validate` checks values and names. Every problem
is reported as one line naming the key, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from marl import registry


class ConfigError(ValueError):
    """A config value is invalid; the message is one line for the user."""


@dataclass
class EnvConfig:
    name: str = "lbf/8x8-2p-2f"
    add_agent_id: bool = True
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ArchConfig:
    num_devices: int = 0  # 0 means every local device
    num_envs: int = 8
    num_seeds: int = 1
    total_timesteps: int = 100_000
    rollout_length: int = 20
    eval_interval: int = 10_000
    eval_episodes: int = 32
    checkpoint_interval: int = 1  # in chunks (evaluation intervals)


@dataclass
class LoggerConfig:
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass
class TrainConfig:
    algo: Any = field(default_factory=dict)
    env: EnvConfig = field(default_factory=EnvConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    # Set by the env config's choice in conf/family/ (always empty): it selects the
    # family-wide tuned settings, conf/family_tuned/<family>/<algo>.yaml.
    family: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    run_dir: str = "runs/default"
    resume: bool = False


def register_schema() -> None:
    """Registers the schema so that ``conf/config.yaml`` can extend it."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)


_POSITIVE_ARCH = (
    "num_envs",
    "num_seeds",
    "total_timesteps",
    "rollout_length",
    "eval_interval",
    "eval_episodes",
    "checkpoint_interval",
)


def validate(config: dict[str, Any], local_devices: int | None = None) -> None:
    """Raises :class:`ConfigError` with one line for the first invalid value."""
    algo = config.get("algo") or {}
    name = algo.get("name")
    if name not in registry.algorithm_names():
        valid = ", ".join(registry.algorithm_names())
        raise ConfigError(f"algo.name: unknown algorithm '{name}'; valid: {valid}")
    env_name = config["env"]["name"]
    if not registry.is_env_name(env_name):
        raise ConfigError(
            f"env.name: unknown env '{env_name}'; valid: {', '.join(registry.env_names())}"
        )
    kwargs = config["env"].get("kwargs") or {}
    if kwargs:
        try:  # the environment checks its own options (cheap: nothing is compiled)
            registry.make_raw_env(env_name, **kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"env.kwargs: {error}") from None
    arch = config["arch"]
    for key in _POSITIVE_ARCH:
        if arch[key] < 1:
            raise ConfigError(f"arch.{key}: must be a positive integer, got {arch[key]}")
    if arch["num_devices"] < 0:
        raise ConfigError(
            "arch.num_devices: must be 0 (all local devices) or positive, "
            f"got {arch['num_devices']}"
        )
    if local_devices is not None:
        devices = arch["num_devices"] or local_devices
        if devices > local_devices:
            raise ConfigError(
                f"arch.num_devices: {devices} requested but only {local_devices} local devices"
            )
        if arch["num_envs"] % devices:
            raise ConfigError(
                f"arch.num_envs: {arch['num_envs']} is not divisible by the {devices} devices"
            )
    _validate_algo(name, {k: v for k, v in algo.items() if k != "name"})
    if local_devices is not None and "num_minibatches" in algo:
        envs = arch["num_envs"] // (arch["num_devices"] or local_devices)
        if envs % algo["num_minibatches"]:
            raise ConfigError(
                f"algo.num_minibatches: {algo['num_minibatches']} does not divide the {envs} "
                "envs of each device and seed (arch.num_envs / devices)"
            )


def _validate_algo(name: str, options: dict[str, Any]) -> None:
    schema = registry.algorithm_config_class(name)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in options.items():
        if key not in fields:
            raise ConfigError(
                f"algo.{key}: unknown option for {name}; valid: {', '.join(sorted(fields))}"
            )
        default = fields[key].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"algo.{key}: expected true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"algo.{key}: expected a number, got {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"algo.{key}: expected an integer, got {value!r}")
            if value < 0:
                raise ConfigError(f"algo.{key}: must not be negative, got {value}")
    try:
        schema(**options).check()
    except ValueError as error:
        raise ConfigError(f"algo: {error}") from None
