"""``marl-report PATH [PATH ...] [--out DIR] [--metric NAME] [--reps N]``: aggregate
statistics of runs, by marl-eval and rliable.

Every ``results.json`` under the paths (run directories, ``runs/`` trees, Hydra
``multirun/`` folders; symlinks followed, each file once) is merged by marl-eval's
``concatenate_json_files`` (seeds of the same algorithm and task from different runs
are kept apart, as marl-eval numbers them) and processed by its
``data_process_pipeline``. Then, for every environment family:

* a table per algorithm of the **interquartile mean, median, mean and optimality gap**
  of the final score over all (task, seed) runs, each with a 95% stratified bootstrap
  confidence interval (rliable's ``get_interval_estimates``), and the same plot
  (marl-eval's ``aggregate_scores``);
* the **probability of improvement** of every algorithm over every other, with its
  95% interval (rliable), and marl-eval's plot of it;
* **performance profiles** (marl-eval) and **sample-efficiency curves** (the IQM at
  every evaluation with 95% stratified bootstrap intervals, marl-eval);
* per task, the final score of every algorithm (mean over seeds with a 95% bootstrap
  interval) and its learning curve (marl-eval's ``plot_single_task``).

The metric is ``win_rate`` when every run has it, else ``return`` (normalised per task
to [0, 1] over the runs, as marl-eval does); ``--metric`` chooses. Writes
``report.md``, ``report.json`` and PNG plots into ``--out`` (``report/`` by default)
and prints the markdown. Needs marl-eval (``pip install --no-deps id-marl-eval``) and
rliable.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import itertools
import json
import os
import pathlib
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from marl.results import RESULTS_FILE

NORMALISED = ("return",)  # marl-eval min-max normalises these per task
CONFIDENCE = 0.95


class ReportError(ValueError):
    """Nothing to report (no results file), or a metric the runs do not have."""


def find_results(paths: Sequence[str | os.PathLike[str]]) -> list[pathlib.Path]:
    """Every ``results.json`` under ``paths`` (files or directories), each file once."""
    found: dict[pathlib.Path, pathlib.Path] = {}
    for path in map(pathlib.Path, paths):
        if not path.exists():
            raise ReportError(f"no such file or directory: '{path}'")
        if path.is_file():
            candidates = [path]
        else:
            candidates = [
                pathlib.Path(root) / RESULTS_FILE
                for root, _, files in os.walk(path, followlinks=True)
                if RESULTS_FILE in files
            ]
        for candidate in sorted(candidates):
            found.setdefault(candidate.resolve(), candidate)
    if not found:
        raise ReportError(
            f"no {RESULTS_FILE} under {', '.join(map(str, paths))}: marl-train writes one "
            "into every run directory once it has evaluated"
        )
    return list(found.values())


def merge_results(files: Sequence[pathlib.Path], work_dir: pathlib.Path) -> dict[str, Any]:
    """The files merged by marl-eval's ``concatenate_json_files``."""
    from marl_eval.json_tools import concatenate_json_files

    inputs = work_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(files):
        (inputs / f"run_{index:04d}.json").write_text(path.read_text())
    with contextlib.redirect_stdout(io.StringIO()):  # marl-eval prints where it saved
        merged = concatenate_json_files(str(inputs), str(work_dir / "concatenated") + "/")
    return json.loads(json.dumps(merged))  # plain dicts


def _metrics_of(data: dict[str, Any]) -> set[str]:
    """The metric names every run's final entry has."""
    common: set[str] | None = None
    for tasks in data.values():
        for algos in tasks.values():
            for seeds in algos.values():
                for entries in seeds.values():
                    final = entries.get("absolute_metrics") or entries[max(entries)]
                    names = {k for k in final if k != "step_count"}
                    common = names if common is None else common & names
    return common or set()


def _interval_estimates(scores: dict[str, np.ndarray], function: Any, reps: int) -> tuple:
    from rliable import library as rly

    return rly.get_interval_estimates(
        scores, function, reps=reps, confidence_interval_size=CONFIDENCE
    )


