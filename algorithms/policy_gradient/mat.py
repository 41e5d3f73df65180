"""MAT, the Multi-Agent Transformer (Wen et al. 2022), on the shared PPO learner.

An encoder (:class:`marl.attention.AgentEncoder`) reads every agent's observation
and gives each agent a representation and a value. A decoder then generates the
joint action agent by agent in the fixed order ``0 .. n-1``: its input tokens are
a start token and the one-hot actions already chosen, and agent ``i``'s logits
come from the tokens before it through causal attention (MAT's decoder block,
where agent ``i``'s encoding queries the decoder stream up to position ``i``).

Acting is autoregressive (``n`` decoder passes, one action each); training is
teacher-forced: the stored joint action, shifted by one, is decoded in a single
pass. PPO is per agent (each agent's own ratio), with MAT's SMAC settings by
default (clip 0.05).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from marl.algorithms.policy_gradient.learner import PPO, PPOOptions
from marl.attention import AgentEncoder, DecoderBlock, Head, TokenEmbedding
from marl.options import OptionError, check_at_least_one
from marl.ppo import masked_categorical
from marl.types import Array, EnvSpec, Observation, PRNGKey


@dataclasses.dataclass
class MATOptions(PPOOptions):
    """PPO options (MAT's SMAC defaults) plus the transformer's sizes."""

    name: str = "mat"
    clip_epsilon: float = 0.05
    value_clip: float = 0.05
    dim: int = 64
    num_heads: int = 1
    num_blocks: int = 1

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("dim", "num_heads", "num_blocks"))
        if self.dim % self.num_heads:
            raise OptionError("num_heads", f"{self.num_heads} does not divide dim={self.dim}")


class ActionDecoder(nn.Module):
    """Action tokens ``[..., n, A + 1]`` and encodings ``[..., n, D]`` -> logits ``[..., n, A]``."""

    num_actions: int
    dim: int
    num_heads: int
    num_blocks: int

    @nn.compact
    def __call__(self, tokens: Array, encoded: Array) -> Array:
        x = TokenEmbedding(self.dim)(tokens)
        for _ in range(self.num_blocks):
            x = DecoderBlock(self.dim, self.num_heads, queries_from="encoder")(x, encoded)
        return Head(self.num_actions, self.dim)(x)


class MATModel:
    """MAT's encoder, value head and autoregressive action decoder."""

    team_value = False

    def __init__(self, env_spec: EnvSpec, options: MATOptions):
        self.env_spec = env_spec
        self.encoder = AgentEncoder(options.dim, options.num_heads, options.num_blocks)
        self.value_head = Head(1, options.dim, output_gain=1.0)
        self.decoder = ActionDecoder(
            env_spec.num_actions, options.dim, options.num_heads, options.num_blocks
        )
        self.dim = options.dim

    def init(self, key: PRNGKey) -> Any:
        spec = self.env_spec
        keys = jax.random.split(key, 3)
        encoded = jnp.zeros((1, spec.num_agents, self.dim))
        return {
            "encoder": self.encoder.init(keys[0], jnp.zeros((1, spec.num_agents, spec.obs_dim))),
            "value_head": self.value_head.init(keys[1], encoded),
            "decoder": self.decoder.init(
                keys[2], jnp.zeros((1, spec.num_agents, spec.num_actions + 1)), encoded
            ),
        }

    def initial_memory(self, batch_size: int) -> Any:
        return ()

    def _encode(self, params: Any, agents_view: Array) -> tuple[Array, Array]:
        encoded = self.encoder.apply(params["encoder"], agents_view)
        return encoded, self.value_head.apply(params["value_head"], encoded)[..., 0]

    def shifted_tokens(self, actions: Array) -> Array:
        """Decoder inputs for a joint action ``[..., n]``: the start token, then the
        one-hot actions of agents ``0 .. n-2`` (with a zero start bit)."""
        num_tokens = 1 + self.env_spec.num_actions
        start = jax.nn.one_hot(jnp.zeros(actions.shape[:-1] + (1,), jnp.int32), num_tokens)
        previous = jax.nn.one_hot(actions[..., :-1] + 1, num_tokens)
        return jnp.concatenate([start, previous], axis=-2)

    def act(
        self, params: Any, obs: Observation, memory: Any, key: PRNGKey, greedy: bool
    ) -> tuple[Array, Array, Array, Any]:
        encoded, values = self._encode(params, obs.agents_view)
        batch, num_agents = obs.action_mask.shape[:2]
        num_tokens = 1 + self.env_spec.num_actions
        tokens = jnp.zeros((batch, num_agents, num_tokens)).at[:, 0, 0].set(1.0)

        def choose(agent: int, carry: tuple[Array, Array, Array]):
            tokens, actions, log_probs = carry
            logits = self.decoder.apply(params["decoder"], tokens, encoded)[:, agent]
            policy = masked_categorical(logits, obs.action_mask[:, agent])
            agent_key = jax.random.fold_in(key, agent)
            action = policy.mode() if greedy else policy.sample(seed=agent_key)
            tokens = tokens.at[:, agent + 1].set(
                jax.nn.one_hot(action + 1, num_tokens), mode="drop"
            )
            return (
                tokens,
                actions.at[:, agent].set(action.astype(jnp.int32)),
                log_probs.at[:, agent].set(policy.log_prob(action)),
            )

        _, actions, log_probs = jax.lax.fori_loop(
            0,
            num_agents,
            choose,
            (tokens, jnp.zeros((batch, num_agents), jnp.int32), jnp.zeros((batch, num_agents))),
        )
        return actions, log_probs, values, ()

    def value(self, params: Any, obs: Observation, memory: Any) -> Array:
        return self._encode(params, obs.agents_view)[1]

    def evaluate(
        self, params: Any, obs: Observation, actions: Array, memory: Any
    ) -> tuple[Array, Array, Array]:
        encoded, values = self._encode(params, obs.agents_view)
        logits = self.decoder.apply(params["decoder"], self.shifted_tokens(actions), encoded)
        policy = masked_categorical(logits, obs.action_mask)
        return policy.log_prob(actions), policy.entropy(), values


def make_mat(options: MATOptions, env_spec: EnvSpec, envs_per_device: int) -> PPO:
    """MAT with PPO (clip 0.05, as in MAT's SMAC scripts)."""
    return PPO(env_spec, envs_per_device, options, MATModel(env_spec, options))


__all__ = ["ActionDecoder", "MATModel", "MATOptions", "make_mat"]
