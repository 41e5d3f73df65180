"""BENCHMARKS.md's learning tables: greedy win rates per seed against env steps.

The learning results merge runs made on different days (a report keeps the entries
it did not re-read), so each table says when each of its rows was measured: the date
of the row's last evaluation and the commits its run was started at, from the
``measured`` entry :func:`learning_curves.read_curve` adds (older entries have none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tables import markdown, rate, steps_label, table

THRESHOLD = 0.9


def seeds_cell(evaluation: dict[str, Any], value: str = "win_rate") -> str:
    """``.97/.81/1``: one figure per seed."""
    return "/".join(rate(s[value]) for s in evaluation["seeds"].values())


def first_at_threshold(evaluations: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return next(
        (e for e in evaluations if all(s["win_rate"] >= THRESHOLD for s in e["seeds"].values())),
        None,
    )


def measured_line(entries: dict[str, dict[str, Any]]) -> str:
    """``<sub>Measured ...</sub>``: per row, its last evaluation's date and its commits."""
    recorded, unrecorded = [], []
    machine = None
    for label, entry in entries.items():
        measured = entry.get("measured", {})
        if "last_evaluation" not in measured:
            unrecorded.append(label)
            continue
        commits = ", ".join(measured.get("commits", [])) or "commit not recorded"
        recorded.append(f"{label} {measured['last_evaluation'][:10]} ({commits})")
        if "cpu_model" in measured:
            machine = f"{measured['cpu_model']} ({measured['usable_cores']} cores)"
    parts = recorded
    if unrecorded:
        parts = [*parts, f"{', '.join(unrecorded)} before runs recorded their date and commit"]
    where = f" on {machine}" if machine else ""
    return f"<sub>Measured{where}: {'; '.join(parts)}.</sub>"


def _by_step(entry: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {e["step"]: e for e in entry["evaluations"]}


def curve_table(payload: dict[str, Any], algo: str, task: str, value_rows: bool = True) -> str:
    """One run: a column per evaluation, rows of greedy wins per seed and training
    minutes; the first evaluation where every seed is at 90% in bold."""
    entry = payload["results"][algo][task]
    evaluations = entry["evaluations"]
    total = payload["settings"]["steps"][algo][task]
    reached = first_at_threshold(evaluations)
    wins = []
    for e in evaluations:
        cell = seeds_cell(e)
        wins.append(f"**{cell}**" if e is reached else cell)
    rows = [["greedy wins, seeds " + "/".join(evaluations[0]["seeds"]), *wins]]
    if value_rows and reached is None:  # no seed solved it: the return says how far
        returns = [[s["return"] for s in e["seeds"].values()] for e in evaluations]
        rows.append(["greedy return (of 20)", *(f"{min(r):.1f}-{max(r):.1f}" for r in returns)])
    rows.append(["training minutes", *(f"{e['wall_s'] / 60:.1f}" for e in evaluations)])
    header = [f"{task}, {steps_label(total)} steps", *(steps_label(e["step"]) for e in evaluations)]
    return markdown(header, rows) + "\n\n" + measured_line({algo: entry})


def comparison_table(
    payload: dict[str, Any], algos: Sequence[str], task: str, columns: Sequence[int]
) -> str:
    """Several learners on one map at the same env steps, and the first evaluation where
    every seed is at 90% (with its training minutes)."""
    results = payload["results"]
    rows, shown = [], {}
    for algo in algos:
        if task not in results.get(algo, {}):
            continue
        entry = results[algo][task]
        shown[algo] = entry
        at = _by_step(entry)
        reached = first_at_threshold(entry["evaluations"])
        cells = [seeds_cell(at[step]) if step in at else "" for step in columns]
        if reached is not None and reached["step"] in columns:
            index = list(columns).index(reached["step"])
            cells[index] = f"**{cells[index]}**"
        last = entry["evaluations"][-1]
        first = (
            f"{steps_label(reached['step'])} steps ({reached['wall_s'] / 60:.1f} min)"
            if reached is not None
            else f"not by {steps_label(last['step'])}"
        )
        rows.append([algo.upper(), *cells, first, f"{last['wall_s'] / 60:.1f}"])
    header = [
        f"{task}, greedy wins per seed",
        *(steps_label(step) for step in columns),
        f"all seeds >= {THRESHOLD:.0%} from",
        "training min",
    ]
    return (
        markdown(header, rows)
        + "\n\n"
        + measured_line({algo.upper(): entry for algo, entry in shown.items()})
    )


for _task in ("3m", "2s3z", "5m_vs_6m"):
    table(f"smac_learning.qmix.{_task}", "smac_learning")(
        lambda payload, task=_task: curve_table(payload, "qmix", task)
    )

_PPO = ("mappo", "mat", "cmat", "qmix")
table("smac_learning.ppo.3m", "smac_learning")(
    lambda payload: comparison_table(payload, _PPO, "3m", [80_000 * k for k in range(1, 6)])
)
for _task in ("2s3z", "5m_vs_6m"):  # QMIX's row on these maps is its curve above
    table(f"smac_learning.ppo.{_task}", "smac_learning")(
        lambda payload, task=_task: comparison_table(
            payload, _PPO[:3], task, [160_000 * k for k in range(1, 7)]
        )
    )
