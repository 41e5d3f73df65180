"""The shared pieces: TD(lambda), the resetting GRU, mixers, VectorEnv, matrix games."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.matrix import OneStepMatrixGame, TwoStepGame
from marl.mixers import IndependentMixer, QMixer, VDNMixer
from marl.networks import RecurrentQNetwork
from marl.targets import td_lambda_targets


def test_td_lambda_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(6, 3)).astype(np.float32)
    next_values = rng.normal(size=(6, 3)).astype(np.float32)
    done = rng.random((6, 3)) < 0.3
    gamma, lam = 0.9, 0.6
    discounts = gamma * (1.0 - done)
    expected = np.zeros_like(rewards)
    following = next_values[-1]
    for t in reversed(range(6)):
        expected[t] = rewards[t] + discounts[t] * ((1 - lam) * next_values[t] + lam * following)
        following = expected[t]
    got = td_lambda_targets(
        jnp.asarray(rewards), jnp.asarray(discounts), jnp.asarray(next_values), lam
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_td_lambda_extremes_are_one_step_and_monte_carlo():
    rewards = jnp.array([1.0, 2.0, 3.0])
    next_values = jnp.array([10.0, 20.0, 30.0])
    discounts = jnp.array([0.5, 0.5, 0.0])
    one_step = td_lambda_targets(rewards, discounts, next_values, 0.0)
    np.testing.assert_allclose(one_step, [1 + 5.0, 2 + 10.0, 3.0])
    monte_carlo = td_lambda_targets(rewards, discounts, next_values, 1.0)
    np.testing.assert_allclose(monte_carlo, [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3.0])


def test_gru_resets_cut_memory_at_episode_starts():
    net = RecurrentQNetwork(num_actions=3, hidden_dim=8)
    hidden = jnp.zeros((1, 8))
    inputs = jax.random.normal(jax.random.PRNGKey(0), (5, 1, 4))
    no_resets = jnp.zeros((5, 1), bool)
    params = net.init(jax.random.PRNGKey(1), hidden, inputs, no_resets)
    resets = no_resets.at[3].set(True)
    _, q_reset, _ = net.apply(params, hidden, inputs, resets)
    # After a reset at t=3 the outputs are those of a fresh unroll from t=3.
    _, q_fresh, _ = net.apply(params, hidden, inputs[3:], no_resets[3:])
    np.testing.assert_allclose(q_reset[3:], q_fresh, rtol=1e-5, atol=1e-6)
    _, q_carry, _ = net.apply(params, hidden, inputs, no_resets)
    assert not np.allclose(q_carry[3:], q_fresh)


def test_mixers_shapes_and_qmix_monotonicity():
    state = jax.random.normal(jax.random.PRNGKey(0), (7, 5))
    qs = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    assert IndependentMixer().apply({}, qs, state).shape == (7, 3)
    np.testing.assert_allclose(VDNMixer().apply({}, qs, state)[:, 0], qs.sum(-1), rtol=1e-6)
    mixer = QMixer(embed_dim=8, hypernet_dim=16)
    params = mixer.init(jax.random.PRNGKey(2), qs, state)
    grads = jax.vmap(jax.grad(lambda q, s: mixer.apply(params, q, s)[0]))(qs, state)
    assert grads.shape == (7, 3)
    assert np.all(np.asarray(grads) >= 0.0)


def _run_random(vec_env, num_steps, key):
    state, timestep = vec_env.reset(key)

    def body(carry, step_key):
        state, timestep = carry
        logits = jnp.where(timestep.observation.action_mask, 0.0, -jnp.inf)
        actions = jax.random.categorical(step_key, logits)
        state, timestep = vec_env.step(state, actions)
        return (state, timestep), timestep

    _, timesteps = jax.lax.scan(body, (state, timestep), jax.random.split(key, num_steps))
    return timesteps


@pytest.mark.parametrize("reset_fractions", [(0.125, 0.25), (1.0,)])
def test_vector_env_resets_exactly_the_finished_envs(reset_fractions):
    env = marl.make_env("lbf/5x5-2p-1f", time_limit=7)
    vec_env = marl.VectorEnv(env, 8, reset_fractions=reset_fractions)
    timesteps = jax.jit(lambda k: _run_random(vec_env, 30, k))(jax.random.PRNGKey(0))
    step_count = np.asarray(timesteps.observation.step_count)
    done = np.asarray(timesteps.last())
    # The observation after a finished step is the new episode's first one.
    assert np.all(step_count[done] == 0)
    assert np.all(step_count[~done] > 0)
    lengths = np.asarray(timesteps.extras["episode_length"])[done]
    assert np.all((lengths >= 1) & (lengths <= 7))


def test_vector_env_partial_and_full_reset_paths_agree():
    # Every env's episodes depend only on its own key, whichever reset path ran.
    env = marl.make_env("lbf/5x5-2p-1f", time_limit=5)
    run = lambda fractions: jax.jit(
        lambda k: _run_random(marl.VectorEnv(env, 8, reset_fractions=fractions), 23, k)
    )(jax.random.PRNGKey(3))
    partial, full = run((0.125, 0.25)), run((1.0,))
    np.testing.assert_array_equal(partial.observation.agents_view, full.observation.agents_view)


def test_matrix_games_pay_their_matrices():
    game = OneStepMatrixGame()
    state, _ = game.reset(jax.random.PRNGKey(0))
    for a0 in range(3):
        for a1 in range(3):
            _, ts = game.step(state, jnp.array([a0, a1]))
            assert float(ts.reward[0]) == game.payoff[a0, a1]
            assert bool(ts.last()) and float(ts.discount[0]) == 0.0
    two_step = TwoStepGame()
    state, ts = two_step.reset(jax.random.PRNGKey(0))
    state_2b, ts = two_step.step(state, jnp.array([1, 0]))
    assert not bool(ts.last()) and float(ts.reward[0]) == 0.0
    np.testing.assert_array_equal(ts.observation.global_state, [0, 0, 1])
    _, ts = two_step.step(state_2b, jnp.array([1, 1]))
    assert float(ts.reward[0]) == 8.0 and bool(ts.last()) and float(ts.extras["won"]) == 1.0
    state_2a, _ = two_step.step(state, jnp.array([0, 1]))
    _, ts = two_step.step(state_2a, jnp.array([1, 0]))
    assert float(ts.reward[0]) == 7.0 and float(ts.extras["won"]) == 0.0


def test_agent_id_and_metrics_wrappers():
    env = marl.make_env("matrix/two_step")
    spec = marl.env_spec(env)
    assert spec.obs_dim == 3 + 2
    _, ts = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(ts.observation.agents_view[:, 3:], np.eye(2))
    state, ts = env.reset(jax.random.PRNGKey(0))
    state, ts = env.step(state, jnp.array([1, 0]))
    state, ts = env.step(state, jnp.array([1, 1]))
    assert float(ts.extras["episode_return"]) == 8.0
    assert int(ts.extras["episode_length"]) == 2


def test_registry_errors_list_valid_names():
    with pytest.raises(ValueError, match="valid:.*matrix/two_step"):
        marl.make_env("nope/nothing")
    spec = marl.env_spec(marl.make_env("matrix/two_step"))
    with pytest.raises(ValueError, match="valid:.*qmix"):
        marl.make_algorithm("banana", spec)
    with pytest.raises(ValueError, match="lr: unknown option for qmix; valid: batch_size"):
        marl.make_algorithm("qmix", spec, lr=1.0)


def test_runner_refuses_what_is_not_an_algorithm_or_was_built_for_other_sizes():
    from marl.loop import Runner

    env = marl.make_env("matrix/two_step")
    sizes = dict(rollout_length=2, iterations_per_chunk=1)
    with pytest.raises(TypeError, match="must have init, initial_memory, act and update"):
        Runner(env, "qmix", envs_per_device=4, **sizes)
    qmix = marl.make_algorithm("qmix", marl.env_spec(env), envs_per_device=4)
    with pytest.raises(ValueError, match="built for envs_per_device=4, the Runner was given 8"):
        Runner(env, qmix, envs_per_device=8, **sizes)
    with pytest.raises(ValueError, match="num_devices: 3 requested but only 2 local devices"):
        Runner(env, qmix, envs_per_device=4, num_devices=3, **sizes)


def test_mlp_layers_and_linear_output():
    from marl.networks import MLP

    mlp = MLP((16, 4))
    x = jnp.ones((3, 5))
    params = mlp.init(jax.random.PRNGKey(0), x)
    kernels = [p["kernel"].shape for p in params["params"].values()]
    assert kernels == [(5, 16), (16, 4)]
    out = mlp.apply(params, -100.0 * x)
    # The last layer has no activation, so outputs can be negative.
    assert out.shape == (3, 4) and np.any(np.asarray(out) < 0)
