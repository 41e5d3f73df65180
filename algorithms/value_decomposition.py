"""Value decomposition: IQL, VDN, QMIX, QPLEX, weighted QMIX and QTRAN on one learner.

The shared learner is pymarl2's tuned QMIX recipe: one GRU agent network shared by
all agents (its input is the agent's observation, which carries the one-hot agent
id added by :class:`marl.AgentIDWrapper`, and the one-hot of the agent's previous
action), double-Q TD(lambda) targets over stored sequences, Adam with
gradient-norm clipping, hard target updates and epsilon-greedy exploration over
the available actions (optionally with Ape-X's spread of epsilons over the envs and
with temporally-extended exploration, epsilon-z-greedy).

What differs between the methods is an *objective* plugged into the learner:

* :class:`MixerObjective` (IQL, VDN, QMIX, QPLEX): a mixer (:mod:`marl.mixers`)
  turns the agents' values into ``Q_tot``, trained on the squared TD error;
* :class:`WeightedQMixObjective` (CW-QMIX, OW-QMIX): adds an unrestricted joint
  value ``Q*`` with its own recurrent agent network, which supplies the targets,
  and weights QMIX's TD errors;
* :class:`QTranObjective` (QTRAN-base): a joint ``Q_jt`` and ``V`` with QTRAN's
  TD, optimal-action and non-optimal-action losses.

An objective declares any extra recurrent networks it needs (``networks``); the
learner unrolls them beside the agent network, carries their hidden states
while acting and keeps them in replay, so every objective sees the same
:class:`LearnerBatch` and needs no code of its own for data.

Sequences are windows of the replayed stream (:mod:`marl.replay`). Each stored
step keeps the networks' hidden states from acting, and a window starts from them
(the "stored state" of R2D2); states are zeroed again wherever an episode starts
in the window. An episode's last step is never bootstrapped, including when it
ended by the time limit: the final observation of a truncated episode is not kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.mixers import (
    FeedForwardMixer,
    IndependentMixer,
    QMixer,
    QPLEXMixer,
    QTranJointNetwork,
    VDNMixer,
)
from marl.networks import RecurrentQNetwork
from marl.options import (
    check_at_least_one,
    check_non_negative,
    check_positive,
    check_unit_interval,
    parse_options,
)
from marl.replay import make_sequence_buffer
from marl.targets import td_lambda_targets
from marl.types import Array, Bootstrap, EnvSpec, Observation, PRNGKey, Transition

MASKED_VALUE = -1e10
AGENT = "agent"  # the name of the acting network in params and memory

MIXERS = ("none", "vdn", "qmix")
WEIGHTINGS = ("cw", "ow")


# ------------------------------------------------------------------ configs
@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Options of the shared learner; the defaults are pymarl2's tuned QMIX recipe.

    Sizes of data are per device and per seed. ``sequence_length = 0`` means one
    window spans the longest episode plus its successor step (``time_limit + 1``).
    ``target_update_interval`` counts gradient updates (pymarl2 copies every 200
    episodes with 8 envs and one update per 8 episodes, i.e. every 25 updates).

    ``epsilon_spread`` (Ape-X's alpha, 7 in Horgan et al. 2018; 0 turns it off)
    gives each of a device's ``B`` envs its own exploration rate
    ``epsilon ** (1 + epsilon_spread * i / (B - 1))`` for env ``i``, where
    ``epsilon`` is the annealed schedule: the first env explores at the schedule's
    rate, the last nearly greedily, so the replay holds both exploratory play and
    play that follows the greedy policy for long stretches.

    ``epsilon_repeat`` turns on epsilon-z-greedy (Dabney et al. 2021): an agent
    that starts to explore repeats its random action for ``k`` steps, ``k`` drawn
    from a zeta distribution with this exponent (2 in the paper) truncated at the
    env's time limit, while the action stays available; 0 means one step (plain
    epsilon-greedy). Runs of one action reach states a step-by-step random walk
    does not, e.g. a carrier running on at goal where the greedy policy shoots.
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

    def check(self) -> None:
        """Raises ``ValueError`` naming the first option whose value is invalid."""
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
        check_positive(self, ("learning_rate",))
        check_non_negative(self, ("epsilon_spread", "epsilon_repeat"))
        if self.sequence_length < 0 or self.sequence_length == 1:
            raise ValueError(
                "sequence_length must be 0 (whole episodes) or at least 2, "
                f"got {self.sequence_length}"
            )


@dataclasses.dataclass(frozen=True)
class ValueDecompositionConfig(LearnerConfig):
    """IQL (``mixer: none``), VDN (``vdn``) or QMIX (``qmix``, embed 32, hypernet 64)."""

    mixer: str = "qmix"
    mixer_embed_dim: int = 32
    hypernet_dim: int = 64

    def check(self) -> None:
        super().check()
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer '{self.mixer}' is unknown; valid: {', '.join(sorted(MIXERS))}")
        check_at_least_one(self, ("mixer_embed_dim", "hypernet_dim"))


@dataclasses.dataclass(frozen=True)
class QPLEXConfig(LearnerConfig):
    """QPLEX: ``hypernet_dim`` is the width of the ``w_i(s)``, ``v_i(s)`` MLPs;
    ``attention_heads`` and ``attention_dim`` shape the importance weights."""

    hypernet_dim: int = 64
    attention_heads: int = 4
    attention_dim: int = 64

    def check(self) -> None:
        super().check()
        check_at_least_one(self, ("hypernet_dim", "attention_heads", "attention_dim"))


@dataclasses.dataclass(frozen=True)
class WeightedQMixConfig(ValueDecompositionConfig):
    """CW-QMIX (``weighting: cw``) or OW-QMIX (``ow``) around a QMIX (or VDN) mixer.

    ``alpha`` is the weight of the down-weighted joint actions; ``Q*`` has its own
    GRU agent network (``central_hidden_dim``) and a feed-forward mixer of width
    ``central_mixer_dim``. Defaults from Rashid et al. 2020 (alpha 0.1, 64, 256).
    """

    weighting: str = "cw"
    alpha: float = 0.1
    central_hidden_dim: int = 64
    central_mixer_dim: int = 256
    central_loss_weight: float = 1.0

    def check(self) -> None:
        super().check()
        if self.mixer not in ("vdn", "qmix"):
            raise ValueError(f"mixer '{self.mixer}' cannot be weighted; valid: vdn, qmix")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting '{self.weighting}' is unknown; valid: {', '.join(WEIGHTINGS)}"
            )
        check_unit_interval(self, ("alpha",))
        check_at_least_one(self, ("central_hidden_dim", "central_mixer_dim"))
        if self.central_loss_weight < 0:
            raise ValueError(
                f"central_loss_weight must not be negative, got {self.central_loss_weight}"
            )


@dataclasses.dataclass(frozen=True)
class QTranConfig(LearnerConfig):
    """QTRAN-base: ``joint_embed_dim`` is the width of ``Q_jt`` and ``V``; the loss is
    ``L_td + opt_loss_weight * L_opt + nopt_loss_weight * L_nopt`` (paper: 1, 0.1)."""

    joint_embed_dim: int = 64
    opt_loss_weight: float = 1.0
    nopt_loss_weight: float = 0.1

    def check(self) -> None:
        super().check()
        check_at_least_one(self, ("joint_embed_dim",))
        for name in ("opt_loss_weight", "nopt_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


# -------------------------------------------------------------- data views
class StepValues(NamedTuple):
    """What the networks give for a batch of steps ``[...]`` (time-major in the loss)."""

    q: dict[str, Array]  # per network: [..., num_agents, num_actions]
    hidden: dict[str, Array]  # per network: hidden state after the step [..., num_agents, H]
    action_mask: Array  # [..., num_agents, num_actions]
    global_state: Array  # [..., state_dim]


class LearnerBatch(NamedTuple):
    """A batch of windows ``[T, B]`` seen by the online and the target networks.

    Actions at step ``t`` pair with ``reward[t]`` and ``discount[t]`` (``[T - 1, B, 1]``):
    quantities of the step taken slice ``[:-1]``, bootstrap quantities ``[1:]``.
    """

    online: StepValues
    target: StepValues
    action: Array  # taken, [T, B, num_agents]
    greedy_action: Array  # argmax of the online agent network over available actions
    next_action: Array  # the action bootstrapped from (greedy_action under double Q)
    reward: Array
    discount: Array

    def targets(self, next_values: Array, td_lambda: float) -> Array:
        """TD(lambda) targets from bootstrap values ``next_values [T - 1, B, k]``."""
        return td_lambda_targets(self.reward, self.discount, next_values, td_lambda)


def steps(tree: Any, index: slice | int) -> Any:
    """``tree`` sliced along its leading (time) axis."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def chosen_values(q: Array, action: Array) -> Array:
    """``q [..., n, A]`` at ``action [..., n]``: ``[..., n]``."""
    return jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0]


