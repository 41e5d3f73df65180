"""marl-lab: cooperative multi-agent reinforcement learning in JAX."""

import importlib
from typing import Any

# The public names, imported on first use: importing marl (or marl.distributed) must not
# start JAX's backend, since a run of several processes has to join JAX's distributed
# runtime before that, and the environments' dependencies create arrays on import.
_EXPORTS = {
    "Algorithm": "marl.algorithm",
    "AlgorithmOptions": "marl.algorithm",
    "AlgorithmState": "marl.algorithm",
    "MultiObjectiveAlgorithm": "marl.algorithm",
    "MultiAgentEnv": "marl.env",
    "env_spec": "marl.env",
    "algorithm_names": "marl.registry",
    "algorithm_options": "marl.registry",
    "build_algorithm": "marl.registry",
    "env_names": "marl.registry",
    "make_algorithm": "marl.registry",
    "make_env": "marl.registry",
    "make_raw_env": "marl.registry",
    "register_algorithm": "marl.registry",
    "register_env": "marl.registry",
    "register_env_family": "marl.registry",
    "EnvSpec": "marl.types",
    "Observation": "marl.types",
    "Transition": "marl.types",
    "AgentIDWrapper": "marl.wrappers",
    "EpisodeMetricsWrapper": "marl.wrappers",
    "VectorEnv": "marl.wrappers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:  # a submodule, as `import marl; marl.loop.Runner` reads it
        try:
            return importlib.import_module(f"marl.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"marl.{name}":
                raise
            raise AttributeError(f"module 'marl' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"


def tuned(algo: str, env: str, *overrides: str, **settings):
    """The config ``marl-train algo=<algo> env=<env>`` runs, with the same tuned
    settings, as a :class:`marl.config.TrainConfig` for :func:`marl.train.train`
    (see :func:`marl.experiments.train.tuned_config`)."""
    from marl.experiments.train import tuned_config

    return tuned_config(algo, env, *overrides, **settings)


__all__ = [
    "tuned",
    "AgentIDWrapper",
    "Algorithm",
    "AlgorithmOptions",
    "AlgorithmState",
    "EnvSpec",
    "EpisodeMetricsWrapper",
    "MultiAgentEnv",
    "MultiObjectiveAlgorithm",
    "Observation",
    "Transition",
    "VectorEnv",
    "algorithm_names",
    "algorithm_options",
    "build_algorithm",
    "env_names",
    "env_spec",
    "make_algorithm",
    "make_env",
    "make_raw_env",
    "register_algorithm",
    "register_env",
    "register_env_family",
]
