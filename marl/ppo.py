"""The PPO core shared by IPPO, MAPPO, MAT and CMAT.

A learner here is a :class:`PPO` around a *policy model*: the model says how the
agents act and how the probabilities, entropies and values of a stored rollout
are recomputed; the core does everything else, identically for all four:

* GAE(lambda) by a reverse scan (:func:`marl.targets.generalized_advantages`),
  bootstrapped from the value of the observation after the rollout; an episode's
  last step is not bootstrapped, also when it ended by the time limit (the
  final observation of a truncated episode is replaced by the next episode's);
* value normalisation (MAPPO's ``ValueNorm``: debiased running mean and mean
  square of the returns), its statistics pooled over devices so every device
  holds the same;
* advantages normalised over the *valid* entries: an agent's step is valid when
  it had more than one action to choose from (a dead SMAC unit has only no-op),
  and a team value's step always is;
* the clipped surrogate per agent (the ratio is each agent's own), the clipped
  Huber value loss in normalised units, an entropy bonus;
* epochs and minibatches as ``lax.scan``; minibatches split the environments, so
  sequences stay whole for recurrent models; gradients ``pmean``'ed over devices;
* masked categorical policies (:func:`masked_categorical`, distrax).

Parameters can be partly frozen (``trainable``: a pytree of bools like the
params) and can start from given values (``initial_params``; a given array whose
shape differs from the fresh one is ignored), which is how CMAT's fine-tuning
mode continues from another run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.options import (
    check_at_least_one,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from marl.targets import generalized_advantages
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition

MASKED_LOGIT = -1e9


# ------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Options of the PPO core; the defaults are MAPPO's SMAC recipe.

    ``num_minibatches`` splits the environments of one device and seed, so it
    must divide ``num_envs / num_devices``. ``value_clip`` is the range of the
    value clipping in normalised units (MAPPO uses the policy's clip).
    """

    learning_rate: float = 5e-4
    adam_eps: float = 1e-5
    max_grad_norm: float = 10.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_epsilon: float = 0.2
    value_clip: float = 0.2
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    huber_delta: float = 10.0
    value_norm: bool = True
    value_norm_decay: float = 0.99999
    normalize_advantages: bool = True
    num_epochs: int = 10
    num_minibatches: int = 1

    def check(self) -> None:
        """Raises ``ValueError`` naming the first option whose value is invalid."""
        check_at_least_one(self, ("num_epochs", "num_minibatches"))
        check_positive(self, ("learning_rate", "adam_eps", "max_grad_norm", "huber_delta"))
        check_unit_interval(self, ("gamma", "gae_lambda", "value_norm_decay"))
        check_non_negative(self, ("clip_epsilon", "value_clip", "entropy_coef", "value_coef"))


# --------------------------------------------------------------- policies
def masked_categorical(logits: Array, action_mask: Array) -> distrax.Categorical:
    """A categorical over the available actions only (unavailable ones get ~0 mass)."""
    return distrax.Categorical(logits=jnp.where(action_mask, logits, MASKED_LOGIT))


def valid_agent_steps(action_mask: Array) -> Array:
    """``[..., n]`` True where an agent had more than one action to choose from."""
    return action_mask.sum(-1) > 1


