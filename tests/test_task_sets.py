"""The loop with a set of tasks: envs of different sizes stepped in lockstep in one
program, per-task rollouts and metrics, and task sets from the config.

The learner here is a test-only composite (one independent QMIX per task), so the
loop's side is checked apart from the shared-layer learner (tests/test_multitask.py).
"""

from typing import Any

import jax
import numpy as np
import pytest
from flax import struct

import marl
from marl.algorithm import MultiTaskAlgorithm, SingleTask, as_multitask
from marl.config import ConfigError, EnvConfig, TaskConfig
from marl.loop import Runner, Task

TASKS = ("matrix/one_step", "matrix/two_step")


@struct.dataclass
class _States:
    per_task: tuple
    params: Any
    env_steps: jax.Array


class _Independent:
    """One learner per task, nothing shared: the simplest task-set learner."""

    def __init__(self, learners):
        self.learners = tuple(learners)
        self.num_tasks = len(self.learners)
        self.replay_fields = ()

    def init(self, key):
        keys = jax.random.split(key, self.num_tasks)
        states = tuple(learner.init(k) for learner, k in zip(self.learners, keys, strict=True))
        return _States(states, tuple(s.params for s in states), states[0].env_steps)

    def initial_memory(self, batch_size, task):
        return self.learners[task].initial_memory(batch_size)

    def act(self, state, obs, memory, key, explore, task):
        return self.learners[task].act(state.per_task[task], obs, memory, key, explore)

    def update(self, state, rollouts, key, axis_name, bootstraps):
        keys = jax.random.split(key, self.num_tasks)
        new_states, metrics = [], {}
        for task, learner in enumerate(self.learners):
            task_state = state.per_task[task].replace(params=state.params[task])
            task_state, task_metrics = learner.update(
                task_state, rollouts[task], keys[task], axis_name, bootstrap=bootstraps[task]
            )
            new_states.append(task_state)
            metrics.update({f"{name}/{task}": value for name, value in task_metrics.items()})
        params = tuple(s.params for s in new_states)
        return _States(tuple(new_states), params, new_states[0].env_steps), metrics


def _runner(num_devices=2, num_seeds=2, envs_per_device=4):
    tasks = [Task(name, marl.make_env(name)) for name in TASKS]
    learners = [
        marl.make_algorithm(
            "qmix",
            marl.env_spec(task.env),
            envs_per_device,
            buffer_size=64,
            batch_size=4,
            hidden_dim=8,
            epsilon_anneal_steps=200,
        )
        for task in tasks
    ]
    algorithm = _Independent(learners)
    runner = Runner(
        tasks,
        algorithm,
        envs_per_device=envs_per_device,
        rollout_length=4,
        iterations_per_chunk=25,
        num_seeds=num_seeds,
        num_devices=num_devices,
    )
    return runner, learners


@pytest.fixture(scope="module")
def trained():
    runner, _ = _runner()
    state = runner.init([0, 1])
    chunks = []
    for _ in range(3):
        state, metrics = runner.run_chunk(state)
        chunks.append(metrics)
    return runner, state, chunks


def test_tasks_of_different_sizes_step_in_lockstep_and_report_apart(trained):
    runner, state, chunks = trained
    assert runner.task_names == TASKS
    # Each task keeps its own envs, observations and memory, of its own sizes.
    obs_dims = [obs.agents_view.shape[-1] for obs in state.obs]
    assert obs_dims[0] != obs_dims[1]
    assert all(obs.agents_view.shape[:3] == (2, 2, 4) for obs in state.obs)
    metrics = chunks[-1].as_dict()
    for name in ("episode_return", "win_rate", "episode_length"):
        for task in TASKS:
            assert metrics[f"{name}/{task}"].shape == (2,)
    # one_step ends every step, two_step every other: the lengths say whose is whose.
    np.testing.assert_allclose(metrics["episode_length/matrix/one_step"], 1.0)
    np.testing.assert_allclose(metrics["episode_length/matrix/two_step"], 2.0)
    # Both learners learned on their own task, with their own updates.
    assert {"loss/0", "loss/1"} <= set(metrics)
    # Parameters stay identical across devices (gradients averaged per task).
    for leaf in jax.tree_util.tree_leaves(state.algo_state.params):
        np.testing.assert_array_equal(np.asarray(leaf)[0], np.asarray(leaf)[1])
    steps_per_chunk = 25 * 4 * 4 * 2
    np.testing.assert_array_equal(chunks[-1].env_steps, [3 * steps_per_chunk] * 2)


