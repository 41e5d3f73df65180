"""IPPO and MAPPO (Yu et al. 2022) on the shared PPO learner (``learner.py``).

Each agent has an actor over its own observation (which carries the one-hot agent
id added by :class:`marl.AgentIDWrapper`) and a critic giving its value: over its
own observation for IPPO, over the global state plus its one-hot id for MAPPO
(the agent-specific form of MAPPO's centralised critic). Actor and critic are
:class:`marl.networks.ActorCriticBody` networks, feed-forward or with a GRU
(``recurrent``, MAPPO's recurrent policy, on by default as in its SMAC runs).
With ``share_parameters`` (the default) one actor and one critic serve every
agent; without it each agent has its own, stacked on a leading agent axis.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from marl.algorithms.policy_gradient.learner import PPO, PPOOptions
from marl.networks import ActorCriticBody
from marl.options import check_at_least_one
from marl.ppo import masked_categorical
from marl.types import Array, EnvSpec, Observation, PRNGKey


@dataclasses.dataclass
class ActorCriticOptions(PPOOptions):
    """PPO options plus the networks': width, dense layers, GRU, parameter sharing."""

    hidden_dim: int = 64
    num_layers: int = 2
    recurrent: bool = True
    share_parameters: bool = True

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("hidden_dim", "num_layers"))


@dataclasses.dataclass
class IPPOOptions(ActorCriticOptions):
    name: str = "ippo"


@dataclasses.dataclass
class MAPPOOptions(ActorCriticOptions):
    name: str = "mappo"