def greedy_values(q: Array, action_mask: Array) -> Array:
    """Each agent's largest value over its available actions: ``[..., n]``."""
    return jnp.max(jnp.where(action_mask, q, MASKED_VALUE), axis=-1)


def weighted_qmix_weights(
    weighting: str,
    alpha: float,
    td_error: Array,
    is_greedy_action: Array,
    target: Array,
    greedy_central_value: Array,
) -> Array:
    """Weighted QMIX's weight of each sample's squared TD error: 1 or ``alpha``.

    OW-QMIX ("optimistic"): 1 where ``Q_tot`` underestimates the target
    (``td_error = Q_tot - target < 0``). CW-QMIX ("centrally weighted"): 1 where
    the taken joint action is the greedy one or the target beats ``Q*`` at the
    greedy joint action.
    """
    if weighting == "ow":
        full_weight = td_error < 0
    elif weighting == "cw":
        full_weight = is_greedy_action | (target > greedy_central_value)
    else:
        raise ValueError(f"weighting '{weighting}' is unknown; valid: {', '.join(WEIGHTINGS)}")
    return jnp.where(full_weight, 1.0, alpha)


# --------------------------------------------------------------- objectives
class Objective(Protocol):
    """What a value-decomposition method adds to the shared learner."""

    networks: dict[str, nn.Module]  # extra recurrent agent networks, by name

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        """Parameters of the method's own modules (mixers, joint networks)."""

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        """The learned joint value of ``joint_action [..., n]``: ``[..., k]``."""

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        """The scalar loss and its metrics."""