def test_every_task_is_evaluated_on_its_own_env(trained):
    runner, state, _ = trained
    results = [runner.evaluate(state, 8, jax.random.PRNGKey(3), task=t) for t in range(2)]
    for returns, won in results:
        assert returns.shape == won.shape == (2, 8)
    # Each task's greedy returns are payoffs of its own game: the one-step matrix
    # pays 8, -12 or 0; the two-step game 7 (branch 2A) or 0, 1, 8 (branch 2B).
    assert set(np.unique(results[0][0])) <= {8.0, -12.0, 0.0}
    assert set(np.unique(results[1][0])) <= {7.0, 0.0, 1.0, 8.0}
    assert not np.array_equal(results[0][0], results[1][0])
    with pytest.raises(ValueError, match="task must be in"):
        runner.evaluate(state, 8, jax.random.PRNGKey(3), task=2)


def test_a_single_learner_is_the_set_of_one_and_draws_as_before():
    env = marl.make_env("matrix/two_step")
    learner = marl.make_algorithm("qmix", marl.env_spec(env), 4, buffer_size=64, batch_size=4)
    adapted = as_multitask(learner)
    assert isinstance(adapted, SingleTask) and adapted.num_tasks == 1
    assert isinstance(adapted, MultiTaskAlgorithm)
    assert adapted.replay_fields == learner.replay_fields  # attributes pass through
    sizes = dict(envs_per_device=4, rollout_length=4, iterations_per_chunk=5)
    plain = Runner(env, learner, **sizes)
    as_set = Runner([Task("matrix/two_step", env)], learner, **sizes)
    state_a, _ = plain.run_chunk(plain.init([0]))
    state_b, _ = as_set.run_chunk(as_set.init([0]))
    jax.tree_util.tree_map(np.testing.assert_array_equal, state_a, state_b)


def test_a_single_task_learner_is_refused_for_several_tasks():
    tasks = [Task(name, marl.make_env(name)) for name in TASKS]
    learner = marl.make_algorithm("qmix", marl.env_spec(tasks[0].env), 4)
    with pytest.raises(ValueError, match=r"learns 1 task\(s\) and the run has 2"):
        Runner(tasks, learner, envs_per_device=4, rollout_length=4, iterations_per_chunk=1)
    specs = [marl.env_spec(task.env) for task in tasks]
    options = marl.registry.algorithm_options("qmix")
    with pytest.raises(ValueError, match="algo=qmix learns one task and this run has 2"):
        marl.registry.build_algorithm(options, specs, 4)


@pytest.mark.parametrize(
    "env, message",
    [
        (EnvConfig(name="multitask/x"), "tasks: the task set 'multitask/x' lists no tasks"),
        (
            EnvConfig(name="smac/3m", tasks=[TaskConfig("smac/3m")]),
            "name: a task set is named multitask/<set>, got 'smac/3m'",
        ),
        (
            EnvConfig(name="multitask/x", tasks=[TaskConfig("smac/3m"), TaskConfig("smac/3m")]),
            "tasks: each task may appear once; repeated: ['smac/3m']",
        ),
        (
            EnvConfig(name="multitask/x", tasks=[TaskConfig("smac/3m", {"difficulty": "x"})]),
            "tasks[0].kwargs.difficulty: expected an integer, got 'x'",
        ),
        (
            EnvConfig(name="multitask/x", tasks=[TaskConfig("smac/3m")], kwargs={"a": 1}),
            "kwargs: a task set takes kwargs per task",
        ),
    ],
)
def test_task_sets_in_the_config_are_checked_in_one_line(env, message):
    from marl.config import _within

    with pytest.raises(ConfigError) as error:
        _within("env", env.check)
    assert str(error.value).startswith(f"env.{message}"), str(error.value)
    assert "\n" not in str(error.value)


