"""The PPO learner shared by IPPO, MAPPO, MAT and CMAT.

A learner here is a :class:`PPO` around a *policy model*: the model says how the
agents act and how the probabilities, entropies and values of a stored rollout
are recomputed; the learner does everything else, identically for all four, from
the building blocks of :mod:`marl.ppo`:

* GAE(lambda) by a reverse scan (:func:`marl.targets.generalized_advantages`),
  bootstrapped from the value of the observation after the rollout; an episode's
  last step is not bootstrapped, also when it ended by the time limit (the
  final observation of a truncated episode is replaced by the next episode's);
* value normalisation, its statistics pooled over devices;
* advantages normalised over the *valid* entries: an agent's step is valid when
  it had more than one action to choose from, and a team value's step always is;
  a step outside the rollout's ``mask`` (a composite learner's steps of another
  part) is never valid, for the policy or the value;
* the clipped surrogate per agent (the ratio is each agent's own), the clipped
  Huber value loss in normalised units, an entropy bonus;
* epochs and minibatches as ``lax.scan``; minibatches split the environments, so
  sequences stay whole for recurrent models; gradients ``pmean``'ed over devices.

Parameters can be partly frozen (``trainable``: a pytree of bools like the
params) and can start from given values (``initial_params``; a given array whose
shape differs from the fresh one is ignored), which is how CMAT's fine-tuning
mode continues from another run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.algorithm import AlgorithmOptions, count_env_steps
from marl.options import (
    OptionError,
    check_at_least_one,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from marl.ppo import (
    ValueNormState,
    pooled_mean_std,
    ppo_loss,
    valid_agent_steps,
    value_norm_init,
    value_norm_stats,
    value_norm_update,
)
from marl.targets import generalized_advantages
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition


@dataclasses.dataclass
class PPOOptions(AlgorithmOptions):
    """Options of the PPO learner; the defaults are MAPPO's SMAC recipe.

    ``num_minibatches`` splits the environments of one device and seed, so it
    must divide ``envs_per_device``. ``value_clip`` is the range of the value
    clipping in normalised units (MAPPO uses the policy's clip).
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

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("num_epochs", "num_minibatches"))
        check_positive(self, ("learning_rate", "adam_eps", "max_grad_norm", "huber_delta"))
        check_unit_interval(self, ("gamma", "gae_lambda", "value_norm_decay"))
        check_non_negative(self, ("clip_epsilon", "value_clip", "entropy_coef", "value_coef"))
        if envs_per_device is not None and envs_per_device % self.num_minibatches:
            raise OptionError(
                "num_minibatches",
                f"{self.num_minibatches} does not divide the {envs_per_device} envs of each "
                "device and seed (arch.num_envs / devices)",
            )


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
        envs_per_device: int,
        options: PPOOptions,
        model: PolicyModel,
        trainable: Any | None = None,
        initial_params: Any | None = None,
    ):
        if env_spec.num_objectives != 1:
            raise ValueError(
                f"PPO learners take one reward per agent; this env has {env_spec.num_objectives} "
                "objectives"
            )
        self.options = options
        self.env_spec = env_spec
        self.envs_per_device = envs_per_device
        self.model = model
        self.initial_params = initial_params
        optimizer = optax.chain(
            optax.clip_by_global_norm(options.max_grad_norm),
            optax.adam(options.learning_rate, eps=options.adam_eps),
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
        if not self.options.value_norm:
            return values
        mean, std = value_norm_stats(state.value_norm)
        return values * std + mean

    def _normalize(self, norm: ValueNormState, values: Array) -> Array:
        if not self.options.value_norm:
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
        options = self.options
        seq = rollout
        num_steps, num_envs = seq.action.shape[:2]
        env_steps = count_env_steps(state.env_steps, rollout, axis_name)

        # Targets, in the units of the rewards.
        team = self.model.team_value
        rewards = seq.reward[..., :1] if team else seq.reward
        discounts = options.gamma * (1.0 - seq.done.astype(jnp.float32))[..., None]
        values = self._denormalize(state, seq.extras.value)
        last_value = self._denormalize(
            state, self.model.value(state.params, bootstrap.obs, bootstrap.memory)
        )
        advantages, returns = generalized_advantages(
            rewards, discounts, values, last_value, options.gae_lambda
        )
        policy_mask = valid_agent_steps(seq.obs.action_mask)
        value_mask = jnp.ones(values.shape, bool) if team else policy_mask
        if seq.mask is not None:  # the steps a composite learner gave this part
            policy_mask = policy_mask & seq.mask[..., None]
            value_mask = value_mask & seq.mask[..., None]
        if options.normalize_advantages:
            mean, std = pooled_mean_std(advantages, value_mask, axis_name)
            advantages = (advantages - mean) / (std + 1e-5)
        value_norm = state.value_norm
        if options.value_norm:
            value_norm = value_norm_update(
                value_norm, returns, value_mask, options.value_norm_decay, axis_name
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
                clip_epsilon=options.clip_epsilon,
                value_clip=options.value_clip,
                huber_delta=options.huber_delta,
                value_coef=options.value_coef,
                entropy_coef=options.entropy_coef,
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

        num_minibatches = options.num_minibatches
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
            epoch, (state.params, state.opt_state), jax.random.split(key, options.num_epochs)
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


__all__ = ["PPO", "PPOExtras", "PPOOptions", "PPOState", "PolicyModel"]
