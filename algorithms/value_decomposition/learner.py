"""The shared off-policy learner of the value-decomposition methods.

It is pymarl2's tuned QMIX recipe: one GRU agent network shared by all agents (its
input is the agent's observation, which carries the one-hot agent id added by
:class:`marl.AgentIDWrapper`, and the one-hot of the agent's previous action),
double-Q TD(lambda) targets over stored sequences, Adam with gradient-norm
clipping, hard target updates, and an exploration (:mod:`marl.exploration`) over
the available actions.

What differs between the methods is an :class:`Objective` plugged into the
learner (``mixing.py``, ``weighted_qmix.py``, ``qtran.py``). An objective declares
any extra recurrent networks it needs (``networks``); the learner unrolls them
beside the agent network, carries their hidden states while acting and keeps them
in replay, so every objective sees the same :class:`LearnerBatch` and needs no
code of its own for data.

Sequences are windows of the replayed stream (:mod:`marl.replay`). Each stored
step keeps the networks' hidden states from acting, and a window starts from them
(the "stored state" of R2D2); states are zeroed again wherever an episode starts
in the window. An episode's last step is never bootstrapped, including when it
ended by the time limit: the final observation of a truncated episode is not kept.

Multi-objective objectives (MO-MIX, ``momix.py``) bring a
:class:`marl.preferences.PreferenceGuide` (their ``guide``). The learner then learns
from the vector reward: the agent network also sees the episode's preference ``w``
and gives a value per action and objective, the agents act greedily on ``w . Q``,
each episode's ``w`` is drawn by the guide when it starts (while exploring) and kept
in replay with every step, and the guide's state lives in the learner's ``guide``.
Scalar objectives see none of this.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.algorithm import AlgorithmOptions, count_env_steps
from marl.exploration import EpsilonGreedy, EpsilonZGreedy, Exploration
from marl.networks import RecurrentQNetwork
from marl.options import (
    OptionError,
    check_at_least_one,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from marl.preferences import PreferenceGuide
from marl.replay import make_sequence_buffer
from marl.targets import td_lambda_targets
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition

MASKED_VALUE = -1e10
AGENT = "agent"  # the name of the acting network in params and memory


# ------------------------------------------------------------------ options
@dataclasses.dataclass
class ValueDecompositionOptions(AlgorithmOptions):
    """Options of the shared learner; the defaults are pymarl2's tuned QMIX recipe.

    Sizes of data are per device and per seed. ``sequence_length = 0`` means one
    window spans the longest episode plus its successor step (``time_limit + 1``).
    ``target_update_interval`` counts gradient updates (pymarl2 copies every 200
    episodes with 8 envs and one update per 8 episodes, i.e. every 25 updates).
    Exploration (:mod:`marl.exploration`): epsilon goes from ``epsilon_start`` to
    ``epsilon_finish`` over ``epsilon_anneal_steps`` env-steps; ``epsilon_spread``
    is Ape-X's spread of rates over the envs (7 in Ape-X, 0 off);
    ``epsilon_repeat`` turns on epsilon-z-greedy with that zeta exponent (2 in the
    paper, 0 off: plain epsilon-greedy).
    """

    hidden_dim: int = 64
    learning_rate: float = 1e-3
    max_grad_norm: float = 10.0
    gamma: float = 0.99
    td_lambda: float = 0.6
    double_q: bool = True
    last_action: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 100_000
    epsilon_spread: float = 0.0
    epsilon_repeat: float = 0.0
    buffer_size: int = 100_000
    batch_size: int = 128
    sequence_length: int = 0
    updates_per_rollout: int = 1
    target_update_interval: int = 25

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(
            self,
            (
                "hidden_dim",
                "buffer_size",
                "batch_size",
                "updates_per_rollout",
                "target_update_interval",
            ),
        )
        check_unit_interval(self, ("gamma", "td_lambda", "epsilon_start", "epsilon_finish"))
        check_positive(self, ("learning_rate", "max_grad_norm"))
        check_non_negative(self, ("epsilon_anneal_steps", "epsilon_spread", "epsilon_repeat"))
        if self.sequence_length < 0 or self.sequence_length == 1:
            raise OptionError(
                "sequence_length",
                f"must be 0 (whole episodes) or at least 2, got {self.sequence_length}",
            )


def check_sizes(
    options: ValueDecompositionOptions, env_spec: EnvSpec, envs_per_device: int, window: int
) -> None:
    """The sizes that depend on the env and the envs per device: a window fits an
    episode, the replay holds a window per env, a batch fits the replay."""
    longest = env_spec.time_limit + 1
    if options.sequence_length > longest:
        raise OptionError(
            "sequence_length",
            f"{options.sequence_length} is longer than this env's longest episode plus its "
            f"successor step ({longest}); use at most {longest}, or 0 for whole episodes",
        )
    least = envs_per_device * (window + 1)
    if options.buffer_size < least:
        raise OptionError(
            "buffer_size",
            f"{options.buffer_size} env steps cannot hold one window of {window + 1} steps for "
            f"each of the {envs_per_device} envs per device; use at least {least}",
        )
    if options.batch_size * window > options.buffer_size:
        raise OptionError(
            "batch_size",
            f"{options.batch_size} windows of {window} steps exceed the replay's "
            f"{options.buffer_size} env steps (algo.buffer_size)",
        )


def exploration_of(options: ValueDecompositionOptions, env_spec: EnvSpec) -> Exploration:
    """The exploration ``options`` describe: epsilon-z-greedy when ``epsilon_repeat``
    is set (runs at most an episode long), else epsilon-greedy."""
    schedule = dict(
        start=options.epsilon_start,
        finish=options.epsilon_finish,
        anneal_steps=options.epsilon_anneal_steps,
        spread=options.epsilon_spread,
    )
    if options.epsilon_repeat > 0:
        return EpsilonZGreedy(
            **schedule, repeat=options.epsilon_repeat, max_run=env_spec.time_limit
        )
    return EpsilonGreedy(**schedule)


# -------------------------------------------------------------- data views
class StepValues(NamedTuple):
    """What the networks give for a batch of steps ``[...]`` (time-major in the loss)."""

    # per network: [..., num_agents, num_actions] (the agent network of a
    # multi-objective learner: [..., num_agents, num_actions, num_objectives])
    q: dict[str, Array]
    hidden: dict[str, Array]  # per network: hidden state after the step [..., num_agents, H]
    action_mask: Array  # [..., num_agents, num_actions]
    global_state: Array  # [..., state_dim]
    preference: Array | None = None  # [..., num_objectives] for multi-objective learners


class LearnerBatch(NamedTuple):
    """A batch of windows ``[T, B]`` seen by the online and the target networks.

    Actions at step ``t`` pair with ``reward[t]`` (``[T - 1, B, num_objectives]``) and
    ``discount[t]`` (``[T - 1, B, 1]``): quantities of the step taken slice ``[:-1]``,
    bootstrap quantities ``[1:]``. Greedy actions are greedy on ``w . Q`` for a
    multi-objective learner.
    """

    online: StepValues
    target: StepValues
    action: Array  # taken, [T, B, num_agents]
    greedy_action: Array  # argmax of the online agent network over available actions
    next_action: Array  # the action bootstrapped from (greedy_action under double Q)
    reward: Array
    discount: Array
    # [T - 1, B, 1]: 1 for the steps the loss counts (Transition.mask), None: all
    step_weight: Array | None = None

    def mean(self, values: Array) -> Array:
        """The mean of per-step quantities ``values [T - 1, B, ...]`` over the steps the
        loss counts (all of them without ``step_weight``)."""
        if self.step_weight is None:
            return jnp.mean(values)
        weight = jnp.broadcast_to(
            self.step_weight.reshape(self.step_weight.shape[:2] + (1,) * (values.ndim - 2)),
            values.shape,
        )
        # A ratio of means: with every step counted it is exactly jnp.mean(values).
        return jnp.mean(values * weight) / jnp.maximum(jnp.mean(weight), 1e-12)

    def targets(self, next_values: Array, td_lambda: float) -> Array:
        """TD(lambda) targets from bootstrap values ``next_values [T - 1, B, k]`` (``k``
        joint values, or objectives)."""
        return td_lambda_targets(self.reward, self.discount, next_values, td_lambda)


def example_step(spec: EnvSpec, extras: Any, num_objectives: int = 1) -> Transition:
    """One stored step of zeros of an env's sizes (what a replay is initialised from),
    with ``extras`` (the acting memory kept in replay)."""
    objectives = (num_objectives,) if num_objectives > 1 else ()
    return Transition(
        obs=Observation(
            agents_view=jnp.zeros((spec.num_agents, spec.obs_dim), jnp.float32),
            action_mask=jnp.zeros((spec.num_agents, spec.num_actions), bool),
            global_state=jnp.zeros((spec.state_dim,), jnp.float32),
            step_count=jnp.int32(0),
        ),
        action=jnp.zeros((spec.num_agents,), jnp.int32),
        reward=jnp.zeros((spec.num_agents,) + objectives, jnp.float32),
        done=jnp.bool_(False),
        terminated=jnp.bool_(False),
        extras=extras,
        mask=jnp.bool_(True),
    )


def replay_steps(rollout: Transition) -> Transition:
    """What a replay keeps of a rollout: what the loss reads (no ``won``) and the
    steps to train on (``mask``, every step when the rollout has none)."""
    mask = jnp.ones(rollout.done.shape, bool) if rollout.mask is None else rollout.mask
    return rollout._replace(won=None, mask=mask)


def steps(tree: Any, index: slice | int) -> Any:
    """``tree`` sliced along its leading (time) axis."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def chosen_values(q: Array, action: Array) -> Array:
    """``q [..., n, A]`` at ``action [..., n]``: ``[..., n]``."""
    return jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0]