def _mixer_value(
    mixer: nn.Module, params: Any, q: Array, values: StepValues, joint_action: Array
) -> Array:
    return mixer.apply(
        params,
        chosen_values(q, joint_action),
        values.global_state,
        jax.nn.one_hot(joint_action, q.shape[-1], dtype=q.dtype),
        greedy_values(q, values.action_mask),
    )


class MixerObjective:
    """IQL, VDN, QMIX or QPLEX: ``0.5 (Q_tot - y)^2`` with ``y`` from the target mixer."""

    def __init__(self, mixer: nn.Module, td_lambda: float):
        self.mixer = mixer
        self.td_lambda = td_lambda
        self.networks: dict[str, nn.Module] = {}

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        return {"mixer": _init_mixer(self.mixer, key, env_spec)}

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return _mixer_value(self.mixer, params["mixer"], values.q[AGENT], values, joint_action)

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        q_tot = self.joint_value(params, steps(batch.online, slice(None, -1)), batch.action[:-1])
        next_tot = self.joint_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_tot, self.td_lambda))
        td_error = q_tot - targets
        loss = 0.5 * jnp.mean(td_error**2)
        return loss, {"loss": loss, "q_taken": jnp.mean(q_tot), "target": jnp.mean(targets)}


class WeightedQMixObjective:
    """CW-QMIX or OW-QMIX (Rashid et al. 2020).

    An unrestricted ``Q*`` (its own GRU agent network ``central`` and a feed-forward
    mixer) gives the targets: the target ``Q*`` at the next greedy joint action of
    QMIX's agents. Both ``Q*`` and QMIX's ``Q_tot`` regress on them; QMIX's squared
    errors are weighted by :func:`weighted_qmix_weights`.
    """

    def __init__(self, config: WeightedQMixConfig, env_spec: EnvSpec):
        self.config = config
        self.mixer = _qmix_family_mixer(config)
        self.central_mixer = FeedForwardMixer(config.central_mixer_dim)
        self.networks = {
            "central": RecurrentQNetwork(env_spec.num_actions, config.central_hidden_dim)
        }

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        mixer_key, central_key = jax.random.split(key)
        return {
            "mixer": _init_mixer(self.mixer, mixer_key, env_spec),
            "central_mixer": _init_mixer(self.central_mixer, central_key, env_spec),
        }

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return _mixer_value(self.mixer, params["mixer"], values.q[AGENT], values, joint_action)

    def central_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        """``Q*(s, joint_action)``: ``[..., 1]``."""
        return _mixer_value(
            self.central_mixer, params["central_mixer"], values.q["central"], values, joint_action
        )

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        cfg = self.config
        taken = steps(batch.online, slice(None, -1))
        q_tot = self.joint_value(params, taken, batch.action[:-1])
        central_tot = self.central_value(params, taken, batch.action[:-1])
        next_central = self.central_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_central, cfg.td_lambda))
        td_error = q_tot - targets
        greedy_now = batch.greedy_action[:-1]
        weights = weighted_qmix_weights(
            cfg.weighting,
            cfg.alpha,
            td_error,
            jnp.all(batch.action[:-1] == greedy_now, axis=-1)[..., None],
            targets,
            self.central_value(target_params, steps(batch.target, slice(None, -1)), greedy_now),
        )
        qmix_loss = 0.5 * jnp.mean(jax.lax.stop_gradient(weights) * td_error**2)
        central_loss = 0.5 * jnp.mean((central_tot - targets) ** 2)
        loss = qmix_loss + cfg.central_loss_weight * central_loss
        return loss, {
            "loss": loss,
            "qmix_loss": qmix_loss,
            "central_loss": central_loss,
            "mean_weight": jnp.mean(weights),
            "q_taken": jnp.mean(q_tot),
            "target": jnp.mean(targets),
        }


