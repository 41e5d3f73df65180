"""The tables of BENCHMARKS.md, rendered from the benchmarks' JSON results.

Every renderer is registered under the name a generated block of BENCHMARKS.md
carries (``<!-- table: NAME -->``) and the result file it reads; it gets that file's
payload and returns markdown. :func:`render` looks one up; ``reproduce.py`` fills the
document (see its docstring).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Renderer = Callable[[dict[str, Any]], str]
_TABLES: dict[str, tuple[str, Renderer]] = {}


def table(name: str, result: str) -> Callable[[Renderer], Renderer]:
    """Registers a renderer of block ``name`` reading ``results/<result>.json``."""

    def register(renderer: Renderer) -> Renderer:
        if name in _TABLES:
            raise ValueError(f"table '{name}' is registered twice")
        _TABLES[name] = (result, renderer)
        return renderer

    return register


def names() -> list[str]:
    return sorted(_TABLES)


def render(name: str, results: Path) -> tuple[str, dict[str, Any]]:
    """Block ``name``'s markdown from the JSON in ``results``, and that JSON."""
    if name not in _TABLES:
        raise KeyError(f"no renderer for table '{name}'; known: {', '.join(names())}")
    result, renderer = _TABLES[name]
    path = results / f"{result}.json"
    if not path.exists():
        raise FileNotFoundError(f"table '{name}' reads {path}, which does not exist")
    payload = json.loads(path.read_text())
    return renderer(payload), payload


# ----------------------------------------------------------------------- helpers
def provenance(payload: dict[str, Any]) -> str:
    """When, where, at which commit and by which command a result was measured."""
    machine = payload.get("machine", {})
    when = str(machine.get("timestamp") or payload.get("date") or "")[:10] or "on an unknown date"
    cores = machine.get("usable_cores") or machine.get("cpu_cores")
    line = f"<sub>Measured {when}"
    if "cpu_model" in machine:
        line += f" on {machine['cpu_model']}" + (f" ({cores} cores)" if cores else "")
    line += f", commit {machine.get('git') or payload.get('git') or 'not recorded'}"
    if payload.get("command"):
        line += f", `{payload['command']}`"
    return line + ".</sub>"


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A markdown table; ``align`` has one ``l`` or ``r`` per column (default: left)."""
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def thousands(value: float) -> str:
    return f"{value:,.0f}"


def rate(value: float) -> str:
    """A win or goal rate as in the tables: ``.97``, ``1``, ``0``."""
    if value >= 0.995:
        return "1"
    if value < 0.005:
        return "0"
    return f"{value:.2f}".lstrip("0")


def steps_label(steps: int) -> str:
    """``200k``, ``1.25M``, ``3M``."""
    if steps >= 1_000_000:
        return f"{steps / 1_000_000:.2f}".rstrip("0").rstrip(".") + "M"
    return f"{steps // 1000}k"


# ---------------------------------------------------------------- multiprocess
@table("multiprocess.layouts", "multiprocess")
def _multiprocess_layouts(payload: dict[str, Any]) -> str:
    spread = payload["layouts"]["env_steps_per_s"]
    labels = {
        "1x2": "one process, 2 devices (`arch.num_devices=2`)",
        "2x1": "two processes, 1 device each (`arch.num_processes=2`)",
    }
    rows = [
        [
            labels[layout],
            f"{thousands(s['median'])} ({thousands(s['min'])}-{thousands(s['max'])})",
        ]
        for layout, s in spread.items()
    ]
    n = next(iter(spread.values()))["n"]
    return markdown(["layout", f"env steps/s, median (min-max), {n} chunks"], rows)


@table("multiprocess.seeds", "multiprocess")
def _multiprocess_seeds(payload: dict[str, Any]) -> str:
    seeds = payload["seeds"]
    steps = payload["settings"]["seed_steps"]
    labels = {"packed": "packed (`arch.num_seeds=3`)", "swept": "swept (`-m seed=0,1,2`)"}
    rounds = len(next(iter(seeds["per_round"].values())))
    rows = []
    for how, times in seeds["per_round"].items():
        wall = seeds["wall_seconds"][how]
        rows.append(
            [
                labels[how],
                *(f"{t:.1f} s" for t in times),
                f"{wall['median']:.1f} s ({wall['env_steps_per_s']:.0f} env steps/s)",
            ]
        )
    header = [f"3 seeds x {steps // 1000}k env steps"]
    header += [f"round {i + 1}" for i in range(rounds)] + ["median"]
    return markdown(header, rows, "l" + "r" * (rounds + 1))


# -------------------------------------------------------------------- ranking
@table("ranking.population", "ranking")
def _ranking(payload: dict[str, Any]) -> str:
    return payload["adaptive"]["table"]


@table("ranking.sampling", "ranking")
def _ranking_sampling(payload: dict[str, Any]) -> str:
    rows = []
    for how in ("adaptive", "uniform"):
        if how not in payload:
            continue
        result = payload[how]
        resolved = result["resolved"]
        n = len(resolved)
        open_pairs = sum(not resolved[i][j] for i in range(n) for j in range(i + 1, n))
        rows.append(
            [
                how,
                thousands(result["matches"]),
                result["rounds"],
                f"{n * (n - 1) // 2 - open_pairs} of {n * (n - 1) // 2}",
                f"{result['seconds'] / 60:.1f}",
            ]
        )
    return markdown(["sampling", "matches", "rounds", "pairs resolved", "minutes"], rows, "lrrrr")


# Figures no kept result file holds (one-off runs, earlier rounds, best policies of runs
# that were not kept), transcribed once into results/recorded_tables.json.
RECORDED = (
    "train_throughput.earlier_rounds",
    "smac_fights.by_hand",
    "smac_learning.random_starts",
    "ppo.distrax_rounds",
    "football_learning.best_policy",
    "football_learning.settings_search",
    "football_learning.before_fixes",
    "football_learning.before_fixes_curves",
    "football_learning.exploration",
    "mo_smac_learning.3m_best_policy",
    "mo_smac_learning.2s_vs_1sc_best_policy",
    "mo_football_learning.best_policy",
)


def _recorded(name: str) -> Renderer:
    def render(payload: dict[str, Any]) -> str:
        if name not in payload["tables"]:
            raise KeyError(f"recorded_tables.json has no table '{name}'")
        entry = payload["tables"][name]
        body = markdown(entry["header"], entry["rows"], entry["align"])
        return (
            f"{body}\n\n<sub>Measured {entry['measured']}, commit {entry['commit']}; "
            f"recorded figures, which reproduce.py does not re-run: {entry['source']}.</sub>"
        )

    return render


for _name in RECORDED:
    table(f"recorded.{_name}", "recorded_tables")(_recorded(_name))


import tables_football_mo  # noqa: E402,F401
import tables_learning  # noqa: E402,F401
import tables_mansa  # noqa: E402,F401
import tables_throughput  # noqa: E402,F401