def test_one_env_is_the_set_of_one_and_presets_compose():
    env = EnvConfig(name="smac/3m", kwargs={"difficulty": 3})
    assert [(t.name, t.kwargs) for t in env.task_list()] == [("smac/3m", {"difficulty": 3})]
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from marl.config import TrainConfig, config_dirs, register_schema

    register_schema()
    with initialize_config_dir(str(config_dirs()[0]), version_base=None):
        cfg = compose("config", overrides=["env=multitask/smac_cpu"])
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, TrainConfig)
    assert [t.name for t in config.env.task_list()] == ["smac/3m", "smac/8m", "smac/2s3z"]
    config.env.check()
    # config.yaml round trip: plain dicts become TaskConfig again.
    again = TrainConfig.from_dict(config.to_dict())
    assert again.env.task_list() == config.env.task_list()


def test_a_task_set_trains_end_to_end_and_its_decision_layers_transfer(train_config, tmp_path):
    import json
    import pathlib

    from marl.checkpoint import load_params
    from marl.train import NoRGBRenderError, NoSuchTaskError, evaluate_run, replay_run, train

    small = {"hidden_dim": 16, "buffer_size": 400, "batch_size": 8}
    config = train_config(
        algo="mt_vdn",
        algo_options=small,
        run_dir=tmp_path / "pre",
        **{"arch.num_devices": 2, "arch.num_seeds": 2, "arch.total_timesteps": 2_000},
    )
    config.env = EnvConfig(
        name="multitask/matrix",
        tasks=[TaskConfig("matrix/one_step"), TaskConfig("matrix/two_step")],
    )
    result = train(config)
    run_dir = pathlib.Path(result["run_dir"])
    assert set(result["tasks"]) == set(TASKS)
    # marl-eval's layout: each task under its own environment and task names.
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["matrix"]) == {"one_step", "two_step"}
    for task in ("one_step", "two_step"):
        seeds = results["matrix"][task]["mt_vdn"]
        assert set(seeds) == {"seed_0", "seed_1"}
        assert "absolute_metrics" in seeds["seed_0"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluated = {r["task"] for r in records if r["kind"] == "eval"}
    assert evaluated == {"matrix/one_step", "matrix/two_step"}
    train_records = [r for r in records if r["kind"] == "train"]
    assert "win_rate/matrix/one_step" in train_records[-1]
    assert "task_weight/1" in train_records[-1]
    assert "mt_vdn on matrix/two_step" in (run_dir / "summary.txt").read_text()
    evaluated_again = evaluate_run(run_dir, num_episodes=2)
    assert evaluated_again["tasks"]["matrix/two_step"]["won"].shape == (2, 2)
    # A replay names the task it would play, and refuses one the run does not have.
    with pytest.raises(NoRGBRenderError, match="env 'matrix/two_step' has no RGB render"):
        replay_run(run_dir, task="matrix/two_step")
    with pytest.raises(NoSuchTaskError) as error:
        replay_run(run_dir, task="smac/3m")
    assert str(error.value) == (
        "replay_task must be one of the run's tasks (matrix/one_step, matrix/two_step), "
        "got 'smac/3m'"
    )

    # The decision layers start a new task, frozen: they end as they were loaded.
    saved = load_params(run_dir)["decision"]
    transfer = train_config(
        algo="mt_vdn",
        algo_options={
            **small,
            "buffer_size": 1_000,
            "sequence_length": 10,
            "init_from": str(run_dir),
            "transfer": "frozen",
        },
        env="lbf/5x5-2p-1f",
        run_dir=tmp_path / "transfer",
        **{"arch.total_timesteps": 1_000},
    )
    moved = train(transfer)["params"]
    jax.tree_util.tree_map(
        lambda new, old: np.testing.assert_array_equal(new[0], old), moved["decision"], saved
    )
    # A run without decision layers is refused in one line, naming the option.
    plain = train_config(run_dir=tmp_path / "plain", **{"arch.total_timesteps": 1_000})
    plain_dir = train(plain)["run_dir"]
    refused = train_config(
        algo="mt_vdn",
        algo_options={**small, "init_from": plain_dir},
        run_dir=tmp_path / "refused",
    )
    with pytest.raises(ValueError) as error:
        train(refused)
    assert str(error.value).startswith("algo.init_from: ")
    assert "no 'decision' layers" in str(error.value) and "\n" not in str(error.value)
