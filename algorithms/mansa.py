"""MANSA: independent learners that hand control to a centralised learner only where a
switching agent finds it worth a call, under a budget of calls.

MANSA (Mguni et al., ICML 2023) wraps independent learning (IL) with a second
learner, "Global", that decides at which states centralised learning (CL) acts and
learns instead. The paper's method text and code are not public; this is our
reconstruction (``../shared/reference/algorithms.md``, "MANSA"), every choice below
ours unless it says otherwise:

* **Parts.** IL and CL are any two registered single-task learners
  (``algo.il=iql algo.cl=qmix``, ``algo.il=ippo algo.cl=mappo``), built from the
  registry with their own options (``algo.il_options.<key>=...``). Both act at every
  step, so their recurrent states always follow the episode; the joint action taken
  is CL's where Global's switch ``g`` is 1 and IL's where it is 0.
* **Global** sees the team's global state, the fraction of the budget left and the
  fraction of the time limit gone, and picks ``g`` in {0, 1}; ``hold_steps`` > 1
  keeps a choice for that many steps. Its reward is the team reward minus
  ``switch_cost * g`` per step. ``global_learner=ppo`` (the default): PPO on its
  own stream (a two-layer MLP policy and value, GAE); only the steps where it really
  chose (not held, not forced by an empty budget) count in its policy loss.
  ``global_learner=dqn``: double DQN over every step of its stream (Q-learning is
  off-policy, so held and forced steps are transitions like any other), a replay of
  windows of two steps, a target network, epsilon-greedy choices.
* **Budget.** A CL call is one step acted by CL. ``budget_scope=episode``: at most
  ``budget`` calls per episode (reset at each episode's first step);
  ``budget_scope=run``: at most ``budget`` calls per env stream over the whole run
  (so ``budget x num_envs`` in all; evaluation episodes start with a full stream
  budget); ``budget_scope=unlimited``: no limit. With nothing left, ``g`` is forced
  to 0. Calls are counted exactly: the state keeps the run's CL steps summed over
  devices.
* **Training data.** ``train_on=own`` (the default): each part trains only on the
  steps it acted in (:attr:`marl.types.Transition.mask`); ``train_on=all``: both on
  every step (what off-policy learners can do; PPO parts then take their clipped
  ratios against their own sampling probabilities, which is the off-policy
  correction this option has).
* **Switching rules besides the learned one** (the baselines, with the same loop and
  budget): ``switch=never`` (IL alone), ``always`` (CL alone, within the budget),
  ``random`` (CL with probability ``cl_rate`` at each decision) and ``first_k`` (CL
  for the first ``first_k`` steps of each episode).

A part's memory keeps the action it proposed as its "last action" input, not the
joint action taken; acting and training read the same, so the two agree.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from marl.algorithm import Algorithm, AlgorithmOptions, count_env_steps
from marl.options import (
    OptionError,
    check_at_least_one,
    check_choice,
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from marl.ppo import pooled_mean_std, ppo_loss
from marl.replay import make_sequence_buffer
from marl.targets import generalized_advantages
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition

SWITCH_RULES = ("learned", "random", "first_k", "always", "never")
BUDGET_SCOPES = ("episode", "run", "unlimited")
TRAIN_ON = ("own", "all")
GLOBAL_LEARNERS = ("ppo", "dqn")
PARTS = ("il", "cl")
HISTOGRAM_BINS = 10  # where in the episode CL is called: tenths of the time limit


@dataclasses.dataclass
class MANSAOptions(AlgorithmOptions):
    """MANSA's options (see the module docstring for what each rule does).

    ``il``, ``cl``: the registered learners paired (their options in ``il_options``,
    ``cl_options``). ``switch``: who decides ``g`` (``learned``: Global).
    ``budget``: CL calls allowed per ``budget_scope``. ``switch_cost``: ``c`` in
    Global's reward ``r - c g``. ``hold_steps``: steps a decision is kept.
    ``cl_rate``: the random rule's probability of CL; ``first_k``: the first-k rule's
    CL steps. ``global_learner``: ``ppo`` or ``dqn``; ``global_*``: Global's width,
    Adam rate, discount and gradient steps per rollout (``global_epochs``); PPO's GAE
    lambda, clip and entropy bonus; DQN's replay (steps), batch, target copy interval
    (updates) and epsilon schedule (1 to ``global_epsilon_finish`` over
    ``global_epsilon_anneal_steps`` env steps). ``measure_costs``: when a run starts,
    time one IL and one CL update and count their FLOPs (:func:`update_costs`, logged
    to the run's ``metrics.jsonl``); it compiles each part's update once more.
    """

    name: str = "mansa"
    il: str = "iql"
    cl: str = "qmix"
    il_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    cl_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    switch: str = "learned"
    budget: int = 20
    budget_scope: str = "episode"
    switch_cost: float = 0.01
    hold_steps: int = 1
    cl_rate: float = 0.1
    first_k: int = 5
    train_on: str = "own"
    global_hidden_dim: int = 64
    global_learning_rate: float = 5e-4
    global_gamma: float = 0.99
    global_gae_lambda: float = 0.95
    global_clip: float = 0.2
    global_epochs: int = 4
    global_entropy_coef: float = 0.01
    global_learner: str = "ppo"
    global_buffer_size: int = 5_000
    global_batch_size: int = 64
    global_target_interval: int = 50
    global_epsilon_finish: float = 0.05
    global_epsilon_anneal_steps: int = 50_000
    measure_costs: bool = True

    def check(self, envs_per_device: int | None = None) -> None:
        super().check(envs_per_device)
        check_choice(self, "switch", SWITCH_RULES)
        check_choice(self, "budget_scope", BUDGET_SCOPES)
        check_choice(self, "train_on", TRAIN_ON)
        check_choice(self, "global_learner", GLOBAL_LEARNERS)
        if self.budget_scope != "unlimited" and self.budget < 1:
            raise OptionError(
                "budget",
                f"must be a positive integer (CL calls per {self.budget_scope}), got "
                f"{self.budget}; for no CL at all choose switch=never",
            )
        check_at_least_one(
            self,
            (
                "hold_steps",
                "first_k",
                "global_hidden_dim",
                "global_epochs",
                "global_buffer_size",
                "global_batch_size",
                "global_target_interval",
            ),
        )
        check_non_negative(
            self, ("switch_cost", "global_entropy_coef", "global_epsilon_anneal_steps")
        )
        check_positive(self, ("global_learning_rate", "global_clip", "cl_rate"))
        check_unit_interval(
            self, ("cl_rate", "global_gamma", "global_gae_lambda", "global_epsilon_finish")
        )
        for part in PARTS:
            options = self.part_options(part)
            try:
                options.check(envs_per_device)
            except OptionError as error:
                raise error.within(f"{part}_options") from None

    def part_options(self, part: str) -> AlgorithmOptions:
        """The checked-for-pairing options of ``il`` or ``cl`` (errors name their keys)."""
        from marl.registry import algorithm_names, algorithm_options, algorithm_options_class

        name = getattr(self, part)
        pairable = [
            n
            for n in algorithm_names()
            if n != self.name
            and not algorithm_options_class(n).multi_task
            and not algorithm_options_class(n).multi_objective
            and not getattr(algorithm_options_class(n), "composite", False)
        ]
        if name not in pairable:
            raise OptionError(part, f"'{name}' cannot be paired; valid: {', '.join(pairable)}")
        try:
            return algorithm_options(name, **dict(getattr(self, f"{part}_options")))
        except OptionError as error:
            raise error.within(f"{part}_options") from None

    #: built from other learners, so not itself one of MANSA's parts
    composite: ClassVar[bool] = True


# ------------------------------------------------------------------ Global
class GlobalNetwork(nn.Module):
    """Global's policy and value: ``features [..., F] -> (logits [..., 2], value [...])``;
    under DQN the two "logits" are ``Q(s, g=0)`` and ``Q(s, g=1)``."""

    hidden_dim: int

    @nn.compact
    def __call__(self, features: Array) -> tuple[Array, Array]:
        x = nn.tanh(nn.Dense(self.hidden_dim)(features))
        x = nn.tanh(nn.Dense(self.hidden_dim)(x))
        logits = nn.Dense(2, kernel_init=nn.initializers.orthogonal(0.01))(x)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]
        return logits, value


class MANSAMemory(NamedTuple):
    """The parts' memories and the switch's: per env ``[B]``."""

    il: Any
    cl: Any
    remaining: Array  # CL calls left (int32; the budget when unlimited)
    hold: Array  # steps the current choice is still kept (int32)
    switch: Array  # the current g (bool)
    calls: Array  # CL calls so far in this episode (int32)


class GlobalStep(NamedTuple):
    """One step of Global's stream as DQN's replay keeps it (per env)."""

    features: Array  # Global's input
    switch: Array  # g taken (bool)
    reward: Array  # the team reward minus c g
    done: Array  # the episode ended at this step


class MANSAExtras(NamedTuple):
    """What acting keeps per step for the update."""

    il: Any
    cl: Any
    switch: Array  # g taken at the step (bool [B])
    decided: Array  # Global really chose at this step (bool [B])
    features: Array  # Global's input [B, F]
    log_prob: Array  # of Global's choice [B]
    value: Array  # Global's value [B]
    calls: Array  # CL calls in the episode up to and with this step (int32 [B])


@struct.dataclass
class MANSAState:
    """``params``: ``{"il", "cl", "global"}``; ``il`` and ``cl``: the parts' states
    without their parameters and replays (``il_replay``, ``cl_replay`` hold those, so
    that checkpoints may leave replays out); ``cl_steps``: CL calls of the run over
    all devices; ``episodes``: finished episodes; ``calls_by_time``: CL calls per
    tenth of the time limit."""

    params: Any
    il: Any
    cl: Any
    il_replay: Any
    cl_replay: Any
    global_opt: Any
    env_steps: Array
    cl_steps: Array
    episodes: Array
    calls_by_time: Array
    global_target: Any = None  # DQN: the target network's params
    global_replay: Any = None  # DQN: windows of Global's stream
    global_updates: Any = None  # DQN: gradient steps so far


class MANSA:
    """IL, CL and Global behind the single-task algorithm contract."""

    def __init__(
        self,
        options: MANSAOptions,
        env_spec: EnvSpec,
        envs_per_device: int,
        il: Algorithm,
        cl: Algorithm,
    ):
        self.options = options
        self.env_spec = env_spec
        self.envs_per_device = envs_per_device
        self.parts = {"il": il, "cl": cl}
        self.network = GlobalNetwork(options.global_hidden_dim)
        self.optimizer = optax.adam(options.global_learning_rate)
        self.part_replays = {
            part: tuple(getattr(learner, "replay_fields", ()))
            for part, learner in self.parts.items()
        }
        self.replay_fields = tuple(
            f"{part}_replay" for part, fields in self.part_replays.items() if fields
        )
        self.dqn = options.switch == "learned" and options.global_learner == "dqn"
        if self.dqn:
            self.replay_fields += ("global_replay",)
            self.global_buffer = make_sequence_buffer(
                envs_per_device, options.global_buffer_size, options.global_batch_size, 2
            )
        self.num_features = env_spec.state_dim + 2

    # ------------------------------------------------------------- plumbing
    def part_state(self, state: MANSAState, part: str) -> Any:
        """``part``'s own state, whole again."""
        replay = getattr(state, f"{part}_replay")
        return getattr(state, part).replace(params=state.params[part], **(replay or {}))

    def _split(self, part: str, part_state: Any) -> tuple[Any, Any, Any]:
        """``part_state`` as (params, state without them and its replay, the replay)."""
        fields = self.part_replays[part]
        replay = {name: getattr(part_state, name) for name in fields}
        rest = part_state.replace(params=None, **{name: None for name in fields})
        return part_state.params, rest, replay

    def _budget(self) -> int:
        return self.options.budget if self.options.budget_scope != "unlimited" else 1

    def features(self, obs: Observation, remaining: Array) -> Array:
        """Global's input: the global state, the budget left and the time gone (fractions)."""
        left = remaining.astype(jnp.float32) / self._budget()
        if self.options.budget_scope == "unlimited":
            left = jnp.ones_like(left)
        time = obs.step_count.astype(jnp.float32) / self.env_spec.time_limit
        return jnp.concatenate([obs.global_state, left[:, None], time[:, None]], axis=-1)

    # ------------------------------------------------------------- contract
    def init(self, key: PRNGKey) -> MANSAState:
        il_key, cl_key, global_key = jax.random.split(key, 3)
        il_params, il, il_replay = self._split("il", self.parts["il"].init(il_key))
        cl_params, cl, cl_replay = self._split("cl", self.parts["cl"].init(cl_key))
        global_params = self.network.init(global_key, jnp.zeros((1, self.num_features)))
        dqn = {}
        if self.dqn:
            example = GlobalStep(
                jnp.zeros((self.num_features,)), jnp.bool_(False), jnp.float32(0), jnp.bool_(False)
            )
            dqn = {
                "global_target": global_params,
                "global_replay": self.global_buffer.init(example),
                "global_updates": jnp.int32(0),
            }
        return MANSAState(
            params={"il": il_params, "cl": cl_params, "global": global_params},
            il=il,
            cl=cl,
            il_replay=il_replay or None,
            cl_replay=cl_replay or None,
            global_opt=self.optimizer.init(global_params),
            env_steps=jnp.int32(0),
            cl_steps=jnp.int32(0),
            episodes=jnp.int32(0),
            calls_by_time=jnp.zeros((HISTOGRAM_BINS,), jnp.int32),
            **dqn,
        )

    def initial_memory(self, batch_size: int) -> MANSAMemory:
        return MANSAMemory(
            il=self.parts["il"].initial_memory(batch_size),
            cl=self.parts["cl"].initial_memory(batch_size),
            remaining=jnp.full((batch_size,), self._budget(), jnp.int32),
            hold=jnp.zeros((batch_size,), jnp.int32),
            switch=jnp.zeros((batch_size,), bool),
            calls=jnp.zeros((batch_size,), jnp.int32),
        )

    def _choice(
        self, state: MANSAState, obs: Observation, features: Array, key: PRNGKey, explore: bool
    ) -> tuple[Array, Array, Array]:
        """The rule's wanted ``g`` ``[B]``, Global's log-probability of it and value."""
        options = self.options
        logits, value = self.network.apply(state.params["global"], features)
        batch = features.shape[0]
        if options.switch == "learned" and self.dqn:
            choice = jnp.argmax(logits, axis=-1)
            if explore:
                explore_key, coin_key = jax.random.split(key)
                epsilon = self.epsilon(state.env_steps)
                explored = jax.random.bernoulli(explore_key, epsilon, (batch,))
                coin = jax.random.bernoulli(coin_key, 0.5, (batch,)).astype(jnp.int32)
                choice = jnp.where(explored, coin, choice)
        elif options.switch == "learned":
            choice = jax.random.categorical(key, logits) if explore else jnp.argmax(logits, axis=-1)
        elif options.switch == "random":
            choice = jax.random.bernoulli(key, options.cl_rate, (batch,)).astype(jnp.int32)
        elif options.switch == "first_k":
            choice = (obs.step_count < options.first_k).astype(jnp.int32)
        else:
            choice = jnp.full((batch,), int(options.switch == "always"), jnp.int32)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), choice[:, None], axis=-1)
        return choice.astype(bool), log_prob[:, 0], value

    def act(
        self, state: MANSAState, obs: Observation, memory: MANSAMemory, key: PRNGKey, explore: bool
    ) -> tuple[Array, MANSAMemory, MANSAExtras]:
        """Both parts act; Global's switch picks whose joint action is played."""
        options = self.options
        il_key, cl_key, switch_key = jax.random.split(key, 3)
        il_actions, il_memory, il_extras = self.parts["il"].act(
            self.part_state(state, "il"), obs, memory.il, il_key, explore
        )
        cl_actions, cl_memory, cl_extras = self.parts["cl"].act(
            self.part_state(state, "cl"), obs, memory.cl, cl_key, explore
        )
        start = obs.step_count == 0
        remaining = memory.remaining
        if options.budget_scope == "episode":
            remaining = jnp.where(start, options.budget, remaining)
        hold = jnp.where(start, 0, memory.hold)
        calls = jnp.where(start, 0, memory.calls)
        features = self.features(obs, remaining)
        choice, log_prob, value = self._choice(state, obs, features, switch_key, explore)
        decide = hold <= 0
        wanted = jnp.where(decide, choice, memory.switch)
        allowed = remaining > 0
        switch = wanted & allowed
        if options.budget_scope != "unlimited":
            remaining = remaining - switch.astype(jnp.int32)
        hold = jnp.where(decide, options.hold_steps - 1, hold - 1)
        hold = jnp.where(allowed, hold, 0)  # an empty budget ends a held choice
        calls = calls + switch.astype(jnp.int32)
        actions = jnp.where(switch[:, None], cl_actions, il_actions)
        next_memory = MANSAMemory(il_memory, cl_memory, remaining, hold, switch, calls)
        extras = MANSAExtras(
            il=il_extras,
            cl=cl_extras,
            switch=switch,
            decided=decide & allowed & (options.switch == "learned"),
            features=features,
            log_prob=log_prob,
            value=value,
            calls=calls,
        )
        return actions, next_memory, extras

    def _bootstrap_features(self, bootstrap: Bootstrap) -> Array:
        memory = bootstrap.memory
        remaining = memory.remaining
        if self.options.budget_scope == "episode":
            remaining = jnp.where(bootstrap.obs.step_count == 0, self.options.budget, remaining)
        return self.features(bootstrap.obs, remaining)

    def switch_rewards(self, rollout: Transition) -> Array:
        """Global's reward per step ``[T, B]``: the team reward minus ``switch_cost * g``."""
        switch = rollout.extras.switch.astype(jnp.float32)
        return rollout.reward[..., 0] - self.options.switch_cost * switch

    def epsilon(self, env_steps: Array) -> Array:
        """DQN Global's exploration rate after ``env_steps``: 1 down to the finish."""
        options = self.options
        progress = env_steps / max(options.global_epsilon_anneal_steps, 1)
        return 1.0 + (options.global_epsilon_finish - 1.0) * jnp.clip(progress, 0.0, 1.0)

    def _update_global_dqn(
        self, state: MANSAState, rollout: Transition, key: PRNGKey, axis_name: str | None
    ) -> tuple[MANSAState, dict[str, Array]]:
        """Double DQN on windows of two steps of Global's stream (every step counts)."""
        options = self.options
        stream = GlobalStep(
            rollout.extras.features,
            rollout.extras.switch,
            self.switch_rewards(rollout),
            rollout.done,
        )
        batch_major = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), stream)
        replay = self.global_buffer.add(state.global_replay, batch_major)

        def loss_fn(params: Any, window: GlobalStep) -> tuple[Array, dict]:
            now = jax.tree_util.tree_map(lambda x: x[:, 0], window)
            after = jax.tree_util.tree_map(lambda x: x[:, 1], window)
            q_now, _ = self.network.apply(params, now.features)
            q_next_online, _ = self.network.apply(params, after.features)
            q_next_target, _ = self.network.apply(state.global_target, after.features)
            next_choice = jnp.argmax(q_next_online, axis=-1)
            next_value = jnp.take_along_axis(q_next_target, next_choice[:, None], -1)[:, 0]
            discount = options.global_gamma * (1.0 - now.done.astype(jnp.float32))
            target = jax.lax.stop_gradient(now.reward + discount * next_value)
            taken = jnp.take_along_axis(q_now, now.switch.astype(jnp.int32)[:, None], -1)[:, 0]
            loss = 0.5 * jnp.mean((taken - target) ** 2)
            return loss, {"loss": loss, "q_taken": jnp.mean(taken)}

        def gradient_step(carry: tuple[Any, Any], step_key: PRNGKey):
            params, opt_state = carry
            window = self.global_buffer.sample(replay, step_key).experience
            grads, metrics = jax.grad(loss_fn, has_aux=True)(params, window)
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
                metrics = jax.lax.pmean(metrics, axis_name)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        def train(carry: tuple[Any, Any]):
            return jax.lax.scan(gradient_step, carry, jax.random.split(key, options.global_epochs))

        def wait(carry: tuple[Any, Any]):
            shapes = jax.eval_shape(train, carry)[1]
            return carry, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        ready = self.global_buffer.can_sample(replay)
        (params, opt_state), metrics = jax.lax.cond(
            ready, train, wait, (state.params["global"], state.global_opt)
        )
        updates = state.global_updates + ready.astype(jnp.int32)
        copy = ready & (updates % options.global_target_interval == 0)
        target = jax.tree_util.tree_map(
            lambda new, old: jnp.where(copy, new, old), params, state.global_target
        )
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics["epsilon"] = self.epsilon(state.env_steps)
        state = state.replace(
            params={**state.params, "global": params},
            global_opt=opt_state,
            global_target=target,
            global_replay=replay,
            global_updates=updates,
        )
        return state, metrics

    def _update_global(
        self,
        params: Any,
        opt_state: Any,
        rollout: Transition,
        bootstrap: Bootstrap,
        axis_name: str | None,
    ) -> tuple[Any, Any, dict[str, Array]]:
        """Global's PPO epochs on its stream: reward ``r - c g`` at every step, policy
        loss on the steps it chose."""
        options = self.options
        extras = rollout.extras
        reward = self.switch_rewards(rollout)
        discounts = options.global_gamma * (1.0 - rollout.done.astype(jnp.float32))
        _, last_value = self.network.apply(params, self._bootstrap_features(bootstrap))
        advantages, returns = generalized_advantages(
            reward, discounts, extras.value, last_value, options.global_gae_lambda
        )
        decided = extras.decided
        mean, std = pooled_mean_std(advantages, decided, axis_name)
        advantages = (advantages - mean) / (std + 1e-5)
        choice = extras.switch.astype(jnp.int32)
        every = jnp.ones(decided.shape, bool)

        def loss_fn(params: Any) -> tuple[Array, dict]:
            logits, values = self.network.apply(params, extras.features)
            log_probs = jax.nn.log_softmax(logits)
            log_prob = jnp.take_along_axis(log_probs, choice[..., None], axis=-1)[..., 0]
            entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
            return ppo_loss(
                log_prob,
                extras.log_prob,
                advantages,
                entropy,
                values,
                extras.value,
                returns,
                decided,
                every,
                clip_epsilon=options.global_clip,
                value_clip=1e6,  # neither clipped nor Huber: a plain squared error
                huber_delta=1e6,
                value_coef=0.5,
                entropy_coef=options.global_entropy_coef,
            )

        def epoch(carry: tuple[Any, Any], _: None):
            params, opt_state = carry
            grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
                metrics = jax.lax.pmean(metrics, axis_name)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(
            epoch, (params, opt_state), None, options.global_epochs
        )
        return params, opt_state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

    def update(
        self,
        state: MANSAState,
        rollout: Transition,
        key: PRNGKey,
        axis_name: str | None = None,
        bootstrap: Bootstrap | None = None,
    ) -> tuple[MANSAState, dict[str, Array]]:
        """Each part learns from its steps (or all, ``train_on=all``), Global from its
        stream; the CL calls are counted.

        Metrics: each part's and Global's under ``il/``, ``cl/``, ``global/``;
        ``cl_step_fraction`` (CL steps of all steps so far in the run);
        ``cl_calls_per_episode`` and ``budget_used`` (per episode budget) over the
        episodes that ended in this rollout; ``cl_calls_in_tenth/<k>``: the share of
        the run's CL calls made in the k-th tenth of the time limit."""
        if bootstrap is None:
            raise ValueError("MANSA.update needs the bootstrap after the rollout")
        options = self.options
        switch = rollout.extras.switch
        masks = {"il": ~switch, "cl": switch} if options.train_on == "own" else {}
        keys = dict(zip(PARTS, jax.random.split(key, len(PARTS)), strict=True))
        params = dict(state.params)
        parts: dict[str, Any] = {}
        replays: dict[str, Any] = {}
        metrics: dict[str, Array] = {}
        for part in PARTS:
            mask = masks.get(part, rollout.mask)
            if mask is not None and rollout.mask is not None:
                mask = mask & rollout.mask
            part_rollout = rollout._replace(extras=getattr(rollout.extras, part), mask=mask)
            part_bootstrap = Bootstrap(bootstrap.obs, getattr(bootstrap.memory, part))
            new_state, part_metrics = self.parts[part].update(
                self.part_state(state, part), part_rollout, keys[part], axis_name, part_bootstrap
            )
            params[part], parts[part], replays[part] = self._split(part, new_state)
            metrics.update({f"{part}/{name}": value for name, value in part_metrics.items()})
        global_opt = state.global_opt
        if self.dqn:
            global_key = jax.random.fold_in(key, len(PARTS))
            state, global_metrics = self._update_global_dqn(state, rollout, global_key, axis_name)
            params["global"], global_opt = state.params["global"], state.global_opt
            metrics.update({f"global/{name}": value for name, value in global_metrics.items()})
        elif options.switch == "learned":
            params["global"], global_opt, global_metrics = self._update_global(
                state.params["global"], state.global_opt, rollout, bootstrap, axis_name
            )
            metrics.update({f"global/{name}": value for name, value in global_metrics.items()})

        # The accounting, summed over devices.
        time_bin = jnp.minimum(
            rollout.obs.step_count * HISTOGRAM_BINS // self.env_spec.time_limit,
            HISTOGRAM_BINS - 1,
        )
        by_time = (
            jnp.zeros((HISTOGRAM_BINS,), jnp.int32)
            .at[time_bin.ravel()]
            .add(switch.astype(jnp.int32).ravel())
        )
        counts = (jnp.sum(switch, dtype=jnp.int32), jnp.sum(rollout.done, dtype=jnp.int32))
        ended_calls = jnp.sum(jnp.where(rollout.done, rollout.extras.calls, 0))
        if axis_name is not None:
            counts, by_time, ended_calls = jax.lax.psum((counts, by_time, ended_calls), axis_name)
        env_steps = count_env_steps(state.env_steps, rollout, axis_name)
        cl_steps = state.cl_steps + counts[0]
        episodes = state.episodes + counts[1]
        calls_by_time = state.calls_by_time + by_time
        metrics["cl_step_fraction"] = cl_steps / jnp.maximum(env_steps, 1)
        metrics["cl_calls_per_episode"] = ended_calls / jnp.maximum(counts[1], 1)
        if options.budget_scope == "episode":
            metrics["budget_used"] = metrics["cl_calls_per_episode"] / options.budget
        shares = calls_by_time / jnp.maximum(jnp.sum(calls_by_time), 1)
        for index in range(HISTOGRAM_BINS):
            metrics[f"cl_calls_in_tenth/{index}"] = shares[index]
        state = state.replace(
            params=params,
            il=parts["il"],
            cl=parts["cl"],
            il_replay=replays["il"] or None,
            cl_replay=replays["cl"] or None,
            global_opt=global_opt,
            env_steps=env_steps,
            cl_steps=cl_steps,
            episodes=episodes,
            calls_by_time=calls_by_time,
        )
        return state, metrics

    def update_costs(
        self, env: Any, rollout_length: int, key: PRNGKey
    ) -> dict[str, dict[str, float]]:
        """:func:`update_costs` of this learner, for a run to log as it starts; ``{}``
        when ``measure_costs`` is off."""
        if not self.options.measure_costs:
            return {}
        return update_costs(self, env, rollout_length, key)


