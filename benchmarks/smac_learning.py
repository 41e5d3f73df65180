"""SMAC learning curves: marl-train's recipes on smac/<map>, several seeds, on this CPU.

For each algorithm and map the script runs ``marl-train algo=<algo> env=smac/<map>
arch.num_seeds=S`` (the seeds vmapped in one process, the algorithm's defaults
otherwise: QMIX 8 envs x 20-step rollouts, the PPO learners 32 envs x 100 steps)
into ``benchmarks/runs/smac_learning/<algo>/<map>``, then reads the run's
``metrics.jsonl``: the greedy evaluations (``kind: eval``, ``eval_episodes`` episodes
per seed) against env steps and training wall-clock seconds (see
:func:`read_curve`). A killed run is resumed (``resume=true``) when the script is
started again. Usage::

    python benchmarks/smac_learning.py                              # QMIX on 3m, 2s3z, 5m_vs_6m
    python benchmarks/smac_learning.py --algos mappo mat cmat --maps 3m
    python benchmarks/smac_learning.py --maps 3m --steps 3m=200000  # MAP=STEPS for every algo
    python benchmarks/smac_learning.py --report-only --algos qmix mappo --maps 3m

Results go to ``benchmarks/results/smac_learning.json`` (and ``.png``); the summary
gives, per algorithm and map, the final greedy win rate per seed and the first
evaluation at which every seed reached the threshold (90% by default).
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
MAPS = ("3m", "2s3z", "5m_vs_6m")
# Env steps per seed: the PPO learners need more samples than QMIX's replay.
DEFAULT_STEPS = {
    "qmix": {"3m": 200_000, "2s3z": 400_000, "5m_vs_6m": 400_000},
    "ppo": {"3m": 800_000, "2s3z": 2_000_000, "5m_vs_6m": 2_000_000},
}
DEFAULT_EVAL_INTERVAL = {
    "qmix": {"3m": 20_000, "2s3z": 40_000, "5m_vs_6m": 40_000},
    "ppo": {"3m": 80_000, "2s3z": 160_000, "5m_vs_6m": 160_000},
}


def family(algo: str) -> str:
    return "ppo" if algo in ("ippo", "mappo", "mat", "cmat") else "qmix"


def train(algo: str, map_name: str, steps: int, eval_interval: int, seeds: int) -> Path:
    """Runs (or resumes) marl-train; returns the run directory."""
    run_dir = RUNS / algo / map_name
    command = [
        sys.executable,
        "-m",
        "marl.experiments.train",
        f"algo={algo}",
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
    parser.add_argument("--algos", nargs="+", default=["qmix"])
    parser.add_argument("--maps", nargs="+", default=list(MAPS))
    parser.add_argument("--steps", nargs="*", default=[], help="MAP=STEPS overrides")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--report-only", action="store_true", help="read finished runs")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    step_overrides = {}
    for item in args.steps:
        name, _, value = item.partition("=")
        step_overrides[name] = int(value)

    results: dict[str, dict[str, Any]] = {}
    settings: dict[str, dict[str, int]] = {}
    for algo in args.algos:
        results[algo], settings[algo] = {}, {}
        for map_name in args.maps:
            run_dir = RUNS / algo / map_name
            total = step_overrides.get(map_name, DEFAULT_STEPS[family(algo)].get(map_name))
            total = total or 1_000_000
            settings[algo][map_name] = total
            if not args.report_only:
                interval = DEFAULT_EVAL_INTERVAL[family(algo)].get(map_name, total // 10)
                started = time.perf_counter()
                train(algo, map_name, total, interval, args.seeds)
                print(f"{algo} {map_name}: {time.perf_counter() - started:.0f} s", flush=True)
            if not (run_dir / "metrics.jsonl").exists():
                print(f"{algo} {map_name}: no run in {run_dir}; left out", flush=True)
                continue
            curve = read_curve(run_dir)
            result = {**curve, "summary": summarise(curve, args.threshold)}
            results[algo][map_name] = result
            s = result["summary"]
            wins = ", ".join(f"{w:.2f}" for w in s["final_win_rate_per_seed"])
            print(
                f"{algo} {map_name}: greedy win rate per seed {wins} at {s['final_step']:,} "
                f"steps ({s['final_wall_s'] / 60:.1f} min); all seeds >= {args.threshold:.0%} "
                f"from {s['all_seeds_at_threshold_step']}",
                flush=True,
            )
    payload = {
        "benchmark": "smac_learning",
        "command": " ".join(["python", "benchmarks/smac_learning.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "settings": {"seeds": args.seeds, "steps": settings},
        "results": results,
    }
    path = write_json(result_path(args.out, "smac_learning"), payload)
    print(f"wrote {path}")
    figure = plot(results, path.with_suffix(".png"))
    print(f"wrote {figure}")
    return payload


def plot(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """One column per map: greedy win rate against env steps (top) and wall-clock
    minutes (bottom); per algorithm the mean over seeds, and each seed faintly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    maps = list(dict.fromkeys(m for per_map in results.values() for m in per_map))
    fig, axes = plt.subplots(
        2, len(maps), figsize=(4.2 * len(maps), 6.4), sharey=True, squeeze=False
    )
    for colour, (algo, per_map) in zip(plt.cm.tab10.colors, results.items(), strict=False):
        for column, map_name in enumerate(maps):
            if map_name not in per_map:
                continue
            evaluations = per_map[map_name]["evaluations"]
            steps = [e["step"] for e in evaluations]
            minutes = [e["wall_s"] / 60 for e in evaluations]
            per_seed = [[s["win_rate"] for s in e["seeds"].values()] for e in evaluations]
            mean = [sum(w) / len(w) for w in per_seed]
            for x, axis in ((steps, axes[0, column]), (minutes, axes[1, column])):
                for seed in range(len(per_seed[0])):
                    axis.plot(x, [w[seed] for w in per_seed], color=colour, alpha=0.2, lw=1)
                axis.plot(x, mean, color=colour, linewidth=2, label=algo)
    thousands = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:.0f}k")
    for column, map_name in enumerate(maps):
        axes[0, column].xaxis.set_major_formatter(thousands)
        axes[0, column].set_title(f"smac/{map_name}")
        axes[0, column].set_xlabel("env steps")
        axes[1, column].set_xlabel("wall-clock minutes on this CPU")
        for axis in axes[:, column]:
            axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel("greedy win rate")
    axes[0, 0].legend(loc="lower right")
    seeds = len(next(iter(next(iter(results.values())).values()))["evaluations"][0]["seeds"])
    fig.suptitle(f"marl-train's recipes on marl-lab's SMAC, {seeds} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
