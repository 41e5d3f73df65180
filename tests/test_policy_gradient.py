"""IPPO, MAPPO, MAT and CMAT: the PPO core's pieces, MAT's autoregression, CMAT's
order independence, learning on a CI budget, devices, seeds and the CLI."""

import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.algorithms.policy_gradient import CMATModel, CMATOptions, MATModel, MATOptions
from marl.loop import Runner
from marl.ppo import value_norm_stats
from marl.targets import generalized_advantages
from marl.train import train
from marl.types import EnvSpec, Observation

LEARNERS = ("ippo", "mappo", "mat", "cmat")
# Small networks: what is tested does not need the papers' widths, compiles do.
SMALL = {
    "ippo": dict(hidden_dim=16, recurrent=False),
    "mappo": dict(hidden_dim=16, recurrent=True),
    "mat": dict(dim=16),
    "cmat": dict(dim=16),
}


# ------------------------------------------------------------------ GAE
def test_gae_matches_a_direct_computation_on_a_hand_made_trajectory():
    gamma, lam = 0.9, 0.8
    rewards = np.array([1.0, 0.0, 2.0, -1.0, 0.5], np.float32)
    values = np.array([0.5, 1.0, -0.5, 2.0, 0.0], np.float32)
    done = np.array([False, False, True, False, False])  # an episode ends after step 2
    bootstrap = np.float32(3.0)
    discounts = gamma * (1.0 - done.astype(np.float32))

    # Directly: A_t = sum_k (gamma lambda)^k delta_{t+k}, stopping at the episode's end.
    next_values = np.append(values[1:], bootstrap)
    deltas = rewards + discounts * next_values - values
    expected = np.zeros(5, np.float32)
    for t in range(5):
        weight = 1.0
        for k in range(t, 5):
            expected[t] += weight * deltas[k]
            if done[k]:
                break
            weight *= gamma * lam

    advantages, returns = generalized_advantages(
        jnp.asarray(rewards),
        jnp.asarray(discounts),
        jnp.asarray(values),
        jnp.asarray(bootstrap),
        lam,
    )
    np.testing.assert_allclose(advantages, expected, rtol=1e-6)
    np.testing.assert_allclose(returns, expected + values, rtol=1e-6)
    # Spot values by hand: the last step of the first episode is r - V.
    np.testing.assert_allclose(advantages[2], 2.0 - (-0.5), rtol=1e-6)
    np.testing.assert_allclose(advantages[4], 0.5 + gamma * 3.0 - 0.0, rtol=1e-6)


# ------------------------------------------------------------ transformers
SPEC = EnvSpec(num_agents=3, num_actions=4, obs_dim=5, state_dim=2, time_limit=10)


def _observation(key: jax.Array, batch: int = 1) -> Observation:
    view_key, mask_key = jax.random.split(key)
    mask = jax.random.uniform(mask_key, (batch, SPEC.num_agents, SPEC.num_actions)) < 0.8
    mask = mask.at[..., 0].set(True)
    return Observation(
        agents_view=jax.random.normal(view_key, (batch, SPEC.num_agents, SPEC.obs_dim)),
        action_mask=mask,
        global_state=jnp.zeros((batch, SPEC.state_dim)),
        step_count=jnp.zeros((batch,), jnp.int32),
    )


