"""MO-MIX (Hu et al., TPAMI 2023): multi-objective value decomposition, our reconstruction.

The paper's method text and code are not public; what is known and what we chose is
in ``docs/algorithms/momix.md``. In short, on the shared learner (``learner.py``):

* the agents see the episode's preference ``w`` (input ``[obs, last action, id, w]``)
  and give a value per action and objective; they act greedily on ``w . Q_i`` over
  their available actions;
* the parallel mixer (:class:`marl.mixers.ParallelQMixer`) keeps one monotonic QMIX
  mixer per objective, whose hypernetworks read ``[s, w]``, so ``Q_tot`` is a vector;
* the loss is a vector double-Q TD(lambda) loss, the mean over objectives of
  ``0.5 (Q_tot_j - y_j)^2``, plus optionally (``scalarised_loss_weight``) a scalarised
  term: a monotonic QMIX mixer over the agents' utilities ``w . Q_i`` (hypernetworks
  over ``[s, w]``) fitted to ``w . y``. The per-objective mixers only order each
  objective's agent values, so ``argmax w . Q_i`` need not be the greedy joint action
  of ``w . Q_tot``; the scalarised term ties the agents' utilities to it as QMIX does;
* each training episode plays one preference of a simplex grid, drawn by the
  exploration guide when it starts (:mod:`marl.preferences`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from marl.algorithms.value_decomposition.learner import (
    AGENT,
    LearnerBatch,
    StepValues,
    ValueDecomposition,
    ValueDecompositionOptions,
    exploration_of,
    steps,
)
from marl.env import require_vector_reward
from marl.mixers import ParallelQMixer, QMixer
from marl.options import check_at_least_one, check_choice, check_non_negative, check_unit_interval
from marl.pareto import simplex_grid
from marl.preferences import SAMPLING, PreferenceGuide
from marl.types import Array, EnvSpec, PRNGKey


@dataclasses.dataclass
class MOMIXOptions(ValueDecompositionOptions):
    """MO-MIX: the shared learner's options, the parallel mixer's widths and the
    preferences'.

    ``preference_divisions``: training preferences are the simplex grid of step
    ``1 / preference_divisions`` (11 preferences for two objectives at 10).
    ``preference_sampling``: ``guided`` (the exploration guide) or ``uniform``.
    ``guide_uniform_share``: the share of the guide's draws that stay uniform;
    ``guide_rate``: the weight of new episodes in its running means.
    ``scalarised_loss_weight``: the weight of the scalarised TD term (0: off).
    ``eval_preference_divisions``: evaluation plays every preference of the simplex
    grid of step ``1 / eval_preference_divisions`` and reports their front.
    """

    name: str = "momix"
    multi_objective: ClassVar[bool] = True
    mixer_embed_dim: int = 32
    hypernet_dim: int = 64
    preference_divisions: int = 10
    preference_sampling: str = "guided"
    guide_uniform_share: float = 0.25
    guide_rate: float = 0.05
    scalarised_loss_weight: float = 0.0
    eval_preference_divisions: int = 10

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(
            self,
            (
                "mixer_embed_dim",
                "hypernet_dim",
                "preference_divisions",
                "eval_preference_divisions",
            ),
        )
        check_choice(self, "preference_sampling", SAMPLING)
        check_unit_interval(self, ("guide_uniform_share", "guide_rate"))
        check_non_negative(self, ("scalarised_loss_weight",))


def chosen_vector_values(q: Array, action: Array) -> Array:
    """``q [..., n, A, m]`` at ``action [..., n]``: ``[..., n, m]``."""
    return jnp.take_along_axis(q, action[..., None, None], axis=-2)[..., 0, :]


class MOMixObjective:
    """The parallel mixer's vector TD(lambda) loss (see the module's docstring)."""

    def __init__(
        self,
        mixer: ParallelQMixer,
        scalar_mixer: QMixer | None,
        guide: PreferenceGuide,
        td_lambda: float,
        scalarised_loss_weight: float = 0.0,
    ):
        self.mixer = mixer
        self.scalar_mixer = scalar_mixer
        self.guide = guide
        self.td_lambda = td_lambda
        self.scalarised_loss_weight = scalarised_loss_weight
        self.networks: dict = {}

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        objectives = self.guide.num_objectives
        conditioning = jnp.zeros((env_spec.state_dim + objectives,))
        mixer_key, scalar_key = jax.random.split(key)
        params = {
            "mixer": self.mixer.init(
                mixer_key, jnp.zeros((env_spec.num_agents, objectives)), conditioning
            )
        }
        if self.scalar_mixer is not None:
            params["scalar_mixer"] = self.scalar_mixer.init(
                scalar_key, jnp.zeros((env_spec.num_agents,)), conditioning
            )
        return params

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        """``Q_tot [..., num_objectives]`` of ``joint_action`` under the step's preference."""
        agent_qs = chosen_vector_values(values.q[AGENT], joint_action)
        conditioning = jnp.concatenate([values.global_state, values.preference], axis=-1)
        return self.mixer.apply(params["mixer"], agent_qs, conditioning)

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        taken = steps(batch.online, slice(None, -1))
        q_tot = self.joint_value(params, taken, batch.action[:-1])
        next_tot = self.joint_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_tot, self.td_lambda))
        td_error = q_tot - targets
        vector_loss = 0.5 * batch.mean(td_error**2)
        preference = taken.preference
        metrics = {
            "vector_loss": vector_loss,
            "q_taken": batch.mean(jnp.sum(preference * q_tot, axis=-1)),
            "target": batch.mean(jnp.sum(preference * targets, axis=-1)),
        }
        if self.scalar_mixer is None:
            return vector_loss, {"loss": vector_loss, **metrics}
        # The agents act on w . Q_i; a monotonic mix of those utilities fitted to w . y
        # keeps their greedy choices consistent with the scalarised joint value (the
        # per-objective mixers alone only order each objective's values).
        utilities = jnp.sum(
            preference[..., None, :] * chosen_vector_values(taken.q[AGENT], batch.action[:-1]),
            axis=-1,
        )
        conditioning = jnp.concatenate([taken.global_state, preference], axis=-1)
        scalar_q = self.scalar_mixer.apply(params["scalar_mixer"], utilities, conditioning)
        scalarised_error = scalar_q[..., 0] - jnp.sum(preference * targets, axis=-1)
        scalarised_loss = 0.5 * batch.mean(scalarised_error**2)
        loss = vector_loss + self.scalarised_loss_weight * scalarised_loss
        return loss, {"loss": loss, "scalarised_loss": scalarised_loss, **metrics}


def make_momix(
    options: MOMIXOptions, env_spec: EnvSpec, envs_per_device: int
) -> ValueDecomposition:
    """MO-MIX on the shared learner, for an env with a vector reward."""
    require_vector_reward(env_spec, "momix")
    guide = PreferenceGuide(
        env_spec.num_objectives,
        options.preference_divisions,
        options.preference_sampling,
        options.guide_uniform_share,
        options.guide_rate,
    )
    mixer = ParallelQMixer(env_spec.num_objectives, options.mixer_embed_dim, options.hypernet_dim)
    scalar_mixer = None
    if options.scalarised_loss_weight > 0:
        scalar_mixer = QMixer(options.mixer_embed_dim, options.hypernet_dim)
    objective = MOMixObjective(
        mixer, scalar_mixer, guide, options.td_lambda, options.scalarised_loss_weight
    )
    exploration = exploration_of(options, env_spec)
    learner = ValueDecomposition(env_spec, envs_per_device, options, objective, exploration)
    learner.evaluation_preferences = simplex_grid(
        env_spec.num_objectives, options.eval_preference_divisions
    )
    return learner
