"""Football probe: what a trained run's greedy team does with the ball.

Reloads a football run's latest checkpoint (as ``marl-evaluate`` does) and plays
greedy episodes per seed, recording, besides the goal rate:

* the first kick command given by the player on the ball (shot, short, long or
  high pass, or none before the episode ended) and the step it was given at;
* the ball's distance to the goal centre when it first ran loose after that kick;
* whether a pass was completed (a left-team player other than the passer owned the
  ball next), and after it the receivers' first kick and its distance to goal;
* how episodes ended (scored, out of play, possession change, time limit).

With ``--force short_pass`` (or another kick) the ball carrier's action at its
first step on the ball is replaced by that kick and everyone plays greedily
otherwise: how well the learned receivers finish a pass they rarely see when the
greedy carrier shoots. Usage::

    python benchmarks/football_probe.py benchmarks/runs/football_learning/qmix/<scenario>
    python benchmarks/football_probe.py RUN_DIR --episodes 256 --force short_pass
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.football import env as football_env
from marl.envs.football import sim
from marl.loop import Runner
from marl.train import read_run_config, restore_run

KICKS = {
    "shot": football_env.SHOT,
    "short_pass": football_env.SHORT_PASS,
    "long_pass": football_env.LONG_PASS,
    "high_pass": football_env.HIGH_PASS,
}
KICK_NAMES = {code: name for name, code in KICKS.items()}
NO_FORCE = -1


def football_state(env_state: Any) -> football_env.FootballState:
    """The :class:`FootballState` inside the wrappers' states."""
    while not isinstance(env_state, football_env.FootballState):
        env_state = env_state.env_state
    return env_state


def _innermost(env: Any) -> football_env.Football:
    inner = env.unwrapped
    if not isinstance(inner, football_env.Football):
        raise ValueError(f"the run's environment is {type(inner).__name__}, not football")
    return inner


def probe_episodes(
    runner: Runner, algo_state: Any, key: jax.Array, num_episodes: int, forced_kick: int
) -> dict[str, jax.Array]:
    """Greedy episodes of one seed with the probe's records, each ``[num_episodes]``."""
    env, algo = runner.env, runner.algorithm
    statics = _innermost(env).statics
    reset_key, act_key = jax.random.split(key)
    env_state, timestep = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))
    kick_codes = jnp.asarray(list(KICKS.values()))
    minus_one = jnp.full((num_episodes,), -1, jnp.int32)
    records = {
        "won": jnp.zeros((num_episodes,), jnp.float32),
        "first_kick": minus_one,
        "first_kick_step": minus_one,
        "loose_distance": jnp.full((num_episodes,), jnp.nan, jnp.float32),
        "passer": minus_one,
        "pass_completed": jnp.zeros((num_episodes,), bool),
        "second_kick": minus_one,
        "second_kick_distance": jnp.full((num_episodes,), jnp.nan, jnp.float32),
        "end_reason": minus_one,
    }

    def step(carry, inputs):
        env_state, obs, memory, active, forced, records = carry
        step_key, t = inputs
        actions, memory, _ = algo.act(algo_state, obs, memory, step_key, False)
        on_ball = obs.action_mask[..., football_env.SHOT]  # [E, A]: kicks only with the ball
        if forced_kick != NO_FORCE:
            force_now = ~forced[:, None] & on_ball
            actions = jnp.where(force_now, forced_kick, actions)
            forced = forced | on_ball.any(-1)
        kicking = on_ball & jnp.isin(actions, kick_codes)
        first = active & (records["first_kick"] < 0) & kicking.any(-1)
        kick = jnp.max(jnp.where(kicking, actions, -1), axis=-1)
        match_before = football_state(env_state).match
        kicker_distance = jnp.hypot(
            match_before.x[jnp.arange(num_episodes), jnp.maximum(match_before.owner, 0)]
            - sim.HALF_LENGTH,
            match_before.y[jnp.arange(num_episodes), jnp.maximum(match_before.owner, 0)],
        )
        second = active & records["pass_completed"] & (records["second_kick"] < 0) & kicking.any(-1)
        env_state, timestep = jax.vmap(env.step)(env_state, actions)
        match = football_state(env_state).match
        owner_team = sim.owner_team(match, statics)
        # Scenarios may start with the ball loose beside its first owner: only count
        # it loose once a kick was commanded.
        kicked = (records["first_kick"] >= 0) | first
        loose_now = active & kicked & (match.owner < 0) & jnp.isnan(records["loose_distance"])
        distance = jnp.hypot(match.ball.x - sim.HALF_LENGTH, match.ball.y)
        passer = jnp.where(first & (kick != football_env.SHOT), match_before.owner, -1)
        passer = jnp.where(records["passer"] >= 0, records["passer"], passer)
        completed = (passer >= 0) & (owner_team == 0) & (match.owner != passer) & (match.owner >= 0)
        ended = active & timestep.last()
        records = {
            "won": jnp.where(ended, timestep.extras["won"], records["won"]),
            "first_kick": jnp.where(first, kick, records["first_kick"]),
            "first_kick_step": jnp.where(first, t, records["first_kick_step"]),
            "loose_distance": jnp.where(loose_now, distance, records["loose_distance"]),
            "passer": jnp.where(active, passer, records["passer"]),
            "pass_completed": records["pass_completed"] | (active & completed),
            "second_kick": jnp.where(second, kick, records["second_kick"]),
            "second_kick_distance": jnp.where(
                second, kicker_distance, records["second_kick_distance"]
            ),
            "end_reason": jnp.where(ended, timestep.extras["end_reason"], records["end_reason"]),
        }
        active = active & ~ended
        carry = (env_state, timestep.observation, memory, active, forced, records)
        return carry, None

    time_limit = runner.env_spec.time_limit
    carry = (
        env_state,
        timestep.observation,
        algo.initial_memory(num_episodes),
        jnp.ones((num_episodes,), bool),
        jnp.zeros((num_episodes,), bool),
        records,
    )
    inputs = (jax.random.split(act_key, time_limit), jnp.arange(time_limit))
    (_, _, _, _, _, records), _ = jax.lax.scan(step, carry, inputs)
    return records