def _randomised(params, key):
    """Parameters with every leaf redrawn, so no near-zero output layer hides a dependence."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef,
        [0.5 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)],
    )


@pytest.fixture(scope="module")
def mat_model():
    model = MATModel(SPEC, MATOptions(dim=16))
    return model, _randomised(model.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))


@pytest.fixture(scope="module")
def cmat_model():
    model = CMATModel(SPEC, CMATOptions(dim=16))
    return model, _randomised(model.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(2))


def _logits(model, params, obs, actions):
    encoded, _ = model._encode(params, obs.agents_view)
    return model.decoder.apply(params["decoder"], model.shifted_tokens(actions), encoded)


def test_mat_agent_depends_on_the_actions_before_it_and_not_after(mat_model):
    model, params = mat_model
    obs = _observation(jax.random.PRNGKey(3))
    base = jnp.array([[1, 2, 3]])
    logits = _logits(model, params, obs, base)
    for changed_agent in range(SPEC.num_agents):
        actions = base.at[0, changed_agent].set((base[0, changed_agent] + 1) % SPEC.num_actions)
        changed = _logits(model, params, obs, actions)
        for agent in range(SPEC.num_agents):
            same = np.allclose(changed[0, agent], logits[0, agent], atol=1e-6)
            # Agent i sees the actions of agents 0 .. i-1 only.
            assert same == (changed_agent >= agent), (changed_agent, agent)


def test_mat_rollout_is_autoregressive_and_matches_teacher_forcing(mat_model):
    model, params = mat_model
    obs = _observation(jax.random.PRNGKey(4), batch=64)
    actions, log_prob, values, _ = model.act(params, obs, (), jax.random.PRNGKey(5), False)
    assert bool(jnp.all(jnp.take_along_axis(obs.action_mask, actions[..., None], -1)))
    time_major = jax.tree_util.tree_map(lambda x: x[None], obs)
    forced_log_prob, _, forced_values = model.evaluate(params, time_major, actions[None], ())
    np.testing.assert_allclose(forced_log_prob[0], log_prob, atol=1e-5)
    np.testing.assert_allclose(forced_values[0], values, atol=1e-6)
    # Greedy acting picks, agent by agent, the best action given those before.
    greedy, _, _, _ = model.act(params, obs, (), jax.random.PRNGKey(5), True)
    forced = _logits(model, params, obs, greedy)
    best = jnp.argmax(jnp.where(obs.action_mask, forced, -jnp.inf), -1)
    np.testing.assert_array_equal(greedy, best)


def _joint_log_probs(model, params, obs):
    """log p(a) of every joint action ``a`` (one observation): ``[A ** n]``."""
    joint = jnp.asarray(
        list(itertools.product(range(SPEC.num_actions), repeat=SPEC.num_agents)), jnp.int32
    )
    batch = jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (1, joint.shape[0]) + x.shape[1:]), obs
    )
    log_prob, _, _ = model.evaluate(params, batch, joint[None], ())
    return joint, log_prob[0].sum(-1)


def _permuted(obs: Observation, order: np.ndarray) -> Observation:
    return obs._replace(
        agents_view=obs.agents_view[:, order], action_mask=obs.action_mask[:, order]
    )


def test_cmat_joint_policy_is_equivariant_to_permuting_the_agents_and_mat_is_not(
    mat_model, cmat_model
):
    obs = _observation(jax.random.PRNGKey(6))
    obs = obs._replace(action_mask=jnp.ones_like(obs.action_mask))
    order = np.array([2, 0, 1])
    for name, (model, params) in (("cmat", cmat_model), ("mat", mat_model)):
        joint, log_p = _joint_log_probs(model, params, obs)
        _, log_p_permuted = _joint_log_probs(model, params, _permuted(obs, order))
        # p'(a') for the permuted agents, where a'_k = a_{order[k]}.
        index = {tuple(a): i for i, a in enumerate(np.asarray(joint))}
        reordered = np.array([log_p_permuted[index[tuple(a[order])]] for a in np.asarray(joint)])
        if name == "cmat":
            np.testing.assert_allclose(reordered, log_p, atol=1e-4)
        else:
            assert np.max(np.abs(reordered - np.asarray(log_p))) > 1e-2
    model, params = cmat_model
    _, _, value = model.consensus(params, obs.agents_view)
    _, _, permuted_value = model.consensus(params, _permuted(obs, order).agents_view)
    np.testing.assert_allclose(value, permuted_value, atol=1e-5)


# ------------------------------------------------- learning, devices, seeds
def two_step_runner(algorithm: str, **options) -> Runner:
    env = marl.make_env("matrix/two_step")
    options = {**SMALL[algorithm], "num_epochs": 4, **options}
    learner = marl.make_algorithm(algorithm, marl.env_spec(env), envs_per_device=8, **options)
    return Runner(
        env,
        learner,
        envs_per_device=8,
        rollout_length=8,
        iterations_per_chunk=40,
        num_seeds=2,
        num_devices=2,
    )


@pytest.mark.parametrize(
    "algorithm, options",
    [(name, {}) for name in LEARNERS] + [("ippo", {"share_parameters": False})],
    ids=list(LEARNERS) + ["ippo-unshared"],
)
def test_learner_finds_the_two_step_optimum_on_two_devices_with_two_seeds(algorithm, options):
    """Greedily 2A pays 7 for sure while 2B's 8 needs both agents to agree: a
    learner must keep exploring 2B and coordinate there to reach 8."""
    runner = two_step_runner(algorithm, **options)
    state = runner.init([0, 1])
    for _ in range(3):
        state, metrics = runner.run_chunk(state)
    returns, _ = runner.evaluate(state, 4, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(returns, 8.0)
    if options.get("share_parameters") is False:
        # One actor per agent, stacked on an agent axis, and they differ.
        kernel = np.asarray(state.algo_state.params["actor"]["params"]["Dense_0"]["kernel"])
        assert kernel.shape[2] == 2
        assert not np.allclose(kernel[0, 0, 0], kernel[0, 0, 1])
    algo_state = state.algo_state
    # Devices hold identical parameters, optimiser and value-normalisation statistics.
    for leaf in jax.tree_util.tree_leaves(
        (algo_state.params, algo_state.opt_state, algo_state.value_norm)
    ):
        leaf = np.asarray(leaf)
        np.testing.assert_array_equal(leaf[0], leaf[1])
    # ... which are the returns' (about 7.5-8 here), not the initial zeros.
    mean, _ = value_norm_stats(jax.tree_util.tree_map(lambda x: x[0, 0], algo_state.value_norm))
    assert 5.0 < float(mean) < 9.0
    # The two seeds learned separately.
    first = np.asarray(jax.tree_util.tree_leaves(algo_state.params)[0])
    assert not np.array_equal(first[0, 0], first[0, 1])


def _config(train_config, algorithm: str, env: str, small: bool = True, **arch):
    """Two devices, two seeds, two chunks of 800 steps: ``arch`` changes it."""
    sizes = {
        "num_devices": 2,
        "num_envs": 16,
        "num_seeds": 2,
        "total_timesteps": 1_600,
        "rollout_length": 25,
        "eval_interval": 800,
        **arch,
    }
    options = {**SMALL[algorithm], "num_epochs": 4} if small else {}
    return train_config(
        algo=algorithm,
        env=env,
        algo_options=options,
        **{f"arch.{key}": value for key, value in sizes.items()},
    )


@pytest.mark.slow
def test_mappo_learns_lbf_well_above_random(train_config, random_return):
    random_return = random_return("lbf/8x8-2p-2f")
    config = _config(
        train_config,
        "mappo",
        "lbf/8x8-2p-2f",
        small=False,
        total_timesteps=32_000,
        eval_interval=16_000,
        eval_episodes=32,
    )
    result = train(config)
    per_seed = result["returns"].mean(axis=1)
    assert np.all(per_seed > random_return + 0.3), (per_seed, random_return)


@pytest.mark.parametrize(
    "algorithm, env",
    [
        ("ippo", "rware/tiny-2ag"),
        ("mappo", "smac/3m"),
        ("mat", "mpe/simple_spread_v3"),
        ("cmat", "football/academy_3_vs_1_with_keeper"),
    ],
)
def test_learner_trains_through_marl_train_on_two_devices(train_config, algorithm, env):
    config = _config(train_config, algorithm, env)
    result = train(config)
    assert result["returns"].shape == (2, 4)
    assert np.all(np.isfinite(result["returns"]))
    lines = (pathlib.Path(config.run_dir) / "metrics.jsonl").read_text().splitlines()
    assert any('"policy_loss"' in line for line in lines)


@pytest.fixture(scope="module")
def cmat_source_run(tmp_path_factory) -> pathlib.Path:
    """A finished one-device, one-seed CMAT run on the two-step game (its directory)."""
    from conftest import _small_config

    run_dir = tmp_path_factory.mktemp("cmat_source") / "cmat"
    build = lambda **kwargs: _small_config(run_dir, **kwargs)  # noqa: E731
    train(_config(build, "cmat", "matrix/two_step", num_devices=1, num_seeds=1))
    return run_dir


def test_cmat_finetuning_trains_only_its_heads_from_another_run(train_config, cmat_source_run):
    """Start from a CMAT run on one task and fine-tune on another of the same sizes:
    the frozen groups keep the loaded values exactly, the trained ones move."""
    from marl.checkpoint import load_params

    loaded = load_params(cmat_source_run)
    target = _config(train_config, "cmat", "matrix/two_step", num_devices=1, num_seeds=1)
    target.algo.finetune = "action_head"
    target.algo.init_from = str(cmat_source_run)
    result = train(target)
    params = jax.tree_util.tree_map(lambda x: np.asarray(x)[0], result["params"])
    for group in loaded:
        moved = any(
            not np.array_equal(a, b)
            for a, b in zip(
                jax.tree_util.tree_leaves(params[group]),
                jax.tree_util.tree_leaves(loaded[group]),
                strict=True,
            )
        )
        assert moved == (group in ("value_head", "action_head")), group


def test_cmat_init_from_a_task_of_other_sizes_refits_only_the_sized_layers(
    tmp_path, cmat_source_run
):
    """From two-step (2 agents, 3 actions, 3 features + ids) to a task with 3 agents,
    5 actions and 7 features: the layers sized by the task start fresh and are trained,
    everything else is loaded and frozen."""
    from marl.checkpoint import load_params

    loaded = load_params(cmat_source_run)
    spec = EnvSpec(num_agents=3, num_actions=5, obs_dim=7, state_dim=3, time_limit=5)
    learner = marl.make_algorithm(
        "cmat", spec, finetune="action_head", init_from=str(cmat_source_run), dim=16
    )
    params = learner.init(jax.random.PRNGKey(9)).params
    embedding = params["encoder"]["params"]["Dense_0"]["kernel"]
    assert embedding.shape == (7, 16)
    assert loaded["encoder"]["params"]["Dense_0"]["kernel"].shape != embedding.shape
    np.testing.assert_array_equal(
        params["encoder"]["params"]["EncoderBlock_0"]["MLPBlock_0"]["Dense_0"]["kernel"],
        loaded["encoder"]["params"]["EncoderBlock_0"]["MLPBlock_0"]["Dense_0"]["kernel"],
    )
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = learner.optimizer.update(grads, learner.optimizer.init(params), params)

    def moved(tree) -> bool:
        return any(np.any(np.asarray(x) != 0) for x in jax.tree_util.tree_leaves(tree))

    assert moved(updates["encoder"]["params"]["Dense_0"])  # refitted: trained
    assert not moved(updates["encoder"]["params"]["EncoderBlock_0"])  # loaded: frozen
    assert moved(updates["action_head"]) and moved(updates["value_head"])
    assert not moved(updates["consensus_decoder"]) and not moved(updates["compression"])
    with pytest.raises(ValueError, match="init_from: .* holds no checkpoint"):
        marl.make_algorithm("cmat", spec, init_from=str(tmp_path / "nothing"))
