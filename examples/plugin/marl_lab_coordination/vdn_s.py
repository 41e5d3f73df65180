"""VDN-S: VDN plus a state-dependent bias, ``Q_tot = sum_i Q_i + V(s)``.

The QMIX paper's ablation (Rashid et al. 2018) between VDN and QMIX: the bias
lets the team value depend on the global state while staying a sum in the
agents' values. Built from marl-lab's shared value-decomposition learner; only
the mixer and the options are new. Importing this module registers ``vdn_s``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from marl.algorithms.value_decomposition import (
    MixerObjective,
    ValueDecomposition,
    ValueDecompositionOptions,
)
from marl.algorithms.value_decomposition.learner import exploration_of
from marl.networks import MLP
from marl.options import check_at_least_one
from marl.registry import register_algorithm
from marl.types import Array, EnvSpec


class StateBiasSumMixer(nn.Module):
    """``sum_i Q_i + V(s)`` with ``V`` an MLP of the global state."""

    hidden_dim: int = 32

    @nn.compact
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        del joint_action, max_agent_qs
        state_bias = MLP((self.hidden_dim, 1))(global_state)
        return agent_qs.sum(axis=-1, keepdims=True) + state_bias


@dataclasses.dataclass
class VDNSOptions(ValueDecompositionOptions):
    """The shared learner's options plus the width of the state-bias MLP."""

    name: str = "vdn_s"
    state_bias_dim: int = 32

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("state_bias_dim",))


def make_vdn_s(options: VDNSOptions, env_spec: EnvSpec, envs_per_device: int) -> ValueDecomposition:
    """VDN-S on marl-lab's recurrent, TD(lambda) value-decomposition learner."""
    objective = MixerObjective(StateBiasSumMixer(options.state_bias_dim), options.td_lambda)
    exploration = exploration_of(options, env_spec)
    return ValueDecomposition(env_spec, envs_per_device, options, objective, exploration)


register_algorithm("vdn_s", make_vdn_s, VDNSOptions)