def _fmt(value: float, interval: Sequence[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def report_environment(
    processed: dict[str, Any], env_name: str, metric: str, out: pathlib.Path, reps: int
) -> dict[str, Any]:
    """The statistics and plots of one environment family (see the module docstring)."""
    import matplotlib.pyplot as plt
    from marl_eval.plotting_tools import plotting
    from marl_eval.utils.data_processing_utils import create_matrices_for_rliable
    from rliable import metrics, plot_utils

    normalise = [metric] if metric in NORMALISED else []
    key = f"mean_norm_{metric}" if normalise else f"mean_{metric}"
    with contextlib.redirect_stdout(io.StringIO()):
        # It pops the pipeline's "extra" entry: give it a copy.
        final, efficiency = create_matrices_for_rliable(
            copy.deepcopy(processed), env_name, normalise
        )
    scores = {algo: np.asarray(value, np.float64) for algo, value in final[key].items()}
    algos = sorted(scores)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}

    def save(figure: Any, name: str) -> None:
        if not hasattr(figure, "savefig"):  # some of marl-eval's plots return the Axes
            figure = figure.figure
        path = out / f"{name}.png"
        figure.savefig(path, bbox_inches="tight", dpi=110)
        plt.close(figure)
        figures[name] = path.name

    aggregate_names = ("IQM", "Median", "Mean", "Optimality gap")

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array(
            [
                metrics.aggregate_iqm(x),
                metrics.aggregate_median(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        )

    point, intervals = _interval_estimates(scores, aggregates, reps)
    aggregate = {
        algo: {
            name: {"value": float(point[algo][i]), "ci": intervals[algo][:, i].tolist()}
            for i, name in enumerate(aggregate_names)
        }
        for algo in algos
    }
    improvement: dict[str, dict[str, Any]] = {}
    pairs = [list(pair) for pair in itertools.permutations(algos, 2)]
    if pairs:
        pair_scores = {f"{x},{y}": (scores[x], scores[y]) for x, y in pairs}
        poi, poi_ci = _interval_estimates(pair_scores, metrics.probability_of_improvement, reps)
        improvement = {
            name: {"value": float(poi[name]), "ci": np.ravel(poi_ci[name]).tolist()}
            for name in pair_scores
        }
    with contextlib.redirect_stdout(io.StringIO()):
        # rliable's plot of the intervals above (marl-eval's aggregate_scores draws the
        # same with a fixed 50,000 resamples).
        figure, _ = plot_utils.plot_interval_estimates(
            point, intervals, metric_names=list(aggregate_names), algorithms=algos,
            xlabel=key.replace("mean_", "").replace("_", " "),
        )  # fmt: skip
        save(figure, "aggregate_scores")
        save(plotting.performance_profiles(final, metric, normalise), "performance_profiles")
        if pairs:
            unordered = [list(pair) for pair in itertools.combinations(algos, 2)]
            save(
                plotting.probability_of_improvement(final, metric, normalise, unordered),
                "probability_of_improvement",
            )
        figure, _, _ = plotting.sample_efficiency_curves(efficiency, metric, normalise)
        save(figure, "sample_efficiency")
    tasks: dict[str, Any] = {}
    for task in sorted(processed[env_name]):
        curves = {
            algo: _task_curve(seeds, metric, normalise, reps)
            for algo, seeds in sorted(processed[env_name][task].items())
        }
        save(_plot_curves(curves, f"{env_name}/{task}", key), f"task_{task}")
        tasks[task] = {
            algo: {
                "value": curve["final"],
                "ci": curve["final_ci"],
                "seeds": curve["seeds"],
                "steps": curve["steps"],
                "curve": curve["mean"],
                "curve_ci": curve["ci"],
            }
            for algo, curve in curves.items()
        }
    return {
        "metric": key,
        "runs": {algo: int(scores[algo].shape[0]) for algo in algos},
        "tasks_per_run": {algo: int(scores[algo].shape[1]) for algo in algos},
        "aggregate": aggregate,
        "probability_of_improvement": improvement,
        "final_per_task": tasks,
        "figures": figures,
    }


def _value(entry: dict[str, Any], metric: str, normalise: list[str]) -> float:
    name = f"norm_{metric}" if metric in normalise else metric
    return float(np.mean(entry[name] if name in entry else entry[metric]))


def _task_curve(
    seeds: dict[str, Any], metric: str, normalise: list[str], reps: int
) -> dict[str, Any]:
    """One algorithm's scores on one task: the mean over seeds at every evaluation and at
    the end, each with a 95% bootstrap interval over the seeds (rliable's, every
    evaluation a stratum). marl-eval's ``plot_single_task`` gives a normal interval
    that divides by sqrt(10) whatever the number of seeds, hence our own."""
    runs = list(seeds.values())
    steps = sorted(
        (k for k in runs[0] if k.startswith("step_")), key=lambda k: int(k.split("_")[1])
    )
    steps = [k for k in steps if all(k in run for run in runs)]
    values = np.array([[_value(run[k], metric, normalise) for k in steps] for run in runs])
    finals = np.array(
        [[_value(run.get("absolute_metrics") or run[steps[-1]], metric, normalise)]
         for run in runs]
    )  # fmt: skip
    mean = lambda x: np.mean(x, axis=0)  # noqa: E731
    curve, curve_ci = _interval_estimates({"curve": values}, mean, reps)
    final, final_ci = _interval_estimates({"final": finals}, mean, reps)
    return {
        "steps": [int(runs[0][k]["step_count"]) for k in steps],
        "mean": np.ravel(curve["curve"]).tolist(),
        "ci": np.asarray(curve_ci["curve"]).reshape(2, -1).tolist(),
        "final": float(np.ravel(final["final"])[0]),
        "final_ci": np.ravel(final_ci["final"]).tolist(),
        "seeds": len(runs),
    }


def _plot_curves(curves: dict[str, Any], title: str, ylabel: str) -> Any:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for algo, curve in curves.items():
        low, high = curve["ci"]
        axis.plot(curve["steps"], curve["mean"], label=f"{algo} ({curve['seeds']} seeds)")
        axis.fill_between(curve["steps"], low, high, alpha=0.2)
    axis.set_xlabel("env steps")
    axis.set_ylabel(ylabel.replace("mean_", "").replace("_", " "))
    axis.set_title(f"{title}: mean, 95% bootstrap interval over seeds")
    axis.legend()
    return figure


def markdown(report: dict[str, Any]) -> str:
    """The report's tables as markdown."""
    lines = []
    for env_name, env in report["environments"].items():
        pct = round(100 * CONFIDENCE)
        lines += [
            f"## {env_name}: {env['metric']} ({pct}% stratified bootstrap intervals)",
            "",
            "| algorithm | runs x tasks | IQM | median | mean | optimality gap |",
            "|---|---|---|---|---|---|",
        ]
        for algo, values in env["aggregate"].items():
            size = f"{env['runs'][algo]} x {env['tasks_per_run'][algo]}"
            cells = [_fmt(values[n]["value"], values[n]["ci"]) for n in values]
            lines.append(f"| {algo} | {size} | " + " | ".join(cells) + " |")
        if env["probability_of_improvement"]:
            lines += ["", "| P(X > Y) | value [95% CI] |", "|---|---|"]
            for pair, value in env["probability_of_improvement"].items():
                x, y = pair.split(",")
                lines.append(f"| {x} > {y} | {_fmt(value['value'], value['ci'])} |")
        lines += ["", "| task | algorithm | seeds | final mean [95% CI] |", "|---|---|---|---|"]
        for task, algos in env["final_per_task"].items():
            for algo, value in algos.items():
                lines.append(
                    f"| {task} | {algo} | {value['seeds']} | {_fmt(value['value'], value['ci'])} |"
                )
        figures = ", ".join(f"[{n}]({env_name}/{f})" for n, f in env["figures"].items())
        lines += ["", f"Plots: {figures}", ""]
    return "\n".join(lines)


def build_report(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    metric: str | None = None,
    reps: int = 2_000,
) -> dict[str, Any]:
    """Reads the runs under ``paths`` and writes the report into ``out``; returns it."""
    from marl_eval.utils.data_processing_utils import data_process_pipeline

    files = find_results(paths)
    out = pathlib.Path(out)
    with tempfile.TemporaryDirectory() as work:
        data = merge_results(files, pathlib.Path(work))
    available = _metrics_of(data)
    if metric is None:
        metric = "win_rate" if "win_rate" in available else "return"
    if metric not in available:
        raise ReportError(
            f"metric '{metric}' is not in every run's results; valid: "
            f"{', '.join(sorted(available))}"
        )
    normalise = [metric] if metric in NORMALISED else []
    with contextlib.redirect_stdout(io.StringIO()):
        processed = data_process_pipeline(raw_data=data, metrics_to_normalize=normalise)
    report = {
        "results_files": [str(f) for f in files],
        "metric": metric,
        "environments": {
            env: report_environment(processed, env, metric, out / env, reps)
            for env in sorted(processed)
            if env != "extra"  # the pipeline's bookkeeping, not an environment
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(markdown(report) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``marl-report``."""
    parser = argparse.ArgumentParser(
        prog="marl-report", description=__doc__.split("\n\n")[0].replace("``", "")
    )
    parser.add_argument("paths", nargs="+", help="run directories, runs/ trees, multirun/ folders")
    parser.add_argument("--out", default="report", help="where to write (default: report/)")
    parser.add_argument("--metric", help="win_rate (when every run has it) or return by default")
    parser.add_argument("--reps", type=int, default=2_000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    if args.reps < 100:
        parser.error(f"--reps must be at least 100, got {args.reps}")
    try:
        report = build_report(args.paths, args.out, args.metric, args.reps)
    except ImportError as error:
        print(
            f"marl-report: error: {error.name or error} is missing; marl-report needs "
            "marl-eval and rliable: pip install rliable && pip install --no-deps "
            "id-marl-eval==0.0.4",
            file=sys.stderr,
        )
        sys.exit(2)
    except ReportError as error:
        print(f"marl-report: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(markdown(report))
    print(f"report in {pathlib.Path(args.out) / 'report.md'}")


if __name__ == "__main__":
    main()
