"""marl-lab: cooperative multi-agent reinforcement learning in JAX."""

from marl.algorithm import Algorithm, AlgorithmOptions, AlgorithmState
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

__all__ = [
    "AgentIDWrapper",
    "Algorithm",
    "AlgorithmOptions",
    "AlgorithmState",
    "EnvSpec",
    "EpisodeMetricsWrapper",
    "MultiAgentEnv",
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
