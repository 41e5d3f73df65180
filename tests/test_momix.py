"""MO-MIX, the preference guide and the loop with vector rewards, on CI budgets."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl import pareto
from marl.algorithms.value_decomposition import AGENT, MOMIXOptions
from marl.envs.mo_matrix import ParetoSumGame
from marl.loop import Runner
from marl.mixers import ParallelQMixer
from marl.preferences import PreferenceGuide
from marl.train import RunBuildError, build_runner, train

pytest.importorskip("pymoo")

# Exploration that settles within the budget, 4 gradient steps per one-step rollout.
SUM_GAME_ALGO = dict(
    hidden_dim=16,
    mixer_embed_dim=8,
    hypernet_dim=16,
    batch_size=64,
    buffer_size=2048,
    updates_per_rollout=4,
    epsilon_anneal_steps=2000,
)
SUPPORTED = np.array([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0]])


def sum_game_runner(num_seeds: int, num_devices: int, **overrides) -> Runner:
    env = marl.make_env("mo-matrix/pareto_sum")
    envs_per_device = 16 // num_devices
    learner = marl.make_algorithm(
        "momix", marl.env_spec(env), envs_per_device, **{**SUM_GAME_ALGO, **overrides}
    )
    return Runner(
        env,
        learner,
        envs_per_device=envs_per_device,
        rollout_length=1,
        iterations_per_chunk=125,
        num_seeds=num_seeds,
        num_devices=num_devices,
    )


@pytest.fixture(scope="module")
def momix_two_devices():
    runner = sum_game_runner(num_seeds=2, num_devices=2)
    state = runner.init([0, 1])
    for _ in range(3):
        state, metrics = runner.run_chunk(state)
    return runner, state, metrics


def test_momix_recovers_every_supported_point_on_two_devices(momix_two_devices):
    runner, state, _ = momix_two_devices
    report = runner.report(*runner.evaluate(state, 2, jax.random.PRNGKey(0)))
    game = ParetoSumGame()
    for seed_front in report.front:
        for point in SUPPORTED:
            assert np.isclose(seed_front, point, atol=1e-6).all(1).any(), (point, seed_front)
    # What greedy play on w . Q reaches is the front of the supported points at least.
    supported_hypervolume = pareto.hypervolume(SUPPORTED, game.hypervolume_reference)
    assert (report.metrics["hypervolume"] >= supported_hypervolume - 1e-6).all()
    # The concave joint policy (actions 0 and 3, mean payoff (0.925, 0.15)) is
    # Pareto-optimal, but no preference makes action 3 a best reply: a learner acting
    # greedily on a linear scalarisation cannot be asked for it.
    assert game.pareto_optimal_joint[0, 3] and not game.supported_joint[0, 3]


def test_vector_rewards_train_on_two_devices_with_identical_replicas(momix_two_devices):
    runner, state, metrics = momix_two_devices
    algo_state = state.algo_state
    for leaf in jax.tree_util.tree_leaves(
        (algo_state.params, algo_state.target_params, algo_state.guide.mean)
    ):
        leaf = np.asarray(leaf)
        assert leaf.shape[:2] == (2, 2)  # [devices, seeds]
        np.testing.assert_array_equal(leaf[0], leaf[1])
    # The devices played their own episodes under their own preferences.
    replayed = np.asarray(algo_state.buffer_state.experience.extras.preference)
    assert not np.array_equal(replayed[0], replayed[1])
    logged = metrics.as_dict()
    for name in ("objective_0", "objective_1"):
        values = logged[f"episode_return/{name}"]
        assert values.shape == (2,) and np.isfinite(values).all()
    # Every one-step episode ends: the guide has counted 16 envs x 375 steps per seed.
    assert np.asarray(algo_state.guide.episodes)[0].sum(-1).tolist() == [6000.0, 6000.0]


def test_the_parallel_mixer_is_monotone_in_each_objective_alone():
    mixer = ParallelQMixer(num_objectives=3, embed_dim=8, hypernet_dim=16)
    agent_qs = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    conditioning = jax.random.normal(jax.random.PRNGKey(1), (6,))
    params = mixer.init(jax.random.PRNGKey(2), agent_qs, conditioning)
    for key in range(5):
        point = jax.random.normal(jax.random.PRNGKey(10 + key), (4, 3)) * 3
        jacobian = jax.jacobian(lambda q: mixer.apply(params, q, conditioning))(point)
        # jacobian[j, i, k] = d Q_tot_j / d q_ik
        for objective in range(3):
            assert (jacobian[objective, :, objective] >= 0).all()
            others = np.delete(np.asarray(jacobian[objective]), objective, axis=1)
            np.testing.assert_array_equal(others, 0.0)


def test_preferences_change_exactly_at_episode_starts():
    env = marl.make_env("mo-matrix/pareto")
    spec = marl.env_spec(env)
    learner = marl.make_algorithm("momix", spec, 6, **SUM_GAME_ALGO)
    state = learner.init(jax.random.PRNGKey(0))
    _, timestep = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 6))
    obs = timestep.observation
    memory = learner.initial_memory(6)
    # Episodes of lengths 1 to 6, one per env, restarted when they end.
    lengths = jnp.arange(1, 7)
    held, changes_at_starts = [], 0
    for step in range(30):
        obs = obs._replace(step_count=jnp.int32(step) % lengths)
        actions, memory, extras = learner.act(
            state, obs, memory, jax.random.PRNGKey(100 + step), True
        )
        preference = np.asarray(extras.preference)
        starts = np.asarray(obs.step_count) == 0
        if held:
            changed = ~np.isclose(preference, held[-1]).all(1)
            assert not (changed & ~starts).any(), step
            changes_at_starts += int((changed & starts).sum())
        held.append(preference)
        assert np.isclose(preference.sum(1), 1.0).all()
        on_grid = np.isclose(preference[:, :1], np.linspace(0, 1, 11)[None], atol=1e-6)
        assert on_grid.any(1).all()
    assert changes_at_starts > 10
    # Greedy acting keeps the preference it was given, also across episode starts.
    greedy = learner.initial_memory(6, preference=jnp.array([0.3, 0.7]))
    for step in range(3):
        obs = obs._replace(step_count=jnp.zeros(6, jnp.int32))
        _, greedy, extras = learner.act(state, obs, greedy, jax.random.PRNGKey(step), False)
        np.testing.assert_allclose(extras.preference, [[0.3, 0.7]] * 6)


def test_acting_is_greedy_on_the_preference_weighted_values():
    env = marl.make_env("mo-matrix/pareto")
    learner = marl.make_algorithm("momix", marl.env_spec(env), 4, **SUM_GAME_ALGO)
    state = learner.init(jax.random.PRNGKey(3))
    _, timestep = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(4), 4))
    for preference in ([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]):
        memory = learner.initial_memory(4, preference=jnp.array(preference))
        actions, _, _ = learner.act(
            state, timestep.observation, memory, jax.random.PRNGKey(5), False
        )
        _, _, values = learner._one_step(state.params, timestep.observation, memory.agent)
        utility = np.einsum("bnam,m->bna", values.q[AGENT], preference)
        np.testing.assert_array_equal(actions, utility.argmax(-1))


def test_the_guide_draws_uniformly_then_towards_the_widest_gap():
    guide = PreferenceGuide(2, divisions=4, sampling="guided", uniform_share=0.0, rate=1.0)
    state = guide.init(num_envs=5)
    np.testing.assert_allclose(guide.probabilities(state), 0.2)
    # One episode per preference: (1, 0) and (0.75, 0.25) reach far-apart returns,
    # the other neighbours the same.
    returns = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    done = jnp.ones((1, 5), bool)
    state = guide.observe(state, jnp.asarray(returns)[None], done, guide.grid_values[None])
    np.testing.assert_allclose(state.mean, returns)
    np.testing.assert_array_equal(state.episodes, 1.0)
    probabilities = np.asarray(guide.probabilities(state))
    np.testing.assert_allclose(probabilities, [0.5, 0.5, 0, 0, 0], atol=1e-6)
    # A preference not played yet counts as next to the widest gap (and so does its
    # neighbour); (0.5, 0.5) keeps no gap to either side.
    fresh = state._replace(episodes=state.episodes.at[4].set(0.0))
    np.testing.assert_allclose(guide.probabilities(fresh), [0.25, 0.25, 0, 0.25, 0.25], atol=1e-6)
    uniform = PreferenceGuide(2, divisions=4, sampling="uniform")
    np.testing.assert_allclose(uniform.probabilities(state), 0.2)


def test_the_guide_averages_the_returns_of_episodes_across_rollouts():
    guide = PreferenceGuide(2, divisions=1, rate=0.5)  # preferences (1, 0) and (0, 1)
    state = guide.init(num_envs=2)
    reward = jnp.array([[[1.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [5.0, 5.0]]])  # [T, B, m]
    preference = jnp.array([[[1.0, 0.0], [0.0, 1.0]]] * 2)
    # Env 0's episode runs on past the rollout; env 1's ends at its second step.
    state = guide.observe(state, reward, jnp.array([[False, False], [False, True]]), preference)
    np.testing.assert_allclose(state.mean, [[0.0, 0.0], [8.0, 5.0]])
    np.testing.assert_allclose(state.running, [[2.0, 4.0], [0.0, 0.0]])
    state = guide.observe(state, reward[:1], jnp.array([[True, True]]), preference[:1])
    # Env 0's episode ends with the return (3, 6): a first episode sets the mean.
    np.testing.assert_allclose(state.mean[0], [3.0, 6.0])
    # Preference (0, 1)'s second episode (3, 0) moves the mean halfway (rate 0.5).
    np.testing.assert_allclose(state.mean[1], [5.5, 2.5])


def test_momix_trains_logs_the_front_and_resumes(tmp_path, train_config):
    config = train_config(
        algo="momix",
        env="mo-matrix/pareto_sum",
        algo_options={**SUM_GAME_ALGO, "eval_preference_divisions": 4},
        **{
            "arch.num_envs": 16,
            "arch.rollout_length": 1,
            "arch.total_timesteps": 2048,
            "arch.eval_interval": 1024,
            "arch.eval_episodes": 2,
        },
    )
    result = train(config)
    run_dir = tmp_path / "run"
    assert set(result["pareto"]) == set(pareto.FRONT_METRICS)
    assert result["front"].shape == (1, 5, 2)
    assert result["returns"].shape == (1, 5 * 2)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    fronts = [r for r in records if r["kind"] == "front"]
    assert [r["step"] for r in fronts] == [1024, 2048]
    assert len(fronts[0]["values"]) == 5 and fronts[0]["objective_names"] == [
        "objective_0",
        "objective_1",
    ]
    evaluations = [r for r in records if r["kind"] == "eval"]
    assert all(r["hypervolume"] >= 0 for r in evaluations)
    assert (run_dir / "fronts.png").stat().st_size > 0
    results = json.loads((run_dir / "results.json").read_text())
    run = results["mo-matrix"]["pareto_sum"]["momix"]["seed_0"]
    assert "hypervolume" in run["step_0"] and "hypervolume" in run["absolute_metrics"]
    assert "hypervolume" in (run_dir / "summary.txt").read_text()
    # Resuming the finished run keeps its fronts and draws them again.
    config.resume = True
    config.arch.total_timesteps = 3072
    train(config)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    assert [r["step"] for r in records if r["kind"] == "front"] == [1024, 2048, 3072]


def test_momix_on_a_scalar_env_and_bad_preference_options_are_refused(train_config):
    with pytest.raises(RunBuildError, match="momix learns from a vector reward"):
        build_runner(train_config(algo="momix", env="matrix/two_step"))
    with pytest.raises(RunBuildError, match="scalarise the reward with env.kwargs.weights"):
        build_runner(train_config(algo="qmix", env="mo-matrix/pareto"))
    options = MOMIXOptions(preference_sampling="closest")
    with pytest.raises(
        ValueError, match="preference_sampling: 'closest' is unknown; valid: guided"
    ):
        options.check()
    with pytest.raises(ValueError, match="guide_uniform_share: must lie in"):
        MOMIXOptions(guide_uniform_share=1.5).check()


def test_front_metrics_and_the_simplex_grid():
    grid = pareto.simplex_grid(3, 2)
    assert grid.shape == (6, 3)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert grid[0].tolist() == [1.0, 0.0, 0.0] and grid[-1].tolist() == [0.0, 0.0, 1.0]
    values = [[1.0, 0.0], [0.7, 0.7], [0.0, 1.0], [0.5, 0.5], [np.nan, np.nan]]
    metrics = pareto.front_metrics(values, [-1.0, -1.0])
    # Boxes from (-1, -1): 2 x 1 for (1, 0), then (0.7, 0.7) adds 1.7 x 0.7 less overlap.
    assert metrics["hypervolume"] == pytest.approx(3.49)
    assert metrics["cardinality"] == 3.0
    with pytest.raises(ValueError, match="num_objectives >= 1 and divisions >= 1"):
        pareto.simplex_grid(2, 0)


# ------------------------------------------------------------ outer-loop QMIX
OUTER_LOOP_ALGO = dict(
    hidden_dim=16,
    mixer_embed_dim=8,
    hypernet_dim=16,
    batch_size=32,
    buffer_size=512,
    updates_per_rollout=4,
    epsilon_anneal_steps=500,
)


@pytest.fixture(scope="module")
def outer_loop_runner():
    env = marl.make_env("mo-matrix/pareto_sum")
    learner = marl.make_algorithm("qmix_outer_loop", marl.env_spec(env), 10, **OUTER_LOOP_ALGO)
    return Runner(env, learner, envs_per_device=10, rollout_length=1, iterations_per_chunk=100)


def test_outer_loop_qmix_reaches_the_supported_points(outer_loop_runner):
    runner = outer_loop_runner
    np.testing.assert_allclose(runner.preferences[:, 0], [1.0, 0.75, 0.5, 0.25, 0.0])
    state = runner.init([0])
    for _ in range(3):
        state, metrics = runner.run_chunk(state)
    assert int(metrics.env_steps[0]) == 3000
    # Each of the 5 learners counts its own 600 steps (2 envs each) for its schedule.
    np.testing.assert_array_equal(np.asarray(state.algo_state.learner_env_steps)[0, 0], 600)
    report = runner.report(*runner.evaluate(state, 2, jax.random.PRNGKey(0)))
    # Best replies: action 0 for w0 >= 0.75, action 1 at 0.5, action 2 below.
    np.testing.assert_allclose(report.front[0], [[1, 0], [1, 0], [0.7, 0.7], [0, 1], [0, 1]])


def test_outer_loop_learners_learn_from_their_own_envs_scalarised(outer_loop_runner):
    learner = outer_loop_runner.algorithm
    state = learner.init(jax.random.PRNGKey(0))
    env = outer_loop_runner.env
    _, timestep = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 10))
    memory = learner.initial_memory(10)
    actions, memory, extras = learner.act(
        state, timestep.observation, memory, jax.random.PRNGKey(2), True
    )
    assert actions.shape == (10, 2)
    # Env b belongs to learner b // 2; its team reward vector is (b, 10 b).
    team = jnp.stack([jnp.arange(10.0), 10 * jnp.arange(10.0)], axis=1)
    rollout = marl.Transition(
        obs=jax.tree_util.tree_map(lambda x: x[None], timestep.observation),
        action=actions[None],
        reward=jnp.broadcast_to(team[:, None, :], (10, 2, 2))[None],
        done=jnp.ones((1, 10), bool),
        terminated=jnp.ones((1, 10), bool),
        extras=jax.tree_util.tree_map(lambda x: x[None], extras),
    )
    state, _ = learner.update(state, rollout, jax.random.PRNGKey(3))
    stored = np.asarray(state.buffer_state.experience.reward)[:, :, 0, 0]  # [P, B/P]
    for index, weights in enumerate(learner.preferences):
        envs = np.arange(2 * index, 2 * index + 2)
        np.testing.assert_allclose(stored[index], weights[0] * envs + weights[1] * 10 * envs)
    assert int(state.env_steps) == 10
    # Acting on a preference plays the learner of the nearest grid preference.
    assert int(learner.initial_memory(4, preference=jnp.array([0.6, 0.4])).learner) == 2
    assert int(learner.initial_memory(4, preference=jnp.array([0.1, 0.9])).learner) == 4


def test_outer_loop_refuses_envs_that_do_not_split_between_its_learners(train_config):
    config = train_config(algo="qmix_outer_loop", env="mo-matrix/pareto_sum")
    with pytest.raises(RunBuildError, match="arch.num_envs: qmix_outer_loop trains 5 learners"):
        build_runner(config)


def test_a_multi_objective_run_without_pymoo_is_refused_before_training(train_config, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pymoo", None)  # import pymoo now fails
    config = train_config(algo="momix", env="mo-matrix/pareto_sum", algo_options=SUM_GAME_ALGO)
    with pytest.raises(RunBuildError, match=r"need pymoo: pip install 'marl-lab\[mo\]'"):
        build_runner(config)