def summarise(records: dict[str, np.ndarray]) -> dict[str, Any]:
    """One seed's probe as plain numbers."""
    first_kick = records["first_kick"]
    kicked = first_kick >= 0
    passes = kicked & (first_kick != football_env.SHOT)
    shares = {name: float(np.mean(first_kick == code)) for code, name in KICK_NAMES.items()}
    shares["none"] = float(np.mean(~kicked))
    loose = records["loose_distance"][~np.isnan(records["loose_distance"])]
    return {
        "goal_rate": float(np.mean(records["won"])),
        "first_kick_share": shares,
        "median_first_kick_step": float(np.median(records["first_kick_step"][kicked]))
        if kicked.any()
        else None,
        "median_loose_distance_m": float(np.median(loose)) if loose.size else None,
        "passes_completed": float(np.mean(records["pass_completed"][passes]))
        if passes.any()
        else None,
        "goal_rate_after_pass": float(np.mean(records["won"][passes])) if passes.any() else None,
        "end_reason_share": _shares(records["end_reason"], football_env.END_REASONS),
        "after_completed_pass": _after_pass(records),
    }


def _shares(codes: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return {name: float(np.mean(codes == code)) for code, name in enumerate(names)}


def _after_pass(records: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """What the receivers did with a completed pass: their first kick and its
    distance to goal, and how those episodes ended."""
    completed = records["pass_completed"]
    if not completed.any():
        return None
    second = records["second_kick"][completed]
    kick_share = {name: float(np.mean(second == code)) for code, name in KICK_NAMES.items()}
    kick_share["none"] = float(np.mean(second < 0))
    distances = records["second_kick_distance"][completed]
    distances = distances[~np.isnan(distances)]
    return {
        "episodes": int(completed.sum()),
        "goal_rate": float(np.mean(records["won"][completed])),
        "first_kick_share": kick_share,
        "median_kick_distance_m": float(np.median(distances)) if distances.size else None,
        "end_reason_share": _shares(records["end_reason"][completed], football_env.END_REASONS),
    }


def probe_run(run_dir: Path, num_episodes: int, force: str | None, seed: int = 0) -> dict:
    """The probe of every seed of the run in ``run_dir``."""
    if force is not None and force not in KICKS:
        raise ValueError(f"--force '{force}' is unknown; valid: {', '.join(KICKS)}")
    config = read_run_config(run_dir)
    runner, state, chunk = restore_run(run_dir, config)
    _innermost(runner.env)
    forced_kick = NO_FORCE if force is None else KICKS[force]
    device_zero = jax.tree_util.tree_map(lambda x: x[0], state.algo_state)
    keys = jax.random.split(jax.random.PRNGKey(seed), runner.num_seeds)
    run = jax.jit(
        jax.vmap(lambda a, k: probe_episodes(runner, a, k, num_episodes, forced_kick)),
    )
    records = jax.tree_util.tree_map(np.asarray, run(device_zero, keys))
    seeds = [
        summarise({name: values[i] for name, values in records.items()})
        for i in range(runner.num_seeds)
    ]
    return {
        "run_dir": str(run_dir),
        "env": config.env.name,
        "algo": config.algo.name,
        "chunk": chunk,
        "episodes_per_seed": num_episodes,
        "force": force,
        "seeds": seeds,
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=128, help="per seed")
    parser.add_argument("--force", default=None, help=f"one of {', '.join(KICKS)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    try:
        result = probe_run(args.run_dir, args.episodes, args.force)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"football_probe: {error}")
    print(f"{result['algo']} on {result['env']}, chunk {result['chunk']}, force={args.force}")
    print("seed  goals  shot  short  long  high  none  kick@  loose_m  pass_done  goals|pass")
    for index, s in enumerate(result["seeds"]):
        share = s["first_kick_share"]
        print(
            f"{index:>4}  {s['goal_rate']:.2f}  {share['shot']:.2f}  {share['short_pass']:.2f}"
            f"  {share['long_pass']:.2f}  {share['high_pass']:.2f}  {share['none']:.2f}"
            f"  {_fmt(s['median_first_kick_step']):>5}  {_fmt(s['median_loose_distance_m']):>7}"
            f"  {_fmt(s['passes_completed']):>9}  {_fmt(s['goal_rate_after_pass']):>10}"
        )
    for index, s in enumerate(result["seeds"]):
        ends = ", ".join(f"{k} {v:.2f}" for k, v in s["end_reason_share"].items() if v > 0)
        print(f"seed {index} ended: {ends}")
        after = s["after_completed_pass"]
        if after is not None:
            kicks = ", ".join(f"{k} {v:.2f}" for k, v in after["first_kick_share"].items() if v)
            ends = ", ".join(f"{k} {v:.2f}" for k, v in after["end_reason_share"].items() if v)
            print(
                f"  after {after['episodes']} completed passes: goals {after['goal_rate']:.2f};"
                f" receivers' first kick: {kicks}"
                f" (median {_fmt(after['median_kick_distance_m'])} m from goal); ended: {ends}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
