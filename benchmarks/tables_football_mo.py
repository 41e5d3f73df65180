"""BENCHMARKS.md's football learning, football baseline and multi-objective tables.

The renderers of "Football learning: QMIX and VDN on GRF's academy" and
"Multi-objective: MO-MIX against outer-loop QMIX"; :mod:`tables` imports this module
to register them. Figures that are in no committed result file (the best policies'
replays, runs from before issue 21's fixes, ablations) stay hand-written in
BENCHMARKS.md, next to the block they belong to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from statistics import mean
from typing import Any

from tables import markdown, rate, steps_label, table
from tables_learning import measured_line, seeds_cell


def _mean(evaluation: dict[str, Any], value: str = "win_rate") -> float:
    return mean(s[value] for s in evaluation["seeds"].values())


def _figure(value: float, digits: int) -> str:
    """``.6``, ``43.6``, ``-4.14``, ``1.00``, ``0``: fixed digits, no leading zero."""
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        return "0"
    return re.sub(r"^(-?)0\.", r"\1.", text)


# ----------------------------------------------------------- football learning
# Settings a run used beyond the script's defaults, named in its row.
_FOOTBALL_SETTINGS = {
    ("qmix", "academy_3_vs_1_with_keeper"): (
        "its tuned settings (egocentric, epsilon-z-greedy, 32 envs)"
    ),
}


@table("football_learning.results", "football_learning")
def _football_learning(payload: dict[str, Any]) -> str:
    """Per run: its steps, the last evaluation, the best one by seed mean, and the
    training minutes."""
    rows, entries = [], {}
    for algo, tasks in payload["results"].items():
        for task, entry in tasks.items():
            evaluations = entry["evaluations"]
            last = evaluations[-1]
            best = max(evaluations, key=_mean)
            best_cell = (
                "the final one"
                if best is last
                else f"{seeds_cell(best)} at {steps_label(best['step'])} (mean {rate(_mean(best))})"
            )
            label = f"{algo.upper()}, {task}"
            if (algo, task) in _FOOTBALL_SETTINGS:
                label += f", {_FOOTBALL_SETTINGS[algo, task]}"
            rows.append(
                [
                    label,
                    steps_label(last["step"]),
                    f"{seeds_cell(last)} (mean {rate(_mean(last))})",
                    best_cell,
                    f"{last['wall_s'] / 60:.1f}",
                ]
            )
            entries[f"{algo.upper()} {task}"] = entry
    seeds = "/".join(next(iter(entries.values()))["evaluations"][0]["seeds"])
    header = [
        f"greedy goals {seeds}",
        "steps",
        "final (32 episodes)",
        "best evaluation",
        "training min",
    ]
    return markdown(header, rows, "lrllr") + "\n\n" + measured_line(entries)


# --------------------------------------------------------- football baselines
@table("football_baselines.goal_rates", "football_baselines")
def _football_baselines(payload: dict[str, Any]) -> str:
    """Goal rate of each scripted policy per scenario; bold where passing first beats
    every run-and-shoot distance."""
    rates: dict[str, dict[str, float]] = {}
    for row in payload["rows"]:
        rates.setdefault(row["scenario"], {})[row["policy"]] = row["goal_rate"]
    policies = list(dict.fromkeys(row["policy"] for row in payload["rows"]))
    header = ["goal rate", "random"]
    for family in ("run_and_shoot", "pass_then_run"):
        distances = [p.rsplit("_", 1)[1] for p in policies if p.startswith(family + "_")]
        header += [f"{family}, d = {distances[0]}", *distances[1:-1], f"{distances[-1]} m"]
    columns = ["random"] + [p for p in policies if p != "random"]
    rows = []
    for scenario, by_policy in rates.items():
        runs = [v for p, v in by_policy.items() if p.startswith("run_and_shoot_")]
        passes = [v for p, v in by_policy.items() if p.startswith("pass_then_run_")]
        bold = max(passes) if passes and max(passes) > max(runs) else None
        cells = []
        for policy in columns:
            if policy not in by_policy:
                cells.append("")
                continue
            cell = rate(by_policy[policy])
            cells.append(f"**{cell}**" if by_policy[policy] == bold else cell)
        rows.append([scenario, *cells])
    return markdown(header, rows)


# ------------------------------------------------------------- multi-objective
_MO_LABELS = {"momix": "MO-MIX", "qmix_outer_loop": "outer-loop QMIX"}
_MO_METRICS = (("hypervolume", "hypervolume"), ("eum", "EUM"))


def mo_table(
    payload: dict[str, Any],
    family: str,
    task: str,
    columns: Sequence[int],
    hypervolume_digits: int,
    per_seed: bool,
    minutes: bool,
) -> str:
    """MO-MIX against the outer loop at the same env steps: the greedy front's
    hypervolume and expected utility, per seed or as seed means (the last column has
    both); the better final seed mean in bold."""
    results = {algo: tasks[task] for algo, tasks in payload["results"].items()}
    digits = {"hypervolume": hypervolume_digits, "eum": 2}
    rows = []
    for metric, name in _MO_METRICS:
        finals = {algo: _mean(e["evaluations"][-1], metric) for algo, e in results.items()}
        best = max(finals, key=finals.__getitem__)
        distinct = len({_figure(v, digits[metric]) for v in finals.values()}) > 1
        for algo, entry in results.items():
            at = {e["step"]: e for e in entry["evaluations"]}
            cells = []
            for step in columns:
                seeds = [s[metric] for s in at[step]["seeds"].values()]
                by_seed = "/".join(_figure(v, digits[metric]) for v in seeds)
                average = _figure(mean(seeds), digits[metric])
                if step == columns[-1]:
                    if distinct and algo == best:
                        average = f"**{average}**"
                    cells.append(
                        f"{by_seed} (mean {average})" if per_seed else f"{average} ({by_seed})"
                    )
                else:
                    cells.append(by_seed if per_seed else average)
            label = f"{_MO_LABELS[algo]} {name}" + ("" if per_seed else ", seed mean")
            row = [label, *cells]
            if minutes:
                wall = entry["evaluations"][-1]["wall_s"] / 60
                row.append(f"{wall:.1f}" if metric == "hypervolume" else "")
            rows.append(row)
    seeds = len(next(iter(results.values()))["evaluations"][0]["seeds"])
    header = [f"{family}/{task}, {seeds} seeds", *(steps_label(step) for step in columns)]
    header += ["training min"] if minutes else []
    align = "l" * (len(columns) + 1) + ("r" if minutes else "")
    shown = {_MO_LABELS[algo]: entry for algo, entry in results.items()}
    return markdown(header, rows, align) + "\n\n" + measured_line(shown)


table("mo_smac_learning.3m", "mo_smac_learning")(
    lambda payload: mo_table(
        payload, "mo-smac", "3m", [40_000 * k for k in range(1, 6)], 1, False, True
    )
)
# The outer loop's 2s_vs_1sc minutes hold hours paused for other jobs: no minutes.
table("mo_smac_learning.2s_vs_1sc", "mo_smac_learning")(
    lambda payload: mo_table(
        payload, "mo-smac", "2s_vs_1sc", [60_000 * k for k in range(1, 6)], 1, True, False
    )
)
table("mo_football_learning.academy_empty_goal_close", "mo_football_learning")(
    lambda payload: mo_table(
        payload,
        "mo-football",
        "academy_empty_goal_close",
        [40_000 * k for k in range(1, 6)],
        2,
        True,
        True,
    )
)
