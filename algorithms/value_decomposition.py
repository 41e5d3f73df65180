"""Value decomposition learners: IQL, VDN and QMIX on one shared learner.

The recipe is pymarl2's tuned QMIX: one GRU agent network shared by all agents
(its input is the agent's observation, which carries the one-hot agent id added by
:class:`marl.AgentIDWrapper`, and the one-hot of the agent's previous action),
double-Q TD(lambda) targets over stored sequences, a squared TD loss, Adam with
gradient-norm clipping, hard target updates and epsilon-greedy exploration over
the available actions. What differs between IQL, VDN and QMIX is only the mixer
(:mod:`marl.mixers`).

Sequences are windows of the replayed stream (:mod:`marl.replay`). Each stored
step keeps the agent's hidden state from acting, and a window starts from it (the
"stored state" of R2D2); the state is zeroed again wherever an episode starts in
the window. An episode's last step is never bootstrapped, including when it ended
by the time limit: the final observation of a truncated episode is not kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.mixers import IndependentMixer, QMixer, VDNMixer
from marl.networks import RecurrentQNetwork
from marl.replay import make_sequence_buffer
from marl.targets import td_lambda_targets
from marl.types import Array, EnvSpec, Observation, PRNGKey, Transition

MASKED_VALUE = -1e10


MIXERS = {"none": IndependentMixer, "vdn": VDNMixer, "qmix": QMixer}


@dataclasses.dataclass(frozen=True)
class ValueDecompositionConfig:
    """Hyperparameters; the defaults are pymarl2's tuned QMIX recipe.

    Sizes of data are per device and per seed. ``sequence_length = 0`` means one
    window spans the longest episode plus its successor step (``time_limit + 1``).
    ``target_update_interval`` counts gradient updates (pymarl2 copies every 200
    episodes with 8 envs and one update per 8 episodes, i.e. every 25 updates).
    """

    mixer: str = "qmix"
    hidden_dim: int = 64
    mixer_embed_dim: int = 32
    hypernet_dim: int = 64
    learning_rate: float = 1e-3
    max_grad_norm: float = 10.0
    gamma: float = 0.99
    td_lambda: float = 0.6
    double_q: bool = True
    last_action: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 100_000
    buffer_size: int = 100_000
    batch_size: int = 128
    sequence_length: int = 0
    updates_per_rollout: int = 1
    target_update_interval: int = 25

    def check(self) -> None:
        """Raises ``ValueError`` naming the first option whose value is invalid."""
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer '{self.mixer}' is unknown; valid: {', '.join(sorted(MIXERS))}")
        for name in (
            "hidden_dim",
            "mixer_embed_dim",
            "hypernet_dim",
            "buffer_size",
            "batch_size",
            "updates_per_rollout",
            "target_update_interval",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("gamma", "td_lambda", "epsilon_start", "epsilon_finish"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.sequence_length < 0 or self.sequence_length == 1:
            raise ValueError(
                "sequence_length must be 0 (whole episodes) or at least 2, "
                f"got {self.sequence_length}"
            )


@struct.dataclass
class ValueDecompositionState:
    params: Any
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_steps: Array  # env-steps collected so far, over all devices
    updates: Array


class AgentMemory(NamedTuple):
    hidden: Array  # [B, num_agents, hidden_dim]
    prev_action: Array  # [B, num_agents], -1 before the first action of an episode


class ValueDecomposition:
    """IQL, VDN or QMIX: a GRU agent network plus a mixer, trained off-policy."""

    def __init__(self, env_spec: EnvSpec, num_envs: int = 1, **config: Any):
        valid = {f.name for f in dataclasses.fields(ValueDecompositionConfig)}
        unknown = sorted(set(config) - valid)
        if unknown:
            raise ValueError(
                f"unknown value-decomposition option(s) {unknown}; valid: {sorted(valid)}"
            )
        self.config = ValueDecompositionConfig(**config)
        self.config.check()
        self.env_spec = env_spec
        self.num_envs = num_envs
        self.agent_net = RecurrentQNetwork(env_spec.num_actions, self.config.hidden_dim)
        mixer_cls = MIXERS[self.config.mixer]
        if mixer_cls is QMixer:
            self.mixer = QMixer(self.config.mixer_embed_dim, self.config.hypernet_dim)
        else:
            self.mixer = mixer_cls()
        self.sequence_length = self.config.sequence_length or env_spec.time_limit + 1
        self.buffer = make_sequence_buffer(
            num_envs, self.config.buffer_size, self.config.batch_size, self.sequence_length
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(self.config.max_grad_norm),
            optax.adam(self.config.learning_rate),
        )

    # ----------------------------------------------------------------- inputs
    def _agent_inputs(self, agents_view: Array, prev_action: Array) -> Array:
        if not self.config.last_action:
            return agents_view
        last = jax.nn.one_hot(prev_action, self.env_spec.num_actions, dtype=agents_view.dtype)
        return jnp.concatenate([agents_view, last], axis=-1)

    def _unroll(
        self, agent_params: Any, hidden: Array, inputs: Array, resets: Array
    ) -> tuple[Array, Array]:
        """The last hidden state ``[B, n, H]`` and Q-values ``[T, B, n, A]`` from
        time-major inputs ``[T, B, n, F]``, hidden ``[B, n, H]`` and resets ``[T, B]``."""
        num_steps, batch, num_agents, _ = inputs.shape
        flat_hidden = hidden.reshape(batch * num_agents, -1)
        flat_inputs = inputs.reshape(num_steps, batch * num_agents, -1)
        flat_resets = jnp.repeat(resets, num_agents, axis=1)
        hidden, q = self.agent_net.apply(agent_params, flat_hidden, flat_inputs, flat_resets)
        return hidden.reshape(batch, num_agents, -1), q.reshape(num_steps, batch, num_agents, -1)

    # ------------------------------------------------------------------- init
    def init(self, key: PRNGKey) -> ValueDecompositionState:
        spec = self.env_spec
        agent_key, mixer_key = jax.random.split(key)
        example_inputs = self._agent_inputs(
            jnp.zeros((1, 1, spec.num_agents, spec.obs_dim)),
            jnp.zeros((1, 1, spec.num_agents), int),
        )
        agent_params = self.agent_net.init(
            agent_key,
            jnp.zeros((spec.num_agents, self.config.hidden_dim)),
            example_inputs.reshape(1, spec.num_agents, -1),
            jnp.zeros((1, spec.num_agents), bool),
        )
        mixer_params = self.mixer.init(
            mixer_key, jnp.zeros((spec.num_agents,)), jnp.zeros((spec.state_dim,))
        )
        params = {"agent": agent_params, "mixer": mixer_params}
        example = self._example_step()
        return ValueDecompositionState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(example),
            env_steps=jnp.int32(0),
            updates=jnp.int32(0),
        )

    def _example_step(self) -> Transition:
        spec = self.env_spec
        return Transition(
            obs=Observation(
                agents_view=jnp.zeros((spec.num_agents, spec.obs_dim), jnp.float32),
                action_mask=jnp.zeros((spec.num_agents, spec.num_actions), bool),
                global_state=jnp.zeros((spec.state_dim,), jnp.float32),
                step_count=jnp.int32(0),
            ),
            action=jnp.zeros((spec.num_agents,), jnp.int32),
            reward=jnp.zeros((spec.num_agents,), jnp.float32),
            done=jnp.bool_(False),
            terminated=jnp.bool_(False),
            extras=AgentMemory(
                hidden=jnp.zeros((spec.num_agents, self.config.hidden_dim), jnp.float32),
                prev_action=jnp.zeros((spec.num_agents,), jnp.int32),
            ),
        )

    def initial_memory(self, batch_size: int) -> AgentMemory:
        spec = self.env_spec
        return AgentMemory(
            hidden=jnp.zeros((batch_size, spec.num_agents, self.config.hidden_dim), jnp.float32),
            prev_action=jnp.full((batch_size, spec.num_agents), -1, jnp.int32),
        )

    def epsilon(self, env_steps: Array) -> Array:
        cfg = self.config
        fraction = jnp.clip(env_steps / max(cfg.epsilon_anneal_steps, 1), 0.0, 1.0)
        return cfg.epsilon_start + fraction * (cfg.epsilon_finish - cfg.epsilon_start)

    # -------------------------------------------------------------------- act
    def act(
        self,
        state: ValueDecompositionState,
        obs: Observation,
        memory: AgentMemory,
        key: PRNGKey,
        explore: bool,
    ) -> tuple[Array, AgentMemory, AgentMemory]:
        """Epsilon-greedy (or greedy) joint actions for a batch ``[B]`` of environments.

        The memory is reset where an episode starts (``step_count == 0``). The
        returned extras are the memory the step was taken with, kept in replay.
        """
        starts = obs.step_count == 0
        memory = AgentMemory(
            hidden=jnp.where(starts[:, None, None], 0.0, memory.hidden),
            prev_action=jnp.where(starts[:, None], -1, memory.prev_action),
        )
        inputs = self._agent_inputs(obs.agents_view, memory.prev_action)[None]
        no_resets = jnp.zeros((1, obs.step_count.shape[0]), bool)
        hidden, q = self._unroll(state.params["agent"], memory.hidden, inputs, no_resets)
        q = q[0]
        greedy = jnp.argmax(jnp.where(obs.action_mask, q, MASKED_VALUE), axis=-1)
        if explore:
            random_key, choose_key = jax.random.split(key)
            random_actions = jax.random.categorical(
                random_key, jnp.where(obs.action_mask, 0.0, -jnp.inf)
            )
            explore_mask = jax.random.uniform(choose_key, greedy.shape) < self.epsilon(
                state.env_steps
            )
            actions = jnp.where(explore_mask, random_actions, greedy)
        else:
            actions = greedy
        actions = actions.astype(jnp.int32)
        new_memory = AgentMemory(hidden, actions)
        return actions, new_memory, memory

    # ----------------------------------------------------------------- update
    def loss(self, params: Any, target_params: Any, batch: Transition) -> tuple[Array, dict]:
        """Mean squared TD(lambda) error on a batch of windows ``[B, L]``."""
        cfg = self.config
        seq = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)  # time-major
        obs = seq.obs
        inputs = self._agent_inputs(obs.agents_view, seq.extras.prev_action)
        resets = obs.step_count == 0
        initial_hidden = seq.extras.hidden[0]
        _, q = self._unroll(params["agent"], initial_hidden, inputs, resets)
        _, target_q = self._unroll(target_params["agent"], initial_hidden, inputs, resets)

        mask = obs.action_mask
        chosen_q = jnp.take_along_axis(q, seq.action[..., None], axis=-1)[..., 0]
        greedy_source = jax.lax.stop_gradient(q) if cfg.double_q else target_q
        next_actions = jnp.argmax(jnp.where(mask, greedy_source, MASKED_VALUE), axis=-1)
        target_agent_q = jnp.take_along_axis(target_q, next_actions[..., None], axis=-1)[..., 0]

        q_tot = self.mixer.apply(params["mixer"], chosen_q[:-1], obs.global_state[:-1])
        target_tot = self.mixer.apply(
            target_params["mixer"], target_agent_q[1:], obs.global_state[1:]
        )
        reward = seq.reward[:-1, :, :1]  # the team reward, repeated per agent
        discount = cfg.gamma * (1.0 - seq.done[:-1, :, None].astype(jnp.float32))
        targets = td_lambda_targets(reward, discount, target_tot, cfg.td_lambda)
        td_error = q_tot - jax.lax.stop_gradient(targets)
        loss = 0.5 * jnp.mean(td_error**2)
        return loss, {"loss": loss, "q_taken": jnp.mean(q_tot), "target": jnp.mean(targets)}

    def update(
        self,
        state: ValueDecompositionState,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None = None,
    ) -> tuple[ValueDecompositionState, dict]:
        """Stores a rollout ``[T, B]`` and takes ``updates_per_rollout`` gradient steps.

        Gradients are averaged over ``axis_name`` (the device axis) when given, so
        every device applies the same update.
        """
        num_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
        env_steps = (
            state.env_steps + rollout.action.shape[0] * rollout.action.shape[1] * num_devices
        )
        batch_major = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), rollout)
        buffer_state = self.buffer.add(state.buffer_state, batch_major)
        state = state.replace(buffer_state=buffer_state, env_steps=env_steps)

        def gradient_step(state: ValueDecompositionState, step_key: PRNGKey):
            batch = self.buffer.sample(state.buffer_state, step_key).experience
            grads, metrics = jax.grad(self.loss, has_aux=True)(
                state.params, state.target_params, batch
            )
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
                metrics = jax.lax.pmean(metrics, axis_name)
            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            num_updates = state.updates + 1
            copy_target = num_updates % self.config.target_update_interval == 0
            target_params = jax.tree_util.tree_map(
                lambda new, old: jnp.where(copy_target, new, old), params, state.target_params
            )
            metrics["grad_norm"] = optax.tree.norm(grads)
            new_state = state.replace(
                params=params, target_params=target_params, opt_state=opt_state, updates=num_updates
            )
            return new_state, metrics

        def skip(state: ValueDecompositionState, step_key: PRNGKey):
            del step_key
            zero = jnp.float32(0.0)
            return state, {"loss": zero, "q_taken": zero, "target": zero, "grad_norm": zero}

        def one_update(state: ValueDecompositionState, step_key: PRNGKey):
            ready = self.buffer.can_sample(state.buffer_state)
            return jax.lax.cond(ready, gradient_step, skip, state, step_key)

        keys = jax.random.split(key, self.config.updates_per_rollout)
        state, metrics = jax.lax.scan(one_update, state, keys)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics["epsilon"] = self.epsilon(state.env_steps)
        return state, metrics


def _factory(mixer: str):
    def make(env_spec: EnvSpec, num_envs: int = 1, **config: Any) -> ValueDecomposition:
        config.setdefault("mixer", mixer)
        return ValueDecomposition(env_spec, num_envs, **config)

    return make


make_iql = _factory("none")
make_vdn = _factory("vdn")
make_qmix = _factory("qmix")

__all__ = [
    "AgentMemory",
    "ValueDecomposition",
    "ValueDecompositionConfig",
    "ValueDecompositionState",
    "make_iql",
    "make_qmix",
    "make_vdn",
]
