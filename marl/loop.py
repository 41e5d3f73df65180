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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from marl.env import env_spec as read_env_spec
from marl.registry import make_algorithm
from marl.types import Array, Bootstrap, Transition
from marl.wrappers import VecState, VectorEnv

AXIS = "device"


@struct.dataclass
class RunnerState:
    algo_state: Any
    env_state: VecState
    obs: Any
    memory: Any
    key: Array


def _unstack_device(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[0], tree)


def _stack_device(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[None], tree)


def _merge_seeds(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


def _split_seeds(tree: Any, num_seeds: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x.reshape((num_seeds, -1) + x.shape[1:]), tree)


class Runner:
    """Builds and runs the compiled training chunk for one environment and algorithm.

    Args:
        env: a marl-lab environment (wrapped with episode metrics).
        algorithm: registered algorithm name.
        algo_config: overrides of the algorithm's defaults.
        num_envs: environments per seed, over all devices (divisible by ``num_devices``).
        rollout_length: steps per environment between updates.
        iterations_per_chunk: (rollout, update) iterations compiled into one chunk.
        num_seeds: independent runs vmapped in one program.
        num_devices: local devices to spread the environments over.
    """

    def __init__(
        self,
        env: jumanji.Environment,
        algorithm: str,
        algo_config: dict[str, Any],
        num_envs: int,
        rollout_length: int,
        iterations_per_chunk: int,
        num_seeds: int = 1,
        num_devices: int = 1,
    ):
        if num_envs % num_devices:
            raise ValueError(f"num_envs={num_envs} must be divisible by num_devices={num_devices}")
        if num_devices > jax.local_device_count():
            raise ValueError(
                f"num_devices={num_devices} but only {jax.local_device_count()} local devices"
            )
        self.env = env
        self.env_spec = read_env_spec(env)
        self.num_devices = num_devices
        self.num_seeds = num_seeds
        self.envs_per_device = num_envs // num_devices
        self.rollout_length = rollout_length
        self.iterations_per_chunk = iterations_per_chunk
        self.steps_per_chunk = iterations_per_chunk * rollout_length * num_envs
        self.algo = make_algorithm(
            algorithm, self.env_spec, num_envs=self.envs_per_device, **algo_config
        )
        self.seed_envs = VectorEnv(env, self.envs_per_device)
        self.batch_envs = VectorEnv(env, num_seeds * self.envs_per_device)
        self.mesh = jax.sharding.Mesh(np.array(jax.local_devices()[:num_devices]), (AXIS,))
        self.sharding = NamedSharding(self.mesh, PartitionSpec(AXIS))
        sharded = PartitionSpec(AXIS)
        # The algorithm is initialised outside the device-parallel program and one
        # seed at a time (lax.map, not vmap): QR factorisations (orthogonal
        # initialisers) that run concurrently, batched over seeds or on two CPU
        # devices, can deadlock jaxlib's LAPACK thread pool.
        self._init_algo = jax.jit(
            lambda keys: jax.lax.map(lambda key: self.algo.init(jax.random.split(key)[0]), keys)
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
        self._evaluate = jax.jit(self._evaluate_seeds, static_argnums=2)
        self._record = jax.jit(lambda p, k: self._greedy_episodes(p, k, 1, True))

    # ------------------------------------------------------------------ init
    def _device_init(self, seed_keys: Array, algo_states: Any) -> RunnerState:
        device = jax.lax.axis_index(AXIS)

        def init_seed(seed_key: Array, algo_state: Any) -> RunnerState:
            run_key = jax.random.split(seed_key)[1]
            # Parameters start equal on every device; data differs per device.
            run_key = jax.random.fold_in(run_key, device)
            env_key, loop_key = jax.random.split(run_key)
            env_state, timestep = self.seed_envs.reset(env_key)
            return RunnerState(
                algo_state=algo_state,
                env_state=env_state,
                obs=timestep.observation,
                memory=self.algo.initial_memory(self.envs_per_device),
                key=loop_key,
            )

        return _stack_device(jax.vmap(init_seed)(seed_keys, algo_states))

    def init(self, seeds: list[int] | np.ndarray) -> RunnerState:
        """The initial state of ``len(seeds) == num_seeds`` runs."""
        if len(seeds) != self.num_seeds:
            raise ValueError(f"expected {self.num_seeds} seeds, got {len(seeds)}")
        keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
        return self._init(keys, self._init_algo(keys))

    # ----------------------------------------------------------------- chunk
    def _device_chunk(self, state: RunnerState) -> tuple[RunnerState, dict]:
        state = _unstack_device(state)
        num_seeds = self.num_seeds

        def env_step(carry, _):
            algo_state, env_state, obs, memory, key = carry
            split = jax.vmap(lambda k: jax.random.split(k, 2))(key)
            key, act_key = split[:, 0], split[:, 1]
            actions, memory, extras = jax.vmap(self.algo.act, in_axes=(0, 0, 0, 0, None))(
                algo_state, obs, memory, act_key, True
            )
            flat_env_state, timestep = self.batch_envs.step(
                _merge_seeds(env_state), _merge_seeds(actions)
            )
            timestep = _split_seeds(timestep, num_seeds)
            done = timestep.last()
            transition = Transition(
                obs=obs,
                action=actions,
                reward=timestep.reward,
                done=done,
                terminated=done & (timestep.discount[..., 0] == 0.0),
                extras=extras,
            )
            episode = {
                "return_sum": jnp.sum(jnp.where(done, timestep.extras["episode_return"], 0.0), 1),
                "won_sum": jnp.sum(jnp.where(done, timestep.extras["won"], 0.0), 1),
                "length_sum": jnp.sum(jnp.where(done, timestep.extras["episode_length"], 0), 1),
                "episodes": jnp.sum(done, 1),
            }
            carry = (
                algo_state,
                _split_seeds(flat_env_state, num_seeds),
                timestep.observation,
                memory,
                key,
            )
            return carry, (transition, episode)

        def iteration(state: RunnerState, _):
            carry = (state.algo_state, state.env_state, state.obs, state.memory, state.key)
            carry, (rollout, episode) = jax.lax.scan(env_step, carry, None, self.rollout_length)
            algo_state, env_state, obs, memory, key = carry
            split = jax.vmap(lambda k: jax.random.split(k, 2))(key)
            key, update_key = split[:, 0], split[:, 1]
            rollout = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), rollout)
            algo_state, metrics = jax.vmap(
                lambda s, r, k, b: self.algo.update(s, r, k, AXIS, bootstrap=b)
            )(algo_state, rollout, update_key, Bootstrap(obs, memory))
            episode = jax.tree_util.tree_map(lambda x: x.sum(0), episode)
            return RunnerState(algo_state, env_state, obs, memory, key), (metrics, episode)

        state, (metrics, episode) = jax.lax.scan(iteration, state, None, self.iterations_per_chunk)
        episode = jax.tree_util.tree_map(lambda x: jax.lax.psum(x.sum(0), AXIS), episode)
        metrics = jax.tree_util.tree_map(lambda m: m[-1], metrics)
        metrics.update(episode)
        metrics["env_steps"] = state.algo_state.env_steps
        return _stack_device(state), _stack_device(metrics)

    def run_chunk(self, state: RunnerState) -> tuple[RunnerState, dict[str, np.ndarray]]:
        """Runs one compiled chunk; returns the new state and per-seed host metrics.

        The metrics are: the algorithm's (from the last update), ``env_steps``, and
        over the episodes finished during the chunk, ``episode_return``,
        ``episode_length`` and ``win_rate`` (NaN when no episode finished).
        """
        state, metrics = self._chunk(state)
        host = {name: np.asarray(value)[0] for name, value in metrics.items()}
        count = host.pop("episodes")
        finished = count > 0
        episodes = np.maximum(count, 1)
        host["episode_return"] = np.where(finished, host.pop("return_sum") / episodes, np.nan)
        host["win_rate"] = np.where(finished, host.pop("won_sum") / episodes, np.nan)
        host["episode_length"] = np.where(finished, host.pop("length_sum") / episodes, np.nan)
        return state, host

    # ------------------------------------------------------------ evaluation
    def _greedy_episodes(self, algo_state: Any, key: Array, num_episodes: int, record: bool):
        """``num_episodes`` greedy episodes of one seed: ``(returns, won, lengths, states)``.

        ``states`` is ``None``, or with ``record`` the environment states from the
        reset on, ``[time_limit + 1, num_episodes, ...]``; an episode's are valid up to
        its length (``time_limit`` when it did not end).
        """
        env = self.env
        reset_key, act_key = jax.random.split(key)
        first_state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))
        memory = self.algo.initial_memory(num_episodes)

        def step(carry, step_key):
            env_state, obs, memory, active, returns, won, lengths = carry
            actions, memory, _ = self.algo.act(algo_state, obs, memory, step_key, False)
            env_state, timestep = jax.vmap(env.step)(env_state, actions)
            ended = active & timestep.last()
            returns = jnp.where(ended, timestep.extras["episode_return"], returns)
            won = jnp.where(ended, timestep.extras["won"], won)
            lengths = jnp.where(ended, timestep.extras["episode_length"], lengths)
            active = active & ~ended
            carry = (env_state, timestep.observation, memory, active, returns, won, lengths)
            return carry, env_state if record else None

        zeros = jnp.zeros((num_episodes,), jnp.float32)
        time_limit = self.env_spec.time_limit
        carry = (
            first_state,
            timestep.observation,
            memory,
            jnp.ones_like(zeros, bool),
            zeros,
            zeros,
            jnp.full((num_episodes,), time_limit, jnp.int32),
        )
        keys = jax.random.split(act_key, time_limit)
        (_, _, _, _, returns, won, lengths), states = jax.lax.scan(step, carry, keys)
        if record:
            states = jax.tree_util.tree_map(
                lambda first, rest: jnp.concatenate([first[None], rest]), first_state, states
            )
        return returns, won, lengths, states

    def _evaluate_seeds(self, algo_state: Any, key: Array, num_episodes: int):
        def evaluate_one(algo_state: Any, key: Array):
            returns, won, _, _ = self._greedy_episodes(algo_state, key, num_episodes, False)
            return returns, won

        keys = jax.random.split(key, self.num_seeds)
        return jax.vmap(evaluate_one)(algo_state, keys)

    def evaluate(
        self, state: RunnerState, num_episodes: int, key: Array
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy episodes with device 0's parameters: ``(returns, won)``, each ``[S, E]``."""
        algo_state = jax.tree_util.tree_map(lambda x: x[0], state.algo_state)
        returns, won = self._evaluate(algo_state, key, num_episodes)
        return np.asarray(returns), np.asarray(won)

    def greedy_episode(self, state: RunnerState, key: Array, seed_index: int = 0) -> dict[str, Any]:
        """One greedy episode of seed ``seed_index`` (0 is the first) with device 0's
        parameters, recorded.

        It is the first episode :meth:`evaluate` plays for that seed with the same
        ``key`` and ``num_episodes=1``. Returns host values: ``states`` (the
        environment's states from the reset to the end, ``length + 1`` of them, each
        unbatched, as a list), ``return``, ``won`` and ``length``.
        """
        if not 0 <= seed_index < self.num_seeds:
            raise ValueError(f"seed_index must be in [0, {self.num_seeds}), got {seed_index}")
        algo_state = jax.tree_util.tree_map(lambda x: x[0, seed_index], state.algo_state)
        seed_key = jax.random.split(key, self.num_seeds)[seed_index]
        returns, won, lengths, states = self._record(algo_state, seed_key)
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
