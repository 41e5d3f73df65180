"""Learning curves of marl-train runs: run or resume them, read their greedy evaluations,
summarise and plot them. Shared by ``smac_learning.py`` and ``football_learning.py``.

A run is ``marl-train algo=<algo> env=<family>/<task> arch.num_seeds=S`` in
``<runs>/<algo>/<task>``; a killed run is resumed (``resume=true``) when started again.
Its ``metrics.jsonl`` gives the greedy evaluations (``kind: eval``) against env steps
and training wall-clock seconds (see :func:`read_curve`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import earlier_payload, machine_info, result_path, write_json

from marl.checkpoint import read_config

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Study:
    """One learning benchmark: an env family, its tasks and each run's budget."""

    name: str  # the result file's stem, e.g. "smac_learning"
    family: str  # env family, e.g. "smac"
    tasks: Sequence[str]
    default_algos: Sequence[str]
    steps: Callable[[str, str], int]  # (algo, task) -> env steps per seed
    eval_interval: Callable[[str, str], int]
    metric: str = "greedy win rate"
    #: the evaluation record's field the summary and the plot follow ("hypervolume"
    #: for multi-objective studies)
    value: str = "win_rate"
    #: more marl-train overrides per (algo, task), e.g. ["arch.num_envs=10"]
    overrides: Callable[[str, str], Sequence[str]] = lambda algo, task: ()


def train(
    study: Study, runs: Path, algo: str, task: str, steps: int, eval_interval: int, seeds: int
) -> Path:
    """Runs (or resumes) marl-train; returns the run directory."""
    run_dir = runs / algo / task
    marl_train(
        run_dir,
        [
            f"algo={algo}",
            f"env={study.family}/{task}",
            *study.overrides(algo, task),
            f"arch.num_seeds={seeds}",
            f"arch.total_timesteps={steps}",
            f"arch.eval_interval={eval_interval}",
        ],
    )
    return run_dir


def provenance_file(run_dir: Path) -> Path:
    """``<run_dir>.provenance.jsonl``, beside the run directory: marl-train starts a new
    run only in an empty or new directory."""
    return run_dir.parent / f"{run_dir.name}.provenance.jsonl"


def record_provenance(run_dir: Path) -> None:
    """Appends the commit, machine and time of this (re)start to the run's provenance
    file, which :func:`read_curve` reads back into each result's ``measured``."""
    machine = machine_info()
    entry = {key: machine[key] for key in ("git", "cpu_model", "usable_cores", "timestamp")}
    path = provenance_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(json.dumps(entry) + "\n")


