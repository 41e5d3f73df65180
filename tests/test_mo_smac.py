"""mo-smac: SMAC's shaped reward beside the team's own losses, a fixed preference's
scalarisation, and scalar learners refused on the vector reward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl import pareto, registry
from marl.envs.smac.rules import NUM_FIXED_ACTIONS
from marl.train import RunBuildError, build_runner

MOVES = jnp.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])  # actions 2..5


def _move_along(direction: jax.Array) -> jax.Array:
    """The move action (2..5) closest to each agent's ``direction [A, 2]``."""
    return 2 + jnp.argmax(direction @ MOVES.T, axis=1)


def scripted(env, name: str):
    """``aggressive``: attack the lowest-index enemy in range, else walk at the enemies;
    ``cautious``: the same, but a unit below 30% of its health and shields steps back
    from the enemies' centre; ``hold``: stop and never fire."""
    num_agents = env.num_agents

    def act(state, mask: jax.Array) -> jax.Array:
        battle = state.battle
        agents = battle.position[:num_agents]
        enemy_alive = battle.alive[num_agents:]
        enemy_centre = (battle.position[num_agents:] * enemy_alive[:, None]).sum(0) / jnp.maximum(
            enemy_alive.sum(), 1
        )
        targets = mask[:, NUM_FIXED_ACTIONS:]
        attack = jnp.where(
            targets.any(1),
            NUM_FIXED_ACTIONS + jnp.argmax(targets, axis=1),
            _move_along(enemy_centre - agents),
        )
        if name == "hold":
            action = jnp.ones(num_agents, jnp.int32)
        elif name == "cautious":
            roster = env.generator.roster(battle)
            left = battle.health[:num_agents] + battle.shield[:num_agents]
            full = roster.max_health[:num_agents] + roster.full_shield[:num_agents]
            action = jnp.where(left < 0.3 * full, _move_along(agents - enemy_centre), attack)
        else:
            action = attack
        action = jnp.where(jnp.take_along_axis(mask, action[:, None], 1)[:, 0], action, 1)
        return jnp.where(battle.alive[:num_agents], action, 0).astype(jnp.int32)

    return act


def episode_returns(env, policy, episodes: int = 8) -> np.ndarray:
    """The summed team reward of ``episodes`` episodes ``[episodes, ...]``."""

    def one(key):
        state, timestep = env.reset(key)

        def body(carry, _):
            state, timestep, total, done = carry
            action = policy(state, timestep.observation.action_mask)
            state, timestep = env.step(state, action)
            total = total + jnp.where(done, 0.0, timestep.reward[0])
            return (state, timestep, total, done | timestep.last()), None

        zero = jnp.zeros_like(timestep.reward[0])
        (_, _, total, _), _ = jax.lax.scan(
            body, (state, timestep, zero, jnp.bool_(False)), None, length=env.time_limit
        )
        return total

    keys = jax.random.split(jax.random.PRNGKey(0), episodes)
    return np.asarray(jax.jit(jax.vmap(one))(keys))


@pytest.fixture(scope="module")
def mo_env():
    return registry.make_raw_env("mo-smac/3m")


def test_the_first_objective_is_smacs_reward_and_the_second_the_teams_losses(mo_env) -> None:
    assert mo_env.num_objectives == 2 and mo_env.reward_spec.shape == (3, 2)
    assert mo_env.objective_names == ("damage_dealt", "health_kept")
    scalar_env = registry.make_raw_env("smac/3m")
    policy = scripted(mo_env, "aggressive")
    vector = episode_returns(mo_env, policy)
    scalar = episode_returns(scalar_env, scripted(scalar_env, "aggressive"))
    np.testing.assert_allclose(vector[:, 0], scalar, rtol=1e-6)
    # Losses only (no heals on 3m), scaled to -20 for losing everything.
    assert ((vector[:, 1] <= 0) & (vector[:, 1] >= -20 - 1e-4)).all()
    # Holding still, the marines never fire and all die: exactly everything is lost.
    held = episode_returns(mo_env, scripted(mo_env, "hold"))
    np.testing.assert_allclose(held[:, 1], -20.0, rtol=1e-5)
    np.testing.assert_allclose(held[:, 0], 0.0, atol=1e-6)


def test_cautious_and_aggressive_play_land_on_different_points_of_the_front() -> None:
    # 2s_vs_1sc: two stalkers against a spine crawler, which cannot follow. Pulling a
    # wounded stalker back keeps it alive and deals less damage; fighting on deals
    # more and loses both (measured: 10.7, -20 against 8.4, -14.9).
    env = registry.make_raw_env("mo-smac/2s_vs_1sc")
    aggressive = episode_returns(env, scripted(env, "aggressive")).mean(0)
    cautious = episode_returns(env, scripted(env, "cautious")).mean(0)
    assert aggressive[0] > cautious[0] + 1.0  # more damage dealt
    assert cautious[1] > aggressive[1] + 2.0  # more health kept
    assert pareto.cardinality(np.stack([aggressive, cautious])) == 2


def test_weights_scalarise_the_reward(mo_env) -> None:
    weighted = registry.make_raw_env("mo-smac/3m", weights=[0.25, 0.75])
    assert weighted.num_objectives == 1 and weighted.reward_spec.shape == (3,)
    policy = scripted(mo_env, "aggressive")
    vector = episode_returns(mo_env, policy)
    scalar = episode_returns(weighted, policy)
    np.testing.assert_allclose(scalar, vector @ np.array([0.25, 0.75]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1.0]}, r"weights must give one number per objective \(damage_dealt, "),
        ({"weights": [0.5, 0.6]}, "weights must be non-negative and sum to 1"),
        ({"weights": [-0.5, 1.5]}, "weights must be non-negative and sum to 1"),
        ({"reward_sparse": True}, "reward_sparse cannot be used with it"),
    ],
)
def test_bad_preferences_are_refused_in_one_line(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        registry.make_raw_env("mo-smac/3m", **kwargs)


def test_scalar_learners_are_refused_on_a_vector_reward_in_one_line(train_config) -> None:
    with pytest.raises(RunBuildError) as error:
        build_runner(train_config(algo="qmix", env="mo-smac/3m"))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        "mo-smac/3m has a vector reward of 2 objectives (damage_dealt, health_kept) and "
        "qmix learns from a scalar one"
    )
    assert "env.kwargs.weights=[...]" in message
    # A fixed preference makes the reward scalar and the run buildable.
    runner = build_runner(
        train_config(algo="qmix", env="mo-smac/3m", env_kwargs={"weights": [0.5, 0.5]})
    )
    assert runner.env_spec.num_objectives == 1
