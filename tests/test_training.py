"""Learning, device parallelism, vmapped seeds and resume, on tiny budgets."""

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import NamedTuple

import jax
import numpy as np
import pytest

import marl
from marl.checkpoint import (
    Checkpointer,
    CheckpointLayoutError,
    ConfigMismatchError,
    read_config,
)
from marl.config import TrainConfig
from marl.loop import Runner, RunnerState
from marl.train import RunExistsError, build_runner, train

# Uniform exploration throughout and one-step targets, as in the QMIX paper's
# two-step experiment (TD(lambda) on uniform data would mix in the random policy's
# value of state 2B and make 2A look better).
TWO_STEP_ALGO = dict(
    td_lambda=0.0,
    batch_size=32,
    buffer_size=2_000,
    epsilon_start=1.0,
    epsilon_finish=1.0,
    target_update_interval=10,
)


def two_step_runner(algo: str, num_seeds: int, num_devices: int, **overrides) -> Runner:
    env = marl.make_env("matrix/two_step")
    envs_per_device = 8 // num_devices
    learner = marl.make_algorithm(
        algo, marl.env_spec(env), envs_per_device, **{**TWO_STEP_ALGO, **overrides}
    )
    return Runner(
        env,
        learner,
        envs_per_device=envs_per_device,
        rollout_length=4,
        iterations_per_chunk=60,
        num_seeds=num_seeds,
        num_devices=num_devices,
    )


def train_chunks(runner: Runner, seeds, chunks: int):
    state = runner.init(seeds)
    for _ in range(chunks):
        state, metrics = runner.run_chunk(state)
    return state, metrics


@pytest.fixture(scope="module")
def qmix_two_devices():
    runner = two_step_runner("qmix", num_seeds=2, num_devices=2)
    state, metrics = train_chunks(runner, [0, 1], chunks=5)
    return runner, state, metrics


def test_qmix_finds_the_two_step_optimum_on_two_devices(qmix_two_devices):
    runner, state, _ = qmix_two_devices
    returns, won = runner.evaluate(state, 4, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(returns, 8.0)
    np.testing.assert_array_equal(won, 1.0)


def test_replicas_stay_identical_across_devices(qmix_two_devices):
    _, state, _ = qmix_two_devices
    for leaf in jax.tree_util.tree_leaves(
        (state.algo_state.params, state.algo_state.target_params, state.algo_state.opt_state)
    ):
        leaf = np.asarray(leaf)
        assert leaf.shape[0] == 2
        np.testing.assert_array_equal(leaf[0], leaf[1])
    # The devices saw different data: their replay differs.
    obs = np.asarray(state.algo_state.buffer_state.experience.extras.prev_action)
    assert not np.array_equal(obs[0], obs[1])


def test_vdn_settles_on_seven_in_the_two_step_game():
    runner = two_step_runner("vdn", num_seeds=2, num_devices=1)
    state, _ = train_chunks(runner, [0, 1], chunks=5)
    returns, _ = runner.evaluate(state, 4, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(returns, 7.0)


def test_vmapped_seeds_equal_seeds_run_alone():
    together = two_step_runner("qmix", num_seeds=2, num_devices=1, epsilon_finish=0.1)
    alone = two_step_runner("qmix", num_seeds=1, num_devices=1, epsilon_finish=0.1)
    state_together, _ = train_chunks(together, [3, 4], chunks=2)
    state_alone, _ = train_chunks(alone, [4], chunks=2)
    params_together = jax.tree_util.tree_map(
        lambda x: np.asarray(x)[0, 1], state_together.algo_state.params
    )
    params_alone = jax.tree_util.tree_map(
        lambda x: np.asarray(x)[0, 0], state_alone.algo_state.params
    )
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        params_together,
        params_alone,
    )


@pytest.mark.slow
def test_qmix_learns_lbf_well_above_random(train_config, random_return):
    random_return = random_return("lbf/8x8-2p-2f")
    config = train_config(
        env="lbf/8x8-2p-2f",
        algo_options={
            "gamma": 0.95,
            "td_lambda": 0.8,
            "hidden_dim": 32,
            "learning_rate": 0.002,
            "epsilon_anneal_steps": 20_000,
            "target_update_interval": 50,
            "batch_size": 32,
            "sequence_length": 20,
            "buffer_size": 50_000,
        },
        **{
            "arch.num_seeds": 2,
            "arch.total_timesteps": 120_000,
            "arch.eval_interval": 25_000,
            "arch.eval_episodes": 32,
        },
    )
    result = train(config)
    per_seed = result["returns"].mean(axis=1)
    assert np.all(per_seed > random_return + 0.25), (per_seed, random_return)


def test_resume_refuses_a_different_config_and_an_existing_run(train_config):
    config = train_config(algo_options=TWO_STEP_ALGO, **{"arch.total_timesteps": 1_000})
    train(config)
    with pytest.raises(RunExistsError, match="resume=true"):
        train(config)
    changed = train_config(
        algo_options={**TWO_STEP_ALGO, "learning_rate": 0.01},
        **{"arch.total_timesteps": 1_000, "resume": True, "env.add_agent_id": False},
    )
    with pytest.raises(ConfigMismatchError, match="algo.learning_rate, env.add_agent_id"):
        train(changed)


TRAIN_SCRIPT = """
import json, sys
from marl.config import TrainConfig
from marl.train import train
train(TrainConfig.from_dict(json.loads(sys.argv[1])))
"""


def _final_state(run_dir: pathlib.Path):
    config = TrainConfig.from_dict(read_config(run_dir))
    runner = build_runner(config)
    checkpointer = Checkpointer(run_dir)
    try:
        latest = checkpointer.latest_chunk()
        return latest, checkpointer.restore(latest, runner.init(config.seeds()))
    finally:
        checkpointer.close()


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, train_config):
    import dataclasses
    import json

    env = dict(
        os.environ,
        JAX_COMPILATION_CACHE_DIR=str(pathlib.Path(__file__).parent.parent / ".jax_cache"),
    )
    # 16 chunks of 1,024 steps each.
    sizes = {"arch.total_timesteps": 16_384, "arch.eval_interval": 1_024}
    killed = train_config(algo_options=TWO_STEP_ALGO, run_dir=tmp_path / "killed", **sizes)
    straight = train_config(algo_options=TWO_STEP_ALGO, run_dir=tmp_path / "straight", **sizes)

    def launch(config: TrainConfig) -> list[str]:
        return [sys.executable, "-c", TRAIN_SCRIPT, json.dumps(config.to_dict())]

    process = subprocess.Popen(launch(killed), env=env)
    checkpoints = pathlib.Path(killed.run_dir) / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (checkpoints / "3").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    latest = Checkpointer(killed.run_dir).latest_chunk()
    assert latest is not None and latest < 15, latest

    resumed = dataclasses.replace(killed, resume=True)
    subprocess.run(launch(resumed), env=env, check=True)
    subprocess.run(launch(straight), env=env, check=True)

    chunk_a, state_a = _final_state(pathlib.Path(killed.run_dir))
    chunk_b, state_b = _final_state(pathlib.Path(straight.run_dir))
    assert chunk_a == chunk_b == 15
    jax.tree_util.tree_map(np.testing.assert_array_equal, state_a, state_b)
    # The logged evaluations were kept across the kill: one per chunk, in order.
    results = json.loads((pathlib.Path(killed.run_dir) / "results.json").read_text())
    run = results["matrix"]["two_step"]["qmix"]["seed_0"]
    steps = [v["step_count"] for k, v in run.items() if k.startswith("step_")]
    assert steps == sorted(steps) and len(steps) == 16


