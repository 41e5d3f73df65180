"""Name -> constructor registries for environments and algorithms.

Environment names are ``family/task`` (``"lbf/8x8-2p-2f"``, ``"matrix/two_step"``);
a family may parse its task names instead of listing them (``lbf`` accepts any
``{grid}x{grid}-{agents}p-{food}f``). Unknown names raise a ``ValueError`` that
lists the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import jumanji

from marl.wrappers import AgentIDWrapper, EpisodeMetricsWrapper

EnvFactory = Callable[..., jumanji.Environment]

_ENVS: dict[str, EnvFactory] = {}
_ENV_FAMILIES: dict[str, tuple[Callable[[str], bool], Callable[..., jumanji.Environment], str]] = {}
_ALGORITHMS: dict[str, Callable[..., Any]] = {}
_ALGORITHM_CONFIGS: dict[str, type] = {}

# Modules that register their environments and algorithms when imported.
_ENV_MODULES = ("marl.envs",)
_ALGORITHM_MODULES = ("marl.algorithms",)


def register_env(name: str, factory: EnvFactory) -> None:
    """Registers an environment under an exact name such as ``"matrix/two_step"``."""
    _ENVS[name] = factory


def register_env_family(
    family: str,
    accepts: Callable[[str], bool],
    factory: Callable[..., jumanji.Environment],
    pattern: str,
) -> None:
    """Registers a family whose tasks are parsed: ``factory(task, **kwargs)`` builds one.

    ``accepts(task)`` says whether a task name is valid; ``pattern`` describes the
    valid names in error messages.
    """
    _ENV_FAMILIES[family] = (accepts, factory, pattern)


def register_algorithm(name: str, factory: Callable[..., Any], config_class: type) -> None:
    """Registers an algorithm constructor ``factory(env_spec, num_envs, **config)``.

    ``config_class`` is the dataclass of its options (with defaults); a ``check()``
    method on it validates values.
    """
    _ALGORITHMS[name] = factory
    _ALGORITHM_CONFIGS[name] = config_class


def algorithm_config_class(name: str) -> type:
    """The options dataclass of a registered algorithm."""
    _load(_ALGORITHM_MODULES)
    if name not in _ALGORITHM_CONFIGS:
        raise ValueError(f"unknown algorithm '{name}'; valid: {', '.join(algorithm_names())}")
    return _ALGORITHM_CONFIGS[name]


def _load(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)


def env_names() -> list[str]:
    """The registered exact names and the families' patterns."""
    _load(_ENV_MODULES)
    return sorted(_ENVS) + sorted(f"{fam}/{pat}" for fam, (_, _, pat) in _ENV_FAMILIES.items())


def is_env_name(name: str) -> bool:
    _load(_ENV_MODULES)
    if name in _ENVS:
        return True
    family, _, task = name.partition("/")
    return family in _ENV_FAMILIES and _ENV_FAMILIES[family][0](task)


def make_raw_env(name: str, **kwargs: Any) -> jumanji.Environment:
    """Builds an environment by name, with no marl-lab wrappers."""
    _load(_ENV_MODULES)
    if name in _ENVS:
        return _ENVS[name](**kwargs)
    family, _, task = name.partition("/")
    if family in _ENV_FAMILIES and _ENV_FAMILIES[family][0](task):
        return _ENV_FAMILIES[family][1](task, **kwargs)
    raise ValueError(f"unknown env '{name}'; valid: {', '.join(env_names())}")


def make_env(name: str, add_agent_id: bool = True, **kwargs: Any) -> jumanji.Environment:
    """Builds an environment by name, wrapped with episode metrics and (by default) agent ids."""
    env = EpisodeMetricsWrapper(make_raw_env(name, **kwargs))
    if add_agent_id:
        env = AgentIDWrapper(env)
    return env


def algorithm_names() -> list[str]:
    _load(_ALGORITHM_MODULES)
    return sorted(_ALGORITHMS)


def make_algorithm(name: str, env_spec: Any, num_envs: int = 1, **config: Any) -> Any:
    """Builds an algorithm by name for an environment's sizes.

    ``num_envs`` is the number of environments one copy of the algorithm acts in
    (per device and per seed); keyword arguments override the algorithm's defaults.
    """
    _load(_ALGORITHM_MODULES)
    if name not in _ALGORITHMS:
        raise ValueError(f"unknown algorithm '{name}'; valid: {', '.join(algorithm_names())}")
    return _ALGORITHMS[name](env_spec, num_envs, **config)