def utility(q: Array, preference: Array | None) -> Array:
    """Action values ``[..., n, A]``: ``q`` itself, or for a multi-objective learner
    (``q [..., n, A, m]``) their scalarisation ``w . Q`` under ``preference [..., m]``."""
    if preference is None:
        return q
    return jnp.einsum("...nam,...m->...na", q, preference)


def greedy_values(q: Array, action_mask: Array) -> Array:
    """Each agent's largest value over its available actions: ``[..., n]``."""
    return jnp.max(jnp.where(action_mask, q, MASKED_VALUE), axis=-1)


def init_mixer(mixer: nn.Module, key: PRNGKey, env_spec: EnvSpec) -> Any:
    """Parameters of a :mod:`marl.mixers` mixer for an environment's sizes."""
    num_agents, num_actions = env_spec.num_agents, env_spec.num_actions
    return mixer.init(
        key,
        jnp.zeros((num_agents,)),
        jnp.zeros((env_spec.state_dim,)),
        jnp.zeros((num_agents, num_actions)),
        jnp.zeros((num_agents,)),
    )


def mixer_value(
    mixer: nn.Module, params: Any, q: Array, values: StepValues, joint_action: Array
) -> Array:
    """A mixer's joint value of ``joint_action`` from the agents' values ``q``."""
    return mixer.apply(
        params,
        chosen_values(q, joint_action),
        values.global_state,
        jax.nn.one_hot(joint_action, q.shape[-1], dtype=q.dtype),
        greedy_values(q, values.action_mask),
    )


