"""QTRAN-base (Son et al. 2019): ``L_td + w_opt L_opt + w_nopt L_nopt``.

A joint network gives ``Q_jt`` and ``V`` from the global state, the agents' hidden
states and the joint action. ``L_td`` fits ``Q_jt`` to TD targets from the target
``Q_jt`` at the next greedy joint action. With ``Q'(s, u) = sum_i Q_i(u_i) +
V(s)``, ``L_opt`` makes ``Q'`` equal ``Q_jt`` at the greedy joint action and
``L_nopt`` keeps ``Q'`` from falling below ``Q_jt`` elsewhere; ``Q_jt`` is held
fixed in both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from marl.algorithms.value_decomposition.learner import (
    AGENT,
    LearnerBatch,
    StepValues,
    ValueDecomposition,
    ValueDecompositionOptions,
    chosen_values,
    exploration_of,
    greedy_values,
    steps,
)
from marl.mixers import QTranJointNetwork
from marl.options import check_at_least_one, check_non_negative
from marl.types import Array, EnvSpec, PRNGKey


@dataclasses.dataclass
class QTRANOptions(ValueDecompositionOptions):
    """QTRAN-base: ``joint_embed_dim`` is the width of ``Q_jt`` and ``V``; the loss is
    ``L_td + opt_loss_weight * L_opt + nopt_loss_weight * L_nopt`` (paper: 1, 0.1)."""

    name: str = "qtran"
    joint_embed_dim: int = 64
    opt_loss_weight: float = 1.0
    nopt_loss_weight: float = 0.1

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("joint_embed_dim",))
        check_non_negative(self, ("opt_loss_weight", "nopt_loss_weight"))


class QTranObjective:
    """QTRAN-base's three losses over the joint network."""

    def __init__(self, options: QTRANOptions):
        self.options = options
        self.joint = QTranJointNetwork(options.joint_embed_dim)
        self.networks: dict[str, nn.Module] = {}

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        num_agents, num_actions = env_spec.num_agents, env_spec.num_actions
        params = self.joint.init(
            key,
            jnp.zeros((env_spec.state_dim,)),
            jnp.zeros((num_agents, self.options.hidden_dim)),
            jnp.zeros((num_agents, num_actions)),
        )
        return {"joint": params}

    def joint_and_state_value(
        self, params: Any, values: StepValues, joint_action: Array
    ) -> tuple[Array, Array]:
        """``Q_jt(s, joint_action)`` and ``V(s)``, each ``[..., 1]``."""
        num_actions = values.q[AGENT].shape[-1]
        return self.joint.apply(
            params["joint"],
            values.global_state,
            values.hidden[AGENT],
            jax.nn.one_hot(joint_action, num_actions),
        )

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return self.joint_and_state_value(params, values, joint_action)[0]

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        options = self.options
        taken = steps(batch.online, slice(None, -1))
        joint_q, state_value = self.joint_and_state_value(params, taken, batch.action[:-1])
        next_joint = self.joint_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_joint, options.td_lambda))
        td_loss = 0.5 * batch.mean((joint_q - targets) ** 2)

        agent_q = taken.q[AGENT]
        greedy_joint = self.joint_value(params, taken, batch.greedy_action[:-1])
        greedy_sum = greedy_values(agent_q, taken.action_mask).sum(-1, keepdims=True)
        opt_error = greedy_sum + state_value - jax.lax.stop_gradient(greedy_joint)
        chosen_sum = chosen_values(agent_q, batch.action[:-1]).sum(-1, keepdims=True)
        nopt_error = jnp.minimum(chosen_sum + state_value - jax.lax.stop_gradient(joint_q), 0.0)
        opt_loss = 0.5 * batch.mean(opt_error**2)
        nopt_loss = 0.5 * batch.mean(nopt_error**2)
        loss = td_loss + options.opt_loss_weight * opt_loss + options.nopt_loss_weight * nopt_loss
        return loss, {
            "loss": loss,
            "td_loss": td_loss,
            "opt_loss": opt_loss,
            "nopt_loss": nopt_loss,
            "q_taken": batch.mean(joint_q),
            "target": batch.mean(targets),
        }


def make_qtran(
    options: QTRANOptions, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    """QTRAN-base on the shared learner."""
    exploration = exploration_of(options, env_spec)
    return ValueDecomposition(
        env_spec, envs_per_device, options, QTranObjective(options), exploration
    )