class QTranObjective:
    """QTRAN-base (Son et al. 2019): ``L_td + w_opt L_opt + w_nopt L_nopt``.

    ``L_td`` fits ``Q_jt`` to TD targets from the target ``Q_jt`` at the next greedy
    joint action. With ``Q'(s, u) = sum_i Q_i(u_i) + V(s)``, ``L_opt`` makes
    ``Q'`` equal ``Q_jt`` at the greedy joint action and ``L_nopt`` keeps ``Q'``
    from falling below ``Q_jt`` elsewhere; ``Q_jt`` is held fixed in both.
    """

    def __init__(self, config: QTranConfig):
        self.config = config
        self.joint = QTranJointNetwork(config.joint_embed_dim)
        self.networks: dict[str, nn.Module] = {}

    def init(self, key: PRNGKey, env_spec: EnvSpec) -> dict[str, Any]:
        num_agents, num_actions = env_spec.num_agents, env_spec.num_actions
        params = self.joint.init(
            key,
            jnp.zeros((env_spec.state_dim,)),
            jnp.zeros((num_agents, self.config.hidden_dim)),
            jnp.zeros((num_agents, num_actions)),
        )
        return {"joint": params}

    def _joint(self, params: Any, values: StepValues, joint_action: Array) -> tuple[Array, Array]:
        num_actions = values.q[AGENT].shape[-1]
        return self.joint.apply(
            params["joint"],
            values.global_state,
            values.hidden[AGENT],
            jax.nn.one_hot(joint_action, num_actions),
        )

    def joint_value(self, params: Any, values: StepValues, joint_action: Array) -> Array:
        return self._joint(params, values, joint_action)[0]

    def loss(self, params: Any, target_params: Any, batch: LearnerBatch) -> tuple[Array, dict]:
        cfg = self.config
        taken = steps(batch.online, slice(None, -1))
        joint_q, state_value = self._joint(params, taken, batch.action[:-1])
        next_joint = self.joint_value(
            target_params, steps(batch.target, slice(1, None)), batch.next_action[1:]
        )
        targets = jax.lax.stop_gradient(batch.targets(next_joint, cfg.td_lambda))
        td_loss = 0.5 * jnp.mean((joint_q - targets) ** 2)

        agent_q = taken.q[AGENT]
        greedy_joint = self.joint_value(params, taken, batch.greedy_action[:-1])
        greedy_sum = greedy_values(agent_q, taken.action_mask).sum(-1, keepdims=True)
        opt_error = greedy_sum + state_value - jax.lax.stop_gradient(greedy_joint)
        chosen_sum = chosen_values(agent_q, batch.action[:-1]).sum(-1, keepdims=True)
        nopt_error = jnp.minimum(chosen_sum + state_value - jax.lax.stop_gradient(joint_q), 0.0)
        opt_loss = 0.5 * jnp.mean(opt_error**2)
        nopt_loss = 0.5 * jnp.mean(nopt_error**2)
        loss = td_loss + cfg.opt_loss_weight * opt_loss + cfg.nopt_loss_weight * nopt_loss
        return loss, {
            "loss": loss,
            "td_loss": td_loss,
            "opt_loss": opt_loss,
            "nopt_loss": nopt_loss,
            "q_taken": jnp.mean(joint_q),
            "target": jnp.mean(targets),
        }