class PolicyModel(Protocol):
    """What a PPO learner's model provides; values are in normalised units.

    ``team_value`` says whether the model predicts one value for the team
    (``V = 1``) or one per agent (``V = num_agents``). Models reset their memory
    where ``obs.step_count == 0``.
    """

    team_value: bool

    def init(self, key: PRNGKey) -> Any: ...

    def initial_memory(self, batch_size: int) -> Any: ...

    def act(
        self, params: Any, obs: Observation, memory: Any, key: PRNGKey, greedy: bool
    ) -> tuple[Array, Array, Array, Any]:
        """For a batch ``[B]``: actions ``[B, n]``, their log-probabilities ``[B, n]``,
        values ``[B, V]`` and the next memory."""
        ...

    def value(self, params: Any, obs: Observation, memory: Any) -> Array:
        """Values ``[B, V]`` of a batch of observations."""
        ...

    def evaluate(
        self, params: Any, obs: Observation, actions: Array, memory: Any
    ) -> tuple[Array, Array, Array]:
        """For a time-major sequence ``[T, B]`` starting from ``memory`` ``[B]``: the
        log-probabilities ``[T, B, n]`` of ``actions``, the policy's entropies
        ``[T, B, n]`` and the values ``[T, B, V]``."""
        ...


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
    config: PPOConfig,
) -> tuple[Array, dict[str, Array]]:
    """PPO's loss: per-agent clipped surrogate, clipped Huber value loss, entropy bonus.

    Policy terms are ``[T, B, n]`` averaged over ``policy_mask``; value terms are
    ``[T, B, V]`` (normalised units) averaged over ``value_mask``; ``advantages``
    broadcast against the policy terms.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_epsilon, 1.0 + config.clip_epsilon)
    surrogate = jnp.minimum(ratio * advantages, clipped_ratio * advantages)
    policy_loss = -masked_mean(surrogate, policy_mask)
    mean_entropy = masked_mean(entropy, policy_mask)

    clipped_values = old_values + jnp.clip(
        values - old_values, -config.value_clip, config.value_clip
    )
    error = optax.huber_loss(values, targets, delta=config.huber_delta)
    clipped_error = optax.huber_loss(clipped_values, targets, delta=config.huber_delta)
    value_loss = masked_mean(jnp.maximum(error, clipped_error), value_mask)

    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * mean_entropy
    return loss, {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": mean_entropy,
        "approx_kl": masked_mean(old_log_prob - log_prob, policy_mask),
        "clip_fraction": masked_mean(
            (jnp.abs(ratio - 1.0) > config.clip_epsilon).astype(jnp.float32), policy_mask
        ),
    }


# --------------------------------------------------------------- learner
@struct.dataclass
class PPOState:
    params: Any
    opt_state: Any
    value_norm: ValueNormState
    env_steps: Array  # env-steps collected so far, over all devices
    updates: Array


class PPOExtras(NamedTuple):
    """What acting keeps for the update: the step's log-probabilities ``[n]``,
    normalised values ``[V]`` and the memory the step was taken with."""

    log_prob: Array
    value: Array
    memory: Any


class PPO:
    """The on-policy learner: a :class:`PolicyModel` trained with PPO.

    Implements the algorithm contract (``init``, ``initial_memory``, ``act``,
    ``update``) for the training loop.
    """

    def __init__(
        self,
        env_spec: EnvSpec,
        num_envs: int,
        config: PPOConfig,
        model: PolicyModel,
        trainable: Any | None = None,
        initial_params: Any | None = None,
    ):
        config.check()
        if env_spec.num_objectives != 1:
            raise ValueError(
                f"PPO learners take one reward per agent; this env has {env_spec.num_objectives} "
                "objectives"
            )
        if num_envs % config.num_minibatches:
            raise ValueError(
                f"num_minibatches={config.num_minibatches} must divide the {num_envs} "
                "environments of one device and seed"
            )
        self.config = config
        self.env_spec = env_spec
        self.num_envs = num_envs
        self.model = model
        self.initial_params = initial_params
        optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.adam(config.learning_rate, eps=config.adam_eps),
        )
        if trainable is not None:
            labels = jax.tree_util.tree_map(lambda train: "train" if train else "freeze", trainable)
            optimizer = optax.multi_transform(
                {"train": optimizer, "freeze": optax.set_to_zero()}, labels
            )
        self.optimizer = optimizer

    def init(self, key: PRNGKey) -> PPOState:
        params = self.model.init(key)
        if self.initial_params is not None:
            # A given array of another shape (a layer sized by another task) stays fresh.
            params = jax.tree_util.tree_map(
                lambda fresh, given: jnp.asarray(given) if given.shape == fresh.shape else fresh,
                params,
                self.initial_params,
            )
        return PPOState(
            params=params,
            opt_state=self.optimizer.init(params),
            value_norm=value_norm_init(),
            env_steps=jnp.int32(0),
            updates=jnp.int32(0),
        )

    def initial_memory(self, batch_size: int) -> Any:
        return self.model.initial_memory(batch_size)

    def act(
        self, state: PPOState, obs: Observation, memory: Any, key: PRNGKey, explore: bool
    ) -> tuple[Array, Any, PPOExtras]:
        """Sampled (``explore``) or most likely joint actions for a batch ``[B]``."""
        actions, log_prob, value, next_memory = self.model.act(
            state.params, obs, memory, key, not explore
        )
        return actions, next_memory, PPOExtras(log_prob, value, memory)

    def _denormalize(self, state: PPOState, values: Array) -> Array:
        if not self.config.value_norm:
            return values
        mean, std = value_norm_stats(state.value_norm)
        return values * std + mean

    def _normalize(self, norm: ValueNormState, values: Array) -> Array:
        if not self.config.value_norm:
            return values
        mean, std = value_norm_stats(norm)
        return (values - mean) / std

    def update(
        self,
        state: PPOState,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None = None,
        bootstrap: Bootstrap | None = None,
    ) -> tuple[PPOState, dict]:
        """PPO's epochs over a time-major rollout ``[T, B]`` that ended at ``bootstrap``."""
        if bootstrap is None:
            raise ValueError("PPO.update needs the bootstrap observation after the rollout")
        cfg = self.config
        num_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
        seq = rollout
        num_steps, num_envs = seq.action.shape[:2]
        env_steps = state.env_steps + num_steps * num_envs * num_devices

        # Targets, in the units of the rewards.
        team = self.model.team_value
        rewards = seq.reward[..., :1] if team else seq.reward
        discounts = cfg.gamma * (1.0 - seq.done.astype(jnp.float32))[..., None]
        values = self._denormalize(state, seq.extras.value)
        last_value = self._denormalize(
            state, self.model.value(state.params, bootstrap.obs, bootstrap.memory)
        )
        advantages, returns = generalized_advantages(
            rewards, discounts, values, last_value, cfg.gae_lambda
        )
        policy_mask = valid_agent_steps(seq.obs.action_mask)
        value_mask = jnp.ones(values.shape, bool) if team else policy_mask
        if cfg.normalize_advantages:
            mean, std = pooled_mean_std(advantages, value_mask, axis_name)
            advantages = (advantages - mean) / (std + 1e-5)
        value_norm = state.value_norm
        if cfg.value_norm:
            value_norm = value_norm_update(
                value_norm, returns, value_mask, cfg.value_norm_decay, axis_name
            )
        data = {
            "obs": seq.obs,
            "action": seq.action,
            "old_log_prob": seq.extras.log_prob,
            "old_value": seq.extras.value,
            "advantages": advantages,
            "targets": self._normalize(value_norm, returns),
            "policy_mask": policy_mask,
            "value_mask": value_mask,
        }
        start_memory = jax.tree_util.tree_map(lambda x: x[0], seq.extras.memory)

        def loss_fn(params: Any, batch: dict, memory: Any) -> tuple[Array, dict]:
            log_prob, entropy, new_values = self.model.evaluate(
                params, batch["obs"], batch["action"], memory
            )
            return ppo_loss(
                log_prob,
                batch["old_log_prob"],
                batch["advantages"],
                entropy,
                new_values,
                batch["old_value"],
                batch["targets"],
                batch["policy_mask"],
                batch["value_mask"],
                cfg,
            )

        def minibatch_step(carry: tuple[Any, Any], minibatch: tuple[dict, Any]):
            params, opt_state = carry
            batch, memory = minibatch
            grads, metrics = jax.grad(loss_fn, has_aux=True)(params, batch, memory)
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
                metrics = jax.lax.pmean(metrics, axis_name)
            metrics["grad_norm"] = optax.tree.norm(grads)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        num_minibatches = cfg.num_minibatches
        envs_per_minibatch = num_envs // num_minibatches

        def epoch(carry: tuple[Any, Any], epoch_key: PRNGKey):
            order = jax.random.permutation(epoch_key, num_envs)

            def split_time_major(x: Array) -> Array:  # [T, B, ...] -> [M, T, B/M, ...]
                x = x[:, order].reshape(
                    (num_steps, num_minibatches, envs_per_minibatch) + x.shape[2:]
                )
                return jnp.swapaxes(x, 0, 1)

            def split_batch(x: Array) -> Array:  # [B, ...] -> [M, B/M, ...]
                return x[order].reshape((num_minibatches, envs_per_minibatch) + x.shape[1:])

            minibatches = (
                jax.tree_util.tree_map(split_time_major, data),
                jax.tree_util.tree_map(split_batch, start_memory),
            )
            return jax.lax.scan(minibatch_step, carry, minibatches)

        (params, opt_state), metrics = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, cfg.num_epochs)
        )
        metrics = jax.tree_util.tree_map(lambda m: m.mean(), metrics)
        value_mean, value_std = value_norm_stats(value_norm)
        metrics.update(value_norm_mean=value_mean, value_norm_std=value_std)
        new_state = PPOState(
            params=params,
            opt_state=opt_state,
            value_norm=value_norm,
            env_steps=env_steps,
            updates=state.updates + 1,
        )
        return new_state, metrics


__all__ = [
    "PPO",
    "PPOConfig",
    "PPOExtras",
    "PPOState",
    "PolicyModel",
    "ValueNormState",
    "masked_categorical",
    "masked_mean",
    "ppo_loss",
    "valid_agent_steps",
    "value_norm_stats",
    "value_norm_update",
]
