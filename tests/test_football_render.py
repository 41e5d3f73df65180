"""Football frames: hand-made states of academy_3_vs_1_with_keeper, and a few played steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import marl
from marl.envs.football import render
from marl.envs.football.env import Football
from marl.train import has_rgb_render
from marl.wrappers import AgentIDWrapper, MetricsState

# academy_3_vs_1_with_keeper: 0 the left keeper, 1-3 the agents' players (agents 0-2),
# 4 the right keeper, 5 the right centre back. The fixture moves the ball to BALL,
# away from every player and line.
BALL = (-20.0, 20.0)
KEEPERS = (0, 4)
CONTROLLED = (1, 2, 3)


@pytest.fixture(scope="module")
def env() -> Football:
    return Football("academy_3_vs_1_with_keeper")


@pytest.fixture(scope="module")
def state(env):
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    return _with_ball(state, *BALL)


@pytest.fixture(scope="module")
def frame(env, state):
    return env.render(state)


def _with(state, **fields):
    match = state.match
    fields = {
        name: jnp.asarray(value, getattr(match, name).dtype) for name, value in fields.items()
    }
    return state.replace(match=match.replace(**fields))


def _with_ball(state, x, y, z=0.11):
    ball = state.match.ball.replace(x=jnp.float32(x), y=jnp.float32(y), z=jnp.float32(z))
    return state.replace(match=state.match.replace(ball=ball))


def _pixel(frame, x, y):
    """(row, column) of pitch point (x, y) metres: the 116 m x 78 m of pitch and rim
    span the frame's width, under a header of LINE_HEIGHT rows."""
    scale = frame.shape[1] / 116.0
    return int(render.LINE_HEIGHT + (y + 39.0) * scale), int((x + 58.0) * scale)


def _player(frame, state, player):
    return _pixel(frame, float(state.match.x[player]), float(state.match.y[player]))


def _count(frame, colour, row, col, half):
    window = frame[max(row - half, 0) : row + half + 1, max(col - half, 0) : col + half + 1]
    return int(np.all(window == np.asarray(colour, np.uint8), axis=-1).sum())


def _colour(frame, row, col):
    return tuple(int(c) for c in frame[row, col])


def test_frame_shape_dtype_and_player_colours(env, state, frame):
    assert frame.dtype == np.uint8
    assert frame.shape == (render.LINE_HEIGHT + 323, 480, 3)  # 78 m at 480 / 116 px/m
    assert render.frame_shape() == frame.shape[:2]
    small = render.render_frame(env, state, size=240)
    assert small.shape == (render.LINE_HEIGHT + 161, 240, 3)
    for image in (frame, small):
        for player in range(6):
            right, keeper = player >= 4, player in KEEPERS
            expected = (render.KEEPER_COLOURS if keeper else render.TEAM_COLOURS)[int(right)]
            assert _colour(image, *_player(image, state, player)) == expected, player
    colours = {render.LEFT_COLOUR, render.RIGHT_COLOUR}
    colours |= {render.LEFT_KEEPER_COLOUR, render.RIGHT_KEEPER_COLOUR}
    assert len(colours) == 4
    assert (frame[: render.LINE_HEIGHT].max(axis=-1) > 150).sum() > 50  # header text


def test_wrappers_pass_render_through(env, state, frame):
    wrapped = marl.make_env("football/academy_3_vs_1_with_keeper")
    assert isinstance(wrapped, AgentIDWrapper)  # AgentIDWrapper(EpisodeMetricsWrapper(...))
    metrics_state = MetricsState(state, jnp.float32(0), jnp.int32(0))
    np.testing.assert_array_equal(wrapped.render(metrics_state), frame)
    assert has_rgb_render(env) and has_rgb_render(wrapped)  # replays accept football/*


