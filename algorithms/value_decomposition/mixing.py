"""IQL, VDN, QMIX and QPLEX: the agents' values mixed into ``Q_tot``.

Each method is the shared learner (``learner.py``) with a mixer from
:mod:`marl.mixers` trained on ``0.5 (Q_tot - y)^2``, where ``y`` is the TD(lambda)
target of the target mixer at the next (double-Q) greedy joint action:

* IQL: no mixing; every agent learns its own value of the team reward;
* VDN (Sunehag et al. 2018): ``Q_tot`` is the sum of the agents' values;
* QMIX (Rashid et al. 2018): a monotonic mixing network whose weights come from
  hypernetworks of the global state (embed 32, hypernet 64);
* QPLEX (Wang et al. 2021): the duplex dueling mixer with attention importance
  weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from marl.algorithms.value_decomposition.learner import (
    AGENT,
    LearnerBatch,
    StepValues,
    ValueDecomposition,
    ValueDecompositionOptions,
    exploration_of,
    init_mixer,
    mixer_value,
    steps,
)
from marl.mixers import IndependentMixer, QMixer, QPLEXMixer, VDNMixer
from marl.options import check_at_least_one
from marl.types import Array, EnvSpec, PRNGKey


@dataclasses.dataclass
class IQLOptions(ValueDecompositionOptions):
    """IQL: the shared learner's options, no mixer."""

    name: str = "iql"


@dataclasses.dataclass
class VDNOptions(ValueDecompositionOptions):
    """VDN: the shared learner's options; the mixer (a sum) has none."""

    name: str = "vdn"


@dataclasses.dataclass
class QMIXOptions(ValueDecompositionOptions):
    """QMIX: the shared learner's options plus the mixing network's widths."""

    name: str = "qmix"
    mixer_embed_dim: int = 32
    hypernet_dim: int = 64

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("mixer_embed_dim", "hypernet_dim"))


@dataclasses.dataclass
class QPLEXOptions(ValueDecompositionOptions):
    """QPLEX: ``hypernet_dim`` is the width of the ``w_i(s)``, ``v_i(s)`` MLPs;
    ``attention_heads`` and ``attention_dim`` shape the importance weights."""

    name: str = "qplex"
    hypernet_dim: int = 64
    attention_heads: int = 4
    attention_dim: int = 64

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("hypernet_dim", "attention_heads", "attention_dim"))


class MixerObjective:
    """``0.5 (Q_tot - y)^2`` with ``y`` from the target mixer."""

    def __init__(self, mixer: nn.Module, td_lambda: float):
        self.mixer = mixer
        self.td_lambda = td_lambda
        self.networks: dict[str, nn.Module] = {}

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        return {"mixer": init_mixer(self.mixer, key, env_spec)}

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return mixer_value(self.mixer, params["mixer"], values.q[AGENT], values, joint_action)

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        q_tot = self.joint_value(params, steps(batch.online, slice(None, -1)), batch.action[:-1])
        next_tot = self.joint_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_tot, self.td_lambda))
        td_error = q_tot - targets
        loss = 0.5 * batch.mean(td_error**2)
        return loss, {"loss": loss, "q_taken": batch.mean(q_tot), "target": batch.mean(targets)}


def _learner(
    options: ValueDecompositionOptions, env_spec: EnvSpec, envs_per_device: int, mixer: nn.Module
) -> ValueDecomposition:
    objective = MixerObjective(mixer, options.td_lambda)
    exploration = exploration_of(options, env_spec)
    return ValueDecomposition(env_spec, envs_per_device, options, objective, exploration)


def make_iql(options: IQLOptions, env_spec: EnvSpec, envs_per_device: int) -> ValueDecomposition:
    """IQL: independent Q-learners on the team reward."""
    return _learner(options, env_spec, envs_per_device, IndependentMixer())


def make_vdn(options: VDNOptions, env_spec: EnvSpec, envs_per_device: int) -> ValueDecomposition:
    """VDN: ``Q_tot`` is the sum of the agents' values."""
    return _learner(options, env_spec, envs_per_device, VDNMixer())


def make_qmix(options: QMIXOptions, env_spec: EnvSpec, envs_per_device: int) -> ValueDecomposition:
    """QMIX with pymarl2's tuned recipe."""
    mixer = QMixer(options.mixer_embed_dim, options.hypernet_dim)
    return _learner(options, env_spec, envs_per_device, mixer)


def make_qplex(
    options: QPLEXOptions, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    """QPLEX on the shared learner (Adam 1e-3, TD(lambda) 0.6)."""
    mixer = QPLEXMixer(options.hypernet_dim, options.attention_heads, options.attention_dim)
    return _learner(options, env_spec, envs_per_device, mixer)
