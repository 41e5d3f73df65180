"""The one training loop: compiled chunks of (rollout, update), device-parallel and
vmapped over seeds.

A chunk is ``iterations_per_chunk`` x (a rollout of ``rollout_length`` steps in
every environment, then ``algorithm.update``), compiled once. It runs under
``jax.shard_map`` over the mesh axis ``"device"`` with pmap semantics: every device
holds its own environments, replay and a copy of the parameters, and learners
average their gradients with ``pmean`` over ``"device"``, so the copies stay
identical. Within a device, ``num_seeds`` independent runs are vmapped; their
environments are stepped as one batch so that the auto-reset's branch stays
outside ``vmap``.

Every leaf of :class:`RunnerState` has leading axes ``[num_devices, num_seeds]``.
The loop reads of the algorithm's state only what :class:`marl.algorithm.AlgorithmState`
declares.

Vector rewards pass through unchanged: an episode's return is a vector over the env's
objectives wherever the reward is one. A multi-objective learner
(:class:`marl.algorithm.MultiObjectiveAlgorithm`) is evaluated on a grid of
preferences: greedy episodes under each, whose mean return vectors form the front the
learner offers (:meth:`Runner.report` computes its Pareto metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from marl import distributed, pareto
from marl.algorithm import (
    Algorithm,
    MultiObjectiveAlgorithm,
    MultiTaskAlgorithm,
    as_multitask,
)
from marl.env import env_spec as read_env_spec
from marl.options import OptionError
from marl.types import Array, Bootstrap, Transition
from marl.wrappers import VectorEnv

AXIS = "device"


@struct.dataclass
class RunnerState:
    """What the scan carries: the algorithm's state and, per task, the envs it acts
    in (``env_state``, ``obs`` and ``memory`` hold one entry per task of the run)."""

    algo_state: Any
    env_state: tuple
    obs: tuple
    memory: tuple
    key: Array


class Task(NamedTuple):
    """One task of a run: its name (marl-eval's task, e.g. ``smac/3m``) and its env."""

    name: str
    env: jumanji.Environment


class EpisodeSums(NamedTuple):
    """Sums over the episodes that finished (per seed; ``returns`` per objective when
    the reward is a vector)."""

    episodes: Array
    returns: Array
    wins: Array
    lengths: Array


class ChunkMetrics(NamedTuple):
    """What a chunk reports, host side, one value per seed.

    ``algorithm``: the algorithm's metrics of the chunk's last update;
    ``env_steps``: the algorithm's count after the chunk; over the episodes that
    finished during the chunk, per task, their mean ``episode_return`` (``[S, K]``,
    or ``[S, K, num_objectives]`` for a vector reward), ``win_rate`` and
    ``episode_length`` (``[S, K]``; NaN where none finished). ``objective_names``
    name a vector return's columns, ``task_names`` the tasks.
    """

    algorithm: dict[str, np.ndarray]
    env_steps: np.ndarray
    episode_return: np.ndarray
    win_rate: np.ndarray
    episode_length: np.ndarray
    objective_names: tuple[str, ...] = ("reward",)
    task_names: tuple[str, ...] = ("",)

    def as_dict(self) -> dict[str, np.ndarray]:
        """One flat name -> per-seed value mapping, for the logger. A run of several
        tasks names each task's figures ``<name>/<task>``; a vector return is one entry
        per objective, ``episode_return/<objective>`` (after the task's name)."""
        loop: dict[str, np.ndarray] = {"env_steps": self.env_steps}
        several = len(self.task_names) > 1
        for name in ("episode_return", "win_rate", "episode_length"):
            value = getattr(self, name)
            for index, task in enumerate(self.task_names):
                prefix = f"{name}/{task}" if several else name
                column = value[:, index]
                if np.ndim(column) == 2:
                    for objective_index, objective in enumerate(self.objective_names):
                        loop[f"{prefix}/{objective}"] = column[:, objective_index]
                else:
                    loop[prefix] = column
        clash = sorted(set(loop) & set(self.algorithm))
        if clash:
            raise ValueError(f"algorithm metrics {clash} clash with the loop's")
        return {**self.algorithm, **loop}


def check_num_devices(num_devices: int) -> None:
    """A run uses between 1 and every local device."""
    available = jax.local_device_count()
    if not 1 <= num_devices <= available:
        raise OptionError(
            "num_devices", f"{num_devices} requested but only {available} local devices"
        )


def check_objectives(
    env: jumanji.Environment, learns: int, env_name: str = "", algo_name: str = "the learner"
) -> None:
    """Refuses, in one line, a learner of ``learns`` objectives on an env whose reward
    has another number (a learner declares ``num_objectives``; 1 when it does not)."""
    objectives = read_env_spec(env).num_objectives
    if objectives == learns:
        return
    env_label = env_name or repr(env)
    if learns == 1:
        names = ", ".join(getattr(env, "objective_names", ()))
        raise ValueError(
            f"{env_label} has a vector reward of {objectives} objectives ({names}) and "
            f"{algo_name} learns from a scalar one: choose a multi-objective algorithm, or "
            f"scalarise the reward with env.kwargs.weights=[...] (one non-negative weight "
            f"per objective, summing to 1)"
        )
    raise ValueError(f"{algo_name} was built for {learns} objectives; {env_label} has {objectives}")


def hypervolume_reference(env: jumanji.Environment) -> np.ndarray:
    """The env's reference point for the hypervolume (its ``hypervolume_reference``: a
    return vector every reasonable policy beats); refused in one line when it has none."""
    reference = getattr(env, "hypervolume_reference", None)
    objectives = read_env_spec(env).num_objectives
    if reference is None or np.shape(reference) != (objectives,):
        raise ValueError(
            f"{env!r} declares no hypervolume_reference of {objectives} values (one per "
            "objective, a return every reasonable policy beats); multi-objective evaluation "
            "needs one"
        )
    return np.asarray(reference, np.float64)


def _unstack_device(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[0], tree)


def _stack_device(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[None], tree)


def _merge_seeds(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


def _split_seeds(tree: Any, num_seeds: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x.reshape((num_seeds, -1) + x.shape[1:]), tree)


class EvaluationReport(NamedTuple):
    """A greedy evaluation as the logger takes it (host arrays, leading axis the seed).

    ``returns`` and ``won`` ``[S, N]`` per episode (for a multi-objective learner the
    episodes of every preference, each return scalarised by its own preference);
    ``metrics`` more per-seed values (the front's Pareto metrics, :data:`marl.pareto.
    FRONT_METRICS`); ``front`` ``[S, G, m]`` the mean return vector of each evaluation
    preference (None for scalar learners); ``score`` ``[S]`` what ranks evaluations
    (the mean return; the hypervolume for a multi-objective learner).
    """

    returns: np.ndarray
    won: np.ndarray
    metrics: dict[str, np.ndarray]
    front: np.ndarray | None
    score: np.ndarray


class _TaskEnvs(NamedTuple):
    """A task's env batched for one seed (``seed_envs``) and for all seeds at once."""

    seed_envs: VectorEnv
    batch_envs: VectorEnv


def _task_key(key: Array, task: int) -> Array:
    # Task 0 draws from the key itself, so that a set of one draws as a single task
    # always has; the others from keys folded with their index.
    return key if task == 0 else jax.random.fold_in(key, task)


class Runner:
    """Builds and runs the compiled training chunk for a set of tasks and a learner.

    Args:
        env: a marl-lab environment (wrapped with episode metrics), or the run's
            tasks (:class:`Task`, one env each, their sizes free to differ). One env is
            the set of one.
        algorithm: a learner (:class:`marl.algorithm.Algorithm`), built for
            ``envs_per_device`` environments, e.g. by :func:`marl.make_algorithm`; for
            several tasks a :class:`marl.algorithm.MultiTaskAlgorithm` of as many.
        envs_per_device: environments per device, per seed and per task.
        rollout_length: steps per environment between updates.
        iterations_per_chunk: (rollout, update) iterations compiled into one chunk.
        num_seeds: independent runs vmapped in one program.
        num_devices: devices of each process to spread the environments over (the
            first ones; one process unless JAX's distributed runtime joined several,
            :mod:`marl.distributed`). :attr:`num_devices` counts the run's devices in all.

    Every task's envs step in lockstep, so the env steps of a chunk
    (:attr:`steps_per_chunk`) are each task's.
    """

    def __init__(
        self,
        env: jumanji.Environment | Sequence[Task],
        algorithm: Algorithm | MultiTaskAlgorithm,
        envs_per_device: int,
        rollout_length: int,
        iterations_per_chunk: int,
        num_seeds: int = 1,
        num_devices: int = 1,
    ):
        if not isinstance(algorithm, Algorithm):
            raise TypeError(
                f"algorithm must have init, initial_memory, act and update (marl.algorithm."
                f"Algorithm), got {type(algorithm).__name__}; build one with marl.make_algorithm"
            )
        built_for = getattr(algorithm, "envs_per_device", envs_per_device)
        if built_for != envs_per_device:
            raise ValueError(
                f"the algorithm was built for envs_per_device={built_for}, the Runner was given "
                f"{envs_per_device}; build both with the same number"
            )
        check_num_devices(num_devices)
        tasks = (Task("", env),) if isinstance(env, jumanji.Environment) else tuple(env)
        if not tasks:
            raise ValueError("a run needs at least one task")
        self.learner: MultiTaskAlgorithm = as_multitask(algorithm)
        if self.learner.num_tasks != len(tasks):
            raise ValueError(
                f"the algorithm learns {self.learner.num_tasks} task(s) and the run has "
                f"{len(tasks)}; build it for the run's task set"
            )
        objectives = {read_env_spec(task.env).num_objectives for task in tasks}
        if len(objectives) > 1:
            raise ValueError(
                f"the tasks' rewards have different numbers of objectives {sorted(objectives)}"
            )
        for task in tasks:
            check_objectives(task.env, getattr(algorithm, "num_objectives", 1), task.name)
        self.tasks = tasks
        self.task_names = tuple(task.name for task in tasks)
        self.env = tasks[0].env  # the first task's (the only one's, usually)
        self.env_spec = read_env_spec(self.env)
        self.objective_names = tuple(getattr(self.env, "objective_names", ("reward",)))
        self.preferences: np.ndarray | None = None
        self.hypervolume_reference: np.ndarray | None = None
        if isinstance(algorithm, MultiObjectiveAlgorithm) and algorithm.num_objectives > 1:
            if len(tasks) > 1:
                raise ValueError(
                    f"multi-objective learning trains one task at a time; this run has {len(tasks)}"
                )
            pareto.require_pymoo()  # before training, not at the first evaluation
            self.preferences = np.asarray(algorithm.evaluation_preferences, np.float64)
            self.hypervolume_reference = hypervolume_reference(self.env)
        self.algorithm = algorithm
        self.num_seeds = num_seeds
        self.envs_per_device = envs_per_device
        self.rollout_length = rollout_length
        self.iterations_per_chunk = iterations_per_chunk
        self._task_envs = tuple(
            _TaskEnvs(
                VectorEnv(task.env, self.envs_per_device),
                VectorEnv(task.env, num_seeds * self.envs_per_device),
            )
            for task in tasks
        )
        self.mesh = jax.sharding.Mesh(np.array(distributed.mesh_devices(num_devices)), (AXIS,))
        # Every process's devices: the run's env steps and its state's leading axis.
        self.num_devices = self.mesh.devices.size
        self.steps_per_chunk = (
            iterations_per_chunk * rollout_length * envs_per_device * self.num_devices
        )
        self.sharding = NamedSharding(self.mesh, PartitionSpec(AXIS))
        sharded = PartitionSpec(AXIS)
        # The algorithm is initialised outside the device-parallel program and one
        # seed at a time (lax.map, not vmap): QR factorisations (orthogonal
        # initialisers) that run concurrently, batched over seeds or on two CPU
        # devices, can deadlock jaxlib's LAPACK thread pool.
        self._init_algo = jax.jit(
            lambda keys: jax.lax.map(lambda key: self.learner.init(jax.random.split(key)[0]), keys)
        )
        self._init = jax.jit(
            jax.shard_map(
                self._device_init,
                mesh=self.mesh,
                in_specs=(PartitionSpec(), PartitionSpec()),
                out_specs=sharded,
                check_vma=False,
            )
        )
        self._chunk = jax.jit(
            jax.shard_map(
                self._device_chunk,
                mesh=self.mesh,
                in_specs=sharded,
                out_specs=sharded,
                check_vma=False,
            ),
            donate_argnums=0,
        )
        self._evaluate = jax.jit(self._evaluate_seeds, static_argnums=(2, 3))
        self._record = jax.jit(
            lambda p, k, task: self._greedy_episodes(p, k, 1, True, task=task),
            static_argnums=2,
        )

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    # ------------------------------------------------------------------ init
    def _device_init(self, seed_keys: Array, algo_states: Any) -> RunnerState:
        device = jax.lax.axis_index(AXIS)

        def init_seed(seed_key: Array, algo_state: Any) -> RunnerState:
            run_key = jax.random.split(seed_key)[1]
            # Parameters start equal on every device; data differs per device.
            run_key = jax.random.fold_in(run_key, device)
            env_key, loop_key = jax.random.split(run_key)
            resets = [
                envs.seed_envs.reset(_task_key(env_key, index))
                for index, envs in enumerate(self._task_envs)
            ]
            return RunnerState(
                algo_state=algo_state,
                env_state=tuple(env_state for env_state, _ in resets),
                obs=tuple(timestep.observation for _, timestep in resets),
                memory=tuple(
                    self.learner.initial_memory(self.envs_per_device, index)
                    for index in range(self.num_tasks)
                ),
                key=loop_key,
            )

        return _stack_device(jax.vmap(init_seed)(seed_keys, algo_states))

    def init(self, seeds: list[int] | np.ndarray) -> RunnerState:
        """The initial state of ``len(seeds) == num_seeds`` runs."""
        if len(seeds) != self.num_seeds:
            raise ValueError(f"expected {self.num_seeds} seeds, got {len(seeds)}")
        keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
        algo_states = self._init_algo(keys)
        if distributed.process_count() > 1:
            # A run of several processes takes host values as the same on all of them.
            keys, algo_states = jax.tree_util.tree_map(np.asarray, (keys, algo_states))
        return self._init(keys, algo_states)

    # ----------------------------------------------------------------- chunk
    def _task_step(self, state: RunnerState, task: int, act_key: Array) -> tuple:
        """One step of every env of ``task`` (every seed): act, step, record."""
        num_seeds = self.num_seeds
        actions, memory, extras = jax.vmap(
            lambda s, o, m, k: self.learner.act(s, o, m, _task_key(k, task), True, task)
        )(state.algo_state, state.obs[task], state.memory[task], act_key)
        flat_env_state, timestep = self._task_envs[task].batch_envs.step(
            _merge_seeds(state.env_state[task]), _merge_seeds(actions)
        )
        timestep = _split_seeds(timestep, num_seeds)
        done = timestep.last()
        transition = Transition(
            obs=state.obs[task],
            action=actions,
            reward=timestep.reward,
            done=done,
            terminated=done & (timestep.discount[..., 0] == 0.0),
            extras=extras,
            won=done & (timestep.extras["won"] > 0),
        )

        def finished(value: Array) -> Array:
            ended = done.reshape(done.shape + (1,) * (value.ndim - done.ndim))
            return jnp.sum(jnp.where(ended, value, 0), 1)

        episodes = EpisodeSums(
            episodes=jnp.sum(done, 1),
            returns=finished(timestep.extras["episode_return"]),
            wins=finished(timestep.extras["won"]),
            lengths=finished(timestep.extras["episode_length"]),
        )
        env_state = _split_seeds(flat_env_state, num_seeds)
        return env_state, timestep.observation, memory, transition, episodes

    def _env_step(self, state: RunnerState, _: None) -> tuple[RunnerState, tuple]:
        """One step of every env of every task and seed."""
        split = jax.vmap(lambda k: jax.random.split(k, 2))(state.key)
        key, act_key = split[:, 0], split[:, 1]
        steps = [self._task_step(state, task, act_key) for task in range(self.num_tasks)]
        parts = (tuple(part) for part in zip(*steps, strict=True))
        env_state, obs, memory, transitions, episodes = parts
        state = state.replace(env_state=env_state, obs=obs, memory=memory, key=key)
        return state, (transitions, episodes)

    def _iteration(self, state: RunnerState, _: None) -> tuple[RunnerState, tuple]:
        """A rollout of ``rollout_length`` steps of every task, then the update."""
        state, (rollouts, episodes) = jax.lax.scan(self._env_step, state, None, self.rollout_length)
        split = jax.vmap(lambda k: jax.random.split(k, 2))(state.key)
        key, update_key = split[:, 0], split[:, 1]
        rollouts = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), rollouts)
        bootstraps = tuple(
            Bootstrap(obs, memory) for obs, memory in zip(state.obs, state.memory, strict=True)
        )
        algo_state, metrics = jax.vmap(
            lambda s, r, k, b: self.learner.update(s, r, k, AXIS, bootstraps=b)
        )(state.algo_state, rollouts, update_key, bootstraps)
        episodes = jax.tree_util.tree_map(lambda x: x.sum(0), episodes)
        return state.replace(algo_state=algo_state, key=key), (metrics, episodes)

    def _device_chunk(self, state: RunnerState) -> tuple[RunnerState, tuple]:
        state = _unstack_device(state)
        state, (metrics, episodes) = jax.lax.scan(
            self._iteration, state, None, self.iterations_per_chunk
        )
        episodes = jax.tree_util.tree_map(lambda x: jax.lax.psum(x.sum(0), AXIS), episodes)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        report = (metrics, episodes, state.algo_state.env_steps)
        return _stack_device(state), _stack_device(report)

    def run_chunk(self, state: RunnerState) -> tuple[RunnerState, ChunkMetrics]:
        """Runs one compiled chunk; returns the new state and its :class:`ChunkMetrics`."""
        state, report = self._chunk(state)
        metrics, episodes, env_steps = jax.tree_util.tree_map(
            np.asarray, distributed.first_device(report)
        )

        def mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
            finished = (count > 0).reshape(count.shape + (1,) * (total.ndim - 1))
            divisor = np.maximum(count, 1).reshape(finished.shape)
            return np.where(finished, total / divisor, np.nan)

        def per_task(field: str) -> np.ndarray:
            return np.stack(
                [mean(getattr(sums, field), sums.episodes) for sums in episodes], axis=1
            )

        return state, ChunkMetrics(
            algorithm=metrics,
            env_steps=env_steps,
            episode_return=per_task("returns"),
            win_rate=per_task("wins"),
            episode_length=per_task("lengths"),
            objective_names=self.objective_names,
            task_names=self.task_names,
        )

    # ------------------------------------------------------------ evaluation
    def _greedy_episodes(
        self,
        algo_state: Any,
        key: Array,
        num_episodes: int,
        record: bool,
        preference: Array | None = None,
        task: int = 0,
    ):
        """``num_episodes`` greedy episodes of one seed on ``task``: ``(returns, won,
        lengths, states)``.

        ``states`` is ``None``, or with ``record`` the environment states from the
        reset on, ``[time_limit + 1, num_episodes, ...]``; an episode's are valid up to
        its length (``time_limit`` when it did not end). A multi-objective learner
        plays ``preference`` (``[num_objectives]``) when it is given.
        """
        env = self.tasks[task].env
        reset_key, act_key = jax.random.split(key)
        first_state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))
        if preference is None:
            memory = self.learner.initial_memory(num_episodes, task)
        else:
            memory = self.learner.initial_memory(num_episodes, task, preference=preference)

        def step(carry, step_key):
            env_state, obs, memory, active, returns, won, lengths = carry
            actions, memory, _ = self.learner.act(algo_state, obs, memory, step_key, False, task)
            env_state, timestep = jax.vmap(env.step)(env_state, actions)
            ended = active & timestep.last()
            episode_return = timestep.extras["episode_return"]
            ended_return = ended.reshape(ended.shape + (1,) * (episode_return.ndim - 1))
            returns = jnp.where(ended_return, episode_return, returns)
            won = jnp.where(ended, timestep.extras["won"], won)
            lengths = jnp.where(ended, timestep.extras["episode_length"], lengths)
            active = active & ~ended
            carry = (env_state, timestep.observation, memory, active, returns, won, lengths)
            return carry, env_state if record else None

        spec = read_env_spec(env)
        zeros = jnp.zeros((num_episodes,), jnp.float32)
        objectives = spec.num_objectives
        return_shape = (num_episodes,) + ((objectives,) if objectives > 1 else ())
        carry = (
            first_state,
            timestep.observation,
            memory,
            jnp.ones_like(zeros, bool),
            jnp.zeros(return_shape, jnp.float32),
            zeros,
            jnp.full((num_episodes,), spec.time_limit, jnp.int32),
        )
        keys = jax.random.split(act_key, spec.time_limit)
        (_, _, _, _, returns, won, lengths), states = jax.lax.scan(step, carry, keys)
        if record:
            states = jax.tree_util.tree_map(
                lambda first, rest: jnp.concatenate([first[None], rest]), first_state, states
            )
        return returns, won, lengths, states

    def _evaluate_seeds(self, algo_state: Any, key: Array, num_episodes: int, task: int):
        def evaluate_one(algo_state: Any, key: Array):
            returns, won, _, _ = self._greedy_episodes(
                algo_state, key, num_episodes, False, task=task
            )
            return returns, won

        def evaluate_preferences(algo_state: Any, key: Array):
            # Every preference plays the same starts (the same key), so the front
            # compares the preferences on equal episodes.
            def under(preference: Array):
                returns, won, _, _ = self._greedy_episodes(
                    algo_state, key, num_episodes, False, preference, task
                )
                return returns, won

            return jax.lax.map(under, jnp.asarray(self.preferences, jnp.float32))

        keys = jax.random.split(_task_key(key, task), self.num_seeds)
        one_seed = evaluate_one if self.preferences is None else evaluate_preferences
        return jax.vmap(one_seed)(algo_state, keys)

    def evaluate(
        self,
        state: RunnerState,
        num_episodes: int,
        key: Array,
        params: Any = None,
        task: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy episodes of ``task`` with device 0's parameters: ``(returns, won)``,
        each ``[S, E]`` (a multi-objective learner: ``[S, G, E, num_objectives]`` and
        ``[S, G, E]``, one row per evaluation preference, :attr:`preferences`).

        ``params`` (leaves ``[S, ...]``), when given, are played instead of device 0's
        (e.g. each seed's best parameters so far, kept on the host).
        """
        if not 0 <= task < self.num_tasks:
            raise ValueError(f"task must be in [0, {self.num_tasks}), got {task}")
        algo_state = distributed.first_device(state.algo_state)
        if params is not None:
            algo_state = algo_state.replace(params=jax.tree_util.tree_map(jnp.asarray, params))
        returns, won = self._evaluate(algo_state, key, num_episodes, task)
        return np.asarray(returns), np.asarray(won)

    def report(self, returns: np.ndarray, won: np.ndarray) -> EvaluationReport:
        """What :meth:`evaluate` returned, as the logger takes it (:class:`EvaluationReport`)."""
        returns = np.asarray(returns, np.float64)
        won = np.asarray(won, np.float64)
        if self.preferences is None:
            score = np.nanmean(returns, axis=1) if returns.size else np.full(len(returns), np.nan)
            return EvaluationReport(returns, won, {}, None, score)
        num_seeds = returns.shape[0]
        utilities = np.einsum("sgem,gm->sge", returns, self.preferences)
        front = returns.mean(axis=2)  # [S, G, m]
        per_seed = [
            pareto.front_metrics(front[seed], self.hypervolume_reference)
            for seed in range(num_seeds)
        ]
        metrics = {
            name: np.array([values[name] for values in per_seed]) for name in pareto.FRONT_METRICS
        }
        return EvaluationReport(
            utilities.reshape(num_seeds, -1),
            won.reshape(num_seeds, -1),
            metrics,
            front,
            metrics["hypervolume"],
        )

    def greedy_episode(
        self, state: RunnerState, key: Array, seed_index: int = 0, task: int = 0
    ) -> dict[str, Any]:
        """One greedy episode of seed ``seed_index`` (0 is the first) on ``task`` with
        device 0's parameters, recorded.

        It is the first episode :meth:`evaluate` plays for that seed with the same
        ``key`` and ``num_episodes=1``. Returns host values: ``states`` (the
        environment's states from the reset to the end, ``length + 1`` of them, each
        unbatched, as a list), ``return``, ``won`` and ``length``.
        """
        if not 0 <= seed_index < self.num_seeds:
            raise ValueError(f"seed_index must be in [0, {self.num_seeds}), got {seed_index}")
        algo_state = jax.tree_util.tree_map(
            lambda x: x[seed_index], distributed.first_device(state.algo_state)
        )
        seed_key = jax.random.split(_task_key(key, task), self.num_seeds)[seed_index]
        returns, won, lengths, states = self._record(algo_state, seed_key, task)
        length = int(lengths[0])
        states = jax.tree_util.tree_map(lambda x: np.asarray(x)[: length + 1, 0], states)
        return {
            "states": [
                jax.tree_util.tree_map(lambda x, t=t: x[t], states) for t in range(length + 1)
            ],
            "return": np.asarray(returns)[0],
            "won": float(won[0]),
            "length": length,
        }
