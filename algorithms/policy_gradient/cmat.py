"""CMAT, the consensus multi-agent transformer (arXiv 2604.13472), on the shared PPO learner.

Where MAT decodes actions agent by agent, CMAT decodes a *consensus*, then lets
every agent act at once given it:

1. the encoder (:class:`marl.attention.AgentEncoder`, no order or id information:
   permutation-equivariant) encodes the agents;
2. self-compression (:class:`SelfCompression`, ``r`` heads of attention weights
   over the agents) pools them into the initial consensus token, from which the
   team value is read;
3. the consensus decoder generates ``n`` latent tokens from it: starting from
   the initial token plus a sinusoidal position encoding, each iteration runs the
   decoder blocks (causal self-attention, cross-attention to the agents, MLP) over
   the tokens so far, projects the last output and appends it as the next token
   (with its position encoding); a gate (softmax over the tokens of an MLP score)
   pools the tokens into one consensus vector;
4. the action head maps ``[encoding_i, consensus]`` to agent ``i``'s logits.

Nothing in 2-4 depends on the order the agents are listed in, so permuting the
agents permutes the joint action distribution, and one deterministic forward
pass serves both acting and training. PPO is per agent, as in the released code.

Fine-tuning (``finetune``): only the value head and either the action head
(``"action_head"``) or the consensus decoder (``"consensus_decoder"``: its blocks,
projection and gate) are trained; ``init_from`` names a run directory whose
latest checkpoint supplies the starting parameters: a CMAT run on another task.
Parameters whose shapes depend on the task's sizes and differ (the observation
embedding, the action head's output) start fresh and are trained.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from marl.algorithms.policy_gradient.learner import PPO
from marl.algorithms.policy_gradient.mat import MATOptions
from marl.attention import AgentEncoder, DecoderBlock, Head, sinusoidal_positions
from marl.checkpoint import load_params
from marl.options import check_at_least_one, check_choice
from marl.ppo import masked_categorical
from marl.types import Array, EnvSpec, Observation, PRNGKey

logger = logging.getLogger(__name__)

FINETUNE_MODES = ("none", "action_head", "consensus_decoder")
# Which top-level parameter groups each fine-tuning mode trains.
TRAINED_GROUPS = {
    "action_head": ("value_head", "action_head"),
    "consensus_decoder": ("value_head", "consensus_decoder"),
}


@dataclasses.dataclass
class CMATOptions(MATOptions):
    """MAT's options (PPO and sizes) plus CMAT's compression heads and fine-tuning."""

    name: str = "cmat"
    compression_heads: int = 4
    finetune: str = "none"
    init_from: str = ""

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("compression_heads",))
        check_choice(self, "finetune", FINETUNE_MODES)


class SelfCompression(nn.Module):
    """``A = softmax_agents(W2 tanh(W1 h))``, then ``flatten(A^T h)`` -> MLP: one token."""

    dim: int
    num_heads: int

    @nn.compact
    def __call__(self, encoded: Array) -> Array:
        scores = nn.Dense(self.num_heads)(jnp.tanh(nn.Dense(self.dim)(encoded)))
        weights = jax.nn.softmax(scores, axis=-2)  # over the agents
        pooled = jnp.einsum("...nr,...nd->...rd", weights, encoded)
        pooled = pooled.reshape(pooled.shape[:-2] + (self.num_heads * self.dim,))
        x = nn.LayerNorm()(nn.gelu(nn.Dense(self.dim)(nn.LayerNorm()(pooled))))
        return nn.Dense(self.dim)(x)


class ConsensusDecoder(nn.Module):
    """Decoder blocks, the projection to the next token and the pooling gate."""

    dim: int
    num_heads: int
    num_blocks: int

    def setup(self):
        self.blocks = [
            DecoderBlock(self.dim, self.num_heads, queries_from="decoder")
            for _ in range(self.num_blocks)
        ]
        self.projection = nn.Dense(self.dim)
        self.gate = Head(1, self.dim, output_gain=1.0)

    def next_tokens(self, tokens: Array, encoded: Array) -> Array:
        """The projected outputs ``[..., L, D]`` of the blocks over ``tokens``."""
        x = tokens
        for block in self.blocks:
            x = block(x, encoded)
        return self.projection(x)

    def pool(self, tokens: Array) -> Array:
        weights = jax.nn.softmax(self.gate(tokens)[..., 0], axis=-1)
        return jnp.einsum("...l,...ld->...d", weights, tokens)

    def __call__(self, tokens: Array, encoded: Array) -> Array:  # used to initialise
        return self.pool(self.next_tokens(tokens, encoded))


class CMATModel:
    """CMAT's encoder, compression, consensus decoder, team value and action head."""

    team_value = True

    def __init__(self, env_spec: EnvSpec, options: CMATOptions):
        self.env_spec = env_spec
        self.dim = options.dim
        self.encoder = AgentEncoder(options.dim, options.num_heads, options.num_blocks)
        self.compression = SelfCompression(options.dim, options.compression_heads)
        self.value_head = Head(1, options.dim, output_gain=1.0)
        self.consensus_decoder = ConsensusDecoder(
            options.dim, options.num_heads, options.num_blocks
        )
        self.action_head = Head(env_spec.num_actions, options.dim, input_norm=True)
        # The latent tokens' positions are consensus steps, not agents.
        self.positions = sinusoidal_positions(env_spec.num_agents, options.dim)

    def init(self, key: PRNGKey) -> Any:
        spec = self.env_spec
        keys = jax.random.split(key, 5)
        encoded = jnp.zeros((1, spec.num_agents, self.dim))
        token = jnp.zeros((1, self.dim))
        return {
            "encoder": self.encoder.init(keys[0], jnp.zeros((1, spec.num_agents, spec.obs_dim))),
            "compression": self.compression.init(keys[1], encoded),
            "value_head": self.value_head.init(keys[2], token),
            "consensus_decoder": self.consensus_decoder.init(keys[3], encoded, encoded),
            "action_head": self.action_head.init(keys[4], jnp.zeros((1, 1, 2 * self.dim))),
        }

    def initial_memory(self, batch_size: int) -> Any:
        return ()

    def consensus(self, params: Any, agents_view: Array) -> tuple[Array, Array, Array]:
        """Encodings ``[..., n, D]``, the consensus ``[..., D]`` and the team value ``[..., 1]``."""
        encoded = self.encoder.apply(params["encoder"], agents_view)
        initial = self.compression.apply(params["compression"], encoded)
        value = self.value_head.apply(params["value_head"], initial)
        num_tokens = self.env_spec.num_agents
        tokens = jnp.zeros(encoded.shape[:-2] + (num_tokens, self.dim))
        tokens = tokens.at[..., 0, :].set(initial + self.positions[0])

        def append(step: int, tokens: Array) -> Array:
            # Causal attention: the zero tokens after ``step`` do not reach it.
            outputs = self.consensus_decoder.apply(
                params["consensus_decoder"], tokens, encoded, method=ConsensusDecoder.next_tokens
            )
            following = jnp.take(outputs, step, axis=-2) + jnp.asarray(self.positions)[step + 1]
            return jax.lax.dynamic_update_index_in_dim(tokens, following, step + 1, axis=-2)

        tokens = jax.lax.fori_loop(0, num_tokens - 1, append, tokens)
        consensus = self.consensus_decoder.apply(
            params["consensus_decoder"], tokens, method=ConsensusDecoder.pool
        )
        return encoded, consensus, value

    def _policy_and_value(self, params: Any, obs: Observation):
        encoded, consensus, value = self.consensus(params, obs.agents_view)
        shared = jnp.broadcast_to(consensus[..., None, :], encoded.shape)
        logits = self.action_head.apply(
            params["action_head"], jnp.concatenate([encoded, shared], axis=-1)
        )
        return masked_categorical(logits, obs.action_mask), value

    def act(
        self, params: Any, obs: Observation, memory: Any, key: PRNGKey, greedy: bool
    ) -> tuple[Array, Array, Array, Any]:
        policy, value = self._policy_and_value(params, obs)
        actions = policy.mode() if greedy else policy.sample(seed=key)
        return actions.astype(jnp.int32), policy.log_prob(actions), value, ()

    def value(self, params: Any, obs: Observation, memory: Any) -> Array:
        return self.consensus(params, obs.agents_view)[2]

    def evaluate(
        self, params: Any, obs: Observation, actions: Array, memory: Any
    ) -> tuple[Array, Array, Array]:
        policy, value = self._policy_and_value(params, obs)
        return policy.log_prob(actions), policy.entropy(), value