class ActorCriticModel:
    """Per-agent actor and critic; the critic sees ``critic_input``: "local" or "global"."""

    team_value = False

    def __init__(self, env_spec: EnvSpec, options: ActorCriticOptions, critic_input: str):
        self.env_spec = env_spec
        self.options = options
        self.critic_input = critic_input
        body = dict(
            hidden_dim=options.hidden_dim,
            num_layers=options.num_layers,
            recurrent=options.recurrent,
        )
        self.actor = ActorCriticBody(env_spec.num_actions, output_gain=0.01, **body)
        self.critic = ActorCriticBody(1, output_gain=1.0, **body)

    # ---------------------------------------------------------------- inputs
    def _critic_inputs(self, obs: Observation) -> Array:
        """``[..., n, F]`` critic inputs for observations with leading axes ``[...]``."""
        if self.critic_input == "local":
            return obs.agents_view
        num_agents = self.env_spec.num_agents
        state = jnp.broadcast_to(
            obs.global_state[..., None, :], obs.agents_view.shape[:-1] + obs.global_state.shape[-1:]
        )
        ids = jnp.broadcast_to(jnp.eye(num_agents), state.shape[:-1] + (num_agents,))
        return jnp.concatenate([state, ids], axis=-1)

    def _apply(
        self, network: Any, params: Any, hidden: Array, inputs: Array, resets: Array
    ) -> tuple[Array, Array]:
        """``network`` over ``inputs [T, B, n, F]`` from ``hidden [B, n, H]``."""
        num_steps, batch, num_agents = inputs.shape[:3]
        agent_resets = jnp.broadcast_to(resets[..., None], (num_steps, batch, num_agents))
        if self.options.share_parameters:
            last, out = network.apply(
                params,
                hidden.reshape(batch * num_agents, -1),
                inputs.reshape(num_steps, batch * num_agents, -1),
                agent_resets.reshape(num_steps, batch * num_agents),
            )
            return last.reshape(batch, num_agents, -1), out.reshape(
                num_steps, batch, num_agents, -1
            )
        return jax.vmap(network.apply, in_axes=(0, 1, 2, 2), out_axes=(1, 2))(
            params, hidden, inputs, agent_resets
        )

    # ------------------------------------------------------------- contract
    def init(self, key: PRNGKey) -> Any:
        spec = self.env_spec
        critic_dim = self._critic_inputs(
            Observation(
                agents_view=jnp.zeros((spec.num_agents, spec.obs_dim)),
                action_mask=jnp.zeros((spec.num_agents, spec.num_actions), bool),
                global_state=jnp.zeros((spec.state_dim,)),
                step_count=jnp.int32(0),
            )
        ).shape[-1]
        hidden = jnp.zeros((1, self.options.hidden_dim))
        resets = jnp.zeros((1, 1), bool)

        def init_pair(pair_key: PRNGKey) -> dict[str, Any]:
            actor_key, critic_key = jax.random.split(pair_key)
            return {
                "actor": self.actor.init(
                    actor_key, hidden, jnp.zeros((1, 1, spec.obs_dim)), resets
                ),
                "critic": self.critic.init(
                    critic_key, hidden, jnp.zeros((1, 1, critic_dim)), resets
                ),
            }

        if self.options.share_parameters:
            return init_pair(key)
        # One pair per agent, initialised one after another (batched orthogonal
        # initialisers can deadlock XLA:CPU's LAPACK thread pool).
        return jax.lax.map(init_pair, jax.random.split(key, spec.num_agents))

    def initial_memory(self, batch_size: int) -> Any:
        if not self.options.recurrent:
            return ()
        zeros = jnp.zeros((batch_size, self.env_spec.num_agents, self.options.hidden_dim))
        return {"actor": zeros, "critic": zeros}

    def _hidden(self, memory: Any, batch: int) -> dict[str, Array]:
        if self.options.recurrent:
            return memory
        zeros = jnp.zeros((batch, self.env_spec.num_agents, 1))
        return {"actor": zeros, "critic": zeros}

    def _forward(
        self, params: Any, obs: Observation, memory: Any
    ) -> tuple[Array, Array, dict[str, Array]]:
        """Logits ``[T, B, n, A]``, values ``[T, B, n]`` and the last hidden states over a
        time-major sequence ``[T, B]`` starting from ``memory``."""
        batch = obs.step_count.shape[1]
        hidden = self._hidden(memory, batch)
        resets = obs.step_count == 0
        actor_hidden, logits = self._apply(
            self.actor, params["actor"], hidden["actor"], obs.agents_view, resets
        )
        critic_hidden, values = self._apply(
            self.critic, params["critic"], hidden["critic"], self._critic_inputs(obs), resets
        )
        return logits, values[..., 0], {"actor": actor_hidden, "critic": critic_hidden}

    def act(
        self, params: Any, obs: Observation, memory: Any, key: PRNGKey, greedy: bool
    ) -> tuple[Array, Array, Array, Any]:
        time_major = jax.tree_util.tree_map(lambda x: x[None], obs)
        logits, values, hidden = self._forward(params, time_major, memory)
        policy = masked_categorical(logits[0], obs.action_mask)
        actions = policy.mode() if greedy else policy.sample(seed=key)
        next_memory = hidden if self.options.recurrent else ()
        return actions.astype(jnp.int32), policy.log_prob(actions), values[0], next_memory

    def value(self, params: Any, obs: Observation, memory: Any) -> Array:
        time_major = jax.tree_util.tree_map(lambda x: x[None], obs)
        return self._forward(params, time_major, memory)[1][0]

    def evaluate(
        self, params: Any, obs: Observation, actions: Array, memory: Any
    ) -> tuple[Array, Array, Array]:
        logits, values, _ = self._forward(params, obs, memory)
        policy = masked_categorical(logits, obs.action_mask)
        return policy.log_prob(actions), policy.entropy(), values


def make_ippo(options: IPPOOptions, env_spec: EnvSpec, envs_per_device: int) -> PPO:
    """IPPO: per-agent PPO, each critic on the agent's own observation."""
    model = ActorCriticModel(env_spec, options, critic_input="local")
    return PPO(env_spec, envs_per_device, options, model)


def make_mappo(options: MAPPOOptions, env_spec: EnvSpec, envs_per_device: int) -> PPO:
    """MAPPO: per-agent PPO with a centralised critic on the global state."""
    model = ActorCriticModel(env_spec, options, critic_input="global")
    return PPO(env_spec, envs_per_device, options, model)


__all__ = [
    "ActorCriticModel",
    "ActorCriticOptions",
    "IPPOOptions",
    "MAPPOOptions",
    "make_ippo",
    "make_mappo",
]
