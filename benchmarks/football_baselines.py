"""Football baselines: how often hand-written policies score in the academy scenarios.

A reference for the learning benchmark (``football_learning.py``): what the goal
rate of a policy that plays no football at all, and of one that only knows "run at
the goal and shoot", is on this simulator. Each policy plays through the
environment's own interface (GRF's 19 actions, the mask, its end rules), in
``E`` episodes vmapped in one ``lax.scan``; the goal rate is the fraction of
episodes in which the agents scored.

* ``random``: uniformly random available actions.
* ``run_and_shoot_<d>``: every agent sprints at the centre of the goal (its
  direction rounded to GRF's eight), and the one with the ball shoots once it is
  within ``d`` metres of it. The shot goes where the held direction points, so
  mostly at the keeper: no passing, no dodging, no aiming at a corner.
* ``pass_then_run_<d>`` (scenarios with two or more agents): the agent nearest the
  loose ball goes to it (a player gets the ball only by touching it); the first
  carrier then turns to the agent standing farthest from the nearest opposing
  outfield player and makes a short pass as soon as it faces him; from then on
  whoever has the ball runs and shoots as above, and the others stand still (no run
  to meet the pass, no second pass).

Usage::

    python benchmarks/football_baselines.py          # 4 scenarios, 1024 episodes each
    python benchmarks/football_baselines.py --quick  # 3_vs_1 only: checks that it runs
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from common import machine_info, result_path, write_json

from marl.envs.football import sim
from marl.envs.football.env import (
    END_REASONS,
    IDLE,
    SHORT_PASS,
    SHOT,
    SPRINT,
    Football,
    FootballState,
    make_football,
)
from marl.envs.football.scenarios import X_SCALE, Y_SCALE, Scenario

SCENARIOS = (
    "academy_empty_goal_close",
    "academy_run_to_score_with_keeper",
    "academy_pass_and_shoot_with_keeper",
    "academy_3_vs_1_with_keeper",
)
SHOOTING_DISTANCES = (8.0, 11.0, 14.0, 17.0, 20.0)


class View(NamedTuple):
    """What the hand-written policies look at, the same from either engine.

    Players are numbered left team first, positions in metres; ``controlled`` is the
    player each agent drives this step (handed around in both engines, fixed in the JAX
    env with ``control="fixed"``).
    """

    x: Any  # [P]
    y: Any
    owner: Any  # player on the ball, -1 loose
    controlled: Any  # [A]
    opponents: Any  # [O] the opposing outfield players
    goal_x: float  # the x of the goal the agents attack
    ball_x: Any
    ball_y: Any
    held_direction: Any  # [A] each agent's sticky direction, 1..8 (0: none)


Policy = Callable[[View, jax.Array, jax.Array, jax.Array], jax.Array]


def view_of(env: Football, state: FootballState) -> View:
    """The :class:`View` of a JAX football state."""
    attacking = env.statics.team[env.controlled[0]]
    opponents = np.flatnonzero((env.statics.team != attacking) & ~env.statics.keeper)
    goal_x = float(env.statics.attack[env.controlled[0]]) * sim.HALF_LENGTH
    match = state.match
    return View(
        match.x, match.y, match.owner, state.control.controlled, opponents, goal_x,
        match.ball.x, match.ball.y, state.direction,
    )  # fmt: skip


def random_policy(view, mask, step, key):
    """Uniformly random among the available actions."""
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def uniform_policy(view, mask, step, key):
    """Uniformly random among all 19 actions, the mask ignored."""
    logits = jnp.zeros(mask.shape, jnp.float32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def direction_towards(gap_x: jax.Array, gap_y: jax.Array) -> jax.Array:
    """GRF's direction action (1..8) nearest to the vector ``(gap_x, gap_y)``."""
    # Directions 1..8 start at "left" and turn clockwise in 45-degree steps, with y
    # pointing down the pitch: angle 0 (right) is direction 5.
    octant = jnp.round(jnp.arctan2(gap_y, gap_x) / (math.pi / 4)).astype(jnp.int32)
    return (octant + 4) % 8 + 1


