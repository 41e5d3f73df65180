"""SMAC throughput: marl-lab's ``smac/<map>`` against JaxMARL's SMAX, side by side.

Both environments run the same loop: a jitted ``lax.scan`` of ``S`` vectorised steps of
``N`` environments, random *available* actions drawn from each environment's own mask
inside the scan, auto-reset on; env-steps/s = ``N * S / time``. Variants:

* ``ours``: ``marl.VectorEnv(marl.make_env("smac/<map>"), N)``, SMAC v1's observation,
  state, mask and shaped reward on our simulator, the episode-metrics and agent-id
  wrappers, and the selective auto-reset; SC2's weapon delays drawn every step.
* ``ours_exact``: the same with ``weapon_delay=False`` (exact cooldowns), so the cost
  of drawing the delays shows beside the rest.
* ``smax`` (the anchor): ``jax.vmap`` of JaxMARL's ``HeuristicEnemySMAX.step`` on the
  same map, its own built-in auto-reset (under ``vmap`` a select that computes a reset
  every step), with its observations, world state and ``get_avail_actions`` computed
  every step as a training loop would.

The variants run in turns; the ratio is the median of per-round ratios against the
anchor. A second table times ``ours`` alone over maps of growing size at one batch size
(how the cost grows with the number of units). Usage::

    python benchmarks/smac_throughput.py            # N = 1, 64, 1024 on 3m, 2s3z, 27m_vs_30m
    python benchmarks/smac_throughput.py --quick    # seconds: checks that it runs

The two simulators are not the same game: ours runs 4 sub-steps per agent step with
SC2's unit stats, cooldowns, armour, shields and terrain, SMAX one with its own
simplified stats. What is compared is the cost of one agent step of each.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from common import command_line, machine_info, result_path, summary, write_json
from env_throughput import (
    Batched,
    bench_num_envs_generic,
    compile_variant,
    steps_per_second,
)

import marl

MAPS = ("3m", "2s3z", "27m_vs_30m")
SCALING_MAPS = ("3m", "8m", "2s3z", "3s5z", "MMM2", "25m", "27m_vs_30m", "2c_vs_64zg")
ANCHOR = "smax"
TARGET_RATIO = 3.0
TARGET_NUM_ENVS = 1024
TARGET_MAPS = ("3m", "2s3z")
VARIANTS = {
    "ours": "marl.VectorEnv(marl.make_env('smac/{map}'), N): SMAC v1 obs/state/mask/"
    "reward, metrics and agent-id wrappers, selective auto-reset, SC2's weapon delays",
    "ours_exact": "the same with weapon_delay=False (exact cooldowns)",
    ANCHOR: "jax.vmap(jaxmarl HeuristicEnemySMAX(map_name_to_scenario('{map}')).step), "
    "JaxMARL's built-in auto-reset; obs, world state and get_avail_actions every step",
}


class SmaxObservation(NamedTuple):
    agents_view: jax.Array
    global_state: jax.Array
    action_mask: jax.Array


class SmaxStep(NamedTuple):
    observation: SmaxObservation
    reward: jax.Array
    done: jax.Array

    def last(self) -> jax.Array:
        return self.done


def smax_batched(map_name: str, num_envs: int) -> Batched:
    """JaxMARL's SMAX under ``vmap``, in the ``Batched`` shape the rollout expects."""
    from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario

    env = HeuristicEnemySMAX(scenario=map_name_to_scenario(map_name))
    agents = env.agents

    def to_step(obs: dict, state: Any, reward: jax.Array, done: jax.Array) -> SmaxStep:
        masks = jax.vmap(env.get_avail_actions)(state)
        observation = SmaxObservation(
            agents_view=jnp.stack([obs[a] for a in agents], axis=1),
            global_state=obs["world_state"],
            action_mask=jnp.stack([masks[a] for a in agents], axis=1).astype(bool),
        )
        return SmaxStep(observation, reward, done)

    def reset(key: jax.Array) -> tuple[Any, SmaxStep]:
        reset_key, step_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
        zeros = jnp.zeros((num_envs,))
        return (state, step_key), to_step(obs, state, zeros, zeros.astype(bool))

    def step(carry: tuple[Any, jax.Array], actions: jax.Array) -> tuple[Any, SmaxStep]:
        state, key = carry
        key, step_key = jax.random.split(key)
        per_agent = {a: actions[:, i] for i, a in enumerate(agents)}
        obs, state, rewards, dones, _ = jax.vmap(env.step)(
            jax.random.split(step_key, num_envs), state, per_agent
        )
        return (state, key), to_step(obs, state, rewards[agents[0]], dones["__all__"])

    return Batched(reset, step)