def _starting_params(model: CMATModel, run_dir: str) -> tuple[Any, list[str]]:
    """The parameters of ``run_dir``'s latest checkpoint laid out as this model's, and
    the names of those whose shapes differ here (they will start fresh).

    Shapes differ where the task's sizes enter: the observation embedding
    (``obs_dim``) and the action head's output (``num_actions``).
    """
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    try:
        loaded = load_params(run_dir)
    except ValueError as error:
        raise ValueError(f"init_from: {error}") from None
    flat_loaded = dict(jax.tree_util.tree_flatten_with_path(loaded)[0])
    paths, treedef = jax.tree_util.tree_flatten_with_path(expected)
    refitted = []
    for path, leaf in paths:
        name = jax.tree_util.keystr(path)
        if path not in flat_loaded:
            raise ValueError(
                f"init_from '{run_dir}': its parameters have no {name} (not a CMAT run, or "
                "other dim/num_blocks/compression_heads?)"
            )
        if flat_loaded[path].shape != leaf.shape:
            refitted.append(name)
    leaves = [flat_loaded[path] for path, _ in paths]
    return jax.tree_util.tree_unflatten(treedef, leaves), refitted


def make_cmat(options: CMATOptions, env_spec: EnvSpec, envs_per_device: int) -> PPO:
    """CMAT with PPO; ``finetune`` and ``init_from`` continue a run on another task.

    With ``init_from``, every parameter whose shape fits this task is loaded; the
    ones that do not (the observation embedding when observations differ in
    size, the action head's output when the action count does) start fresh and
    are trained even when ``finetune`` freezes their group. They are logged.
    """
    model = CMATModel(env_spec, options)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    initial, refitted = None, []
    if options.init_from:
        initial, refitted = _starting_params(model, options.init_from)
        if refitted:
            logger.warning(
                "cmat: init_from %s: %d parameter arrays do not fit this task and start fresh "
                "(trained): %s",
                options.init_from,
                len(refitted),
                ", ".join(refitted),
            )
    trainable = None
    if options.finetune != "none":
        trained = TRAINED_GROUPS[options.finetune]
        trainable = jax.tree_util.tree_map_with_path(
            lambda path, _: path[0].key in trained or jax.tree_util.keystr(path) in refitted,
            shapes,
        )
    return PPO(
        env_spec, envs_per_device, options, model, trainable=trainable, initial_params=initial
    )


__all__ = ["CMATModel", "CMATOptions", "ConsensusDecoder", "SelfCompression", "make_cmat"]