def _run_and_shoot_actions(view: View, distance: float) -> jax.Array:
    players = jnp.asarray(view.controlled)
    x, y = jnp.asarray(view.x), jnp.asarray(view.y)
    gap_x, gap_y = view.goal_x - x[players], -y[players]
    in_range = jnp.sqrt(gap_x * gap_x + gap_y * gap_y) <= distance
    shoot = (players == view.owner) & in_range
    return jnp.where(shoot, SHOT, direction_towards(gap_x, gap_y))


def run_and_shoot(distance: float) -> Policy:
    def act(view, mask, step, key):
        action = _run_and_shoot_actions(view, distance)
        return jnp.where(step == 0, SPRINT, action).astype(jnp.int32)

    return act


def first_carrier(scenario: Scenario) -> int:
    """The left player nearest the ball at the scenario's start (the same numbering in
    GRF's scenario files)."""
    ball_x, ball_y = scenario.ball  # GRF's units, as the players' places
    gaps = [math.hypot((p.x - ball_x) * X_SCALE, (p.y - ball_y) * Y_SCALE) for p in scenario.left]
    return int(np.argmin(gaps))


PASS_WINDOW = 30  # steps from the start in which the first carrier passes
START_STEPS = 3  # the first touch comes within these (GRF's first step only starts play)


def pass_then_run(distance: float, carrier: int) -> Policy:
    """See the module docstring; ``carrier`` is :func:`first_carrier` of the scenario."""

    def act(view, mask, step, key):
        players = jnp.asarray(view.controlled)
        x, y, opponents = jnp.asarray(view.x), jnp.asarray(view.y), jnp.asarray(view.opponents)
        has_ball = players == view.owner
        # The freest agent: the largest distance to its nearest opposing outfielder.
        gap_x = x[opponents][None, :] - x[players][:, None]
        gap_y = y[opponents][None, :] - y[players][:, None]
        freedom = jnp.min(jnp.sqrt(gap_x * gap_x + gap_y * gap_y), axis=1)
        target = players[jnp.argmax(jnp.where(has_ball, -jnp.inf, freedom))]
        ball_holder = jnp.maximum(view.owner, 0)
        aim = direction_towards(x[target] - x[ball_holder], y[target] - y[ball_holder])
        # Before the first touch the ball is nobody's: the agent nearest it goes to it.
        to_ball_x, to_ball_y = view.ball_x - x[players], view.ball_y - y[players]
        nearest = jnp.argmin(to_ball_x * to_ball_x + to_ball_y * to_ball_y)
        start = (view.owner < 0) & (step < START_STEPS)
        chase = start & (jnp.arange(players.shape[0]) == nearest)
        # The first carrier turns to the freest agent, then passes short.
        passing = has_ball & (players == carrier) & (step < PASS_WINDOW)
        facing = jnp.asarray(view.held_direction) == aim
        pass_action = jnp.where(facing, SHORT_PASS, aim)
        play = jnp.where(has_ball, _run_and_shoot_actions(view, distance), IDLE)
        action = jnp.where(passing, pass_action, play)
        action = jnp.where(chase, direction_towards(to_ball_x, to_ball_y), action)
        return action.astype(jnp.int32)

    return act


