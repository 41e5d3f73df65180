"""Return targets computed by reverse ``lax.scan`` over a time-major sequence."""

from __future__ import annotations

import jax

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
