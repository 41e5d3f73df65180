"""A policy trained on the JAX football simulator, played in GRF's real engine.

Both engines speak GRF's 19 actions and its ``simple115`` observation, so a saved
``football/<scenario>`` run can play the real game unchanged:
:func:`evaluate_run_in_gfootball` reloads the run's latest checkpoint (as
``marl-evaluate`` does), plays greedy episodes per seed in
:class:`marl.envs.football.real_engine.RealFootball` and counts the goals. It is what
``marl-evaluate checkpoint=RUN_DIR engine=gfootball`` runs.

The observation each agent gets is built as ``football/<scenario>`` builds it: GRF's
own ``simple115v2`` vector with the agent's active bit, plus the one-hot agent id when
the run was trained with it; the global state (not read when acting) follows the JAX
env's layout. Runs trained on the ``egocentric`` encoding are refused: it needs
quantities (facing, a pending kick) GRF's observation does not give. Runs whose
scenario GRF lacks cannot play either.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.football.real_engine import RealFootball, require_gfootball
from marl.types import Observation

ACTIVE_BITS = slice(97, 108)  # simple115: 88 team numbers, 9 of the ball, 11 active, 7 mode


class RealEngineError(ValueError):
    """A run that cannot play in GRF's engine (wrong env or observation encoding)."""


def check_run_fits_gfootball(env_name: str, env_kwargs: dict[str, Any]) -> str:
    """The run's GRF scenario name; raises :class:`RealEngineError` in one line otherwise."""
    if not env_name.startswith("football/"):
        raise RealEngineError(
            f"engine=gfootball plays football/* runs in GRF's engine; this run's env is "
            f"'{env_name}'"
        )
    representation = env_kwargs.get("representation", "simple115")
    if representation != "simple115":
        raise RealEngineError(
            "engine=gfootball needs a run trained on env.kwargs.representation=simple115 "
            f"(GRF's own observation); this run used '{representation}'"
        )
    return env_name.split("/", 1)[1]


def real_observation(
    view: np.ndarray, mask: np.ndarray, steps: int, time_limit: int, add_agent_id: bool
) -> Observation:
    """The JAX env's :class:`Observation` of one GRF step, batched ``[1, ...]``."""
    num_agents = view.shape[0]
    agents_view = view
    if add_agent_id:
        agents_view = np.concatenate([view, np.eye(num_agents, dtype=np.float32)], axis=1)
    shared = np.delete(view[0], np.arange(ACTIVE_BITS.start, ACTIVE_BITS.stop))
    time_left = 1.0 - steps / time_limit
    global_state = np.concatenate([shared, [time_left]]).astype(np.float32)
    return Observation(
        agents_view=jnp.asarray(agents_view[None], jnp.float32),
        action_mask=jnp.asarray(mask[None]),
        global_state=jnp.asarray(global_state[None]),
        step_count=jnp.asarray([steps], jnp.int32),
    )


def evaluate_run_in_gfootball(
    run_dir: str | pathlib.Path, num_episodes: int | None = None, engine_seed: int = 0
) -> dict[str, Any]:
    """Greedy episodes of every seed of a football run in GRF's engine.

    Returns ``goals [seeds, episodes]`` (1 where the agents scored), ``lengths``, the
    ``end_reasons`` per seed (counts), ``chunk``, ``config`` and ``seconds``.
    """
    from marl.train import read_run_config, restore_run

    run_dir = pathlib.Path(run_dir)
    config = read_run_config(run_dir)
    scenario = check_run_fits_gfootball(config.env.name, dict(config.env.kwargs))
    require_gfootball()
    runner, state, latest = restore_run(run_dir, config)
    episodes = num_episodes or config.arch.eval_episodes
    algorithm = runner.algorithm
    act = jax.jit(
        lambda algo_state, obs, memory, key: algorithm.act(algo_state, obs, memory, key, False)
    )
    add_agent_id = bool(config.env.add_agent_id)
    started = time.perf_counter()
    goals = np.zeros((len(config.seeds()), episodes), np.float32)
    lengths = np.zeros_like(goals, dtype=np.int32)
    reasons: list[dict[str, int]] = []
    engine = RealFootball(scenario, seed=engine_seed, mask_ball_actions=_mask_of(config))
    try:
        for seed_index in range(len(config.seeds())):
            algo_state = jax.tree_util.tree_map(lambda x, i=seed_index: x[0, i], state.algo_state)
            key = jax.random.PRNGKey(seed_index)
            counts: dict[str, int] = {}
            for episode in range(episodes):
                view, mask, _ = engine.reset()
                memory = algorithm.initial_memory(1)
                scored, reason = False, "running"
                while True:
                    obs = real_observation(
                        view, mask, engine.steps, engine.time_limit, add_agent_id
                    )
                    key, act_key = jax.random.split(key)
                    actions, memory, _ = act(algo_state, obs, memory, act_key)
                    view, mask, _, reward, done, reason = engine.step(np.asarray(actions)[0])
                    scored = scored or reward > 0
                    if done:
                        break
                goals[seed_index, episode] = float(scored)
                lengths[seed_index, episode] = engine.steps
                counts[reason] = counts.get(reason, 0) + 1
            reasons.append(counts)
    finally:
        engine.close()
    return {
        "goals": goals,
        "lengths": lengths,
        "end_reasons": reasons,
        "chunk": latest,
        "config": config,
        "seconds": time.perf_counter() - started,
    }


def _mask_of(config: Any) -> bool:
    return bool(dict(config.env.kwargs).get("mask_ball_actions", True))
