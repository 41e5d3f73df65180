"""mo-football: the two-objective reward (attack, possession) on the football simulator."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl import pareto
from marl.envs.football.env import ACTION_NAMES, RELEASE_DIRECTION, SHOT, Football
from marl.envs.football.scenarios import Player, get_scenario

SCENARIO = "academy_empty_goal_close"
RIGHT = ACTION_NAMES.index("right")


def play(env, policy, key, steps: int = 400):
    """The vector return and length of one episode of ``policy(t) -> action``."""
    state, timestep = env.reset(key)
    num_agents = marl.env_spec(env).num_agents

    def body(carry, t):
        state, total, done, length = carry
        action = jnp.broadcast_to(policy(t), (num_agents,)).astype(jnp.int32)
        state, timestep = env.step(state, action)
        total = total + jnp.where(done, 0.0, timestep.reward[0])
        length = length + jnp.where(done, 0, 1)
        return (state, total, done | timestep.last(), length), None

    carry = (state, jnp.zeros_like(timestep.reward[0]), jnp.bool_(False), jnp.int32(0))
    (_, total, _, length), _ = jax.jit(lambda c: jax.lax.scan(body, c, jnp.arange(steps)))(carry)
    return np.asarray(total), int(length)


def test_the_objectives_are_footballs_reward_and_the_time_holding_the_ball() -> None:
    scalar = marl.make_env(f"football/{SCENARIO}")
    vector = marl.make_env(f"mo-football/{SCENARIO}")
    assert vector.objective_names == ("attack", "possession")
    assert vector.hypervolume_reference == (-1.0, 0.0)
    assert marl.env_spec(vector).num_objectives == 2
    key = jax.random.PRNGKey(0)
    scalar_state, _ = scalar.reset(key)
    vector_state, first = vector.reset(key)
    assert first.reward.shape == (1, 2)
    for step_key in jax.random.split(jax.random.PRNGKey(1), 40):
        action = jax.random.randint(step_key, (1,), 1, 9)  # directions: the ball stays in play
        scalar_state, scalar_step = scalar.step(scalar_state, action)
        vector_state, vector_step = vector.step(vector_state, action)
        np.testing.assert_allclose(vector_step.reward[:, 0], scalar_step.reward)
        held = float(vector_step.extras["possession"] == 1.0)
        np.testing.assert_allclose(vector_step.reward[:, 1], held / 400)
        if bool(scalar_step.last()):
            break


def test_keeping_the_ball_and_shooting_land_on_different_points_of_the_front() -> None:
    # The opponents' keeper lazy, so that nobody comes for a ball the striker stands on.
    scenario = get_scenario(SCENARIO)
    lazy_keeper = dataclasses.replace(
        scenario, name=f"{SCENARIO}_lazy_keeper", right=(Player("GK", 1.0, 0.0, lazy=True),)
    )
    env = Football(lazy_keeper, multi_objective=True)
    # Run onto the ball for three steps, then stand on it to the time limit ...
    keep, keep_length = play(
        env,
        lambda t: jnp.where(t < 3, RIGHT, jnp.where(t == 3, RELEASE_DIRECTION, 0)),
        jax.random.PRNGKey(0),
    )
    # ... or shoot at the empty goal.
    shoot, shoot_length = play(env, lambda t: jnp.where(t < 3, RIGHT, SHOT), jax.random.PRNGKey(0))
    assert keep_length == 400 and keep[1] == pytest.approx(1.0, abs=0.01)
    assert keep[0] < 1.0  # the checkpoints reached on the way, no goal
    assert shoot[0] == pytest.approx(2.0) and shoot_length < 20  # a goal and every checkpoint
    assert shoot[1] < 0.05
    assert pareto.non_dominated(np.stack([keep, shoot])).all()


def test_weights_scalarise_and_bad_preferences_are_refused() -> None:
    vector = marl.make_env(f"mo-football/{SCENARIO}")
    weighted = marl.make_env(f"mo-football/{SCENARIO}", weights=[0.25, 0.75])
    assert marl.env_spec(weighted).num_objectives == 1
    policy = lambda t: jnp.where(t < 3, RIGHT, SHOT)  # noqa: E731
    total, _ = play(vector, policy, jax.random.PRNGKey(2))
    scalar_total, _ = play(weighted, policy, jax.random.PRNGKey(2))
    assert float(scalar_total) == pytest.approx(0.25 * total[0] + 0.75 * total[1], abs=1e-5)
    with pytest.raises(ValueError, match="weights must give one number per objective"):
        marl.make_env(f"mo-football/{SCENARIO}", weights=[1.0])
    with pytest.raises(ValueError, match="set multi_objective"):
        marl.make_env(f"football/{SCENARIO}", weights=[0.5, 0.5])