def make_batched(name: str, num_envs: int, map_name: str) -> Batched:
    if name in ("ours", "ours_exact"):
        env = marl.make_env(f"smac/{map_name}", weapon_delay=name == "ours")
        vec = marl.VectorEnv(env, num_envs)
        return Batched(vec.reset, vec.step)
    if name == ANCHOR:
        return smax_batched(map_name, num_envs)
    raise ValueError(f"unknown variant {name!r}; valid: {sorted(VARIANTS)}")


def scaling_row(map_name: str, num_envs: int, scan_steps: int, reps: int) -> dict[str, Any]:
    """``ours`` alone on one map: env-steps/s and the cost per unit."""
    compiled = compile_variant(make_batched("ours", num_envs, map_name), scan_steps)
    rates = steps_per_second(compiled, num_envs, scan_steps, reps)
    spec = marl.envs.smac.maps.get_map(map_name)
    num_units = spec.n_agents + spec.n_enemies
    rate = summary(rates)
    return {
        "map": map_name,
        "num_units": num_units,
        "env_steps_per_s": rate,
        "unit_steps_per_s": rate["median"] * num_units,
        "compile_s": compiled.compile_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--maps", nargs="+", default=None)
    parser.add_argument("--num-envs", type=int, nargs="+", default=None)
    parser.add_argument("--scaling-maps", nargs="*", default=None)
    parser.add_argument("--scaling-num-envs", type=int, default=None)
    parser.add_argument("--scan-steps", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)

    if args.quick:
        jax.config.update("jax_disable_most_optimizations", True)
        maps, num_envs, scan_steps, reps, warmup, min_rep_s = ["3m"], [1, 8], 10, 2, 1, 0.0
        scaling_maps, scaling_envs = ["3m"], 8
    else:
        maps, num_envs, scan_steps, reps, warmup, min_rep_s = (
            list(MAPS),
            [1, 64, 1024],
            100,
            5,
            1,
            0.3,
        )
        scaling_maps, scaling_envs = list(SCALING_MAPS), 64
    maps = args.maps or maps
    num_envs = args.num_envs or num_envs
    scan_steps = args.scan_steps or scan_steps
    reps = args.reps or reps
    scaling_maps = scaling_maps if args.scaling_maps is None else args.scaling_maps
    scaling_envs = args.scaling_num_envs or scaling_envs
    variants = list(VARIANTS)

    info = machine_info()
    results = []
    for map_name in maps:
        for n in num_envs:
            print(f"{map_name} N={n}: compiling and timing ...", flush=True)
            row = bench_num_envs_generic(
                lambda name, n=n, m=map_name: make_batched(name, n, m),
                n,
                scan_steps,
                reps,
                warmup,
                min_rep_s,
                variants,
                ANCHOR,
            )
            row["map"] = map_name
            results.append(row)
            rates = {name: row["variants"][name]["env_steps_per_s"]["median"] for name in variants}
            ratio = row["ratio_vs_anchor"]["ours"]["median"]
            shown = "  ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
            print(f"  {shown}  ratio ours/smax {ratio:.2f}x", flush=True)
    scaling = []
    for map_name in scaling_maps:
        print(f"scaling {map_name} N={scaling_envs} ...", flush=True)
        scaling.append(scaling_row(map_name, scaling_envs, scan_steps, reps))
        last = scaling[-1]
        print(
            f"  {last['num_units']} units: {last['env_steps_per_s']['median']:,.0f} env-steps/s",
            flush=True,
        )

    targets = {}
    for map_name in TARGET_MAPS:
        row = next(
            (r for r in results if r["map"] == map_name and r["num_envs"] == TARGET_NUM_ENVS),
            None,
        )
        if row is not None:
            measured = row["ratio_vs_anchor"]["ours"]["median"]
            targets[map_name] = {"measured": measured, "met": bool(measured >= TARGET_RATIO)}
    payload = {
        "benchmark": "smac_throughput",
        "command": command_line("smac_throughput.py", argv),
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "settings": {
            "maps": maps,
            "num_envs": num_envs,
            "scan_steps": scan_steps,
            "reps": reps,
            "warmup_reps": warmup,
            "min_rep_s": min_rep_s,
            "actions": "uniform over available actions (each env's own mask), in the scan",
            "anchor": ANCHOR,
            "scaling_num_envs": scaling_envs,
        },
        "variants": VARIANTS,
        "results": results,
        "scaling": scaling,
        "target": {
            "ratio_ours_vs_anchor": TARGET_RATIO,
            "num_envs": TARGET_NUM_ENVS,
            "maps": targets,
        },
    }
    path = write_json(result_path(args.out, "smac_throughput"), payload)
    print(f"wrote {path}")
    for map_name, target in targets.items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"target {map_name}: ours >= {TARGET_RATIO}x SMAX at N={TARGET_NUM_ENVS}: {verdict}")
    return payload


if __name__ == "__main__":
    main()
