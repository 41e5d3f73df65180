"""BENCHMARKS.md's MANSA tables: MANSA and its four baselines on one task (greedy win
rate per seed against env steps, CL's share of the steps) and what CL's updates cost."""

from __future__ import annotations

from typing import Any

from tables import markdown, provenance, rate, steps_label, table
from tables_learning import first_at_threshold, measured_line, seeds_cell

RESULT = "mansa_learning_iql_qmix"
TASKS = {"lbf": "lbf/8x8-2p-2f-coop", "smac_3m": "smac/3m", "smac_2s3z": "smac/2s3z"}
STAGE_LABELS = {
    "mansa": "MANSA (learned switch)",
    "il": "IL alone (IQL)",
    "cl": "CL alone (QMIX)",
    "random": "random switch at MANSA's CL rate",
    "first_k": "CL for the first k steps",
}
COLUMNS = 4  # evaluations shown besides the last


def _task(payload: dict[str, Any], task: str) -> dict[str, Any]:
    if task not in payload["results"]:
        measured = ", ".join(payload["results"]) or "none"
        raise KeyError(f"{RESULT}.json has no results for {task}; it has {measured}")
    return payload["results"][task]


def _shown_steps(evaluations: list[dict[str, Any]]) -> list[int]:
    """``COLUMNS`` evenly spaced evaluations and the last one."""
    steps = [e["step"] for e in evaluations]
    stride = max(len(steps) // (COLUMNS + 1), 1)
    shown = steps[stride - 1 :: stride][:COLUMNS]
    return [*dict.fromkeys([*shown, steps[-1]])]


def stages_table(payload: dict[str, Any], task: str) -> str:
    """One row per stage: greedy wins per seed at a few evaluations and at the end, the
    final mean return, CL's share of the run's steps and calls per episode."""
    stages = _task(payload, task)["stages"]
    longest = max(stages.values(), key=lambda s: len(s["evaluations"]))["evaluations"]
    columns = _shown_steps(longest)
    rows = []
    for stage, label in STAGE_LABELS.items():
        if stage not in stages:
            continue
        result = stages[stage]
        by_step = {e["step"]: e for e in result["evaluations"]}
        cells = [seeds_cell(by_step[s]) if s in by_step else "" for s in columns]
        last = result["evaluations"][-1]
        wins = [s["win_rate"] for s in last["seeds"].values()]
        returns = [s["return"] for s in last["seeds"].values()]
        reached = first_at_threshold(result["evaluations"])
        summary = result["summary"]
        fractions = summary["cl_step_fraction_per_seed"]
        calls = summary["cl_calls_per_episode_per_seed"]
        rows.append(
            [
                label,
                *cells,
                rate(sum(wins) / len(wins)),
                f"{sum(returns) / len(returns):.2f}",
                steps_label(reached["step"]) if reached else "not reached",
                "/".join(f"{100 * f:.1f}%" for f in fractions),
                "/".join(f"{c:.3g}" for c in calls),
                f"{last['wall_s'] / 60:.1f}",
            ]
        )
    header = [
        f"{task}, greedy wins per seed",
        *(steps_label(s) for s in columns),
        "final mean",
        "final return",
        "all seeds at 90% from",
        "CL steps of the run, per seed",
        "CL calls per episode (last chunk)",
        "training min",
    ]
    measured = measured_line({STAGE_LABELS[s]: r for s, r in stages.items()})
    return markdown(header, rows, "l" + "l" * len(columns) + "rrlllr") + "\n\n" + measured


def compute_table(payload: dict[str, Any], task: str) -> str:
    """CL's update cost if CL trained in proportion to the steps it acted in."""
    result = _task(payload, task)
    costs = result["update_costs"]
    rows = []
    for stage, label in STAGE_LABELS.items():
        estimate = result["cl_compute"].get(stage)
        if estimate is None:
            continue
        rows.append(
            [
                label,
                f"{100 * estimate['cl_step_fraction']:.2f}%",
                f"{estimate['cl_gflop_per_update']:.3f}",
                f"{estimate['cl_ms_per_update']:.2f}",
                f"{100 * estimate['saved_against_cl_everywhere']:.1f}%",
            ]
        )
    header = [
        f"{task}: CL's update work",
        "CL steps (mean of seeds)",
        "CL GFLOP per update",
        "CL ms per update",
        "saved against CL everywhere",
    ]
    one_update = (
        f"One update with marl-train's default sizes: IL {costs['il']['flops'] / 1e9:.3f} GFLOP "
        f"({costs['il']['seconds'] * 1e3:.1f} ms), CL {costs['cl']['flops'] / 1e9:.3f} GFLOP "
        f"({costs['cl']['seconds'] * 1e3:.1f} ms)."
    )
    # The costs were measured with the task's runs, which the JSON's top-level command
    # may not name (a later invocation ran other tasks).
    measured = provenance(result.get("measured", payload))
    return markdown(header, rows, "lrrrr") + "\n\n" + one_update + "\n\n" + measured


for _name, _task_name in TASKS.items():
    table(f"mansa_learning.{_name}", RESULT)(
        lambda payload, task=_task_name: stages_table(payload, task)
    )
    table(f"mansa_learning.{_name}_compute", RESULT)(
        lambda payload, task=_task_name: compute_table(payload, task)
    )