class _State(NamedTuple):
    params: dict
    env_steps: np.ndarray


def _runner_state(params: dict) -> RunnerState:
    return RunnerState(
        algo_state=_State(params, np.int32(0)),
        env_state=np.zeros(2, np.float32),
        obs=np.zeros(2, np.float32),
        memory=(),
        key=np.zeros(2, np.uint32),
    )


def test_checkpoints_of_another_layout_are_refused_in_one_line(tmp_path):
    import orbax.checkpoint as ocp

    from marl.checkpoint import load_params

    # As marl-lab wrote checkpoints before they had a params item: the state alone.
    old = ocp.CheckpointManager(
        tmp_path / "old" / "checkpoints", options=ocp.CheckpointManagerOptions(create=True)
    )
    old.save(0, args=ocp.args.StandardSave({"params": np.zeros((3, 2), np.float32)}))
    old.wait_until_finished()
    old.close()
    like = _runner_state({"agent": np.zeros((3, 2), np.float32)})
    checkpointer = Checkpointer(tmp_path / "old")
    with pytest.raises(CheckpointLayoutError) as error:
        checkpointer.restore(0, like)
    checkpointer.close()
    assert "does not fit this version's training state" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="has no params item") as error:
        load_params(tmp_path / "old")
    assert "\n" not in str(error.value)

    # This version's layout, restored into a state of another structure.
    checkpointer = Checkpointer(tmp_path / "new")
    checkpointer.save(0, _runner_state({"agent": np.ones((1, 1, 3, 2), np.float32)}))
    np.testing.assert_array_equal(load_params(tmp_path / "new")["agent"], np.ones((3, 2)))
    with pytest.raises(CheckpointLayoutError) as error:
        checkpointer.restore(0, _runner_state({"mixer": np.zeros((1, 1, 3, 2), np.float32)}))
    checkpointer.close()
    assert "\n" not in str(error.value)
