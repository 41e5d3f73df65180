"""Shared-layer multitask value decomposition (MT-VDN, MT-QMIX).

From "Multi-Task Multi-Agent Shared Layers" (arXiv 2312.15674; the authors' code is
wangjw55/MTAPN, built on pymarl2). One learner trains several tasks at once. Their
observation and action sizes differ, so the agent network is split in two:

* per task, **perception layers** ``Dense(H) -> ReLU -> GRU(H)`` read an agent's
  observation (which carries its one-hot id, :class:`marl.AgentIDWrapper`), the
  one-hot of its previous action and the one-hot of a *candidate* action;
* shared by every task, **decision layers** ``Dense(H/2) -> ReLU -> Dense(1)`` map
  the GRU output of a candidate to that candidate's Q-value.

The candidate action is an input, so the output is one scalar and the decision
layers never see a task's sizes. Every candidate is evaluated in one batched pass
(the inputs are broadcast over a candidate axis ``[..., A, F]``; no loop over
actions). The GRU is stepped once per candidate; the hidden state carried to the
next step is the GRU output of the action actually taken (MTAPN keeps the chosen
action's state; in training, the replayed action's, for the online and the target
network alike).

Each task has its own mixer (VDN's sum or QMIX's network, :mod:`marl.mixers`), its
own replay and its own TD(lambda) double-Q loss ``L_i``, as in the single-task
learner (``learner.py``: pymarl2's recipe, whose helpers this module reuses). The
multitask loss is ``sum_i w_i L_i`` with ``w_i = (1 - r_i) / sum_j (1 - r_j)`` and
``w_i = solved_weight`` (0.01) once task ``i`` is solved (:func:`task_weights`).
Two Adam optimisers step the per-task parts (every task's perception and mixer)
and the shared decision layers; each clips its own gradient norm.

Transfer: ``init_from`` names a run directory (an ``mt_vdn``/``mt_qmix`` run) whose
latest checkpoint's decision layers (its first seed's, :func:`marl.checkpoint.
load_params`) become this learner's starting decision layers, or a file
``marl-evaluate checkpoint=RUN export=FILE.msgpack`` wrote from such a run (the same
layers, without the run: pre-trained layers can be shared as one small file); the
perception layers and mixers start fresh. They are read once, on the host, when the
learner is built.
``transfer="frozen"`` (MTAPN's default, ``fix_policy_para``) never changes them;
``"finetune"`` trains them at ``learning_rate * finetune_lr_scale`` (MTAPN: 0.1).
Without ``init_from`` the decision layers are trained at ``learning_rate``.

Choices where the paper is silent or where we differ:

* **Win rates.** The paper weighs tasks by their test win rate; the learner sees
  only its training data, so each task's win rate here is an exponential moving
  average over its finished *training* (exploring) episodes: after an update in
  which ``n`` episodes finished, ``k`` of them won, ``r <- d^n r + (1 - d^n) k / n``
  with ``d = win_rate_decay`` (per episode). Counts are summed over devices, so every
  device computes the same weights. Rates start at 0 (equal weights).
* **Solved.** The paper says "win rate 1"; a task counts as solved here once its
  running training win rate reaches ``solved_win_rate`` (0.95; exploration keeps
  the training rate below the greedy one).
* **Sizes.** Data sizes are per task, per device and per seed. The buffer counts env
  steps (``buffer_size`` 50k per task, not pymarl's 5000 episodes: at ``H = 128``
  50k steps of each of the paper's six SMAC pre-training maps already take ~2.5 GB
  per seed, some 400 to 700 of their episodes per task); a batch is 32
  windows per task, each a whole episode plus its successor step by default
  (``sequence_length = 0``). Sizes are checked per task as the single-task learner
  checks them. A gradient step waits until every task's replay can be sampled.
* **Stored states.** Replay keeps, with every step, the hidden state the agents
  acted from (R2D2's stored state); windows start from it and zero it where an
  episode starts.

``params`` is ``{"decision": <shared layers>, "tasks": (<task 0>, ...)}`` with each
task's ``{"perception": ..., "mixer": ...}``: the decision layers are always
``params["decision"]``. A set of one task is the "scratch" baseline of the same
architecture.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from marl.algorithm import count_env_steps
from marl.algorithms.value_decomposition.learner import (
    AGENT,
    MASKED_VALUE,
    ActingMemory,
    AgentMemory,
    LearnerBatch,
    StepValues,
    ValueDecompositionOptions,
    check_sizes,
    example_step,
    exploration_of,
    init_mixer,
    replay_steps,
    steps,
)
from marl.algorithms.value_decomposition.mixing import MixerObjective
from marl.checkpoint import load_exported, load_params
from marl.mixers import QMixer, VDNMixer
from marl.options import OptionError, check_at_least_one, check_choice, check_positive
from marl.replay import make_sequence_buffer
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition

DECISION = "decision"  # the shared decision layers in params
TASKS = "tasks"  # the per-task parts in params, one entry per task
PERCEPTION = "perception"  # a task's perception layers
MIXER = "mixer"  # a task's mixer
TRANSFER_MODES = ("frozen", "finetune")


# ------------------------------------------------------------------ options
@dataclasses.dataclass
class MultiTaskOptions(ValueDecompositionOptions):
    """Options of the shared-layer multitask learner (``mt_vdn``, ``mt_qmix``).

    The single-task learner's options (``hidden_dim`` is ``H``: the perception width;
    the decision layers are ``H/2`` wide), with MTAPN's defaults: ``H = 128``, batches
    of 32 windows per task. ``solved_win_rate``: the running training win rate from
    which a task counts as solved and gets ``solved_weight``; ``win_rate_decay``: the
    running rate's per-episode decay. ``init_from``: a run directory, or a file
    ``marl-evaluate ... export=`` wrote from one, whose decision layers start this
    learner; ``transfer`` (read only with ``init_from``): ``frozen``
    (kept as loaded) or ``finetune`` (trained at ``learning_rate * finetune_lr_scale``).
    Without ``init_from`` the decision layers train at ``learning_rate``. See the
    module docstring.
    """

    multi_task: ClassVar[bool] = True

    hidden_dim: int = 128
    batch_size: int = 32
    buffer_size: int = 50_000
    solved_win_rate: float = 0.95
    solved_weight: float = 0.01
    win_rate_decay: float = 0.99
    init_from: str = ""
    transfer: str = "frozen"
    finetune_lr_scale: float = 0.1

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        if self.hidden_dim < 2:
            raise OptionError(
                "hidden_dim",
                f"must be at least 2 (the decision layers are hidden_dim / 2 wide), "
                f"got {self.hidden_dim}",
            )
        for name in ("solved_win_rate", "solved_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise OptionError(name, f"must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.win_rate_decay < 1.0:
            raise OptionError(
                "win_rate_decay", f"must lie in [0, 1) (per episode), got {self.win_rate_decay}"
            )
        check_choice(self, "transfer", TRANSFER_MODES)
        check_positive(self, ("finetune_lr_scale",))


@dataclasses.dataclass
class MTVDNOptions(MultiTaskOptions):
    """Shared-layer multitask learner with a VDN mixer per task (MTAPN's default)."""

    name: str = "mt_vdn"


@dataclasses.dataclass
class MTQMIXOptions(MultiTaskOptions):
    """Shared-layer multitask learner with a QMIX mixer per task (embed 32, hypernet 64)."""

    name: str = "mt_qmix"
    mixer_embed_dim: int = 32
    hypernet_dim: int = 64

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_at_least_one(self, ("mixer_embed_dim", "hypernet_dim"))


# ----------------------------------------------------------------- networks
class Perception(nn.Module):
    """A task's perception layers: ``Dense(H) -> ReLU -> GRU(H)``, once per candidate.

    Called with ``hidden [..., H]`` and ``inputs [..., A, F]`` (the inputs of every
    candidate action); returns the GRU output of every candidate ``[..., A, H]``.
    """

    hidden_dim: int

    @nn.compact
    def __call__(self, hidden: Array, inputs: Array) -> Array:
        x = nn.relu(nn.Dense(self.hidden_dim)(inputs))
        hidden = jnp.broadcast_to(hidden[..., None, :], x.shape)
        new_hidden, _ = nn.GRUCell(self.hidden_dim)(hidden, x)
        return new_hidden


class DecisionLayers(nn.Module):
    """The shared decision layers: ``Dense(H/2) -> ReLU -> Dense(1)``: ``[..., H] -> [...]``."""

    hidden_dim: int

    @nn.compact
    def __call__(self, hidden: Array) -> Array:
        x = nn.relu(nn.Dense(self.hidden_dim // 2)(hidden))
        return nn.Dense(1)(x)[..., 0]


def task_weights(
    win_rates: Array, solved_win_rate: float = 0.95, solved_weight: float = 0.01
) -> Array:
    """The tasks' loss weights from their win rates ``[K]``.

    ``w_i = (1 - r_i) / sum_j (1 - r_j)``, and ``solved_weight`` for a task whose
    rate reached ``solved_win_rate``.
    """
    win_rates = jnp.asarray(win_rates, jnp.float32)
    unsolved = 1.0 - win_rates
    weights = unsolved / jnp.maximum(unsolved.sum(), 1e-8)
    return jnp.where(win_rates >= solved_win_rate, solved_weight, weights)


def running_win_rates(
    win_rates: Array, rollouts: Sequence[Transition], decay: float, axis_name: str | None
) -> Array:
    """``win_rates [K]`` moved towards the win rate of the episodes that ended in
    ``rollouts`` (one per task, ``[T, B]``), by ``decay`` per episode; the counts are
    summed over ``axis_name`` (the devices) when it is given."""
    if any(rollout.won is None for rollout in rollouts):
        raise ValueError("the rollouts carry no `won` (marl.loop.Runner records it)")
    finished = jnp.stack([jnp.sum(r.done, dtype=jnp.float32) for r in rollouts])
    wins = jnp.stack([jnp.sum(r.won & r.done, dtype=jnp.float32) for r in rollouts])
    if axis_name is not None:
        finished, wins = jax.lax.psum((finished, wins), axis_name)
    kept = jnp.power(jnp.float32(decay), finished)
    return kept * win_rates + (1.0 - kept) * wins / jnp.maximum(finished, 1.0)


def _read_exported(path: str) -> Any:
    """The first seed's parameters in a file :func:`marl.checkpoint.export_params`
    wrote."""
    try:
        params, _ = load_exported(path)
    except (ValueError, KeyError, TypeError) as error:
        raise OptionError(
            "init_from",
            f"'{path}' is not a parameters file marl-evaluate export= wrote ({error})",
        ) from None
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[0], params)


def load_decision_layers(run_dir: str, hidden_dim: int) -> Any:
    """The decision layers saved in ``run_dir``'s latest checkpoint (its first seed), or
    in a parameters file exported from such a run, as host arrays laid out as
    :class:`DecisionLayers` ``(hidden_dim)``'s parameters.

    Raises :class:`marl.options.OptionError` (``init_from``) in one line when the path
    does not exist, holds no checkpoint or is no export, or its parameters have no
    decision layers of this width.
    """
    source = pathlib.Path(run_dir)
    if source.is_file():
        loaded = _read_exported(run_dir)
    elif not source.is_dir():
        raise OptionError(
            "init_from",
            f"'{run_dir}' does not exist (a run directory or a file marl-evaluate export= "
            "wrote is expected)",
        )
    else:
        try:
            loaded = load_params(run_dir)
        except ValueError as error:
            raise OptionError("init_from", str(error)) from None
    if not isinstance(loaded, dict) or DECISION not in loaded:
        found = ", ".join(map(str, loaded)) if isinstance(loaded, dict) else type(loaded).__name__
        raise OptionError(
            "init_from",
            f"'{run_dir}': its parameters have no '{DECISION}' layers (they hold {found}): "
            "not an mt_vdn/mt_qmix run",
        )
    expected = jax.eval_shape(
        DecisionLayers(hidden_dim).init, jax.random.PRNGKey(0), jnp.zeros((1, hidden_dim))
    )
    saved = dict(jax.tree_util.tree_flatten_with_path(loaded[DECISION])[0])
    paths, treedef = jax.tree_util.tree_flatten_with_path(expected)
    leaves = []
    for path, leaf in paths:
        value = saved.get(path)
        if value is None or np.shape(value) != leaf.shape:
            got = "missing" if value is None else f"shape {np.shape(value)}"
            raise OptionError(
                "init_from",
                f"'{run_dir}': its decision layers do not fit hidden_dim={hidden_dim} "
                f"({jax.tree_util.keystr(path)}: {got}, expected {leaf.shape}); use the "
                "source run's hidden_dim",
            )
        leaves.append(np.asarray(value, leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


# ------------------------------------------------------------------ learner
@struct.dataclass
class MultiTaskState:
    """The learner's state; ``params`` is ``{"decision": ..., "tasks": (...)}``."""

    params: Any
    target_params: Any
    task_opt_state: Any  # the per-task parts' optimiser
    decision_opt_state: Any  # the decision layers' optimiser (() when they are frozen)
    buffer_state: tuple  # one replay per task
    win_rate: Array  # [K] running win rate of each task's training episodes
    env_steps: Array  # env steps of one task so far, over all devices
    updates: Array


class _Task:
    """What the learner keeps per task: sizes, mixer objective, exploration, replay."""

    def __init__(
        self,
        index: int,
        spec: EnvSpec,
        envs_per_device: int,
        options: MultiTaskOptions,
        mixer: nn.Module,
    ):
        self.spec = spec
        self.sequence_length = options.sequence_length or spec.time_limit + 1
        try:
            check_sizes(options, spec, envs_per_device, self.sequence_length)
        except OptionError as error:
            raise OptionError(error.key, f"task {index}: {error.problem}") from None
        self.objective = MixerObjective(mixer, options.td_lambda)
        self.exploration = exploration_of(options, spec)
        self.buffer = make_sequence_buffer(
            envs_per_device, options.buffer_size, options.batch_size, self.sequence_length
        )


class MultiTaskValueDecomposition:
    """The shared-layer multitask learner (:class:`marl.algorithm.MultiTaskAlgorithm`).

    ``env_specs``: one per task (a set of one trains one task). ``initial_decision``:
    starting decision layers (host arrays, from :func:`load_decision_layers`), or
    ``None`` for fresh ones.
    """

    #: The state's replay, which a checkpoint may leave out (``arch.checkpoint_replay``).
    replay_fields = ("buffer_state",)

    def __init__(
        self,
        env_specs: Sequence[EnvSpec],
        envs_per_device: int,
        options: MultiTaskOptions,
        mixer: nn.Module,
        initial_decision: Any = None,
    ):
        if not env_specs:
            raise ValueError("a multitask learner needs at least one task")
        self.options = options
        self.env_specs = tuple(env_specs)
        self.num_tasks = len(self.env_specs)
        self.envs_per_device = envs_per_device
        self.tasks = tuple(
            _Task(index, spec, envs_per_device, options, mixer)
            for index, spec in enumerate(self.env_specs)
        )
        self.perception = Perception(options.hidden_dim)
        self.decision = DecisionLayers(options.hidden_dim)
        self.initial_decision = initial_decision
        self.task_optimizer = optax.chain(
            optax.clip_by_global_norm(options.max_grad_norm), optax.adam(options.learning_rate)
        )
        #: None when the decision layers are frozen (transferred and kept).
        self.decision_optimizer: optax.GradientTransformation | None = None
        frozen = initial_decision is not None and options.transfer == "frozen"
        if not frozen:
            scale = options.finetune_lr_scale if initial_decision is not None else 1.0
            self.decision_optimizer = optax.chain(
                optax.clip_by_global_norm(options.max_grad_norm),
                optax.adam(options.learning_rate * scale),
            )

    # ----------------------------------------------------------------- inputs
    def _base_inputs(self, task: int, agents_view: Array, prev_action: Array) -> Array:
        """The inputs every candidate shares: ``[..., n, obs_dim (+ A)]``."""
        if not self.options.last_action:
            return agents_view
        num_actions = self.env_specs[task].num_actions
        last = jax.nn.one_hot(prev_action, num_actions, dtype=agents_view.dtype)
        return jnp.concatenate([agents_view, last], axis=-1)

    def candidate_values(
        self, task: int, decision_params: Any, task_params: Any, hidden: Array, inputs: Array
    ) -> tuple[Array, Array]:
        """Every candidate action's Q-value ``[..., n, A]`` and GRU output ``[..., n, A, H]``
        from hidden states ``[..., n, H]`` and shared inputs ``[..., n, F]``, in one pass."""
        num_actions = self.env_specs[task].num_actions
        batch_shape = inputs.shape[:-1] + (num_actions,)
        candidates = jnp.broadcast_to(
            jnp.eye(num_actions, dtype=inputs.dtype), batch_shape + (num_actions,)
        )
        shared = jnp.broadcast_to(inputs[..., None, :], batch_shape + inputs.shape[-1:])
        step_inputs = jnp.concatenate([shared, candidates], axis=-1)
        outputs = self.perception.apply(task_params[PERCEPTION], hidden, step_inputs)
        return self.decision.apply(decision_params, outputs), outputs

    def unroll(
        self,
        task: int,
        decision_params: Any,
        task_params: Any,
        hidden: Array,
        inputs: Array,
        resets: Array,
        actions: Array,
    ) -> tuple[Array, Array]:
        """The networks over time-major ``inputs [T, B, n, F]`` from ``hidden [B, n, H]``,
        zeroed where ``resets [T, B]``, carrying the GRU output of ``actions [T, B, n]``:
        Q-values ``[T, B, n, A]`` and the carried hidden states ``[T, B, n, H]``."""

        def step(hidden: Array, xs: tuple[Array, Array, Array]) -> tuple[Array, tuple]:
            step_inputs, reset, action = xs
            hidden = jnp.where(reset[:, None, None], 0.0, hidden)
            q, outputs = self.candidate_values(
                task, decision_params, task_params, hidden, step_inputs
            )
            hidden = _taken(outputs, action)
            return hidden, (q, hidden)

        # Rematerialised: the backward pass recomputes each step's candidate pass
        # instead of keeping its [B, n, A, H] activations for the whole window, which
        # for whole SMAC episodes (8m: 121 steps, 14 candidates) is gigabytes per seed.
        step = jax.checkpoint(step)
        _, (q, hidden_states) = jax.lax.scan(step, hidden, (inputs, resets, actions))
        return q, hidden_states

    # ------------------------------------------------------------------- init
    def init(self, key: PRNGKey) -> MultiTaskState:
        """Fresh per-task parts, the decision layers (fresh or ``initial_decision``),
        optimisers, replays and counters."""
        hidden_dim = self.options.hidden_dim
        keys = jax.random.split(key, 1 + 2 * self.num_tasks)
        if self.initial_decision is None:
            decision = self.decision.init(keys[0], jnp.zeros((1, hidden_dim)))
        else:
            decision = jax.tree_util.tree_map(jnp.asarray, self.initial_decision)
        tasks = []
        for index, (task, spec) in enumerate(zip(self.tasks, self.env_specs, strict=True)):
            features = spec.obs_dim + spec.num_actions * (1 + int(self.options.last_action))
            perception = self.perception.init(
                keys[1 + 2 * index],
                jnp.zeros((1, hidden_dim)),
                jnp.zeros((1, spec.num_actions, features)),
            )
            mixer = init_mixer(task.objective.mixer, keys[2 + 2 * index], spec)
            tasks.append({PERCEPTION: perception, MIXER: mixer})
        params = {DECISION: decision, TASKS: tuple(tasks)}
        return MultiTaskState(
            params=params,
            target_params=params,
            task_opt_state=self.task_optimizer.init(params[TASKS]),
            decision_opt_state=(
                () if self.decision_optimizer is None else self.decision_optimizer.init(decision)
            ),
            buffer_state=tuple(
                task.buffer.init(self._example_step(index)) for index, task in enumerate(self.tasks)
            ),
            win_rate=jnp.zeros((self.num_tasks,), jnp.float32),
            env_steps=jnp.int32(0),
            updates=jnp.int32(0),
        )

    def _example_step(self, task: int) -> Transition:
        return example_step(self.env_specs[task], steps(self._agent_memory(1, task), 0))

    def _agent_memory(self, batch_size: int, task: int) -> AgentMemory:
        num_agents = self.env_specs[task].num_agents
        hidden = jnp.zeros((batch_size, num_agents, self.options.hidden_dim), jnp.float32)
        return AgentMemory({AGENT: hidden}, jnp.full((batch_size, num_agents), -1, jnp.int32))

    def initial_memory(self, batch_size: int, task: int = 0) -> ActingMemory:
        """The acting memory of ``batch_size`` environments of ``task``."""
        exploration = self.tasks[task].exploration.initial_state(
            batch_size, self.env_specs[task].num_agents
        )
        return ActingMemory(self._agent_memory(batch_size, task), exploration)

    # -------------------------------------------------------------------- act
    def act(
        self,
        state: MultiTaskState,
        obs: Observation,
        memory: ActingMemory,
        key: PRNGKey,
        explore: bool,
        task: int = 0,
    ) -> tuple[Array, ActingMemory, AgentMemory]:
        """Exploring (or greedy) joint actions ``[B, n]`` of ``task`` over its available
        actions. The memory is reset where an episode starts; the next hidden state is
        the GRU output of the action taken. The extras (kept in replay) are the agent
        memory the step was taken with."""
        starts = obs.step_count == 0
        hidden = jnp.where(starts[:, None, None], 0.0, memory.agent.hidden[AGENT])
        prev_action = jnp.where(starts[:, None], -1, memory.agent.prev_action)
        step_memory = AgentMemory({AGENT: hidden}, prev_action)
        params = state.params
        q, outputs = self.candidate_values(
            task,
            params[DECISION],
            params[TASKS][task],
            hidden,
            self._base_inputs(task, obs.agents_view, prev_action),
        )
        greedy = jnp.argmax(jnp.where(obs.action_mask, q, MASKED_VALUE), axis=-1)
        exploration = self.tasks[task].exploration
        exploration_state = exploration.episode_start(memory.exploration, starts)
        if explore:
            actions, exploration_state = exploration.select(
                exploration_state, key, greedy, obs.action_mask, state.env_steps
            )
        else:
            actions = greedy.astype(jnp.int32)
        next_memory = AgentMemory({AGENT: _taken(outputs, actions)}, actions)
        return actions, ActingMemory(next_memory, exploration_state), step_memory

    # ----------------------------------------------------------------- update
    def task_loss(
        self, task: int, params: Any, target_params: Any, batch: Transition
    ) -> tuple[Array, dict]:
        """Task ``task``'s TD(lambda) double-Q loss on its windows ``[B, L]``."""
        options = self.options
        seq = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)  # time-major
        obs = seq.obs
        inputs = self._base_inputs(task, obs.agents_view, seq.extras.prev_action)
        resets = obs.step_count == 0
        initial_hidden = seq.extras.hidden[AGENT][0]
        values = {}
        for name, tree in (("online", params), ("target", target_params)):
            q, hidden = self.unroll(
                task,
                tree[DECISION],
                tree[TASKS][task],
                initial_hidden,
                inputs,
                resets,
                seq.action,
            )
            values[name] = StepValues(
                {AGENT: q}, {AGENT: hidden}, obs.action_mask, obs.global_state
            )
        mask = obs.action_mask
        online_q = jax.lax.stop_gradient(values["online"].q[AGENT])
        greedy = jnp.argmax(jnp.where(mask, online_q, MASKED_VALUE), axis=-1)
        if options.double_q:
            next_action = greedy
        else:
            target_q = values["target"].q[AGENT]
            next_action = jnp.argmax(jnp.where(mask, target_q, MASKED_VALUE), axis=-1)
        num_steps, batch_size = seq.done.shape
        learner_batch = LearnerBatch(
            online=values["online"],
            target=values["target"],
            action=seq.action,
            greedy_action=greedy,
            next_action=next_action,
            reward=seq.reward[:-1, :, 0].reshape(num_steps - 1, batch_size, 1),
            discount=options.gamma * (1.0 - seq.done[:-1, :, None].astype(jnp.float32)),
            step_weight=seq.mask[:-1, :, None].astype(jnp.float32),
        )
        return self.tasks[task].objective.loss(
            params[TASKS][task], target_params[TASKS][task], learner_batch
        )

    def loss(
        self,
        params: Any,
        target_params: Any,
        batches: Sequence[Transition],
        weights: Array,
    ) -> tuple[Array, Array]:
        """The multitask loss ``sum_i weights[i] * L_i`` over every task's windows
        (``batches``, one per task) and the task losses ``[K]``."""
        losses = jnp.stack(
            [
                self.task_loss(task, params, target_params, batch)[0]
                for task, batch in enumerate(batches)
            ]
        )
        return jnp.sum(jax.lax.stop_gradient(weights) * losses), losses

    def weights(self, state: MultiTaskState) -> Array:
        """The tasks' loss weights ``[K]`` from their running win rates."""
        options = self.options
        return task_weights(state.win_rate, options.solved_win_rate, options.solved_weight)

    def update(
        self,
        state: MultiTaskState,
        rollouts: Sequence[Transition],
        key: PRNGKey,
        axis_name: str | None = None,
        bootstraps: Sequence[Bootstrap] | None = None,
    ) -> tuple[MultiTaskState, dict[str, Array]]:
        """Stores every task's rollout ``[T, B]``, updates the running win rates and
        takes ``updates_per_rollout`` gradient steps on the weighted loss.

        Gradients are averaged over ``axis_name`` (the device axis) when given, so
        every device applies the same update. ``bootstraps`` are not needed: targets
        bootstrap from the replayed streams.
        """
        del bootstraps
        if len(rollouts) != self.num_tasks:
            raise ValueError(
                f"expected {self.num_tasks} rollouts (one per task), got {len(rollouts)}"
            )
        env_steps = count_env_steps(state.env_steps, rollouts[0], axis_name)
        win_rate = running_win_rates(
            state.win_rate, rollouts, self.options.win_rate_decay, axis_name
        )
        buffer_state = tuple(
            task.buffer.add(
                buffer,
                jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), replay_steps(rollout)),
            )
            for task, buffer, rollout in zip(self.tasks, state.buffer_state, rollouts, strict=True)
        )
        state = state.replace(buffer_state=buffer_state, env_steps=env_steps, win_rate=win_rate)
        weights = self.weights(state)

        def gradient_step(state: MultiTaskState, step_key: PRNGKey):
            sample_keys = jax.random.split(step_key, self.num_tasks)
            batches = tuple(
                task.buffer.sample(buffer, sample_key).experience
                for task, buffer, sample_key in zip(
                    self.tasks, state.buffer_state, sample_keys, strict=True
                )
            )
            grads, losses = jax.grad(self.loss, has_aux=True)(
                state.params, state.target_params, batches, weights
            )
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
                losses = jax.lax.pmean(losses, axis_name)
            task_updates, task_opt_state = self.task_optimizer.update(
                grads[TASKS], state.task_opt_state, state.params[TASKS]
            )
            decision = state.params[DECISION]
            decision_opt_state = state.decision_opt_state
            trained = {TASKS: grads[TASKS]}
            if self.decision_optimizer is not None:
                decision_updates, decision_opt_state = self.decision_optimizer.update(
                    grads[DECISION], decision_opt_state, decision
                )
                decision = optax.apply_updates(decision, decision_updates)
                trained[DECISION] = grads[DECISION]
            params = {
                DECISION: decision,
                TASKS: optax.apply_updates(state.params[TASKS], task_updates),
            }
            num_updates = state.updates + 1
            copy_target = num_updates % self.options.target_update_interval == 0
            target_params = jax.tree_util.tree_map(
                lambda new, old: jnp.where(copy_target, new, old), params, state.target_params
            )
            metrics = {
                "loss": jnp.sum(weights * losses),
                "grad_norm": optax.tree.norm(trained),
                "decision_grad_norm": optax.tree.norm(grads[DECISION]),
                **{f"task_loss/{index}": losses[index] for index in range(self.num_tasks)},
            }
            new_state = state.replace(
                params=params,
                target_params=target_params,
                task_opt_state=task_opt_state,
                decision_opt_state=decision_opt_state,
                updates=num_updates,
            )
            return new_state, metrics

        def skip(state: MultiTaskState, step_key: PRNGKey):
            shapes = jax.eval_shape(gradient_step, state, step_key)[1]
            return state, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def one_update(state: MultiTaskState, step_key: PRNGKey):
            ready = jnp.all(
                jnp.stack(
                    [
                        task.buffer.can_sample(buffer)
                        for task, buffer in zip(self.tasks, state.buffer_state, strict=True)
                    ]
                )
            )
            return jax.lax.cond(ready, gradient_step, skip, state, step_key)

        keys = jax.random.split(key, self.options.updates_per_rollout)
        state, metrics = jax.lax.scan(one_update, state, keys)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics["epsilon"] = self.tasks[0].exploration.epsilon(state.env_steps)
        for index in range(self.num_tasks):
            metrics[f"task_weight/{index}"] = weights[index]
            metrics[f"task_win_rate/{index}"] = state.win_rate[index]
        return state, metrics


def _taken(outputs: Array, action: Array) -> Array:
    """The GRU outputs ``[..., n, A, H]`` of the actions ``[..., n]``: ``[..., n, H]``."""
    return jnp.take_along_axis(outputs, action[..., None, None], axis=-2)[..., 0, :]


# ---------------------------------------------------------------- factories
def _learner(
    options: MultiTaskOptions,
    env_specs: EnvSpec | Sequence[EnvSpec],
    envs_per_device: int,
    mixer: nn.Module,
) -> MultiTaskValueDecomposition:
    specs = (env_specs,) if isinstance(env_specs, EnvSpec) else tuple(env_specs)
    initial_decision = None
    if options.init_from:
        initial_decision = load_decision_layers(options.init_from, options.hidden_dim)
    return MultiTaskValueDecomposition(specs, envs_per_device, options, mixer, initial_decision)


def make_mt_vdn(
    options: MTVDNOptions, env_specs: Sequence[EnvSpec], envs_per_device: int
) -> MultiTaskValueDecomposition:
    """The shared-layer multitask learner with a VDN mixer per task (one spec per task)."""
    return _learner(options, env_specs, envs_per_device, VDNMixer())


def make_mt_qmix(
    options: MTQMIXOptions, env_specs: Sequence[EnvSpec], envs_per_device: int
) -> MultiTaskValueDecomposition:
    """The shared-layer multitask learner with a QMIX mixer per task (one spec per task)."""
    mixer = QMixer(options.mixer_embed_dim, options.hypernet_dim)
    return _learner(options, env_specs, envs_per_device, mixer)


__all__ = [
    "DECISION",
    "TASKS",
    "DecisionLayers",
    "MTQMIXOptions",
    "MTVDNOptions",
    "MultiTaskOptions",
    "MultiTaskState",
    "MultiTaskValueDecomposition",
    "Perception",
    "load_decision_layers",
    "make_mt_qmix",
    "make_mt_vdn",
    "running_win_rates",
    "task_weights",
]