class Objective(Protocol):
    """What a value-decomposition method adds to the shared learner."""

    networks: dict[str, nn.Module]  # extra recurrent agent networks, by name
    #: multi-objective objectives: the guide of each episode's preference (else None)
    guide: PreferenceGuide | None

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        """Parameters of the method's own modules (mixers, joint networks)."""

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        """The learned joint value of ``joint_action [..., n]``: ``[..., k]``."""

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        """The scalar loss and its metrics."""


# ------------------------------------------------------------------ learner
@struct.dataclass
class ValueDecompositionState:
    params: Any  # {"agent": ..., <extra networks>..., <objective's modules>...}
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_steps: Array  # env-steps collected so far, over all devices
    updates: Array


@struct.dataclass
class MultiObjectiveState(ValueDecompositionState):
    """A multi-objective learner's state: the scalar learner's and the preference
    guide's (its own class, so that scalar learners' checkpoints keep their layout)."""

    guide: Any = None


class AgentMemory(NamedTuple):
    """What the networks carry from step to step; replay keeps it with every step."""

    hidden: dict[str, Array]  # per recurrent network: [B, num_agents, hidden_dim]
    prev_action: Array  # [B, num_agents], -1 before the first action of an episode


class PreferenceMemory(NamedTuple):
    """:class:`AgentMemory` of a multi-objective learner: also the episode's preference."""

    hidden: dict[str, Array]
    prev_action: Array
    preference: Array  # [B, num_objectives]


def agent_memory(
    hidden: dict[str, Array], prev_action: Array, preference: Array | None
) -> AgentMemory | PreferenceMemory:
    """The memory of a scalar learner, or with a ``preference`` of a multi-objective one."""
    if preference is None:
        return AgentMemory(hidden, prev_action)
    return PreferenceMemory(hidden, prev_action, preference)


class ActingMemory(NamedTuple):
    agent: AgentMemory
    exploration: Any  # the exploration's state, () when it keeps none


