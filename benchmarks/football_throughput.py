"""Football throughput: marl-lab's JAX simulator at 1, 64 and 1024 environments.

Each row runs a jitted ``lax.scan`` of ``S`` steps of
``marl.VectorEnv(marl.make_env("football/<scenario>"), N)`` (the episode-metrics and
agent-id wrappers, auto-reset on) with uniformly random *available* actions drawn
inside the scan; env-steps/s = ``N * S / time``, the median of ``reps`` timed calls
after a warm-up. Compilation is timed separately.

No JAX football exists to compare with, and the C++/3-D engine cannot be built into
this benchmark; its figure is the reference's measurement on this kind of machine
(the shared reference, section 9): about 260 env-steps/s on
academy_3_vs_1_with_keeper and 450 on academy_empty_goal_close in one process. The
issue's target is at least 100k env-steps/s on academy_3_vs_1_with_keeper at 1024
environments. Usage::

    python benchmarks/football_throughput.py          # N = 1, 64, 1024; S = 100
    python benchmarks/football_throughput.py --quick  # seconds: checks that it runs
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
from common import machine_info, result_path, summary, write_json
from env_throughput import Batched, compile_variant, steps_per_second

import marl

SCENARIOS = ("academy_3_vs_1_with_keeper", "academy_counterattack_hard", "5_vs_5")
GRF_STEPS_PER_S = {"academy_3_vs_1_with_keeper": 260.0, "academy_empty_goal_close": 450.0}
TARGET_SCENARIO = "academy_3_vs_1_with_keeper"
TARGET_NUM_ENVS = 1024
TARGET_STEPS_PER_S = 100_000.0


def row(scenario: str, num_envs: int, scan_steps: int, reps: int) -> dict[str, Any]:
    """Env-steps/s of one scenario at ``num_envs`` environments."""
    vec = marl.VectorEnv(marl.make_env(f"football/{scenario}"), num_envs)
    compiled = compile_variant(Batched(vec.reset, vec.step), scan_steps)
    rates = steps_per_second(compiled, num_envs, scan_steps, reps)
    env = vec.env
    return {
        "scenario": scenario,
        "num_envs": num_envs,
        "num_agents": int(env.observation_spec.agents_view.shape[0]),
        "env_steps_per_s": summary(rates),
        "compile_s": compiled.compile_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--scan-steps", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick:
        jax.config.update("jax_disable_most_optimizations", True)
        args.scenarios, args.num_envs, args.scan_steps, args.reps = [TARGET_SCENARIO], [1, 8], 10, 2

    rows = []
    for scenario in args.scenarios:
        for num_envs in args.num_envs:
            rows.append(row(scenario, num_envs, args.scan_steps, args.reps))
            rate = rows[-1]["env_steps_per_s"]["median"]
            grf = GRF_STEPS_PER_S.get(scenario)
            versus = f"  ({rate / grf:,.0f}x GRF's engine)" if grf else ""
            print(f"{scenario} N={num_envs}: {rate:,.0f} env-steps/s{versus}", flush=True)
    target_row = next(
        (r for r in rows if r["scenario"] == TARGET_SCENARIO and r["num_envs"] == TARGET_NUM_ENVS),
        None,
    )
    target = None
    if target_row is not None:
        rate = target_row["env_steps_per_s"]["median"]
        target = {
            "scenario": TARGET_SCENARIO,
            "num_envs": TARGET_NUM_ENVS,
            "env_steps_per_s": rate,
            "required": TARGET_STEPS_PER_S,
            "met": rate >= TARGET_STEPS_PER_S,
            "times_grf_engine": rate / GRF_STEPS_PER_S[TARGET_SCENARIO],
        }
        print(f"target {TARGET_STEPS_PER_S:,.0f}: {'met' if target['met'] else 'NOT met'}")
    payload = {
        "benchmark": "football_throughput",
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "settings": {"scan_steps": args.scan_steps, "reps": args.reps, "quick": args.quick},
        "grf_engine_steps_per_s": GRF_STEPS_PER_S,
        "rows": rows,
        "target": target,
    }
    path = write_json(result_path(args.out, "football_throughput"), payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
