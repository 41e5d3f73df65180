"""Name -> constructor registries for environments and algorithms.

Environment names are ``family/task`` (``"lbf/8x8-2p-2f"``, ``"matrix/two_step"``);
a family may parse its task names instead of listing them (``lbf`` accepts any
``{grid}x{grid}-{agents}p-{food}f``). An algorithm is registered with its factory
and its options dataclass (:class:`marl.algorithm.AlgorithmOptions`). Unknown
names raise a ``ValueError`` that lists the valid ones.

Registration is for names (the command line, configs); :class:`marl.loop.Runner`
trains any object that satisfies :class:`marl.algorithm.Algorithm`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import jumanji

from marl import plugins
from marl.algorithm import Algorithm, AlgorithmOptions
from marl.options import OptionError
from marl.types import EnvSpec
from marl.wrappers import AgentIDWrapper, EpisodeMetricsWrapper

EnvFactory = Callable[..., jumanji.Environment]
#: ``factory(options, env_spec, envs_per_device)`` builds a learner (a multitask
#: learner's factory gets a tuple of env specs, one per task).
AlgorithmFactory = Callable[[Any, EnvSpec, int], Algorithm]

_ENVS: dict[str, EnvFactory] = {}
_ENV_FAMILIES: dict[str, tuple[Callable[[str], bool], Callable[..., jumanji.Environment], str]] = {}
_ALGORITHMS: dict[str, tuple[AlgorithmFactory, type[AlgorithmOptions]]] = {}

# Modules that register their environments and algorithms when imported; then the
# installed plugins' entry points (marl.plugins).
_ENV_MODULES = ("marl.envs",)
_ALGORITHM_MODULES = ("marl.algorithms",)
_PLUGIN_GROUPS = {_ENV_MODULES: plugins.ENV_GROUP, _ALGORITHM_MODULES: plugins.ALGORITHM_GROUP}


def _refuse_taken(kind: str, name: str, taken: bool, same: bool) -> None:
    if taken and not same:
        raise ValueError(f"{kind} '{name}' is already registered; choose another name")


def register_env(name: str, factory: EnvFactory) -> None:
    """Registers an environment under an exact name such as ``"matrix/two_step"``.

    A name already taken (by marl-lab or another plugin) is refused.
    """
    family = name.partition("/")[0]
    if family in _ENV_FAMILIES and _ENV_FAMILIES[family][0](name.partition("/")[2]):
        raise ValueError(f"env '{name}' is already a task of the '{family}' family")
    _refuse_taken("env", name, name in _ENVS, _ENVS.get(name) is factory)
    _ENVS[name] = factory


def register_env_family(
    family: str,
    accepts: Callable[[str], bool],
    factory: Callable[..., jumanji.Environment],
    pattern: str,
) -> None:
    """Registers a family whose tasks are parsed: ``factory(task, **kwargs)`` builds one.

    ``accepts(task)`` says whether a task name is valid; ``pattern`` describes the
    valid names in error messages. A family already registered is refused.
    """
    taken = _ENV_FAMILIES.get(family)
    _refuse_taken("env family", family, taken is not None, taken == (accepts, factory, pattern))
    _ENV_FAMILIES[family] = (accepts, factory, pattern)


def register_algorithm(
    name: str, factory: AlgorithmFactory, options_class: type[AlgorithmOptions]
) -> None:
    """Registers ``factory(options, env_spec, envs_per_device)`` under ``name``.

    ``options_class`` is the algorithm's options dataclass; its ``name`` field
    defaults to ``name``. A name already taken is refused.
    """
    if options_class().name != name:
        raise ValueError(
            f"{options_class.__name__}.name defaults to {options_class().name!r}, not {name!r}"
        )
    taken = _ALGORITHMS.get(name)
    _refuse_taken("algorithm", name, taken is not None, taken == (factory, options_class))
    _ALGORITHMS[name] = (factory, options_class)


def algorithm_options_class(name: str) -> type[AlgorithmOptions]:
    """The options dataclass of a registered algorithm."""
    _load(_ALGORITHM_MODULES)
    if name not in _ALGORITHMS:
        raise ValueError(f"unknown algorithm '{name}'; valid: {', '.join(algorithm_names())}")
    return _ALGORITHMS[name][1]


def algorithm_options(name: str, **overrides: Any) -> AlgorithmOptions:
    """``name``'s options with ``overrides`` of the defaults (not yet checked).

    An unknown option raises :class:`marl.options.OptionError` listing the valid ones.
    """
    options_class = algorithm_options_class(name)
    valid = sorted(f.name for f in dataclasses.fields(options_class) if f.name != "name")
    for key in sorted(overrides):
        if key not in valid:
            raise OptionError(key, f"unknown option for {name}; valid: {', '.join(valid)}")
    return options_class(**overrides)


def _load(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)
    plugins.load_plugins(_PLUGIN_GROUPS[modules])


def env_names() -> list[str]:
    """The registered exact names and the families' patterns."""
    _load(_ENV_MODULES)
    return sorted(_ENVS) + sorted(f"{fam}/{pat}" for fam, (_, _, pat) in _ENV_FAMILIES.items())


