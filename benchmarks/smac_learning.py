"""SMAC learning curves: QMIX's default recipe on smac/<map>, several seeds, on this CPU.

For each map the script runs ``marl-train env=smac/<map> arch.num_seeds=S`` (the seeds
vmapped in one process, marl-train's defaults otherwise) into
``benchmarks/runs/smac_learning/<map>``, then reads the run's ``metrics.jsonl``: the
greedy evaluations (``kind: eval``, ``eval_episodes`` episodes per seed) against env
steps and training wall-clock seconds (see :func:`read_curve`). A killed run is
resumed (``resume=true``) when the script is started again. Usage::

    python benchmarks/smac_learning.py                         # 3m, 2s3z, 5m_vs_6m
    python benchmarks/smac_learning.py --maps 3m --steps 3m=200000
    python benchmarks/smac_learning.py --report-only           # re-read finished runs

Results go to ``benchmarks/results/smac_learning.json``; the summary table gives, per
map, the final greedy win rate per seed and the first evaluation at which every seed
reached the threshold (90% by default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine_info, result_path, write_json

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "benchmarks" / "runs" / "smac_learning"
DEFAULT_STEPS = {"3m": 200_000, "2s3z": 400_000, "5m_vs_6m": 400_000}
DEFAULT_EVAL_INTERVAL = {"3m": 20_000, "2s3z": 40_000, "5m_vs_6m": 40_000}


def train(map_name: str, steps: int, eval_interval: int, seeds: int) -> Path:
    """Runs (or resumes) marl-train on ``smac/<map_name>``; returns the run directory."""
    run_dir = RUNS / map_name
    command = [
        sys.executable,
        "-m",
        "marl.experiments.train",
        f"env=smac/{map_name}",
        f"arch.num_seeds={seeds}",
        f"arch.total_timesteps={steps}",
        f"arch.eval_interval={eval_interval}",
        "logger=quiet",
        f"run_dir={run_dir}",
        f"resume={'true' if (run_dir / 'config.json').exists() else 'false'}",
    ]
    print(" ".join(command[2:]), flush=True)
    subprocess.run(command, cwd=REPO, check=True)
    return run_dir


def read_curve(run_dir: Path) -> dict[str, Any]:
    """Greedy win rate and return per seed at every evaluation, with env steps and the
    training wall seconds up to it.

    Each chunk's training time is its env steps over its logged env-steps/s (compiles
    included, evaluations not), summed: a run that was stopped and resumed is timed
    without the gap.
    """
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    chunk_sps = {r["step"]: r["sps"] for r in records if r["kind"] == "train"}
    elapsed, previous, train_s = 0.0, 0, {}
    for step in sorted(chunk_sps):
        elapsed += (step - previous) / max(chunk_sps[step], 1e-9)
        train_s[step], previous = elapsed, step
    by_step: dict[int, dict[str, Any]] = {}
    for r in records:
        if r["kind"] != "eval":
            continue
        point = by_step.setdefault(
            r["step"], {"step": r["step"], "wall_s": train_s.get(r["step"]), "seeds": {}}
        )
        point["seeds"][str(r["seed"])] = {"win_rate": r["win_rate"], "return": r["return_mean"]}
    return {"evaluations": [by_step[s] for s in sorted(by_step)]}


def summarise(curve: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Final win rates and the first evaluation where every seed is at ``threshold``."""
    evaluations = curve["evaluations"]
    final = evaluations[-1]
    reached = next(
        (e for e in evaluations if all(s["win_rate"] >= threshold for s in e["seeds"].values())),
        None,
    )
    wins = [s["win_rate"] for s in final["seeds"].values()]
    return {
        "final_step": final["step"],
        "final_wall_s": final["wall_s"],
        "final_win_rate_per_seed": wins,
        "final_win_rate_mean": sum(wins) / len(wins),
        "threshold": threshold,
        "all_seeds_at_threshold_step": None if reached is None else reached["step"],
        "all_seeds_at_threshold_wall_s": None if reached is None else reached["wall_s"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--maps", nargs="+", default=list(DEFAULT_STEPS))
    parser.add_argument("--steps", nargs="*", default=[], help="MAP=STEPS overrides")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--report-only", action="store_true", help="read finished runs")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    steps = dict(DEFAULT_STEPS)
    for item in args.steps:
        name, _, value = item.partition("=")
        steps[name] = int(value)

    maps: dict[str, Any] = {}
    for map_name in args.maps:
        run_dir = RUNS / map_name
        if not args.report_only:
            total = steps.get(map_name, 500_000)
            interval = DEFAULT_EVAL_INTERVAL.get(map_name, max(total // 10, 1))
            started = time.perf_counter()
            train(map_name, total, interval, args.seeds)
            print(f"{map_name}: {time.perf_counter() - started:.0f} s", flush=True)
        curve = read_curve(run_dir)
        maps[map_name] = {**curve, "summary": summarise(curve, args.threshold)}
        s = maps[map_name]["summary"]
        wins = ", ".join(f"{w:.2f}" for w in s["final_win_rate_per_seed"])
        print(
            f"{map_name}: greedy win rate per seed {wins} at {s['final_step']:,} steps "
            f"({s['final_wall_s'] / 60:.1f} min); all seeds >= {args.threshold:.0%} from "
            f"{s['all_seeds_at_threshold_step']}",
            flush=True,
        )
    payload = {
        "benchmark": "smac_learning",
        "command": " ".join(["python", "benchmarks/smac_learning.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "settings": {"seeds": args.seeds, "steps": {m: steps.get(m) for m in args.maps}},
        "maps": maps,
    }
    path = write_json(result_path(args.out, "smac_learning"), payload)
    print(f"wrote {path}")
    figure = plot(maps, path.with_suffix(".png"))
    print(f"wrote {figure}")
    return payload


def plot(maps: dict[str, Any], path: Path) -> Path:
    """Greedy win rate (mean over seeds, and each seed faintly) against env steps and
    against wall-clock minutes, one colour per map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for colour, (map_name, result) in zip(plt.cm.tab10.colors, maps.items(), strict=False):
        evaluations = result["evaluations"]
        steps = [e["step"] for e in evaluations]
        minutes = [e["wall_s"] / 60 for e in evaluations]
        per_seed = [[s["win_rate"] for s in e["seeds"].values()] for e in evaluations]
        mean = [sum(w) / len(w) for w in per_seed]
        for seed in range(len(per_seed[0])):
            wins = [w[seed] for w in per_seed]
            by_steps.plot(steps, wins, color=colour, alpha=0.25, linewidth=1)
            by_time.plot(minutes, wins, color=colour, alpha=0.25, linewidth=1)
        by_steps.plot(steps, mean, color=colour, linewidth=2, label=map_name)
        by_time.plot(minutes, mean, color=colour, linewidth=2, label=map_name)
    by_steps.set_xlabel("env steps")
    by_time.set_xlabel("wall-clock minutes on this CPU")
    by_steps.set_ylabel("greedy win rate")
    by_steps.legend(loc="lower right")
    for axis in (by_steps, by_time):
        axis.grid(alpha=0.3)
    fig.suptitle("QMIX (marl-train defaults) on marl-lab's SMAC, 3 seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
