"""Return targets computed by reverse ``lax.scan`` over a time-major sequence."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from marl.types import Array


def td_lambda_targets(
    rewards: Array, discounts: Array, next_values: Array, td_lambda: float
) -> Array:
    """TD(lambda) targets ``G_t = r_t + d_t [(1 - lambda) V_{t+1} + lambda G_{t+1}]``.

    All inputs are time-major ``[T, ...]``: ``discounts[t]`` is ``gamma`` times the
    probability the episode goes on after step ``t`` (0 where it ended) and
    ``next_values[t]`` is the bootstrap value of the state after step ``t``. The
    recursion starts from ``G_T = V_T`` (the last bootstrap value), so the final
    target is the one-step target.
    """

    def backward(next_return: Array, step: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        reward, discount, next_value = step
        target = reward + discount * ((1.0 - td_lambda) * next_value + td_lambda * next_return)
        return target, target

    _, targets = jax.lax.scan(
        backward, next_values[-1], (rewards, discounts, next_values), reverse=True
    )
    return targets


def generalized_advantages(
    rewards: Array,
    discounts: Array,
    values: Array,
    bootstrap_value: Array,
    gae_lambda: float,
) -> tuple[Array, Array]:
    """GAE advantages and the lambda-returns they imply, by a reverse scan over time.

    ``rewards``, ``discounts`` and ``values`` are time-major ``[T, ...]``:
    ``discounts[t]`` is ``gamma`` where the episode goes on after step ``t`` and 0
    where it ended, and ``values[t]`` is the value of the observation acted on at
    step ``t``. ``bootstrap_value`` ``[...]`` is the value of the observation after
    the last step. With ``delta_t = r_t + d_t V_{t+1} - V_t`` the advantage is
    ``A_t = delta_t + d_t lambda A_{t+1}``; the returns are ``A_t + V_t``.
    """
    next_values = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)

    def backward(next_advantage: Array, step: tuple[Array, ...]) -> tuple[Array, Array]:
        reward, discount, value, next_value = step
        delta = reward + discount * next_value - value
        advantage = delta + discount * gae_lambda * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward,
        jnp.zeros_like(bootstrap_value),
        (rewards, discounts, values, next_values),
        reverse=True,
    )
    return advantages, advantages + values