def exact_env_names() -> list[str]:
    """The names registered with :func:`register_env` (not the families' patterns)."""
    _load(_ENV_MODULES)
    return sorted(_ENVS)


def is_env_name(name: str) -> bool:
    _load(_ENV_MODULES)
    if name in _ENVS:
        return True
    family, _, task = name.partition("/")
    return family in _ENV_FAMILIES and _ENV_FAMILIES[family][0](task)


def _passes_keywords_on(function: Callable[..., Any]) -> bool:
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(function).parameters.values()
    )


def _constructor(name: str) -> Callable[..., Any]:
    """What builds ``name``'s env from keyword arguments: an exact name's factory; a
    family's factory that names its keywords; or the class a family's factory returns
    when it passes its keywords on (``make_smac(task, **kwargs) -> SMAC``)."""
    if name in _ENVS:
        factory = _ENVS[name]
        return factory.__init__ if isinstance(factory, type) else factory
    family, _, _ = name.partition("/")
    factory = _ENV_FAMILIES[family][1]
    if not _passes_keywords_on(factory):
        return factory
    built = typing.get_type_hints(factory).get("return")
    return built.__init__ if isinstance(built, type) else factory


def _command_line_type(annotation: Any) -> bool:
    """Whether values of ``annotation`` can be written on a command line."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return all(_command_line_type(arg) for arg in typing.get_args(annotation))
    if origin in (list, tuple, collections.abc.Sequence):
        return True
    return annotation in (bool, int, float, str, type(None))


def env_parameters(name: str) -> dict[str, Any]:
    """The keyword arguments ``env.kwargs`` may set for env ``name``: parameter name
    -> its type annotation. Parameters of other types (an opponent policy, a map
    object) are for Python only."""
    _load(_ENV_MODULES)
    constructor = _constructor(name)
    try:
        hints = typing.get_type_hints(constructor)
    except Exception:  # unresolvable annotations: take the parameters untyped
        hints = {}
    parameters = {}
    for parameter in inspect.signature(constructor).parameters.values():
        if parameter.name == "self" or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        annotation = hints.get(parameter.name, Any)
        if annotation is Any or _command_line_type(annotation):
            parameters[parameter.name] = annotation
    return parameters


def _matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, list | tuple)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is type(None):
        return value is None
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        return "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(annotation, "null" if annotation is type(None) else str(annotation))


def check_env_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Raises :class:`OptionError` (key ``kwargs.<key>``) for a keyword argument that
    env ``name`` does not take or whose value has the wrong type, naming the env's
    own keyword arguments."""
    parameters = env_parameters(name)
    passes_on = _passes_keywords_on(_constructor(name))  # SMAX hands others to JaxMARL
    for key, value in kwargs.items():
        if key not in parameters and passes_on:
            continue
        if key not in parameters:
            valid = ", ".join(sorted(parameters)) or "none"
            raise OptionError(f"kwargs.{key}", f"unknown option for {name}; valid: {valid}")
        if not _matches(value, parameters[key]):
            raise OptionError(
                f"kwargs.{key}",
                f"expected {_type_name(parameters[key])}, got {value!r}",
            )


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


def build_algorithm(
    options: AlgorithmOptions,
    env_spec: EnvSpec | collections.abc.Sequence[EnvSpec],
    envs_per_device: int = 1,
) -> Algorithm:
    """The learner ``options`` describe, for an environment's sizes (or a task set's:
    one spec per task).

    ``envs_per_device`` is the number of environments one copy of the learner acts
    in (per device, per seed and per task). The options are checked first; a bad
    value raises :class:`marl.options.OptionError` naming it. A multitask learner
    (``multi_task`` options) gets the specs as a tuple, a set of one included; a
    single-task learner gets its one spec and refuses a set of more, in one line.
    """
    options.check(envs_per_device)
    options_class = algorithm_options_class(options.name)
    if not isinstance(options, options_class):
        raise ValueError(
            f"{type(options).__name__} are not {options.name}'s options ({options_class.__name__})"
        )
    specs = (env_spec,) if isinstance(env_spec, EnvSpec) else tuple(env_spec)
    factory = _ALGORITHMS[options.name][0]
    if options_class.multi_task:
        return factory(options, specs, envs_per_device)
    if len(specs) != 1:
        multitask = [n for n in algorithm_names() if algorithm_options_class(n).multi_task]
        raise ValueError(
            f"algo={options.name} learns one task and this run has {len(specs)}; choose a "
            f"multitask learner ({', '.join(multitask) or 'none registered'}) or one task"
        )
    return factory(options, specs[0], envs_per_device)


def make_algorithm(
    name: str, env_spec: EnvSpec, envs_per_device: int = 1, **options: Any
) -> Algorithm:
    """Builds a registered algorithm by name: keyword arguments override its defaults."""
    return build_algorithm(algorithm_options(name, **options), env_spec, envs_per_device)
