"""Mixing networks: how per-agent utilities combine into the team's value.

Every mixer is a flax module called as ``mixer(agent_qs, global_state)`` with
``agent_qs [..., num_agents]`` (each agent's value of its chosen action) and
``global_state [..., state_dim]``; it returns ``[..., k]``: ``k = 1`` for a joint
value, ``k = num_agents`` for independent learners (no mixing).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from marl.types import Array


class IndependentMixer(nn.Module):
    """IQL: no mixing; each agent is trained on its own value."""

    @nn.compact
    def __call__(self, agent_qs: Array, global_state: Array) -> Array:
        del global_state
        return agent_qs


class VDNMixer(nn.Module):
    """VDN: ``Q_tot = sum_i Q_i``."""

    @nn.compact
    def __call__(self, agent_qs: Array, global_state: Array) -> Array:
        del global_state
        return agent_qs.sum(axis=-1, keepdims=True)


class QMixer(nn.Module):
    """QMIX: a monotonic two-layer mix whose weights come from hypernetworks of the state.

    ``W1 = |MLP(s -> hypernet_dim -> n * embed_dim)|``, ``b1 = Linear(s -> embed_dim)``,
    ``W2 = |MLP(s -> hypernet_dim -> embed_dim)|``, ``b2 = MLP(s -> embed_dim -> 1)``,
    ``Q_tot = ELU(q W1 + b1) W2 + b2``. Non-negative weights make ``Q_tot`` monotone
    in every agent's value.
    """

    embed_dim: int = 32
    hypernet_dim: int = 64

    @nn.compact
    def __call__(self, agent_qs: Array, global_state: Array) -> Array:
        num_agents = agent_qs.shape[-1]
        w1 = nn.Dense(self.hypernet_dim)(global_state)
        w1 = jnp.abs(nn.Dense(num_agents * self.embed_dim)(nn.relu(w1)))
        w1 = w1.reshape(*global_state.shape[:-1], num_agents, self.embed_dim)
        b1 = nn.Dense(self.embed_dim)(global_state)
        w2 = nn.Dense(self.hypernet_dim)(global_state)
        w2 = jnp.abs(nn.Dense(self.embed_dim)(nn.relu(w2)))
        b2 = nn.Dense(1)(nn.relu(nn.Dense(self.embed_dim)(global_state)))
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", agent_qs, w1) + b1)
        return jnp.einsum("...e,...e->...", hidden, w2)[..., None] + b2
