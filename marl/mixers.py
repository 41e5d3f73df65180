"""Mixing networks: how per-agent utilities combine into the team's value.

Every mixer is a flax module called as
``mixer(agent_qs, global_state, joint_action=None, max_agent_qs=None)``:

* ``agent_qs [..., num_agents]``: each agent's value of its chosen action;
* ``global_state [..., state_dim]``;
* ``joint_action [..., num_agents, num_actions]``: the one-hot chosen actions, and
  ``max_agent_qs [..., num_agents]``: each agent's greedy value. Only mixers whose
  value depends on the actions beyond ``agent_qs`` (QPLEX) read them.

It returns ``[..., k]``: ``k = 1`` for a joint value, ``k = num_agents`` for
independent learners (no mixing). QTRAN's joint network is not a mixer (it reads
the agents' hidden states) and has its own call, :class:`QTranJointNetwork`; nor is
MO-MIX's :class:`ParallelQMixer`, which mixes a value per objective.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from marl.networks import MLP
from marl.types import Array

POSITIVE_FLOOR = 1e-10


class IndependentMixer(nn.Module):
    """IQL: no mixing; each agent is trained on its own value."""

    @nn.compact
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        del global_state, joint_action, max_agent_qs
        return agent_qs


class VDNMixer(nn.Module):
    """VDN: ``Q_tot = sum_i Q_i``."""

    @nn.compact
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        del global_state, joint_action, max_agent_qs
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
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        del joint_action, max_agent_qs
        num_agents = agent_qs.shape[-1]
        w1 = jnp.abs(MLP((self.hypernet_dim, num_agents * self.embed_dim))(global_state))
        w1 = w1.reshape(*global_state.shape[:-1], num_agents, self.embed_dim)
        b1 = nn.Dense(self.embed_dim)(global_state)
        w2 = jnp.abs(MLP((self.hypernet_dim, self.embed_dim))(global_state))
        b2 = MLP((self.embed_dim, 1))(global_state)
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", agent_qs, w1) + b1)
        return jnp.einsum("...e,...e->...", hidden, w2)[..., None] + b2


class ParallelQMixer(nn.Module):
    """MO-MIX's parallel mixer: one :class:`QMixer` per objective, side by side.

    Called with ``agent_qs [..., num_agents, num_objectives]`` (each agent's value of
    its chosen action, per objective) and ``conditioning [..., C]`` (the global state
    and the preference, ``[s, w]``, which the hypernetworks read); returns ``Q_tot``
    ``[..., num_objectives]``. Objective ``j``'s joint value depends only on the
    agents' values of objective ``j`` and is monotone in each of them.
    """

    num_objectives: int
    embed_dim: int = 32
    hypernet_dim: int = 64

    @nn.compact
    def __call__(self, agent_qs: Array, conditioning: Array) -> Array:
        mixers = nn.vmap(
            QMixer,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(0, None),
            out_axes=0,
            axis_size=self.num_objectives,
        )(self.embed_dim, self.hypernet_dim)
        joint = mixers(jnp.moveaxis(agent_qs, -1, 0), conditioning)  # [m, ..., 1]
        return jnp.moveaxis(joint[..., 0], 0, -1)


class QPLEXMixer(nn.Module):
    """QPLEX's duplex dueling mix (Wang et al. 2021).

    Each utility is transformed by the state, ``Q'_i = w_i(s) Q_i + v_i(s)`` with
    ``w_i = |MLP(s -> hypernet_dim -> n)| + 1e-10`` and ``v_i = MLP(s -> hypernet_dim -> n)``,
    and ``Q_tot = sum_i Q'_i + sum_i (lambda_i(s, a) - 1) * stopgrad(Q'_i - max_a Q'_i)``.
    The positive importance weights ``lambda_i`` sum ``attention_heads`` products
    ``|key_k(s)| * sigmoid(agents_k(s))_i * sigmoid(actions_k(s, a))_i``, each factor
    a two-layer MLP of width ``attention_dim``. Because ``lambda_i > 0`` and every
    advantage is at most 0, ``Q_tot`` peaks where every agent is greedy.
    """

    hypernet_dim: int = 64
    attention_heads: int = 4
    attention_dim: int = 64

    @nn.compact
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        if joint_action is None or max_agent_qs is None:
            raise ValueError("QPLEXMixer needs joint_action and max_agent_qs")
        num_agents = agent_qs.shape[-1]
        weight = jnp.abs(MLP((self.hypernet_dim, num_agents))(global_state)) + POSITIVE_FLOOR
        offset = MLP((self.hypernet_dim, num_agents))(global_state)
        transformed = weight * agent_qs + offset
        advantage = jax.lax.stop_gradient(transformed - (weight * max_agent_qs + offset))

        flat_action = joint_action.reshape(*joint_action.shape[:-2], -1)
        state_action = jnp.concatenate([global_state, flat_action], axis=-1)
        importance = 0.0
        for _ in range(self.attention_heads):
            key = jnp.abs(MLP((self.attention_dim, 1))(global_state)) + POSITIVE_FLOOR
            agents = nn.sigmoid(MLP((self.attention_dim, num_agents))(global_state))
            actions = nn.sigmoid(MLP((self.attention_dim, num_agents))(state_action))
            importance = importance + key * agents * actions
        joint = transformed.sum(-1) + ((importance - 1.0) * advantage).sum(-1)
        return joint[..., None]


class FeedForwardMixer(nn.Module):
    """Weighted QMIX's unrestricted joint value ``Q*``: no monotonicity constraint.

    ``Q*(s, u) = MLP([s, u_1..u_n] -> 3 x (embed_dim, ReLU) -> 1) + V(s)`` with
    ``V = MLP(s -> embed_dim -> 1)``; ``u_i`` are the per-agent utilities of a
    separate agent network.
    """

    embed_dim: int = 256

    @nn.compact
    def __call__(
        self,
        agent_qs: Array,
        global_state: Array,
        joint_action: Array | None = None,
        max_agent_qs: Array | None = None,
    ) -> Array:
        del joint_action, max_agent_qs
        inputs = jnp.concatenate([global_state, agent_qs], axis=-1)
        advantage = MLP((self.embed_dim,) * 3 + (1,))(inputs)
        return advantage + MLP((self.embed_dim, 1))(global_state)


class QTranJointNetwork(nn.Module):
    """QTRAN-base's joint action value ``Q_jt(s, u)`` and state value ``V(s)`` (Son et al. 2019).

    Every agent's hidden state and one-hot action are encoded by a shared two-layer
    MLP and summed over agents; ``Q_jt = MLP([s, sum] -> embed -> embed -> 1)`` and
    ``V = MLP(s -> embed -> embed -> 1)``. Called with ``global_state [..., S]``,
    ``agent_hidden [..., n, H]`` and ``joint_action [..., n, A]``; returns
    ``(Q_jt, V)``, each ``[..., 1]``.
    """

    embed_dim: int = 64

    @nn.compact
    def __call__(
        self, global_state: Array, agent_hidden: Array, joint_action: Array
    ) -> tuple[Array, Array]:
        agent_inputs = jnp.concatenate([agent_hidden, joint_action], axis=-1)
        width = agent_inputs.shape[-1]
        encoding = MLP((width, width))(agent_inputs).sum(axis=-2)
        joint_q = MLP((self.embed_dim, self.embed_dim, 1))(
            jnp.concatenate([global_state, encoding], axis=-1)
        )
        value = MLP((self.embed_dim, self.embed_dim, 1))(global_state)
        return joint_q, value