def _qmix_family_mixer(config: ValueDecompositionConfig) -> nn.Module:
    if config.mixer == "qmix":
        return QMixer(config.mixer_embed_dim, config.hypernet_dim)
    return VDNMixer() if config.mixer == "vdn" else IndependentMixer()


def _init_mixer(mixer: nn.Module, key: PRNGKey, env_spec: EnvSpec) -> Any:
    num_agents, num_actions = env_spec.num_agents, env_spec.num_actions
    return mixer.init(
        key,
        jnp.zeros((num_agents,)),
        jnp.zeros((env_spec.state_dim,)),
        jnp.zeros((num_agents, num_actions)),
        jnp.zeros((num_agents,)),
    )


# ------------------------------------------------------------------ learner
@struct.dataclass
class ValueDecompositionState:
    params: Any  # {"agent": ..., <extra networks>..., <objective's modules>...}
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_steps: Array  # env-steps collected so far, over all devices
    updates: Array


class AgentMemory(NamedTuple):
    hidden: dict[str, Array]  # per recurrent network: [B, num_agents, hidden_dim]
    prev_action: Array  # [B, num_agents], -1 before the first action of an episode


class RepeatingMemory(NamedTuple):
    """:class:`AgentMemory` plus the exploratory runs of ``epsilon_repeat`` (a type
    of its own so that runs without it keep their checkpoint layout)."""

    hidden: dict[str, Array]
    prev_action: Array
    explore_action: Array  # [B, num_agents] the random action a run repeats
    explore_left: Array  # [B, num_agents] steps it still repeats for (0: none)