class ValueDecomposition:
    """The shared off-policy learner: recurrent agent networks, an objective and an
    exploration. Implements :class:`marl.algorithm.Algorithm`."""

    #: The state's replay, which a checkpoint may leave out (``arch.checkpoint_replay``).
    replay_fields = ("buffer_state",)

    def __init__(
        self,
        env_spec: EnvSpec,
        envs_per_device: int,
        options: ValueDecompositionOptions,
        objective: Objective,
        exploration: Exploration,
    ):
        self.options = options
        self.objective = objective
        self.exploration = exploration
        self.env_spec = env_spec
        self.envs_per_device = envs_per_device
        self.guide: PreferenceGuide | None = getattr(objective, "guide", None)
        self.num_objectives = 1 if self.guide is None else self.guide.num_objectives
        self.networks = {
            AGENT: RecurrentQNetwork(
                env_spec.num_actions * self.num_objectives, options.hidden_dim
            ),
            **objective.networks,
        }
        self.sequence_length = options.sequence_length or env_spec.time_limit + 1
        check_sizes(options, env_spec, envs_per_device, self.sequence_length)
        self.buffer = make_sequence_buffer(
            envs_per_device, options.buffer_size, options.batch_size, self.sequence_length
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(options.max_grad_norm),
            optax.adam(options.learning_rate),
        )

    # ----------------------------------------------------------------- inputs
    def _agent_inputs(
        self, agents_view: Array, prev_action: Array, preference: Array | None = None
    ) -> Array:
        parts = [agents_view]
        if self.options.last_action:
            parts.append(
                jax.nn.one_hot(prev_action, self.env_spec.num_actions, dtype=agents_view.dtype)
            )
        if preference is not None:
            parts.append(
                jnp.broadcast_to(
                    preference[..., None, :], agents_view.shape[:-1] + preference.shape[-1:]
                )
            )
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)

    def _unroll(
        self, name: str, params: Any, hidden: Array, inputs: Array, resets: Array
    ) -> tuple[Array, Array, Array]:
        """Network ``name`` over time-major inputs ``[T, B, n, F]`` from hidden ``[B, n, H]``
        with resets ``[T, B]``: the last hidden state ``[B, n, H]``, Q-values
        ``[T, B, n, A]`` and the hidden state after every step ``[T, B, n, H]``."""
        num_steps, batch, num_agents, _ = inputs.shape
        flat_hidden = hidden.reshape(batch * num_agents, -1)
        flat_inputs = inputs.reshape(num_steps, batch * num_agents, -1)
        flat_resets = jnp.repeat(resets, num_agents, axis=1)
        last, q, step_hidden = self.networks[name].apply(
            params, flat_hidden, flat_inputs, flat_resets
        )
        return (
            last.reshape(batch, num_agents, -1),
            q.reshape(num_steps, batch, num_agents, -1),
            step_hidden.reshape(num_steps, batch, num_agents, -1),
        )

    def _step_values(
        self,
        params: Any,
        hidden: dict[str, Array],
        inputs: Array,
        resets: Array,
        obs: Observation,
        preference: Array | None = None,
    ) -> tuple[dict[str, Array], StepValues]:
        """Every network unrolled over ``[T, B]``: last hidden states and :class:`StepValues`."""
        last, q, step_hidden = {}, {}, {}
        for name in self.networks:
            last[name], q[name], step_hidden[name] = self._unroll(
                name, params[name], hidden[name], inputs, resets
            )
        if self.num_objectives > 1:
            q[AGENT] = q[AGENT].reshape(
                *q[AGENT].shape[:-1], self.env_spec.num_actions, self.num_objectives
            )
        values = StepValues(q, step_hidden, obs.action_mask, obs.global_state, preference)
        return last, values

    # ------------------------------------------------------------------- init
    def init(self, key: PRNGKey) -> ValueDecompositionState:
        spec = self.env_spec
        network_keys = jax.random.split(key, len(self.networks) + 1)
        example_memory = self._agent_memory(1)
        example_inputs = self._agent_inputs(
            jnp.zeros((1, spec.num_agents, spec.obs_dim)),
            example_memory.prev_action,
            getattr(example_memory, "preference", None),
        )
        params = {}
        for network_key, (name, network) in zip(
            network_keys[1:], self.networks.items(), strict=True
        ):
            params[name] = network.init(
                network_key,
                jnp.zeros((spec.num_agents, network.hidden_dim)),
                example_inputs,
                jnp.zeros((1, spec.num_agents), bool),
            )
        params.update(self.objective.init(network_keys[0], spec))
        state = ValueDecompositionState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(self._example_step()),
            env_steps=jnp.int32(0),
            updates=jnp.int32(0),
        )
        if self.guide is None:
            return state
        return MultiObjectiveState(
            **{field.name: getattr(state, field.name) for field in dataclasses.fields(state)},
            guide=self.guide.init(self.envs_per_device),
        )

    def _example_step(self) -> Transition:
        return example_step(self.env_spec, steps(self._agent_memory(1), 0), self.num_objectives)

    def _agent_memory(
        self, batch_size: int, preference: Array | None = None
    ) -> AgentMemory | PreferenceMemory:
        num_agents = self.env_spec.num_agents
        if self.guide is not None:
            if preference is None:  # equal weights, until the guide draws one
                preference = jnp.full((self.num_objectives,), 1.0 / self.num_objectives)
            preference = jnp.broadcast_to(
                jnp.asarray(preference, jnp.float32), (batch_size, self.num_objectives)
            )
        return agent_memory(
            hidden={
                name: jnp.zeros((batch_size, num_agents, network.hidden_dim), jnp.float32)
                for name, network in self.networks.items()
            },
            prev_action=jnp.full((batch_size, num_agents), -1, jnp.int32),
            preference=preference,
        )

    def initial_memory(self, batch_size: int, preference: Array | None = None) -> ActingMemory:
        """The acting memory of ``batch_size`` environments. A multi-objective learner
        acts on ``preference`` (``[num_objectives]`` or ``[B, num_objectives]``; equal
        weights by default); while exploring it draws a new one at each episode start,
        while greedy it keeps it."""
        if preference is not None and self.guide is None:
            raise ValueError("a preference conditions multi-objective learners only")
        exploration = self.exploration.initial_state(batch_size, self.env_spec.num_agents)
        return ActingMemory(self._agent_memory(batch_size, preference), exploration)

    # -------------------------------------------------------------------- act
    def _one_step(
        self, params: Any, obs: Observation, memory: AgentMemory | PreferenceMemory
    ) -> tuple[AgentMemory | PreferenceMemory, dict[str, Array], StepValues]:
        """Memory reset where episodes start, the next hidden states and the step's values."""
        starts = obs.step_count == 0
        preference = getattr(memory, "preference", None)
        memory = agent_memory(
            hidden={
                name: jnp.where(starts[:, None, None], 0.0, hidden)
                for name, hidden in memory.hidden.items()
            },
            prev_action=jnp.where(starts[:, None], -1, memory.prev_action),
            preference=preference,
        )
        inputs = self._agent_inputs(obs.agents_view, memory.prev_action, preference)[None]
        no_resets = jnp.zeros((1, obs.step_count.shape[0]), bool)
        time_major_obs = jax.tree_util.tree_map(lambda x: x[None], obs)
        preference = None if preference is None else preference[None]
        hidden, values = self._step_values(
            params, memory.hidden, inputs, no_resets, time_major_obs, preference
        )
        return memory, hidden, steps(values, 0)

    def act(
        self,
        state: ValueDecompositionState,
        obs: Observation,
        memory: ActingMemory,
        key: PRNGKey,
        explore: bool,
    ) -> tuple[Array, ActingMemory, AgentMemory | PreferenceMemory]:
        """Exploring (or greedy) joint actions for a batch ``[B]`` of environments.

        The memory is reset where an episode starts (``step_count == 0``); there a
        multi-objective learner that explores draws the episode's preference. The
        returned extras are the agent memory the step was taken with, kept in replay.
        """
        starts = obs.step_count == 0
        agent = memory.agent
        if self.guide is not None and explore:
            key, preference_key = jax.random.split(key)
            drawn = self.guide.sample(state.guide, preference_key, starts.shape[0])
            agent = agent._replace(preference=jnp.where(starts[:, None], drawn, agent.preference))
        step_memory, hidden, values = self._one_step(state.params, obs, agent)
        exploration = self.exploration.episode_start(memory.exploration, starts)
        action_values = utility(values.q[AGENT], values.preference)
        greedy = jnp.argmax(jnp.where(obs.action_mask, action_values, MASKED_VALUE), axis=-1)
        if explore:
            actions, exploration = self.exploration.select(
                exploration, key, greedy, obs.action_mask, state.env_steps
            )
        else:
            actions = greedy.astype(jnp.int32)
        next_memory = agent_memory(hidden, actions, getattr(step_memory, "preference", None))
        return actions, ActingMemory(next_memory, exploration), step_memory

    def joint_values(
        self,
        params: Any,
        obs: Observation,
        joint_action: Array,
        memory: AgentMemory | None = None,
    ) -> Array:
        """The learned joint value of ``joint_action [B, n]`` at observations ``[B]``.

        ``memory`` defaults to the start of an episode. For IQL the result holds
        every agent's own value (``[B, n]``); otherwise it is ``[B, 1]``.
        """
        if memory is None:
            memory = self._agent_memory(joint_action.shape[0])
        _, _, values = self._one_step(params, obs, memory)
        return self.objective.joint_value(params, values, joint_action)

    # ----------------------------------------------------------------- update
    def loss(self, params: Any, target_params: Any, batch: Transition) -> tuple[Array, dict]:
        """The objective's loss on a batch of windows ``[B, L]``."""
        options = self.options
        seq = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)  # time-major
        obs = seq.obs
        preference = getattr(seq.extras, "preference", None)
        inputs = self._agent_inputs(obs.agents_view, seq.extras.prev_action, preference)
        resets = obs.step_count == 0
        initial_hidden = steps(seq.extras.hidden, 0)
        _, online = self._step_values(params, initial_hidden, inputs, resets, obs, preference)
        _, target = self._step_values(
            target_params, initial_hidden, inputs, resets, obs, preference
        )

        mask = obs.action_mask
        online_values = jax.lax.stop_gradient(utility(online.q[AGENT], preference))
        greedy = jnp.argmax(jnp.where(mask, online_values, MASKED_VALUE), axis=-1)
        if options.double_q:
            next_action = greedy
        else:
            target_values = utility(target.q[AGENT], preference)
            next_action = jnp.argmax(jnp.where(mask, target_values, MASKED_VALUE), axis=-1)
        num_steps, batch = seq.done.shape
        learner_batch = LearnerBatch(
            online=online,
            target=target,
            action=seq.action,
            greedy_action=greedy,
            next_action=next_action,
            # the team reward (repeated per agent), one column per objective
            reward=seq.reward[:-1, :, 0].reshape(num_steps - 1, batch, -1),
            discount=options.gamma * (1.0 - seq.done[:-1, :, None].astype(jnp.float32)),
            step_weight=seq.mask[:-1, :, None].astype(jnp.float32),
        )
        return self.objective.loss(params, target_params, learner_batch)

    def update(
        self,
        state: ValueDecompositionState,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None = None,
        bootstrap: Bootstrap | None = None,
    ) -> tuple[ValueDecompositionState, dict]:
        """Stores a rollout ``[T, B]`` and takes ``updates_per_rollout`` gradient steps.

        Gradients are averaged over ``axis_name`` (the device axis) when given, so
        every device applies the same update. ``bootstrap`` is not needed: targets
        bootstrap from the replayed stream.
        """
        env_steps = count_env_steps(state.env_steps, rollout, axis_name)
        rollout = replay_steps(rollout)
        batch_major = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), rollout)
        buffer_state = self.buffer.add(state.buffer_state, batch_major)
        state = state.replace(buffer_state=buffer_state, env_steps=env_steps)
        if self.guide is not None:
            guide = self.guide.observe(
                state.guide,
                rollout.reward[:, :, 0],
                rollout.done,
                rollout.extras.preference,
                axis_name,
            )
            state = state.replace(guide=guide)

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
            copy_target = num_updates % self.options.target_update_interval == 0
            target_params = jax.tree_util.tree_map(
                lambda new, old: jnp.where(copy_target, new, old), params, state.target_params
            )
            metrics["grad_norm"] = optax.tree.norm(grads)
            new_state = state.replace(
                params=params, target_params=target_params, opt_state=opt_state, updates=num_updates
            )
            return new_state, metrics

        def skip(state: ValueDecompositionState, step_key: PRNGKey):
            shapes = jax.eval_shape(gradient_step, state, step_key)[1]
            return state, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def one_update(state: ValueDecompositionState, step_key: PRNGKey):
            ready = self.buffer.can_sample(state.buffer_state)
            return jax.lax.cond(ready, gradient_step, skip, state, step_key)

        keys = jax.random.split(key, self.options.updates_per_rollout)
        state, metrics = jax.lax.scan(one_update, state, keys)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics["epsilon"] = self.exploration.epsilon(state.env_steps)
        return state, metrics
