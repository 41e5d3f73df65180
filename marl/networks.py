"""Network building blocks shared by the learners (flax linen throughout)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from marl.types import Array


class MLP(nn.Module):
    """Dense layers with an activation between them; the last layer is linear."""

    layer_sizes: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act = getattr(nn, self.activation)
        for i, size in enumerate(self.layer_sizes):
            x = nn.Dense(size)(x)
            if i < len(self.layer_sizes) - 1:
                x = act(x)
        return x


class ResettingGRU(nn.Module):
    """A GRU cell unrolled over the leading time axis with ``lax.scan``.

    ``resets[t]`` zeroes the hidden state before step ``t`` is processed, which is
    how episode starts inside a stored sequence (or a rollout) cut the memory.
    """

    hidden_dim: int

    @functools.partial(
        nn.scan,
        variable_broadcast="params",
        split_rngs={"params": False},
        in_axes=0,
        out_axes=0,
    )
    @nn.compact
    def __call__(self, hidden: Array, step_inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        inputs, resets = step_inputs
        hidden = jnp.where(resets[..., None], jnp.zeros_like(hidden), hidden)
        hidden, output = nn.GRUCell(self.hidden_dim)(hidden, inputs)
        return hidden, output


class RecurrentQNetwork(nn.Module):
    """pymarl's RNN agent: ``Linear -> ReLU -> GRU -> Linear(num_actions)``.

    Called on ``inputs [T, N, F]`` and ``resets [T, N]`` with ``hidden [N, H]``;
    returns the last hidden state, the action values ``[T, N, num_actions]`` and
    the hidden state after every step ``[T, N, H]`` (QTRAN's joint network reads
    it). One network is shared by all agents: ``N`` is batch times agents.
    """

    num_actions: int
    hidden_dim: int = 64

    @nn.compact
    def __call__(self, hidden: Array, inputs: Array, resets: Array) -> tuple[Array, Array, Array]:
        x = nn.relu(nn.Dense(self.hidden_dim)(inputs))
        hidden, step_hidden = ResettingGRU(self.hidden_dim)(hidden, (x, resets))
        return hidden, nn.Dense(self.num_actions)(step_hidden), step_hidden


class ActorCriticBody(nn.Module):
    """MAPPO's actor or critic: ``LayerNorm -> (Dense, ReLU) x num_layers [-> GRU] -> Dense``.

    Called on time-major ``inputs [T, N, F]`` with ``resets [T, N]`` and ``hidden
    [N, H]``; returns the last hidden state (``hidden`` unchanged when not
    recurrent) and the outputs ``[T, N, output_dim]``. Orthogonal initialisation,
    gain ``sqrt(2)`` inside and ``output_gain`` on the output layer (0.01 for a
    policy, 1 for a value).
    """

    output_dim: int
    hidden_dim: int = 64
    num_layers: int = 2
    recurrent: bool = False
    output_gain: float = 1.0

    @nn.compact
    def __call__(self, hidden: Array, inputs: Array, resets: Array) -> tuple[Array, Array]:
        x = nn.LayerNorm()(inputs)
        for _ in range(self.num_layers):
            x = nn.relu(
                nn.Dense(self.hidden_dim, kernel_init=nn.initializers.orthogonal(2**0.5))(x)
            )
        if self.recurrent:
            hidden, x = ResettingGRU(self.hidden_dim)(hidden, (x, resets))
            x = nn.LayerNorm()(x)
        output = nn.Dense(
            self.output_dim, kernel_init=nn.initializers.orthogonal(self.output_gain)
        )(x)
        return hidden, output
