"""MANSA: the budget of CL calls, the switch's reward, the parts it reduces to, and
training through the loop on 2 devices and 2 seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.env import env_spec
from marl.loop import Runner
from marl.options import OptionError
from marl.train import train

ENV = "lbf/8x8-2p-2f"
NUM_ENVS = 4
STEPS = 60
ITERATIONS = 600  # of 8 envs x 4 steps, for the learning test


def _mansa(**options):
    env = marl.make_env(ENV)
    options = {"il_options": {"hidden_dim": 8}, "cl_options": {"hidden_dim": 8}, **options}
    return env, marl.make_algorithm("mansa", env_spec(env), NUM_ENVS, **options)


def _play(env, learner, state, memory=None, seed: int = 0):
    """``STEPS`` exploring steps of ``NUM_ENVS`` envs: the rollout ``[T, B]``, the
    bootstrap after it, and per step what IL and CL alone would have played."""
    vec_env = marl.VectorEnv(env, NUM_ENVS)
    env_state, timestep = vec_env.reset(jax.random.PRNGKey(seed))
    memory = learner.initial_memory(NUM_ENVS) if memory is None else memory

    def body(carry, key):
        env_state, obs, memory = carry
        actions, next_memory, extras = learner.act(state, obs, memory, key, True)
        il_key, cl_key, _ = jax.random.split(key, 3)
        alone = {
            part: learner.parts[part].act(
                learner.part_state(state, part), obs, getattr(memory, part), part_key, True
            )[0]
            for part, part_key in (("il", il_key), ("cl", cl_key))
        }
        env_state, timestep = vec_env.step(env_state, actions)
        done = timestep.last()
        step = marl.Transition(obs, actions, timestep.reward, done, done, extras)
        return (env_state, timestep.observation, next_memory), (step, alone)

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), STEPS)
    (_, obs, memory), (rollout, alone) = jax.jit(lambda c: jax.lax.scan(body, c, keys))(
        (env_state, timestep.observation, memory)
    )
    return rollout, marl.types.Bootstrap(obs, memory), alone


def _episode_calls(rollout) -> list[int]:
    """CL calls of every episode that ended in the rollout, counted from ``switch``."""
    switch, done = np.asarray(rollout.extras.switch), np.asarray(rollout.done)
    calls = []
    for env in range(switch.shape[1]):
        count = 0
        for step in range(switch.shape[0]):
            count += int(switch[step, env])
            if done[step, env]:
                calls.append(count)
                count = 0
    return calls


def test_the_episode_budget_is_never_exceeded_and_exactly_counted():
    env, learner = _mansa(switch="random", cl_rate=0.5, budget=3, hold_steps=2)
    state = learner.init(jax.random.PRNGKey(0))
    rollout, bootstrap, _ = _play(env, learner, state)
    calls = _episode_calls(rollout)
    assert calls and max(calls) == 3  # the budget binds, and is never passed
    # The memory's running count agrees with the switches, episode by episode.
    ended = np.asarray(rollout.extras.calls)[np.asarray(rollout.done)]
    assert sorted(ended.tolist()) == sorted(calls)
    new_state, metrics = learner.update(state, rollout, jax.random.PRNGKey(2), None, bootstrap)
    assert int(new_state.cl_steps) == int(np.sum(rollout.extras.switch))
    assert int(new_state.env_steps) == STEPS * NUM_ENVS
    np.testing.assert_allclose(metrics["cl_calls_per_episode"], np.mean(calls), rtol=1e-6)
    histogram = [float(metrics[f"cl_calls_in_tenth/{k}"]) for k in range(10)]
    assert abs(sum(histogram) - 1.0) < 1e-5


def test_the_run_budget_is_spent_once_per_stream():
    env, learner = _mansa(switch="always", budget=5, budget_scope="run")
    state = learner.init(jax.random.PRNGKey(0))
    rollout, bootstrap, _ = _play(env, learner, state)
    per_stream = np.asarray(rollout.extras.switch).sum(axis=0)
    np.testing.assert_array_equal(per_stream, 5)  # the first 5 steps, then never again
    assert not np.any(np.asarray(rollout.extras.switch)[5:])
    later, _, _ = _play(env, learner, state, memory=bootstrap.memory, seed=3)
    assert not np.any(np.asarray(later.extras.switch))


def test_with_no_budget_left_mansa_is_il_and_unlimited_always_is_cl():
    env, learner = _mansa(switch="learned", budget=4, budget_scope="run")
    state = learner.init(jax.random.PRNGKey(0))
    empty = learner.initial_memory(NUM_ENVS)._replace(remaining=jnp.zeros(NUM_ENVS, jnp.int32))
    rollout, bootstrap, alone = _play(env, learner, state, memory=empty)
    assert not np.any(np.asarray(rollout.extras.switch))
    np.testing.assert_array_equal(rollout.action, alone["il"])
    # IL learns from MANSA's rollout exactly what it learns alone, for the same key.
    new_state, _ = learner.update(state, rollout, jax.random.PRNGKey(5), None, bootstrap)
    il_key = jax.random.split(jax.random.PRNGKey(5), 2)[0]
    il_alone, _ = learner.parts["il"].update(
        learner.part_state(state, "il"),
        rollout._replace(extras=rollout.extras.il),
        il_key,
        None,
        marl.types.Bootstrap(bootstrap.obs, bootstrap.memory.il),
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(new_state.params["il"]),
        jax.tree_util.tree_leaves(il_alone.params),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)

    env, learner = _mansa(switch="always", budget_scope="unlimited")
    state = learner.init(jax.random.PRNGKey(0))
    rollout, _, alone = _play(env, learner, state)
    assert np.all(np.asarray(rollout.extras.switch))
    np.testing.assert_array_equal(rollout.action, alone["cl"])


def test_the_switching_cost_changes_globals_reward_by_exactly_c_g():
    env, free = _mansa(switch="random", cl_rate=0.5, switch_cost=0.0)
    _, costly = _mansa(switch="random", cl_rate=0.5, switch_cost=0.25)
    rollout, _, _ = _play(env, free, free.init(jax.random.PRNGKey(0)))
    switch = np.asarray(rollout.extras.switch, np.float32)
    assert 0 < switch.mean() < 1
    difference = np.asarray(free.switch_rewards(rollout) - costly.switch_rewards(rollout))
    np.testing.assert_allclose(difference, 0.25 * switch, atol=1e-6)


def test_bad_pairs_and_budgets_are_refused_in_one_line():
    spec = env_spec(marl.make_env("matrix/one_step"))
    cases = [
        ({"budget": 0}, "budget: must be a positive integer"),
        ({"il": "mt_vdn"}, "il: 'mt_vdn' cannot be paired; valid: "),
        ({"cl": "momix"}, "cl: 'momix' cannot be paired"),
        ({"il_options": {"hiden_dim": 8}}, "il_options.hiden_dim: unknown option for iql"),
        ({"switch": "sometimes"}, "switch: 'sometimes' is unknown; valid: learned, random"),
    ]
    for options, message in cases:
        with pytest.raises(OptionError, match=message) as error:
            marl.make_algorithm("mansa", spec, 4, **options)
        assert "\n" not in str(error.value)


def test_mansa_trains_on_two_devices_and_two_seeds_with_identical_replicas():
    env = marl.make_env("matrix/one_step")
    learner = marl.make_algorithm(
        "mansa",
        env_spec(env),
        4,
        il="ippo",
        cl="mappo",
        budget=1,
        il_options={"hidden_dim": 8, "num_epochs": 2},
        cl_options={"hidden_dim": 8, "num_epochs": 2},
    )
    runner = Runner(
        env,
        learner,
        envs_per_device=4,
        rollout_length=4,
        iterations_per_chunk=5,
        num_seeds=2,
        num_devices=2,
    )
    state, metrics = runner.run_chunk(runner.init([0, 1]))
    algo_state = state.algo_state
    for leaf in jax.tree_util.tree_leaves((algo_state.params, algo_state.cl_steps)):
        leaf = np.asarray(leaf)  # [devices, seeds, ...]
        assert leaf.shape[:2] == (2, 2)
        np.testing.assert_array_equal(leaf[0], leaf[1])
    global_kernels = np.asarray(algo_state.params["global"]["params"]["Dense_0"]["kernel"])
    assert not np.array_equal(global_kernels[0, 0], global_kernels[0, 1])  # seeds differ
    cl_steps = np.asarray(algo_state.cl_steps)[0]
    assert np.all(cl_steps > 0) and np.all(cl_steps < 2 * 4 * 4 * 5)
    fraction = metrics.as_dict()["cl_step_fraction"]
    np.testing.assert_allclose(fraction, cl_steps / 160, rtol=1e-6)


ONE_STEP_PARTS = {
    "td_lambda": 0.0,
    "epsilon_anneal_steps": 10_000,
    "batch_size": 32,
    "buffer_size": 2_000,
    "target_update_interval": 10,
}


def _one_step_greedy(name: str, **options) -> tuple[np.ndarray, dict[str, Any]]:
    """Greedy payoffs per seed after ``ITERATIONS`` on the one-step game, and metrics."""
    env = marl.make_env("matrix/one_step")
    learner = marl.make_algorithm(name, env_spec(env), 8, **options)
    runner = Runner(
        env,
        learner,
        envs_per_device=8,
        rollout_length=4,
        iterations_per_chunk=ITERATIONS,
        num_seeds=3,
        num_devices=1,
    )
    state, metrics = runner.run_chunk(runner.init([0, 1, 2]))
    returns, _ = runner.evaluate(state, 2, jax.random.PRNGKey(0))
    return returns.mean(axis=1), metrics.as_dict()


@pytest.fixture(scope="module")
def iql_one_step() -> np.ndarray:
    return _one_step_greedy("iql", **ONE_STEP_PARTS)[0]


@pytest.mark.parametrize("global_learner", ["ppo", "dqn"])
def test_mansa_calls_cl_where_il_cannot_coordinate_and_scores_above_il(
    iql_one_step, global_learner
):
    """The one-step non-monotonic game: independent learners settle in the zero block,
    OW-QMIX finds 8; MANSA over the two learns to call CL there, within a budget of one
    call per episode and a switching cost, with either learner for its switch."""
    payoffs, metrics = _one_step_greedy(
        "mansa",
        cl="ow_qmix",
        il_options=ONE_STEP_PARTS,
        cl_options=ONE_STEP_PARTS,
        budget=1,
        switch_cost=0.1,
        global_learner=global_learner,
        global_epsilon_anneal_steps=5_000,
    )
    assert np.all(iql_one_step <= 0.0)
    np.testing.assert_array_equal(payoffs, 8.0)
    # IQL cannot reach 8, so the greedy switch hands CL the step; over the whole run,
    # exploration included, most steps already went to CL.
    assert np.all(metrics["cl_step_fraction"] > 0.5)


def test_a_run_logs_each_parts_update_cost_once_and_the_option_turns_it_off(train_config):
    """What one IL and one CL update cost is measured as a run starts, written to its
    metrics.jsonl, and kept, not measured again, when the run resumes."""
    import json

    options = {"il_options": {"hidden_dim": 8}, "cl_options": {"hidden_dim": 8}}

    def cost_records(run_dir):
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["kind"] == "update_costs"]

    sizes = {"arch.eval_interval": 32, "arch.eval_episodes": 2}
    config = train_config(
        algo="mansa",
        env="matrix/one_step",
        algo_options=options,
        **sizes,
        **{"arch.total_timesteps": 64},
    )
    train(config)
    run_dir = Path(config.run_dir)
    costs = {r["part"]: r for r in cost_records(run_dir)}
    assert set(costs) == {"il", "cl"}
    for cost in costs.values():
        assert cost["step"] == 0 and cost["flops"] > 0 and 0 < cost["seconds"] < 60
    # QMIX's update is IQL's plus the mixer and its hypernetworks, on both networks.
    assert costs["cl"]["flops"] > costs["il"]["flops"]
    config.arch.total_timesteps = 96
    config.resume = True
    train(config)
    assert [r["part"] for r in cost_records(run_dir)] == ["il", "cl"]
    env = marl.make_env("matrix/one_step")
    quiet = marl.make_algorithm("mansa", env_spec(env), 4, measure_costs=False, **options)
    assert quiet.update_costs(env, 4, jax.random.PRNGKey(0)) == {}
