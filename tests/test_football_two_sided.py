"""Football with a policy on each side (5_vs_5): the right team's mirrored view and actions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.football.env import SHOT, Football, TwoSidedState

RIGHT, TOP_RIGHT, SPRINT = 5, 4, 13
NUM = 5  # players per team in 5_vs_5: a keeper and the 4 agents


def idle_policy(observation, key):
    del key
    return jnp.zeros(observation.action_mask.shape[:-1], jnp.int32)


@pytest.fixture(scope="module")
def env():
    return Football("5_vs_5", opponent_policy=idle_policy)


def symmetric(env, state):
    """Both teams point-mirrored through the centre spot, the ball loose on it."""
    left_x = np.array([-50.0, -20.0, -12.0, -12.0, -5.0], np.float32)
    left_y = np.array([0.0, -10.0, 6.0, 14.0, 2.0], np.float32)
    heading = np.array([0.0] * NUM + [np.pi] * NUM, np.float32)
    match = state.inner.match
    match = match.replace(
        x=jnp.asarray(np.concatenate([left_x, -left_x])),
        y=jnp.asarray(np.concatenate([left_y, -left_y])),
        vx=jnp.zeros(2 * NUM), vy=jnp.zeros(2 * NUM), heading=jnp.asarray(heading),
        ball=match.ball.replace(x=jnp.float32(0), y=jnp.float32(0), z=jnp.float32(0),
                                vx=jnp.float32(0), vy=jnp.float32(0), vz=jnp.float32(0)),
        owner=jnp.int32(-1), game_mode=jnp.int32(0),
    )  # fmt: skip
    return state.replace(inner=state.inner.replace(match=match))


def test_mirroring_twice_gives_the_play_back(env):
    state, _ = env.reset(jax.random.PRNGKey(0))
    mirrored = env._mirrored(state)
    back = env._mirrored(TwoSidedState(mirrored, *(jnp.zeros(4, t) for t in (int, bool, bool))))
    for name in ("x", "y", "vx", "vy", "owner", "score", "slide"):
        np.testing.assert_allclose(getattr(back.match, name), getattr(state.inner.match, name))
    turned = np.asarray(back.match.heading - state.inner.match.heading)
    np.testing.assert_allclose(np.cos(turned), 1.0, atol=1e-6)
    # The right team's keeper is the first player of its view, and its goal is at -x.
    assert float(mirrored.match.x[0]) == pytest.approx(-float(state.inner.match.x[NUM]))


def test_the_same_actions_from_both_ends_keep_a_symmetric_play_symmetric(env):
    state, _ = env.reset(jax.random.PRNGKey(1))
    state = symmetric(env, state)
    step = jax.jit(env.step_with_opponent)
    actions = [RIGHT, TOP_RIGHT, SPRINT, RIGHT, 0, TOP_RIGHT]
    for t in range(12):
        action = jnp.asarray(np.roll(actions, t)[:4], jnp.int32)
        ours, theirs = env.observation(state), env.opponent_observation(state)
        # Each side sees the same game from its own end.
        np.testing.assert_allclose(ours.agents_view, theirs.agents_view, atol=1e-5)
        state, timestep = step(state, action, action)
    match = state.inner.match
    np.testing.assert_allclose(match.x[NUM:], -match.x[:NUM], atol=1e-4)
    np.testing.assert_allclose(match.y[NUM:], -match.y[:NUM], atol=1e-4)
    # Running "right" took the agents towards +x and the right team towards -x.
    assert float(match.x[1]) > -20.0 + 1 and float(match.x[NUM + 1]) < 20.0 - 1
    assert float(timestep.extras["opponent_reward"]) == 0.0


def test_a_right_team_shot_goes_towards_the_left_goal(env):
    state, _ = env.reset(jax.random.PRNGKey(2))
    state = symmetric(env, state)
    match = state.inner.match
    shooter = NUM + 4  # the right team's most advanced player, 25 m from the left goal
    match = match.replace(
        x=match.x.at[shooter].set(-30.0), y=match.y.at[shooter].set(0.0),
        owner=jnp.int32(shooter),
        ball=match.ball.replace(x=jnp.float32(-30.5), y=jnp.float32(0.0)),
    )  # fmt: skip
    state = state.replace(inner=state.inner.replace(match=match))
    theirs = env.opponent_observation(state)
    assert bool(theirs.action_mask[3, SHOT])  # their 4th agent has the ball
    shoot = jnp.asarray([0, 0, 0, SHOT], jnp.int32)
    step = jax.jit(env.step_with_opponent)
    for t in range(4):  # pressed once: held, it would charge (sim.SHOT_CHARGE_STEPS)
        state, _ = step(state, jnp.zeros(4, jnp.int32), shoot if t == 0 else jnp.zeros_like(shoot))
    assert float(state.inner.match.ball.vx) < -10.0  # m/s, towards x = -55


def test_the_policy_route_plays_the_policys_actions():
    def sprint_right(observation, key):
        del key
        return jnp.where(jnp.arange(4) % 2 == 0, RIGHT, SPRINT)

    env = Football("5_vs_5", opponent_policy=sprint_right)
    state, _ = env.reset(jax.random.PRNGKey(3))
    action = jnp.full(4, RIGHT, jnp.int32)
    by_policy, _ = env.step(state, action)
    key, _ = jax.random.split(state.inner.key)
    explicit, _ = env.step_with_opponent(
        state.replace(inner=state.inner.replace(key=key)), action,
        sprint_right(env.opponent_observation(state), None),
    )  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, by_policy, explicit)


def test_only_alike_teams_can_be_played_from_both_ends():
    with pytest.raises(ValueError, match="teams are alike"):
        Football("academy_3_vs_1_with_keeper", opponent_policy=idle_policy)
    with pytest.raises(ValueError, match="needs an env built with an opponent_policy"):
        env = Football("5_vs_5")
        state, _ = env.reset(jax.random.PRNGKey(0))
        env.step_with_opponent(state, jnp.zeros(4, jnp.int32), jnp.zeros(4, jnp.int32))