class ValueDecomposition:
    """The shared off-policy learner: recurrent agent networks plus an objective."""

    def __init__(
        self,
        env_spec: EnvSpec,
        num_envs: int,
        config: LearnerConfig,
        objective: Objective,
    ):
        config.check()
        self.config = config
        self.objective = objective
        self.env_spec = env_spec
        self.num_envs = num_envs
        self.networks = {
            AGENT: RecurrentQNetwork(env_spec.num_actions, config.hidden_dim),
            **objective.networks,
        }
        self.sequence_length = config.sequence_length or env_spec.time_limit + 1
        self.buffer = make_sequence_buffer(
            num_envs, config.buffer_size, config.batch_size, self.sequence_length
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.adam(config.learning_rate),
        )

    # ----------------------------------------------------------------- inputs
    def _agent_inputs(self, agents_view: Array, prev_action: Array) -> Array:
        if not self.config.last_action:
            return agents_view
        last = jax.nn.one_hot(prev_action, self.env_spec.num_actions, dtype=agents_view.dtype)
        return jnp.concatenate([agents_view, last], axis=-1)

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
    ) -> tuple[dict[str, Array], StepValues]:
        """Every network unrolled over ``[T, B]``: last hidden states and :class:`StepValues`."""
        last, q, step_hidden = {}, {}, {}
        for name in self.networks:
            last[name], q[name], step_hidden[name] = self._unroll(
                name, params[name], hidden[name], inputs, resets
            )
        return last, StepValues(q, step_hidden, obs.action_mask, obs.global_state)

    # ------------------------------------------------------------------- init
    def init(self, key: PRNGKey) -> ValueDecompositionState:
        spec = self.env_spec
        network_keys = jax.random.split(key, len(self.networks) + 1)
        example_inputs = self._agent_inputs(
            jnp.zeros((1, spec.num_agents, spec.obs_dim)),
            jnp.zeros((1, spec.num_agents), int),
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
        return ValueDecompositionState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            buffer_state=self.buffer.init(self._example_step()),
            env_steps=jnp.int32(0),
            updates=jnp.int32(0),
        )

    def _example_step(self) -> Transition:
        spec = self.env_spec
        memory = jax.tree_util.tree_map(lambda x: x[0], self.initial_memory(1))
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
            extras=memory,
        )

    def initial_memory(self, batch_size: int) -> AgentMemory | RepeatingMemory:
        num_agents = self.env_spec.num_agents
        memory = AgentMemory(
            hidden={
                name: jnp.zeros((batch_size, num_agents, network.hidden_dim), jnp.float32)
                for name, network in self.networks.items()
            },
            prev_action=jnp.full((batch_size, num_agents), -1, jnp.int32),
        )
        if self.config.epsilon_repeat == 0:
            return memory
        no_run = jnp.zeros((batch_size, num_agents), jnp.int32)
        return RepeatingMemory(*memory, explore_action=no_run, explore_left=no_run)

    def epsilon(self, env_steps: Array) -> Array:
        cfg = self.config
        fraction = jnp.clip(env_steps / max(cfg.epsilon_anneal_steps, 1), 0.0, 1.0)
        return cfg.epsilon_start + fraction * (cfg.epsilon_finish - cfg.epsilon_start)

    def env_epsilons(self, env_steps: Array, num_envs: int) -> Array:
        """Each of ``num_envs`` envs' exploration rate ``[num_envs]``: the schedule's
        rate, spread over the envs by ``epsilon_spread`` (all equal when it is 0)."""
        spread_fraction = jnp.arange(num_envs, dtype=jnp.float32) / max(num_envs - 1, 1)
        return self.epsilon(env_steps) ** (1.0 + self.config.epsilon_spread * spread_fraction)

    # -------------------------------------------------------------------- act
    def _one_step(
        self, params: Any, obs: Observation, memory: AgentMemory
    ) -> tuple[AgentMemory, dict[str, Array], StepValues]:
        """Memory reset where episodes start, the next hidden states and the step's values."""
        starts = obs.step_count == 0
        memory = memory._replace(
            hidden={
                name: jnp.where(starts[:, None, None], 0.0, hidden)
                for name, hidden in memory.hidden.items()
            },
            prev_action=jnp.where(starts[:, None], -1, memory.prev_action),
        )
        if isinstance(memory, RepeatingMemory):
            no_run = jnp.where(starts[:, None], 0, memory.explore_left)
            memory = memory._replace(explore_left=no_run)
        inputs = self._agent_inputs(obs.agents_view, memory.prev_action)[None]
        no_resets = jnp.zeros((1, obs.step_count.shape[0]), bool)
        time_major_obs = jax.tree_util.tree_map(lambda x: x[None], obs)
        hidden, values = self._step_values(params, memory.hidden, inputs, no_resets, time_major_obs)
        return memory, hidden, steps(values, 0)

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
        memory, hidden, values = self._one_step(state.params, obs, memory)
        q = values.q[AGENT]
        greedy = jnp.argmax(jnp.where(obs.action_mask, q, MASKED_VALUE), axis=-1)
        next_memory = memory._replace(hidden=hidden)
        if explore:
            random_key, choose_key = jax.random.split(key)
            random_actions = jax.random.categorical(
                random_key, jnp.where(obs.action_mask, 0.0, -jnp.inf)
            )
            epsilons = self.env_epsilons(state.env_steps, greedy.shape[0])
            explore_mask = jax.random.uniform(choose_key, greedy.shape) < epsilons[:, None]
            if isinstance(memory, RepeatingMemory):
                explore_action, explore_left = memory.explore_action, memory.explore_left
                still_available = jnp.take_along_axis(
                    obs.action_mask, explore_action[..., None], axis=-1
                )[..., 0]
                repeating = (explore_left > 0) & still_available
                starting = ~repeating & explore_mask
                explore_action = jnp.where(repeating, explore_action, random_actions)
                explore_left = jnp.where(
                    repeating,
                    explore_left - 1,
                    jnp.where(starting, self._run_lengths(choose_key, greedy.shape) - 1, 0),
                )
                actions = jnp.where(repeating | starting, explore_action, greedy)
                next_memory = next_memory._replace(
                    explore_action=explore_action, explore_left=explore_left
                )
            else:
                actions = jnp.where(explore_mask, random_actions, greedy)
        else:
            actions = greedy
        actions = actions.astype(jnp.int32)
        return actions, next_memory._replace(prev_action=actions), memory

    def _run_lengths(self, key: PRNGKey, shape: tuple[int, ...]) -> Array:
        """Lengths ``k >= 1`` of exploratory runs, ``P(k) ~ k ** -epsilon_repeat`` up to
        the time limit."""
        lengths = jnp.arange(1, self.env_spec.time_limit + 1, dtype=jnp.float32)
        logits = -self.config.epsilon_repeat * jnp.log(lengths)
        # Its own stream: plain epsilon-greedy draws stay as they were.
        key = jax.random.fold_in(key, 1)
        return jax.random.categorical(key, logits, shape=shape).astype(jnp.int32) + 1

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
            memory = self.initial_memory(joint_action.shape[0])
        _, _, values = self._one_step(params, obs, memory)
        return self.objective.joint_value(params, values, joint_action)

    # ----------------------------------------------------------------- update
    def loss(self, params: Any, target_params: Any, batch: Transition) -> tuple[Array, dict]:
        """The objective's loss on a batch of windows ``[B, L]``."""
        cfg = self.config
        seq = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), batch)  # time-major
        obs = seq.obs
        inputs = self._agent_inputs(obs.agents_view, seq.extras.prev_action)
        resets = obs.step_count == 0
        initial_hidden = steps(seq.extras.hidden, 0)
        _, online = self._step_values(params, initial_hidden, inputs, resets, obs)
        _, target = self._step_values(target_params, initial_hidden, inputs, resets, obs)

        mask = obs.action_mask
        greedy = jnp.argmax(
            jnp.where(mask, jax.lax.stop_gradient(online.q[AGENT]), MASKED_VALUE), axis=-1
        )
        if cfg.double_q:
            next_action = greedy
        else:
            next_action = jnp.argmax(jnp.where(mask, target.q[AGENT], MASKED_VALUE), axis=-1)
        learner_batch = LearnerBatch(
            online=online,
            target=target,
            action=seq.action,
            greedy_action=greedy,
            next_action=next_action,
            reward=seq.reward[:-1, :, :1],  # the team reward, repeated per agent
            discount=cfg.gamma * (1.0 - seq.done[:-1, :, None].astype(jnp.float32)),
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
            shapes = jax.eval_shape(gradient_step, state, step_key)[1]
            return state, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def one_update(state: ValueDecompositionState, step_key: PRNGKey):
            ready = self.buffer.can_sample(state.buffer_state)
            return jax.lax.cond(ready, gradient_step, skip, state, step_key)

        keys = jax.random.split(key, self.config.updates_per_rollout)
        state, metrics = jax.lax.scan(one_update, state, keys)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics["epsilon"] = self.epsilon(state.env_steps)
        return state, metrics


# ---------------------------------------------------------------- factories
def _mixing_factory(mixer: str):
    def make(env_spec: EnvSpec, num_envs: int = 1, **options: Any) -> ValueDecomposition:
        config = parse_options(ValueDecompositionConfig, {"mixer": mixer, **options})
        config.check()
        objective = MixerObjective(_qmix_family_mixer(config), config.td_lambda)
        return ValueDecomposition(env_spec, num_envs, config, objective)

    return make


make_iql = _mixing_factory("none")
make_vdn = _mixing_factory("vdn")
make_qmix = _mixing_factory("qmix")


def make_qplex(env_spec: EnvSpec, num_envs: int = 1, **options: Any) -> ValueDecomposition:
    """QPLEX (Wang et al. 2021) on the shared learner."""
    config = parse_options(QPLEXConfig, options)
    mixer = QPLEXMixer(config.hypernet_dim, config.attention_heads, config.attention_dim)
    return ValueDecomposition(env_spec, num_envs, config, MixerObjective(mixer, config.td_lambda))


def _weighted_factory(weighting: str):
    def make(env_spec: EnvSpec, num_envs: int = 1, **options: Any) -> ValueDecomposition:
        config = parse_options(WeightedQMixConfig, {"weighting": weighting, **options})
        config.check()
        return ValueDecomposition(
            env_spec, num_envs, config, WeightedQMixObjective(config, env_spec)
        )

    return make


make_cw_qmix = _weighted_factory("cw")
make_ow_qmix = _weighted_factory("ow")


def make_qtran(env_spec: EnvSpec, num_envs: int = 1, **options: Any) -> ValueDecomposition:
    """QTRAN-base (Son et al. 2019) on the shared learner."""
    config = parse_options(QTranConfig, options)
    return ValueDecomposition(env_spec, num_envs, config, QTranObjective(config))


__all__ = [
    "AgentMemory",
    "RepeatingMemory",
    "LearnerBatch",
    "LearnerConfig",
    "MixerObjective",
    "Objective",
    "QPLEXConfig",
    "QTranConfig",
    "QTranObjective",
    "StepValues",
    "ValueDecomposition",
    "ValueDecompositionConfig",
    "ValueDecompositionState",
    "WeightedQMixConfig",
    "WeightedQMixObjective",
    "make_cw_qmix",
    "make_iql",
    "make_ow_qmix",
    "make_qmix",
    "make_qplex",
    "make_qtran",
    "make_vdn",
    "weighted_qmix_weights",
]
