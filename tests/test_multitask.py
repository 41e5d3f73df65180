"""The shared-layer multitask learner (mt_vdn, mt_qmix) on CI budgets: two tasks of
different sizes in one program, gradients from both into the shared layers, the loss
weights, transfer of the decision layers, learning and the action mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.algorithms.value_decomposition import ValueDecompositionState
from marl.algorithms.value_decomposition.multitask import (
    DECISION,
    TASKS,
    MultiTaskValueDecomposition,
    load_decision_layers,
    running_win_rates,
    task_weights,
)
from marl.checkpoint import Checkpointer, export_params, load_exported, load_params
from marl.loop import Runner, RunnerState, Task
from marl.options import OptionError
from marl.types import Observation, Transition

# A one-step game of 4 actions whose optimum (10) VDN and QMIX both find from
# uniform data; with QMIX's two-step game (2 actions, optimum 8) it makes two
# tasks of different observation, action and state sizes.
PAYOFF_4X4 = [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 10]]
# Uniform exploration throughout and one-step targets, as in the QMIX paper's
# two-step experiment (see tests/test_training.py).
TOY_ALGO = dict(
    hidden_dim=32,
    td_lambda=0.0,
    batch_size=32,
    buffer_size=1_000,
    epsilon_start=1.0,
    epsilon_finish=1.0,
    target_update_interval=10,
)


def toy_tasks() -> list[Task]:
    return [
        Task("two_step", marl.make_env("matrix/two_step")),
        Task("one_step_4x4", marl.make_env("matrix/one_step", payoff=PAYOFF_4X4)),
    ]


def host(tree):
    return jax.tree_util.tree_map(np.array, tree)


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def two_tasks():
    """mt_qmix on the two toy games, 2 devices x 2 seeds, 10 chunks (4 envs per device)."""
    tasks = toy_tasks()
    specs = [marl.env_spec(task.env) for task in tasks]
    learner = marl.build_algorithm(marl.algorithm_options("mt_qmix", **TOY_ALGO), specs, 4)
    runner = Runner(
        tasks,
        learner,
        envs_per_device=4,
        rollout_length=4,
        iterations_per_chunk=60,
        num_seeds=2,
        num_devices=2,
    )
    state = runner.init([0, 1])
    initial = host(state.algo_state.params)  # before the chunk donates the state
    for _ in range(10):
        state, metrics = runner.run_chunk(state)
    return runner, learner, initial, state, metrics


def test_two_tasks_of_different_sizes_train_with_identical_shared_layers(two_tasks):
    runner, learner, initial, state, metrics = two_tasks
    assert isinstance(learner, MultiTaskValueDecomposition) and learner.num_tasks == 2
    params = host(state.algo_state.params)
    for leaf in jax.tree_util.tree_leaves((params, host(state.algo_state.target_params))):
        assert leaf.shape[:2] == (2, 2)  # [devices, seeds]
        np.testing.assert_array_equal(leaf[0], leaf[1])
    # The devices played their own episodes: their replays differ.
    actions = np.asarray(state.algo_state.buffer_state[0].experience.action)
    assert not np.array_equal(actions[0], actions[1])
    assert not leaves_equal(params[DECISION], initial[DECISION])
    for task in range(2):
        assert not leaves_equal(
            params[TASKS][task]["perception"], initial[TASKS][task]["perception"]
        )
    # The tasks' perception layers have their own input sizes (obs + last + candidate).
    kernels = [params[TASKS][k]["perception"]["params"]["Dense_0"]["kernel"] for k in range(2)]
    assert kernels[0].shape[-2] == 5 + 2 + 2 and kernels[1].shape[-2] == 3 + 4 + 4
    logged = metrics.as_dict()
    for name in ("loss", "grad_norm", "task_weight/0", "task_weight/1", "task_win_rate/1"):
        assert logged[name].shape == (2,) and np.isfinite(logged[name]).all(), name
    np.testing.assert_allclose(logged["task_weight/0"] + logged["task_weight/1"], 1.0, rtol=1e-6)
    # Uniform play wins 1/8 of two-step and 1/16 of 4x4 episodes (a running rate over
    # ~200 episodes: within 3.5 standard deviations).
    np.testing.assert_allclose(logged["task_win_rate/0"], 1 / 8, atol=0.08)
    np.testing.assert_allclose(logged["task_win_rate/1"], 1 / 16, atol=0.06)


def test_both_toy_tasks_reach_their_optimum(two_tasks):
    runner, _, _, state, _ = two_tasks
    for task, optimum in ((0, 8.0), (1, 10.0)):
        returns, won = runner.evaluate(state, 4, jax.random.PRNGKey(0), task=task)
        np.testing.assert_array_equal(returns, optimum)
        np.testing.assert_array_equal(won, 1.0)


def test_the_shared_layers_receive_gradients_from_both_tasks(two_tasks):
    _, learner, initial, state, _ = two_tasks
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x[0, 0]), initial)
    batches = tuple(
        task.buffer.sample(
            jax.tree_util.tree_map(lambda x: x[0, 0], buffer), jax.random.PRNGKey(index)
        ).experience
        for index, (task, buffer) in enumerate(
            zip(learner.tasks, state.algo_state.buffer_state, strict=True)
        )
    )
    gradient = jax.jit(jax.grad(learner.loss, has_aux=True))

    def grads(weights):
        return host(gradient(params, params, batches, jnp.asarray(weights, jnp.float32))[0])

    first, second, both = grads([1.0, 0.0]), grads([0.0, 1.0]), grads([1.0, 1.0])
    for alone in (first, second):
        assert any(np.abs(leaf).max() > 0 for leaf in jax.tree_util.tree_leaves(alone[DECISION]))
    # One task's loss reaches the other's perception not at all, the shared layers fully.
    for leaf in jax.tree_util.tree_leaves(first[TASKS][1]):
        np.testing.assert_array_equal(leaf, 0.0)
    assert not leaves_equal(both[DECISION], first[DECISION])
    assert not leaves_equal(both[DECISION], second[DECISION])
    jax.tree_util.tree_map(
        lambda total, a, b: np.testing.assert_allclose(total, a + b, rtol=1e-4, atol=1e-6),
        both[DECISION],
        first[DECISION],
        second[DECISION],
    )


def test_loss_weights_follow_the_win_rates():
    np.testing.assert_allclose(task_weights(jnp.array([0.2, 0.6])), [0.8 / 1.2, 0.4 / 1.2])
    np.testing.assert_allclose(task_weights(jnp.array([0.0, 0.0, 0.0])), [1 / 3] * 3)
    # A solved task (rate >= solved_win_rate) gets 0.01; the others keep the rule.
    np.testing.assert_allclose(task_weights(jnp.array([0.97, 0.5])), [0.01, 0.5 / 0.53], rtol=1e-6)
    np.testing.assert_allclose(task_weights(jnp.array([1.0, 1.0])), [0.01, 0.01])
    np.testing.assert_allclose(
        task_weights(jnp.array([0.9, 0.5]), solved_win_rate=0.9, solved_weight=0.05),
        [0.05, 0.5 / 0.6],
        rtol=1e-6,
    )


def test_running_win_rates_average_finished_episodes():
    def rollout(done, won):
        done, won = np.array(done, bool)[:, None], np.array(won, bool)[:, None]
        return Transition(None, None, None, done, done, None, won)

    rates = running_win_rates(
        jnp.array([0.5, 0.5, 0.5]),
        [
            rollout([1, 1, 0], [1, 1, 0]),
            rollout([1, 0, 1], [0, 0, 0]),
            rollout([0, 0, 0], [0, 0, 0]),
        ],
        decay=0.9,
        axis_name=None,
    )
    kept = 0.9**2
    np.testing.assert_allclose(rates, [kept * 0.5 + (1 - kept), kept * 0.5, 0.5], rtol=1e-6)


# ----------------------------------------------------------------- transfer
@pytest.fixture(scope="module")
def source_run(two_tasks, tmp_path_factory):
    """The two-task run saved as a run directory (``load_params`` reads its first seed)."""
    _, learner, _, state, _ = two_tasks
    run_dir = tmp_path_factory.mktemp("mt_source")
    checkpointer = Checkpointer(run_dir)
    checkpointer.save(0, state, metadata={"env_steps": 1}, replay_fields=learner.replay_fields)
    checkpointer.close()
    return run_dir, host(jax.tree_util.tree_map(lambda x: x[0, 0], state.algo_state.params))


def one_step_runner(**options) -> tuple[Runner, MultiTaskValueDecomposition]:
    env = marl.make_env("matrix/one_step")  # another task: 3 actions, another payoff
    learner = marl.make_algorithm(
        "mt_vdn", marl.env_spec(env), 8, **{**TOY_ALGO, "buffer_size": 400, **options}
    )
    runner = Runner(env, learner, 8, rollout_length=2, iterations_per_chunk=40, num_seeds=2)
    return runner, learner


def test_transferred_decision_layers_load_exactly_and_stay_frozen(source_run):
    run_dir, saved = source_run
    np.testing.assert_array_equal(
        load_params(run_dir)[DECISION]["params"]["Dense_0"]["kernel"],
        saved[DECISION]["params"]["Dense_0"]["kernel"],
    )
    runner, learner = one_step_runner(init_from=str(run_dir), transfer="frozen")
    assert learner.num_tasks == 1 and learner.decision_optimizer is None
    # Decision layers from the run, perception and mixer as a learner without transfer's.
    key = jax.random.PRNGKey(5)
    transferred = host(learner.init(key).params)
    _, scratch_learner = one_step_runner()
    scratch = host(scratch_learner.init(key).params)
    assert leaves_equal(transferred[DECISION], saved[DECISION])
    assert leaves_equal(transferred[TASKS], scratch[TASKS])
    assert not leaves_equal(scratch[DECISION], saved[DECISION])

    state = runner.init([0, 1])
    initial = host(state.algo_state.params)
    for _ in range(2):
        state, metrics = runner.run_chunk(state)
    params = host(state.algo_state.params)
    targets = host(state.algo_state.target_params)
    for seed in range(2):
        for tree in (params, targets):
            seed_decision = jax.tree_util.tree_map(lambda x, s=seed: x[0, s], tree[DECISION])
            assert leaves_equal(seed_decision, saved[DECISION])
    assert not leaves_equal(params[TASKS], initial[TASKS])
    assert np.all(metrics.algorithm["grad_norm"] > 0)


def test_decision_layers_transfer_from_an_exported_file_as_from_the_run(source_run, tmp_path):
    run_dir, saved = source_run
    exported = tmp_path / "decision.msgpack"
    export_params(run_dir, exported, groups=[DECISION])
    params, metadata = load_exported(exported)
    assert list(params) == [DECISION] and metadata["env_steps"] == 1
    from_file = load_decision_layers(str(exported), TOY_ALGO["hidden_dim"])
    assert leaves_equal(from_file, load_decision_layers(str(run_dir), TOY_ALGO["hidden_dim"]))
    assert leaves_equal(from_file, saved[DECISION])
    _, learner = one_step_runner(init_from=str(exported), transfer="frozen")
    assert leaves_equal(host(learner.init(jax.random.PRNGKey(3)).params)[DECISION], saved[DECISION])
    with pytest.raises(ValueError, match="have no nothing"):
        export_params(run_dir, tmp_path / "none.msgpack", groups=["nothing"])
    # Files that hold no decision layers, or are no export, are refused in one line.
    export_params(run_dir, tmp_path / "tasks.msgpack", groups=[TASKS])
    (tmp_path / "notes.txt").write_text("not parameters")
    for path, problem in (("tasks.msgpack", "no 'decision' layers"), ("notes.txt", "not a")):
        with pytest.raises(OptionError, match=problem) as error:
            load_decision_layers(str(tmp_path / path), TOY_ALGO["hidden_dim"])
        assert error.value.key == "init_from" and "\n" not in str(error.value)


def test_finetuned_decision_layers_move(source_run):
    run_dir, saved = source_run
    runner, learner = one_step_runner(init_from=str(run_dir), transfer="finetune")
    assert learner.decision_optimizer is not None
    state = runner.init([0, 1])
    initial = host(state.algo_state.params)
    assert leaves_equal(
        jax.tree_util.tree_map(lambda x: x[0, 0], initial[DECISION]), saved[DECISION]
    )
    state, _ = runner.run_chunk(state)
    params = host(state.algo_state.params)
    assert not leaves_equal(params[DECISION], initial[DECISION])


def test_runs_without_decision_layers_are_refused_in_one_line(source_run, tmp_path):
    spec = marl.env_spec(marl.make_env("matrix/one_step"))
    # A plain QMIX run: its params hold an agent network and a mixer.
    qmix = marl.make_algorithm("qmix", spec, 8, hidden_dim=8, buffer_size=64, batch_size=4)
    qmix_params = jax.tree_util.tree_map(
        lambda x: np.asarray(x)[None, None], qmix.init(jax.random.PRNGKey(0)).params
    )
    state = RunnerState(
        algo_state=ValueDecompositionState(
            qmix_params, None, None, None, np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int32)
        ),
        env_state=(),
        obs=(),
        memory=(),
        key=np.zeros((1, 1, 2), np.uint32),
    )
    checkpointer = Checkpointer(tmp_path / "qmix")
    checkpointer.save(0, state)
    checkpointer.close()
    cases = {
        tmp_path / "qmix": "no 'decision' layers",
        tmp_path / "nowhere": "does not exist",
        tmp_path: "holds no checkpoint",
    }
    for run_dir, problem in cases.items():
        with pytest.raises(OptionError) as error:
            marl.make_algorithm("mt_vdn", spec, 8, hidden_dim=32, init_from=str(run_dir))
        assert error.value.key == "init_from" and problem in str(error.value)
        assert "\n" not in str(error.value)
    with pytest.raises(OptionError, match="do not fit hidden_dim=16") as error:
        marl.make_algorithm("mt_vdn", spec, 8, hidden_dim=16, init_from=str(source_run[0]))
    assert "\n" not in str(error.value)


# ------------------------------------------------------------ options, mask
def test_options_and_sizes_are_checked_per_task():
    specs = [marl.env_spec(task.env) for task in toy_tasks()]
    with pytest.raises(OptionError, match="transfer: 'keep' is unknown"):
        marl.build_algorithm(marl.algorithm_options("mt_vdn", transfer="keep"), specs, 4)
    # A window of the 4x4 game is 2 steps, of the two-step game 3: 100 x 3 > 250.
    with pytest.raises(OptionError, match="batch_size: task 0: 100 windows of 3 steps"):
        marl.build_algorithm(
            marl.algorithm_options("mt_qmix", batch_size=100, buffer_size=250), specs[:1], 4
        )
    # The defaults fit the paper's SMAC pre-training set, 8 envs per task.
    maps = ("5m_vs_6m", "8m_vs_9m", "2c_vs_64zg", "3s5z_vs_3s6z", "MMM2", "corridor")
    smac = [marl.env_spec(marl.make_env(f"smac/{name}")) for name in maps]
    learner = marl.build_algorithm(marl.algorithm_options("mt_vdn"), smac, 8)
    shapes = jax.eval_shape(learner.init, jax.random.PRNGKey(0)).params
    assert shapes[DECISION]["params"]["Dense_0"]["kernel"].shape == (128, 64)
    assert len(shapes[TASKS]) == 6


def test_actions_are_always_available():
    specs = (
        marl.env_spec(marl.make_env("lbf/5x5-2p-1f")),
        marl.env_spec(marl.make_env("matrix/two_step")),
    )
    learner = marl.build_algorithm(
        marl.algorithm_options("mt_vdn", hidden_dim=16, buffer_size=1_000, batch_size=4),
        specs,
        1,  # the replay's streams; acting takes any batch
    )
    state = learner.init(jax.random.PRNGKey(0))
    spec = specs[0]
    batch = 32

    @jax.jit
    def play(state, key):
        def step(memory, key):
            mask_key, obs_key, act_key = jax.random.split(key, 3)
            mask = jax.random.bernoulli(mask_key, 0.3, (batch, spec.num_agents, spec.num_actions))
            mask = mask.at[..., 0].set(mask[..., 0] | ~mask.any(-1))  # one at least
            obs = Observation(
                agents_view=jax.random.normal(obs_key, (batch, spec.num_agents, spec.obs_dim)),
                action_mask=mask,
                global_state=jnp.zeros((batch, spec.state_dim)),
                step_count=jnp.ones((batch,), jnp.int32),
            )
            explored, _, _ = learner.act(state, obs, memory, act_key, True, 0)
            greedy, memory, _ = learner.act(state, obs, memory, act_key, False, 0)
            return memory, (mask, explored, greedy)

        return jax.lax.scan(step, learner.initial_memory(batch, 0), jax.random.split(key, 20))[1]

    for env_steps in (0, 10**6):  # epsilon 1 (random) and 0.05 (mostly greedy)
        masks, explored, greedy = play(
            state.replace(env_steps=jnp.int32(env_steps)), jax.random.PRNGKey(1)
        )
        for actions in (explored, greedy):
            assert actions.dtype == jnp.int32 and actions.shape == masks.shape[:-1]
            chosen = np.take_along_axis(np.asarray(masks), np.asarray(actions)[..., None], -1)
            assert chosen.all()