def update_costs(
    learner: MANSA, env: Any, rollout_length: int, key: PRNGKey, repeats: int = 5
) -> dict[str, dict[str, float]]:
    """What one update of each part costs on one device and seed, for a rollout of
    ``rollout_length`` steps of the learner's ``envs_per_device`` envs of ``env``:
    XLA's FLOP estimate of the compiled update (``flops``) and the median wall seconds
    of ``repeats`` runs (``seconds``), timed once the part's replay, if any, is full
    enough to sample (episodes of the time limit filled with the first observation)."""
    batch = learner.envs_per_device
    reset_key, init_key, act_key, update_key = jax.random.split(key, 4)
    _, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, batch))
    obs = timestep.observation
    state = learner.init(init_key)
    actions, memory, extras = learner.act(state, obs, learner.initial_memory(batch), act_key, True)
    never = jnp.zeros((batch,), bool)
    step = Transition(obs, actions, jnp.zeros(timestep.reward.shape), never, never, extras)
    rollout = jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (rollout_length,) + x.shape), step
    )
    fills = -(-learner.env_spec.time_limit // rollout_length) + 2
    costs = {}
    for part in PARTS:
        part_learner = learner.parts[part]
        part_rollout = rollout._replace(extras=getattr(rollout.extras, part))
        bootstrap = Bootstrap(obs, getattr(memory, part))

        def one_update(
            part_state, part_learner=part_learner, part_rollout=part_rollout, bootstrap=bootstrap
        ):
            return part_learner.update(part_state, part_rollout, update_key, None, bootstrap)[0]

        update = jax.jit(one_update)
        part_state = learner.part_state(state, part)
        compiled = update.lower(part_state).compile()
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        for _ in range(fills):
            part_state = jax.block_until_ready(compiled(part_state))
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(part_state))
            seconds.append(time.perf_counter() - start)
        costs[part] = {
            "flops": float((analysis or {}).get("flops", float("nan"))),
            "seconds": float(np.median(seconds)),
        }
    return costs


def make_mansa(options: MANSAOptions, env_spec: EnvSpec, envs_per_device: int) -> MANSA:
    """MANSA over ``options.il`` and ``options.cl``, both built for ``env_spec``."""
    from marl.registry import build_algorithm

    parts = {}
    for part in PARTS:
        try:
            parts[part] = build_algorithm(options.part_options(part), env_spec, envs_per_device)
        except OptionError as error:
            raise error.within(f"{part}_options") from None
        except ValueError as error:
            message = f"'{getattr(options, part)}' cannot learn this env: {error}"
            raise OptionError(part, message) from None
    return MANSA(options, env_spec, envs_per_device, parts["il"], parts["cl"])


__all__ = [
    "MANSA",
    "MANSAExtras",
    "MANSAMemory",
    "MANSAOptions",
    "MANSAState",
    "make_mansa",
    "update_costs",
]
