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
* ``pass_then_run_<d>`` (scenarios with two or more agents): the first carrier
  turns to the agent standing farthest from the nearest opposing outfield player
  and makes a short pass at once; from then on whoever has the ball runs and shoots
  as above, and the others stand still (no run to meet the pass, no second pass).

Usage::

    python benchmarks/football_baselines.py          # 4 scenarios, 1024 episodes each
    python benchmarks/football_baselines.py --quick  # 3_vs_1 only: checks that it runs
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

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

SCENARIOS = (
    "academy_empty_goal_close",
    "academy_run_to_score_with_keeper",
    "academy_pass_and_shoot_with_keeper",
    "academy_3_vs_1_with_keeper",
)
SHOOTING_DISTANCES = (8.0, 11.0, 14.0, 17.0, 20.0)

Policy = Callable[[FootballState, jax.Array, jax.Array, jax.Array], jax.Array]


def random_policy(env: Football) -> Policy:
    def act(state, mask, step, key):
        logits = jnp.where(mask, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    return act


def direction_towards(gap_x: jax.Array, gap_y: jax.Array) -> jax.Array:
    """GRF's direction action (1..8) nearest to the vector ``(gap_x, gap_y)``."""
    # Directions 1..8 start at "left" and turn clockwise in 45-degree steps, with y
    # pointing down the pitch: angle 0 (right) is direction 5.
    octant = jnp.round(jnp.arctan2(gap_y, gap_x) / (math.pi / 4)).astype(jnp.int32)
    return (octant + 4) % 8 + 1


def _run_and_shoot_actions(env: Football, match: sim.Match, distance: float) -> jax.Array:
    players = jnp.asarray(env.controlled)
    goal_x = float(env.statics.attack[env.controlled[0]]) * sim.HALF_LENGTH
    gap_x, gap_y = goal_x - match.x[players], -match.y[players]
    in_range = jnp.sqrt(gap_x * gap_x + gap_y * gap_y) <= distance
    shoot = (players == match.owner) & in_range
    return jnp.where(shoot, SHOT, direction_towards(gap_x, gap_y))


def run_and_shoot(env: Football, distance: float) -> Policy:
    def act(state, mask, step, key):
        action = _run_and_shoot_actions(env, state.match, distance)
        return jnp.where(step == 0, SPRINT, action).astype(jnp.int32)

    return act


def pass_then_run(env: Football, distance: float) -> Policy:
    players = jnp.asarray(env.controlled)
    opponents = np.flatnonzero(
        (env.statics.team != env.statics.team[env.controlled[0]]) & ~env.statics.keeper
    )

    def act(state, mask, step, key):
        match = state.match
        has_ball = players == match.owner
        # The freest agent: the largest distance to its nearest opposing outfielder.
        gap_x = match.x[opponents][None, :] - match.x[players][:, None]
        gap_y = match.y[opponents][None, :] - match.y[players][:, None]
        freedom = jnp.min(jnp.sqrt(gap_x * gap_x + gap_y * gap_y), axis=1)
        target = players[jnp.argmax(jnp.where(has_ball, -jnp.inf, freedom))]
        carrier = jnp.maximum(match.owner, 0)
        aim = direction_towards(
            match.x[target] - match.x[carrier], match.y[target] - match.y[carrier]
        )
        play = jnp.where(has_ball, _run_and_shoot_actions(env, match, distance), IDLE)
        first = jnp.where(has_ball, aim, SPRINT)
        action = jnp.where(step == 0, first, jnp.where((step == 1) & has_ball, SHORT_PASS, play))
        return action.astype(jnp.int32)

    return act


def goal_rate(env: Football, policy: Policy, episodes: int, seed: int) -> dict[str, Any]:
    """Plays ``episodes`` episodes of at most ``env.time_limit`` steps."""

    def episode(key):
        reset_key, key = jax.random.split(key)
        state, timestep = env.reset(reset_key)

        def body(carry, step):
            state, timestep, done, scored, reason, key = carry
            key, act_key = jax.random.split(key)
            mask = timestep.observation.action_mask
            action = policy(state, mask, step, act_key)
            state, timestep = env.step(state, action)
            ended = timestep.extras["end_reason"] > 0
            scored = scored | (~done & (timestep.extras["goals"] > 0))
            reason = jnp.where(done, reason, timestep.extras["end_reason"])
            return (state, timestep, done | ended, scored, reason, key), None

        start = (state, timestep, jnp.bool_(False), jnp.bool_(False), jnp.int32(0), key)
        (_, _, _, scored, reason, _), _ = jax.lax.scan(body, start, jnp.arange(env.time_limit))
        return scored, reason

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    scored, reasons = jax.jit(jax.vmap(episode))(keys)
    counts = np.bincount(np.asarray(reasons), minlength=len(END_REASONS))
    return {
        "goal_rate": float(np.mean(np.asarray(scored))),
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
        policies = {"random": random_policy(env)}
        for distance in args.distances:
            policies[f"run_and_shoot_{distance:g}"] = run_and_shoot(env, distance)
        if len(env.controlled) > 1:
            for distance in args.distances:
                policies[f"pass_then_run_{distance:g}"] = pass_then_run(env, distance)
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