def test_pitch_markings(frame):
    line, pitch = render.LINE_COLOUR, render.PITCH_COLOUR
    assert _colour(frame, *_pixel(frame, 0.0, 0.0)) == line  # centre spot
    assert _colour(frame, *_pixel(frame, 20.0, 10.0)) == pitch
    assert _colour(frame, *_pixel(frame, 20.0, -37.5)) == render.RIM_COLOUR  # beyond the lines
    assert _colour(frame, *_pixel(frame, 56.3, 0.0)) == render.GOAL_COLOUR  # in the goals
    assert _colour(frame, *_pixel(frame, -56.3, 0.0)) == render.GOAL_COLOUR
    assert _colour(frame, *_pixel(frame, 56.3, 10.0)) == render.RIM_COLOUR  # beside a goal
    # Lines (two pixels wide at this size): within a pixel of where they are.
    for x, y in [
        (0.0, 25.0),  # halfway line
        (20.0, 36.0),  # touch lines
        (20.0, -36.0),
        (55.0, 25.0),  # goal lines
        (-55.0, -25.0),
        (9.15, 0.0),  # centre circle
        (0.0, -9.15),
        (-38.5, 10.0),  # penalty area
        (-45.0, 20.16),
        (-49.5, 5.0),  # goal area
        (-44.0, 0.0),  # penalty spot
        (-34.85, 0.0),  # the D
    ]:
        assert _count(frame, line, *_pixel(frame, x, y), 1) > 0, (x, y)
    for x, y in [(-30.0, 0.0), (5.0, 20.0), (-40.0, 25.0), (45.0, -25.0)]:
        assert _count(frame, line, *_pixel(frame, x, y), 2) == 0, (x, y)


def test_ball_is_drawn_where_it_is(env, state, frame):
    a, b = BALL, (-30.0, -20.0)
    moved = env.render(_with_ball(state, *b))
    assert _colour(frame, *_pixel(frame, *a)) == render.BALL_COLOUR
    assert _colour(moved, *_pixel(moved, *a)) == render.PITCH_COLOUR
    assert _colour(moved, *_pixel(moved, *b)) == render.BALL_COLOUR
    assert _count(frame, render.BALL_OUTLINE, *_pixel(frame, *a), 4) > 0
    assert not np.array_equal(frame, moved)
    # Elsewhere the frames agree.
    row, col = _pixel(frame, 30.0, 10.0)
    np.testing.assert_array_equal(frame[row - 20 : row + 20], moved[row - 20 : row + 20])


def test_lofted_ball_is_lifted_over_its_shadow(env, state, frame):
    z = 5.0
    lofted = env.render(_with_ball(state, *BALL, z=z))
    row, col = _pixel(lofted, *BALL)
    lift = int(round((z - 0.11) * lofted.shape[1] / 116.0))
    assert _colour(lofted, row, col) == render.SHADOW_COLOUR
    assert _count(lofted, render.BALL_COLOUR, row, col, 2) == 0
    assert _colour(lofted, row - lift, col) == render.BALL_COLOUR
    # Larger than the ball on the ground.
    on_ground = _count(frame, render.BALL_COLOUR, row, col, 8)
    assert _count(lofted, render.BALL_COLOUR, row - lift, col, 8) > on_ground


def test_owner_has_a_ring(env, state, frame):
    assert _count(frame, render.OWNER_COLOUR, *_player(frame, state, 2), 300) == 0
    owned = env.render(_with(state, owner=2))
    near = _count(owned, render.OWNER_COLOUR, *_player(owned, state, 2), 10)
    assert near > 0
    assert _count(owned, render.OWNER_COLOUR, *_player(owned, state, 2), 300) == near
    assert _colour(owned, *_player(owned, state, 2)) == render.LEFT_COLOUR


