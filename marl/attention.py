"""Transformer pieces over the agent axis, shared by MAT and CMAT.

Everything works on ``[..., n, D]`` (agents, or latent tokens, on axis -2). Blocks
are post-LayerNorm as in MAT's code, linear layers orthogonally initialised
(gain ``sqrt(2)`` before an activation, 0.01 elsewhere, as in MAT).

* :class:`AgentEncoder`: ``LN -> Dense -> GELU -> LN`` over each agent's
  observation, then :class:`EncoderBlock` s (self-attention and MLP). It has no
  position or id information of its own, so it is permutation-equivariant.
* :class:`DecoderBlock`: causal self-attention, then attention between the stream
  and the encoder output, then MLP. ``queries_from="encoder"`` is MAT's form
  (each agent's encoding attends to the decoder tokens up to its own position);
  ``"decoder"`` is the usual cross-attention (each token attends to every agent).
* :class:`Head`: ``[LN ->] Dense -> GELU -> LN -> Dense(out)``, the value and
  action heads.
* :func:`sinusoidal_positions`: the transformer's position encoding.
"""

from __future__ import annotations

import flax.linen as nn
import numpy as np

from marl.types import Array

ACTIVATION_GAIN = 2**0.5
OUTPUT_GAIN = 0.01


def _dense(features: int, gain: float, use_bias: bool = True) -> nn.Dense:
    return nn.Dense(features, use_bias=use_bias, kernel_init=nn.initializers.orthogonal(gain))


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    """``[length, dim]`` sine/cosine position encodings (Vaswani et al. 2017)."""
    positions = np.arange(length, dtype=np.float32)[:, None]
    rates = np.exp(-np.log(10_000.0) * np.arange(0, dim, 2, dtype=np.float32) / dim)
    encoding = np.zeros((length, dim), np.float32)
    encoding[:, 0::2] = np.sin(positions * rates)
    encoding[:, 1::2] = np.cos(positions * rates)[:, : dim // 2]
    return encoding


def causal_mask(length: int) -> np.ndarray:
    """``[length, length]`` True where query ``i`` may attend to key ``j <= i``."""
    return np.tril(np.ones((length, length), bool))


class Attention(nn.Module):
    """Multi-head dot-product attention of ``queries`` over ``keys_values``."""

    dim: int
    num_heads: int

    @nn.compact
    def __call__(self, queries: Array, keys_values: Array, mask: Array | None = None) -> Array:
        return nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.dim,
            out_features=self.dim,
            kernel_init=nn.initializers.orthogonal(OUTPUT_GAIN),
            deterministic=True,
        )(queries, keys_values, mask=mask)


class MLPBlock(nn.Module):
    dim: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = nn.gelu(_dense(self.dim, ACTIVATION_GAIN)(x))
        return _dense(self.dim, OUTPUT_GAIN)(x)


class EncoderBlock(nn.Module):
    """``x = LN(x + SelfAttention(x)); x = LN(x + MLP(x))``, no mask."""

    dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = nn.LayerNorm()(x + Attention(self.dim, self.num_heads)(x, x))
        return nn.LayerNorm()(x + MLPBlock(self.dim)(x))


class DecoderBlock(nn.Module):
    """Causal self-attention, attention with the encoder output, MLP (post-LN)."""

    dim: int
    num_heads: int
    queries_from: str = "decoder"  # "encoder" for MAT's form

    @nn.compact
    def __call__(self, x: Array, encoded: Array) -> Array:
        mask = causal_mask(x.shape[-2])
        x = nn.LayerNorm()(x + Attention(self.dim, self.num_heads)(x, x, mask))
        if self.queries_from == "encoder":
            x = nn.LayerNorm()(encoded + Attention(self.dim, self.num_heads)(encoded, x, mask))
        else:
            x = nn.LayerNorm()(x + Attention(self.dim, self.num_heads)(x, encoded))
        return nn.LayerNorm()(x + MLPBlock(self.dim)(x))


class Head(nn.Module):
    """``[LN ->] Dense(dim) -> GELU -> LN -> Dense(output_dim)``."""

    output_dim: int
    dim: int
    input_norm: bool = False
    output_gain: float = OUTPUT_GAIN

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.input_norm:
            x = nn.LayerNorm()(x)
        x = nn.LayerNorm()(nn.gelu(_dense(self.dim, ACTIVATION_GAIN)(x)))
        return _dense(self.output_dim, self.output_gain)(x)


class AgentEncoder(nn.Module):
    """Embeds each agent's observation and mixes the agents with encoder blocks."""

    dim: int = 64
    num_heads: int = 1
    num_blocks: int = 1

    @nn.compact
    def __call__(self, observations: Array) -> Array:
        x = nn.gelu(_dense(self.dim, ACTIVATION_GAIN)(nn.LayerNorm()(observations)))
        x = nn.LayerNorm()(x)
        for _ in range(self.num_blocks):
            x = EncoderBlock(self.dim, self.num_heads)(x)
        return x


class TokenEmbedding(nn.Module):
    """``Dense (no bias) -> GELU -> LN``: MAT's embedding of its action tokens."""

    dim: int

    @nn.compact
    def __call__(self, tokens: Array) -> Array:
        return nn.LayerNorm()(nn.gelu(_dense(self.dim, ACTIVATION_GAIN, use_bias=False)(tokens)))


__all__ = [
    "AgentEncoder",
    "Attention",
    "DecoderBlock",
    "EncoderBlock",
    "Head",
    "TokenEmbedding",
    "causal_mask",
    "sinusoidal_positions",
]
