"""Building blocks of PPO learners: masked policies, value normalisation, the loss.

The PPO learner itself (epochs, minibatches, GAE targets) lives with the
learners built on it, in :mod:`marl.algorithms.policy_gradient`.

* :func:`masked_categorical`: a categorical over the available actions;
* :func:`valid_agent_steps`: an agent's step counts when it had more than one
  action to choose from (a dead SMAC unit has only no-op);
* value normalisation, MAPPO's ``ValueNorm``: debiased running mean and mean
  square of the returns, pooled over devices so every device holds the same;
* :func:`ppo_loss`: the per-agent clipped surrogate, the clipped Huber value loss
  and an entropy bonus.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.types import Array

MASKED_LOGIT = -1e9


class MaskedCategorical(NamedTuple):
    """A categorical policy over ``[..., num_actions]``, held as normalised log-probabilities.

    Our own few lines rather than a distributions library: this is all PPO needs,
    and distrax pulled in tensorflow-probability, whose releases break on new jax.
    """

    log_probs: Array

    def mode(self) -> Array:
        return jnp.argmax(self.log_probs, axis=-1)

    def sample(self, seed: Array) -> Array:
        # A leading axis of one, as distrax drew it, so that runs keep their numbers.
        shape = (1, *self.log_probs.shape[:-1])
        return jax.random.categorical(seed, self.log_probs, axis=-1, shape=shape)[0]

    def log_prob(self, actions: Array) -> Array:
        return jnp.take_along_axis(self.log_probs, actions[..., None].astype(jnp.int32), -1)[..., 0]

    def entropy(self) -> Array:
        # A masked action's probability underflows to exactly 0, so its term is 0.
        return -jnp.sum(jnp.exp(self.log_probs) * self.log_probs, axis=-1)


def masked_categorical(logits: Array, action_mask: Array) -> MaskedCategorical:
    """A categorical over the available actions only (unavailable ones get ~0 mass)."""
    return MaskedCategorical(jax.nn.log_softmax(jnp.where(action_mask, logits, MASKED_LOGIT)))


def valid_agent_steps(action_mask: Array) -> Array:
    """``[..., n]`` True where an agent had more than one action to choose from."""
    return action_mask.sum(-1) > 1


# ------------------------------------------------------- value normaliser
@struct.dataclass
class ValueNormState:
    mean: Array
    mean_square: Array
    debias: Array


def value_norm_init() -> ValueNormState:
    return ValueNormState(jnp.float32(0.0), jnp.float32(0.0), jnp.float32(0.0))


def value_norm_stats(state: ValueNormState) -> tuple[Array, Array]:
    """The debiased mean and standard deviation (variance floored at 1e-2)."""
    debias = jnp.maximum(state.debias, 1e-5)
    mean = state.mean / debias
    variance = jnp.maximum(state.mean_square / debias - mean**2, 1e-2)
    return mean, jnp.sqrt(variance)


def value_norm_update(
    state: ValueNormState, values: Array, mask: Array, decay: float, axis_name: str | None
) -> ValueNormState:
    """Moves the statistics towards the masked batch's, pooled over ``axis_name``."""
    moments = jnp.stack([jnp.sum(mask), jnp.sum(values * mask), jnp.sum(values**2 * mask)]).astype(
        jnp.float32
    )
    if axis_name is not None:
        moments = jax.lax.psum(moments, axis_name)
    count = jnp.maximum(moments[0], 1.0)
    return ValueNormState(
        mean=decay * state.mean + (1 - decay) * moments[1] / count,
        mean_square=decay * state.mean_square + (1 - decay) * moments[2] / count,
        debias=decay * state.debias + (1 - decay),
    )


def masked_mean(values: Array, mask: Array) -> Array:
    mask = jnp.broadcast_to(mask, values.shape).astype(values.dtype)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def pooled_mean_std(values: Array, mask: Array, axis_name: str | None) -> tuple[Array, Array]:
    """Mean and standard deviation of the masked entries, pooled over ``axis_name``."""
    mask = jnp.broadcast_to(mask, values.shape).astype(jnp.float32)
    moments = jnp.stack([mask.sum(), (values * mask).sum(), (values**2 * mask).sum()])
    if axis_name is not None:
        moments = jax.lax.psum(moments, axis_name)
    count = jnp.maximum(moments[0], 1.0)
    mean = moments[1] / count
    return mean, jnp.sqrt(jnp.maximum(moments[2] / count - mean**2, 0.0))


# ------------------------------------------------------------------ loss
def ppo_loss(
    log_prob: Array,
    old_log_prob: Array,
    advantages: Array,
    entropy: Array,
    values: Array,
    old_values: Array,
    targets: Array,
    policy_mask: Array,
    value_mask: Array,
    *,
    clip_epsilon: float,
    value_clip: float,
    huber_delta: float,
    value_coef: float,
    entropy_coef: float,
) -> tuple[Array, dict[str, Array]]:
    """PPO's loss: per-agent clipped surrogate, clipped Huber value loss, entropy bonus.

    Policy terms are ``[T, B, n]`` averaged over ``policy_mask``; value terms are
    ``[T, B, V]`` (normalised units) averaged over ``value_mask``; ``advantages``
    broadcast against the policy terms.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    surrogate = jnp.minimum(ratio * advantages, clipped_ratio * advantages)
    policy_loss = -masked_mean(surrogate, policy_mask)
    mean_entropy = masked_mean(entropy, policy_mask)

    clipped_values = old_values + jnp.clip(values - old_values, -value_clip, value_clip)
    error = optax.huber_loss(values, targets, delta=huber_delta)
    clipped_error = optax.huber_loss(clipped_values, targets, delta=huber_delta)
    value_loss = masked_mean(jnp.maximum(error, clipped_error), value_mask)

    loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
    return loss, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": mean_entropy,
        "approx_kl": masked_mean(old_log_prob - log_prob, policy_mask),
        "clip_fraction": masked_mean(
            (jnp.abs(ratio - 1.0) > clip_epsilon).astype(jnp.float32), policy_mask
        ),
    }


__all__ = [
    "MaskedCategorical",
    "ValueNormState",
    "masked_categorical",
    "masked_mean",
    "pooled_mean_std",
    "ppo_loss",
    "valid_agent_steps",
    "value_norm_init",
    "value_norm_stats",
    "value_norm_update",
]
