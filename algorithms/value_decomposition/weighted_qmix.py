"""Weighted QMIX (Rashid et al. 2020): CW-QMIX and OW-QMIX.

QMIX trained towards an unrestricted joint value ``Q*``: ``Q*`` has its own GRU
agent network (``central``) and a feed-forward mixer, and gives the targets, the
target ``Q*`` at the next greedy joint action of QMIX's agents. Both ``Q*`` and
QMIX's ``Q_tot`` regress on them; QMIX's squared errors get weight 1 or ``alpha``
(:func:`weighted_qmix_weights`):

* OW-QMIX ("optimistic"): 1 where ``Q_tot`` underestimates the target;
* CW-QMIX ("centrally weighted"): 1 where the taken joint action is QMIX's greedy
  one or the target beats ``Q*`` at the greedy joint action.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from marl.algorithms.value_decomposition.learner import (
    AGENT,
    LearnerBatch,
    StepValues,
    ValueDecomposition,
    exploration_of,
    init_mixer,
    mixer_value,
    steps,
)
from marl.algorithms.value_decomposition.mixing import QMIXOptions
from marl.mixers import FeedForwardMixer, QMixer
from marl.networks import RecurrentQNetwork
from marl.options import check_at_least_one, check_non_negative, check_unit_interval
from marl.types import Array, EnvSpec, PRNGKey

WEIGHTINGS = ("cw", "ow")


@dataclasses.dataclass
class WeightedQMIXOptions(QMIXOptions):
    """QMIX's options plus ``Q*``'s: ``alpha`` is the weight of the down-weighted
    joint actions; ``Q*`` has its own GRU agent network (``central_hidden_dim``)
    and a feed-forward mixer of width ``central_mixer_dim``. Defaults from Rashid
    et al. 2020 (alpha 0.1, 64, 256)."""

    alpha: float = 0.1
    central_hidden_dim: int = 64
    central_mixer_dim: int = 256
    central_loss_weight: float = 1.0

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_unit_interval(self, ("alpha",))
        check_at_least_one(self, ("central_hidden_dim", "central_mixer_dim"))
        check_non_negative(self, ("central_loss_weight",))


@dataclasses.dataclass
class CWQMIXOptions(WeightedQMIXOptions):
    name: str = "cw_qmix"


@dataclasses.dataclass
class OWQMIXOptions(WeightedQMIXOptions):
    name: str = "ow_qmix"


def weighted_qmix_weights(
    weighting: str,
    alpha: float,
    td_error: Array,
    is_greedy_action: Array,
    target: Array,
    greedy_central_value: Array,
) -> Array:
    """Weighted QMIX's weight of each sample's squared TD error: 1 or ``alpha``.

    OW-QMIX: 1 where ``Q_tot`` underestimates the target (``td_error = Q_tot -
    target < 0``). CW-QMIX: 1 where the taken joint action is the greedy one or
    the target beats ``Q*`` at the greedy joint action.
    """
    if weighting == "ow":
        full_weight = td_error < 0
    elif weighting == "cw":
        full_weight = is_greedy_action | (target > greedy_central_value)
    else:
        raise ValueError(f"weighting '{weighting}' is unknown; valid: {', '.join(WEIGHTINGS)}")
    return jnp.where(full_weight, 1.0, alpha)


class WeightedQMixObjective:
    """QMIX's weighted loss plus ``Q*``'s, ``weighting`` being "cw" or "ow"."""

    def __init__(self, options: WeightedQMIXOptions, weighting: str, env_spec: EnvSpec):
        self.options = options
        self.weighting = weighting
        self.mixer = QMixer(options.mixer_embed_dim, options.hypernet_dim)
        self.central_mixer = FeedForwardMixer(options.central_mixer_dim)
        self.networks = {
            "central": RecurrentQNetwork(env_spec.num_actions, options.central_hidden_dim)
        }

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        mixer_key, central_key = jax.random.split(key)
        return {
            "mixer": init_mixer(self.mixer, mixer_key, env_spec),
            "central_mixer": init_mixer(self.central_mixer, central_key, env_spec),
        }

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return mixer_value(self.mixer, params["mixer"], values.q[AGENT], values, joint_action)

    def central_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        """``Q*(s, joint_action)``: ``[..., 1]``."""
        return mixer_value(
            self.central_mixer, params["central_mixer"], values.q["central"], values, joint_action
        )

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        options = self.options
        taken = steps(batch.online, slice(None, -1))
        q_tot = self.joint_value(params, taken, batch.action[:-1])
        central_tot = self.central_value(params, taken, batch.action[:-1])
        next_central = self.central_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_central, options.td_lambda))
        td_error = q_tot - targets
        greedy_now = batch.greedy_action[:-1]
        weights = weighted_qmix_weights(
            self.weighting,
            options.alpha,
            td_error,
            jnp.all(batch.action[:-1] == greedy_now, axis=-1)[..., None],
            targets,
            self.central_value(target_params, steps(batch.target, slice(None, -1)), greedy_now),
        )
        qmix_loss = 0.5 * batch.mean(jax.lax.stop_gradient(weights) * td_error**2)
        central_loss = 0.5 * batch.mean((central_tot - targets) ** 2)
        loss = qmix_loss + options.central_loss_weight * central_loss
        return loss, {
            "loss": loss,
            "qmix_loss": qmix_loss,
            "central_loss": central_loss,
            "mean_weight": batch.mean(weights),
            "q_taken": batch.mean(q_tot),
            "target": batch.mean(targets),
        }


def _learner(
    options: WeightedQMIXOptions, weighting: str, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    objective = WeightedQMixObjective(options, weighting, env_spec)
    exploration = exploration_of(options, env_spec)
    return ValueDecomposition(env_spec, envs_per_device, options, objective, exploration)


def make_cw_qmix(
    options: CWQMIXOptions, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    """CW-QMIX: weight 1 at QMIX's greedy joint action or where the target beats ``Q*``."""
    return _learner(options, "cw", env_spec, envs_per_device)


def make_ow_qmix(
    options: OWQMIXOptions, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    """OW-QMIX: weight 1 where ``Q_tot`` underestimates the target."""
    return _learner(options, "ow", env_spec, envs_per_device)