def play_episodes(env: Football, policy: Policy, episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Plays ``episodes`` episodes of at most ``env.time_limit`` steps, vmapped: per episode
    whether the agents scored, the end reason (an index of ``END_REASONS``), the number
    of steps, whether the agents' own keeper parried a shot before the end, and (as
    ``football_fidelity`` counts them in GRF) the steps after which an agent drives its
    own keeper and how often the set of driven players changed, the last step not
    counted."""
    # A parry puts the keeper down (sim.KEEPER_DOWN_STEPS, one spent by the step's end);
    # a keeper an agent drives may also slide, but that starts at sim.SLIDE_STEPS.
    agents_team = env.statics.team[env.controlled[0]]
    own_keeper = jnp.asarray(env.statics.keeper & (env.statics.team == agents_team))
    # What the reset observation shows the agents drive (GRF's hand-out, before the first
    # frame of play switches): the policy's first view and the first change count from it.
    shown_at_reset = jnp.asarray(env.start_players if env.control == "grf" else env.controlled)

    def episode(key):
        reset_key, key = jax.random.split(key)
        state, timestep = env.reset(reset_key)

        def body(carry, step):
            state, timestep, done, scored, reason, length, parried, keeper, changes, key = carry
            key, act_key = jax.random.split(key)
            mask = timestep.observation.action_mask
            shown = jnp.where(step == 0, shown_at_reset, state.control.controlled)
            seen = state.replace(control=state.control.replace(controlled=shown))
            action = policy(view_of(env, seen), mask, step, act_key)
            slide_before = state.match.slide
            driven_before = jnp.sort(shown)
            state, timestep = env.step(state, action)
            went_down = (slide_before == 0) & (state.match.slide == sim.KEEPER_DOWN_STEPS - 1)
            parried = parried | (~done & jnp.any(went_down & own_keeper))
            ended = timestep.extras["end_reason"] > 0
            going_on = ~done & ~ended
            keeper = keeper + (going_on & jnp.any(own_keeper[state.control.controlled]))
            changed = jnp.any(jnp.sort(state.control.controlled) != driven_before)
            changes = changes + (going_on & changed)
            scored = scored | (~done & (timestep.extras["goals"] > 0))
            reason = jnp.where(done, reason, timestep.extras["end_reason"])
            length = length + (~done).astype(jnp.int32)
            carry = (state, timestep, done | ended, scored, reason, length, parried, keeper,
                     changes, key)  # fmt: skip
            return carry, None

        zero = jnp.int32(0)
        start = (state, timestep, jnp.bool_(False), jnp.bool_(False), zero, zero,
                 jnp.bool_(False), zero, zero, key)  # fmt: skip
        carry, _ = jax.lax.scan(body, start, jnp.arange(env.time_limit))
        return carry[3:9]

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    played = jax.device_get(jax.jit(jax.vmap(episode))(keys))
    names = ("scored", "end_reason", "length", "own_keeper_parried", "own_keeper_steps",
             "control_changes")  # fmt: skip
    return {name: np.asarray(value) for name, value in zip(names, played, strict=True)}


def goal_rate(env: Football, policy: Policy, episodes: int, seed: int) -> dict[str, Any]:
    """The goal rate and end reasons of ``episodes`` episodes."""
    played = play_episodes(env, policy, episodes, seed)
    counts = np.bincount(played["end_reason"], minlength=len(END_REASONS))
    return {
        "goal_rate": float(np.mean(played["scored"])),
        "end_reasons": {name: int(c) for name, c in zip(END_REASONS, counts, strict=True) if c},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--distances", type=float, nargs="+", default=list(SHOOTING_DISTANCES))
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios, args.distances, args.episodes = [SCENARIOS[-1]], [11.0], 128

    rows = []
    for scenario in args.scenarios:
        env = make_football(scenario)
        policies = {"random": random_policy}
        for distance in args.distances:
            policies[f"run_and_shoot_{distance:g}"] = run_and_shoot(distance)
        if len(env.controlled) > 1:
            for distance in args.distances:
                carrier = first_carrier(env.scenario)
                policies[f"pass_then_run_{distance:g}"] = pass_then_run(distance, carrier)
        for name, policy in policies.items():
            result = goal_rate(env, policy, args.episodes, args.seed)
            rows.append({"scenario": scenario, "policy": name, **result})
            print(f"{scenario} {name}: goal rate {result['goal_rate']:.3f}", flush=True)
    payload = {
        "benchmark": "football_baselines",
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "settings": {"episodes": args.episodes, "seed": args.seed},
        "rows": rows,
    }
    path = write_json(result_path(args.out, "football_baselines"), payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