def test_controlled_players_are_outlined_and_numbered(env, state, frame):
    empty = np.asarray(render.pitch_image(frame.shape[1]), np.uint8)
    top = int(render.MIN_PLAYER_PIXELS)

    def label(player):
        """What differs from the empty pitch up and to the right of the player."""
        row, col = _player(frame, state, player)
        rows = slice(row - top - 14 - render.LINE_HEIGHT, row - top + 1 - render.LINE_HEIGHT)
        window = (slice(row - top - 14, row - top + 1), slice(col + 6, col + 18))
        return np.any(frame[window] != empty[rows, window[1]], axis=-1)

    def outline(player):
        return _count(frame, render.CONTROLLED_OUTLINE, *_player(frame, state, player), 5)

    assert render.CONTROLLED_OUTLINE != render.LINE_COLOUR
    for player in CONTROLLED:
        assert outline(player) > 0 and label(player).sum() >= 8, player
    for player in (0, 4, 5):
        assert outline(player) == 0 and label(player).sum() == 0, player
    # Agent indices 0, 1 and 2: three different digits.
    masks = [label(player) for player in CONTROLLED]
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(masks[i], masks[j]), (i, j)


def test_sliding_player_is_faded(env, state, frame):
    slide = np.zeros(6, np.int32)
    slide[5] = 4
    sliding = env.render(_with(state, slide=slide))
    centre = _player(sliding, state, 5)
    faded = render._blend(render.RIGHT_COLOUR, render.PITCH_COLOUR, render.SLIDE_ALPHA)
    assert _colour(sliding, *centre) == faded != render.RIGHT_COLOUR
    assert _count(sliding, render.RIGHT_COLOUR, *centre, 6) == 0
    assert _count(frame, render.RIGHT_COLOUR, *centre, 6) > 0


def test_heading_line_points_where_the_player_faces(env, state, frame):
    row, col = _player(frame, state, 5)
    reach = int(render.MIN_PLAYER_PIXELS + render.HEADING_PIXELS)

    def ahead(image, side):
        cols = (col + 5, col + reach + 1) if side > 0 else (col - reach, col - 4)
        window = image[row - 1 : row + 2, cols[0] : cols[1]]
        return int(np.all(window == np.asarray(render.HEADING_COLOUR, np.uint8), axis=-1).sum())

    assert ahead(frame, -1) > 0 and ahead(frame, +1) == 0  # the right team faces -x
    heading = np.asarray(state.match.heading).copy()
    heading[5] = 0.0
    turned = env.render(_with(state, heading=heading))
    assert ahead(turned, +1) > 0 and ahead(turned, -1) == 0


def test_header_shows_step_score_and_mode(env, state, frame):
    header = slice(0, render.LINE_HEIGHT)
    pitch = slice(render.LINE_HEIGHT, None)
    variants = [
        _with(state, score=[1, 0]),
        _with(state, score=[0, 1]),
        state.replace(step_count=jnp.int32(57)),
        _with(state, game_mode=1),
    ]
    headers = [frame[header]]
    for variant in variants:
        image = env.render(variant)
        np.testing.assert_array_equal(image[pitch], frame[pitch])
        assert not any(np.array_equal(image[header], h) for h in headers)
        headers.append(image[header])
    assert "score 1 - 0" in render._header(env, jax.device_get(variants[0]))
    assert "step 57/400" in render._header(env, jax.device_get(variants[2]))
    assert render._header(env, jax.device_get(variants[3])).endswith("kick-off")


def test_frames_of_played_steps(env):
    step = jax.jit(env.step)
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(1))
    start = env.render(state)
    right = jnp.full((env.num_agents,), 5, jnp.int32)  # every agent runs towards +x
    for _ in range(5):
        state, _ = step(state, right)
    frame = env.render(state)
    assert frame.shape == start.shape and frame.dtype == np.uint8
    assert not np.array_equal(frame, start)
    host = jax.device_get(state)
    assert float(host.match.x[3]) > float(env.statics.home_x[3]) + 0.5
    assert _count(frame, render.LEFT_COLOUR, *_player(frame, host, 3), 2) > 0