def marl_train(run_dir: Path, overrides: Sequence[str]) -> None:
    """Runs marl-train with ``overrides`` into ``run_dir``, quietly, resuming the run
    already there."""
    record_provenance(run_dir)
    command = [
        sys.executable,
        "-m",
        "marl.experiments.train",
        *overrides,
        "logger=quiet",
        f"run_dir={run_dir}",
        f"resume={'true' if (run_dir / 'config.yaml').exists() else 'false'}",
    ]
    print(" ".join(command[2:]), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


_BOOKKEEPING = (
    "kind",
    "step",
    "seed",
    "task",
    "wall_time",
    "eval_index",
    "num_episodes",
    "return_std",
)


def read_curve(run_dir: Path, task: str | None = None) -> dict[str, Any]:
    """Greedy win rate and return per seed at every evaluation (and any other metric the
    evaluation logged, e.g. a multi-objective run's hypervolume), with env steps and the
    training wall seconds up to it.

    Each chunk's training time is its env steps over its logged env-steps/s (compiles
    included, evaluations not), summed: a run that was stopped and resumed is timed
    without the gap. ``task`` (``smac/3m``) picks one task's evaluations of a run of
    several tasks.
    """
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    chunk_sps = {r["step"]: r["sps"] for r in records if r["kind"] == "train"}
    elapsed, previous, train_s = 0.0, 0, {}
    for step in sorted(chunk_sps):
        elapsed += (step - previous) / max(chunk_sps[step], 1e-9)
        train_s[step], previous = elapsed, step
    by_step: dict[int, dict[str, Any]] = {}
    for r in records:
        if r["kind"] != "eval" or (task is not None and r.get("task") != task):
            continue
        point = by_step.setdefault(
            r["step"], {"step": r["step"], "wall_s": train_s.get(r["step"]), "seeds": {}}
        )
        values = {"win_rate": r["win_rate"], "return": r["return_mean"]}
        values |= {
            name: value
            for name, value in r.items()
            if name not in _BOOKKEEPING and name != "return_mean" and name not in values
        }
        point["seeds"][str(r["seed"])] = values
    curve: dict[str, Any] = {"evaluations": [by_step[s] for s in sorted(by_step)]}
    evaluated = [r["wall_time"] for r in records if r["kind"] == "eval" and "wall_time" in r]
    measured: dict[str, Any] = {}
    if evaluated:
        measured["last_evaluation"] = time.strftime(
            "%Y-%m-%dT%H:%M:%S+0000", time.gmtime(max(evaluated))
        )
    provenance = provenance_file(run_dir)
    if provenance.exists():
        starts = [json.loads(line) for line in provenance.read_text().splitlines() if line]
        measured["commits"] = list(dict.fromkeys(str(s["git"]) for s in starts))
        measured["cpu_model"] = starts[-1]["cpu_model"]
        measured["usable_cores"] = starts[-1]["usable_cores"]
    if measured:
        curve["measured"] = measured
    best = best_policies(run_dir, task)
    if best:
        curve["best_policy"] = best
    return curve


def best_policies(run_dir: Path, task: str | None = None) -> dict[str, dict[str, float]]:
    """Each seed's best policy as marl-train replayed it at the end (the run's marl-eval
    ``absolute_metrics``): every metric's mean and the number of episodes, by seed."""
    from marl.results import ABSOLUTE_KEY, RESULTS_FILE

    path = run_dir / RESULTS_FILE
    if not path.exists():
        return {}
    best: dict[str, dict[str, float]] = {}
    for tasks in json.loads(path.read_text()).values():
        for task_name, algos in tasks.items():
            if task is not None and not task.endswith(f"/{task_name}"):
                continue
            for seeds in algos.values():
                for seed_key, entries in seeds.items():
                    absolute = entries.get(ABSOLUTE_KEY)
                    if not absolute:
                        continue
                    values = {
                        name: float(sum(v) / len(v))
                        for name, v in absolute.items()
                        if isinstance(v, list) and v and None not in v
                    }
                    values["num_episodes"] = len(absolute.get("return", []))
                    best[seed_key.removeprefix("seed_")] = values
    return best


def summarise(
    curve: dict[str, Any], threshold: float | None, value: str = "win_rate"
) -> dict[str, Any]:
    """Final values (win rates by default) and, with a ``threshold``, the first
    evaluation where every seed is at it."""
    evaluations = curve["evaluations"]
    final = evaluations[-1]
    wins = [s[value] for s in final["seeds"].values()]
    summary = {
        "final_step": final["step"],
        "final_wall_s": final["wall_s"],
        f"final_{value}_per_seed": wins,
        f"final_{value}_mean": sum(wins) / len(wins),
    }
    if threshold is None:
        return summary
    reached = next(
        (e for e in evaluations if all(s[value] >= threshold for s in e["seeds"].values())),
        None,
    )
    return {
        **summary,
        "threshold": threshold,
        "all_seeds_at_threshold_step": None if reached is None else reached["step"],
        "all_seeds_at_threshold_wall_s": None if reached is None else reached["wall_s"],
    }


def run(
    study: Study, runs: Path, argv: list[str] | None, description: str, command: str
) -> dict[str, Any]:
    """The command line of a learning benchmark: trains (or reads, ``--report-only``) every
    (algo, task) run, then writes the JSON (``command``: what reproduces it) and the
    plot."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--algos", nargs="+", default=list(study.default_algos))
    parser.add_argument("--tasks", "--maps", nargs="+", default=list(study.tasks), dest="tasks")
    parser.add_argument("--steps", nargs="*", default=[], help="TASK=STEPS overrides")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--threshold", type=float, default=0.9 if study.value == "win_rate" else None
    )
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
        for task in args.tasks:
            run_dir = runs / algo / task
            total = step_overrides.get(task) or study.steps(algo, task)
            settings[algo][task] = total
            if not args.report_only:
                started = time.perf_counter()
                train(study, runs, algo, task, total, study.eval_interval(algo, task), args.seeds)
                print(f"{algo} {task}: {time.perf_counter() - started:.0f} s", flush=True)
            if not (run_dir / "metrics.jsonl").exists():
                print(f"{algo} {task}: no run in {run_dir}; left out", flush=True)
                continue
            # The run's own budget: a report may cover runs made with other --steps.
            saved = read_config(run_dir)
            if saved is not None:
                arch = saved["arch"]
                settings[algo][task] = arch["total_timesteps"]
            curve = read_curve(run_dir)
            if not curve["evaluations"]:
                print(f"{algo} {task}: no evaluation yet in {run_dir}; left out", flush=True)
                continue
            result = {**curve, "summary": summarise(curve, args.threshold, study.value)}
            results[algo][task] = result
            s = result["summary"]
            wins = ", ".join(f"{w:.2f}" for w in s[f"final_{study.value}_per_seed"])
            reached = ""
            if args.threshold is not None:
                shown = (
                    f"{args.threshold:.0%}" if study.value == "win_rate" else f"{args.threshold:g}"
                )
                reached = f"; all seeds >= {shown} from {s['all_seeds_at_threshold_step']}"
            print(
                f"{algo} {task}: {study.metric} per seed {wins} at {s['final_step']:,} "
                f"steps ({s['final_wall_s'] / 60:.1f} min){reached}",
                flush=True,
            )
    out_path = result_path(args.out, study.name)
    results, settings = _keep_earlier_results(out_path, study.name, results, settings)
    payload = {
        "benchmark": study.name,
        "command": command,
        "machine": machine_info(),
        "settings": {"seeds": args.seeds, "steps": settings},
        "results": results,
    }
    path = write_json(out_path, payload)
    print(f"wrote {path}")
    figure = plot(results, path.with_suffix(".png"), study)
    print(f"wrote {figure}" if figure else "no finished run to plot")
    return payload


def _keep_earlier_results(
    path: Path,
    name: str,
    results: dict[str, dict[str, Any]],
    settings: dict[str, dict[str, int]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]]]:
    """The new results on top of those already in ``path``: a report of some runs
    keeps the (algo, task) results it did not read, e.g. runs made on another day."""
    earlier = earlier_payload(path, name)
    if not earlier:
        return results, settings
    merged = {algo: dict(tasks) for algo, tasks in earlier.get("results", {}).items()}
    merged_settings = {
        algo: dict(tasks) for algo, tasks in earlier.get("settings", {}).get("steps", {}).items()
    }
    for algo, tasks in results.items():
        merged.setdefault(algo, {}).update(tasks)
        # A task left out now keeps the budget of its earlier result, if it has one.
        merged_settings.setdefault(algo, {}).update(
            {
                task: steps
                for task, steps in settings[algo].items()
                if task in tasks or task not in merged[algo]
            }
        )
    return merged, merged_settings


def plot(results: dict[str, dict[str, Any]], path: Path, study: Study) -> Path | None:
    """One column per task: the study's metric against env steps (top) and wall-clock
    minutes (bottom); per algorithm the mean over seeds, and each seed faintly. ``None``
    (and no file) when there is no curve to draw."""
    maps = list(dict.fromkeys(m for per_map in results.values() for m in per_map))
    if not maps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(
        2,
        len(maps),
        figsize=(4.2 * len(maps), 6.4),
        sharey=study.value == "win_rate",
        squeeze=False,
    )
    for colour, (algo, per_map) in zip(plt.cm.tab10.colors, results.items(), strict=False):
        for column, map_name in enumerate(maps):
            if map_name not in per_map:
                continue
            evaluations = per_map[map_name]["evaluations"]
            steps = [e["step"] for e in evaluations]
            minutes = [e["wall_s"] / 60 for e in evaluations]
            per_seed = [[s[study.value] for s in e["seeds"].values()] for e in evaluations]
            mean = [sum(w) / len(w) for w in per_seed]
            for x, axis in ((steps, axes[0, column]), (minutes, axes[1, column])):
                for seed in range(len(per_seed[0])):
                    axis.plot(x, [w[seed] for w in per_seed], color=colour, alpha=0.2, lw=1)
                axis.plot(x, mean, color=colour, linewidth=2, label=algo)
    thousands = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:.0f}k")
    for column, map_name in enumerate(maps):
        axes[0, column].xaxis.set_major_formatter(thousands)
        axes[0, column].set_title(f"{study.family}/{map_name}" if study.family else map_name)
        axes[0, column].set_xlabel("env steps")
        axes[1, column].set_xlabel("wall-clock minutes on this CPU")
        for axis in axes[:, column]:
            axis.grid(alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel(study.metric)
    # One legend for every algorithm, even those run on only some of the tasks.
    handles = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    axes[0, 0].legend(handles.values(), handles.keys(), loc="lower right")
    seeds = len(next(iter(next(iter(results.values())).values()))["evaluations"][0]["seeds"])
    fig.suptitle(f"marl-train on marl-lab's {study.family or study.name}, {seeds} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
