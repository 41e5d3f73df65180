"""Policy gradient: IPPO, MAPPO, MAT and CMAT on one PPO learner.

``learner.py`` holds the PPO learner and the :class:`PolicyModel` protocol (its
building blocks are :mod:`marl.ppo`); each method is a model: ``mappo.py`` (IPPO,
MAPPO), ``mat.py`` (MAT), ``cmat.py`` (CMAT).
"""

from marl.algorithms.policy_gradient.cmat import CMATModel, CMATOptions, make_cmat
from marl.algorithms.policy_gradient.learner import PPO, PolicyModel, PPOOptions, PPOState
from marl.algorithms.policy_gradient.mappo import (
    ActorCriticModel,
    ActorCriticOptions,
    IPPOOptions,
    MAPPOOptions,
    make_ippo,
    make_mappo,
)
from marl.algorithms.policy_gradient.mat import MATModel, MATOptions, make_mat

__all__ = [
    "PPO",
    "ActorCriticModel",
    "ActorCriticOptions",
    "CMATModel",
    "CMATOptions",
    "IPPOOptions",
    "MAPPOOptions",
    "MATModel",
    "MATOptions",
    "PPOOptions",
    "PPOState",
    "PolicyModel",
    "make_cmat",
    "make_ippo",
    "make_mappo",
    "make_mat",
]
