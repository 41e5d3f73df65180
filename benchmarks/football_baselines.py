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

Usage::

    python benchmarks/football_baselines.py          # 4 scenarios, 1024 episodes each
    python benchmarks/football_baselines.py --quick  # seconds: checks that it runs
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


def run_and_shoot(env: Football, distance: float) -> Policy:
    players = jnp.asarray(env.controlled)
    goal_x = float(env.statics.attack[env.controlled[0]]) * sim.HALF_LENGTH

    def act(state, mask, step, key):
        match = state.match
        gap_x, gap_y = goal_x - match.x[players], -match.y[players]
        # Directions 1..8 start at "left" and turn clockwise in 45-degree steps, with y
        # pointing down the pitch: angle 0 (right) is direction 5.
        octant = jnp.round(jnp.arctan2(gap_y, gap_x) / (math.pi / 4)).astype(jnp.int32)
        direction = (octant + 4) % 8 + 1
        in_range = jnp.sqrt(gap_x * gap_x + gap_y * gap_y) <= distance
        shoot = (players == match.owner) & in_range
        action = jnp.where(shoot, SHOT, direction)
        return jnp.where(step == 0, SPRINT, action).astype(jnp.int32)

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
        args.scenarios, args.distances, args.episodes = args.scenarios[:1], [11.0], 64

    rows = []
    for scenario in args.scenarios:
        env = make_football(scenario)
        policies = {"random": random_policy(env)}
        for distance in args.distances:
            policies[f"run_and_shoot_{distance:g}"] = run_and_shoot(env, distance)
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
