"""marl-lab: cooperative multi-agent reinforcement learning in JAX."""

from marl.algorithm import Algorithm, AlgorithmOptions, AlgorithmState, MultiObjectiveAlgorithm
from marl.env import MultiAgentEnv, env_spec
from marl.registry import (
    algorithm_names,
    algorithm_options,
    build_algorithm,
    env_names,
    make_algorithm,
    make_env,
    make_raw_env,
    register_algorithm,
    register_env,
    register_env_family,
)
from marl.types import EnvSpec, Observation, Transition
from marl.wrappers import AgentIDWrapper, EpisodeMetricsWrapper, VectorEnv

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
