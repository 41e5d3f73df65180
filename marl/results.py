"""Results in marl-eval's layout: reading, extending, trimming on resume, plotting.

``results.json`` holds the greedy evaluations of runs in the layout read by
marl-eval (github.com/instadeepai/marl-eval)::

    {env_name: {task_name: {algo_name: {
        "seed_0": {
            "step_0": {"step_count": 10000, "return": [r_1, ..., r_E], "win_rate": [w]},
            "step_1": {...},
            "absolute_metrics": {"return": [...], "win_rate": [w]},
        },
        "seed_1": {...},
    }}}}

``step_<k>`` numbers the evaluation points in order, ``return`` holds one value
per evaluation episode and ``win_rate`` one value (the fraction of episodes won),
as marl-eval asks for metrics computed over several episodes. ``absolute_metrics``
is the last entry of a seed (old marl-eval versions take the last entry as the
absolute metrics). Every entry carries the same metric names, which marl-eval's
``DiagnoseData`` checks. Non-finite numbers are ``null``.

The functions here work on one seed's entries (``run``) or the whole file; the
logger (:mod:`marl.logging`) writes the file.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from marl.files import atomic_write

RESULTS_FILE = "results.json"
ABSOLUTE_KEY = "absolute_metrics"
# Keys of an evaluation entry that come from the evaluation itself.
RESERVED_EVAL = frozenset({"step_count", "return", "win_rate"})

PathLike = str | os.PathLike[str]

__all__ = [
    "ABSOLUTE_KEY",
    "RESULTS_FILE",
    "add_evaluation",
    "eval_entries",
    "load_results",
    "plot_learning_curves",
    "set_absolute",
    "step_entries",
    "trim_run",
]


# --------------------------------------------------------------------------- values
def json_number(value: Any) -> Any:
    """A JSON-safe Python scalar: NaN and infinities become ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_list(values: np.ndarray) -> list[Any]:
    return [json_number(v) for v in np.asarray(values).ravel().tolist()]


def nanmean(values: Any) -> float:
    """Mean of the finite values, NaN when there are none (and no RuntimeWarning)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else math.nan


def none_to_nan(values: Any) -> list[float]:
    """A stored metric (a list, or one value) with ``null`` read back as NaN."""
    if not isinstance(values, list):
        values = [values]
    return [math.nan if v is None else v for v in values]


# --------------------------------------------------------------------------- layout
def load_results(path: PathLike) -> dict[str, Any]:
    """Read a marl-eval ``results.json`` file.

    Args:
        path: the file, or a run directory holding ``results.json``.

    Returns:
        The nested ``{env: {task: {algo: {seed: {step: entry}}}}}`` dictionary, with
        the key order of the file (marl-eval relies on it).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def step_entries(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evaluation entries of one seed, ordered by ``step_count``.

    Keys are matched case-insensitively (marl-eval lower-cases them) and ties keep
    the file order.
    """
    entries = [
        entry
        for key, entry in run.items()
        if key.lower().startswith("step_") and isinstance(entry, Mapping)
    ]
    return sorted(entries, key=lambda e: e.get("step_count", 0))


def is_absolute_key(key: str) -> bool:
    # marl-eval accepts any key containing "absolute" as the absolute-metrics entry.
    return "absolute" in key.lower()


def trim_run(run: Mapping[str, Any], resume_step: int) -> dict[str, Any]:
    """One seed's entries up to ``resume_step``, renumbered ``step_0, step_1, ...``.

    The absolute metrics are dropped: they described the end of the run that is
    being resumed. Other keys are kept.
    """
    kept = [e for e in step_entries(run) if e.get("step_count", 0) <= resume_step]
    trimmed: dict[str, Any] = {f"step_{k}": dict(e) for k, e in enumerate(kept)}
    for key, value in run.items():
        if not key.lower().startswith("step_") and not is_absolute_key(key):
            trimmed[key] = value
    return trimmed


def add_evaluation(run: dict[str, Any], step: int, entry: Mapping[str, Any]) -> int:
    """Appends ``entry`` (made at env-step ``step``) to one seed; returns its index."""
    # Counted per seed, so a file whose seeds disagree still gets dense keys.
    index = sum(1 for key in run if key.lower().startswith("step_"))
    run[f"step_{index}"] = {"step_count": step} | dict(entry)
    if ABSOLUTE_KEY in run:  # it stays the last key
        run[ABSOLUTE_KEY] = run.pop(ABSOLUTE_KEY)
    return index


def set_absolute(run: dict[str, Any], entry: Mapping[str, Any]) -> None:
    """Sets one seed's absolute metrics, as its last entry."""
    run.pop(ABSOLUTE_KEY, None)
    run[ABSOLUTE_KEY] = dict(entry)


def eval_entries(
    returns: Any, won: Any, extra: Mapping[str, Any] | None, num_seeds: int
) -> list[dict[str, Any]]:
    """One entry (without ``step_count``) per seed from a greedy evaluation.

    ``returns`` and ``won`` are ``(num_seeds, num_episodes)``; ``extra`` maps more
    metric names to ``(num_seeds,)`` (one value per seed) or ``(num_seeds,
    num_episodes)`` arrays. Raises ``ValueError`` on other shapes or reserved names.
    """
    returns = np.asarray(returns, dtype=np.float64)
    won = np.asarray(won, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[0] != num_seeds:
        raise ValueError(
            f"episode_returns must have shape ({num_seeds}, num_episodes), got {returns.shape}"
        )
    if won.shape != returns.shape:
        raise ValueError(f"episode_won has shape {won.shape}, expected {returns.shape}")
    extras = {}
    for name, value in (extra or {}).items():
        arr = np.asarray(value)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != num_seeds:
            raise ValueError(
                f"extra[{name!r}] must have shape ({num_seeds}, num_episodes) or "
                f"({num_seeds},), got {np.shape(value)}"
            )
        extras[name] = arr
    clash = RESERVED_EVAL.intersection(extras)
    if clash:
        raise ValueError(f"extra metric names {sorted(clash)} are reserved")
    return [
        {
            "return": json_list(returns[seed]),
            # One value, as marl-eval asks for metrics computed over many episodes.
            "win_rate": [json_number(float(won[seed].mean()))],
        }
        | {name: json_list(arr[seed]) for name, arr in extras.items()}
        for seed in range(num_seeds)
    ]


# --------------------------------------------------------------------------- plotting
def plot_learning_curves(results_json: PathLike, out_png: PathLike) -> None:
    """Plot greedy-evaluation curves from a marl-eval ``results.json``.

    One curve per (environment, task, algorithm): the left panel shows the mean
    episode return against environment steps, the right panel the win rate. Each
    curve is the mean over seeds of the per-seed evaluation mean, with a shaded
    band from the worst to the best seed (with few seeds a min-max band is more
    honest than a confidence interval). Seeds evaluated at different steps are
    aggregated per ``step_count`` over the seeds that have that point.

    Args:
        results_json: the ``results.json`` file or the run directory holding it.
        out_png: where to write the PNG; it is replaced atomically.

    Raises:
        ValueError: if the file holds no evaluation point.
    """
    data = load_results(results_json)
    curves: list[tuple[str, dict[int, list[float]], dict[int, list[float]]]] = []
    groups = [
        (env, task, algo, runs)
        for env, tasks in data.items()
        for task, algos in tasks.items()
        for algo, runs in algos.items()
    ]
    single_group = len({(env, task) for env, task, _, _ in groups}) == 1
    for env, task, algo, runs in groups:
        returns: dict[int, list[float]] = {}
        wins: dict[int, list[float]] = {}
        for run in runs.values():
            for entry in step_entries(run):
                step = int(entry["step_count"])
                if "return" in entry:
                    returns.setdefault(step, []).append(nanmean(none_to_nan(entry["return"])))
                if "win_rate" in entry:
                    wins.setdefault(step, []).append(nanmean(none_to_nan(entry["win_rate"])))
        if returns or wins:
            label = algo if single_group else f"{algo} ({env}/{task})"
            curves.append((label, returns, wins))
    if not curves:
        raise ValueError(f"no evaluation point in {results_json}")

    # The object-oriented API draws through the Agg canvas without pyplot, so the
    # caller's global matplotlib backend is left alone (safe in notebooks and threads).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_ret, ax_win = fig.subplots(1, 2)
    for label, returns, wins in curves:
        for ax, points in ((ax_ret, returns), (ax_win, wins)):
            if not points:
                continue
            steps = np.array(sorted(points))
            per_seed = [np.asarray(points[s], dtype=np.float64) for s in steps]
            mean = np.array([nanmean(v) for v in per_seed])
            low = np.array([np.nanmin(v) if np.isfinite(v).any() else np.nan for v in per_seed])
            high = np.array([np.nanmax(v) if np.isfinite(v).any() else np.nan for v in per_seed])
            (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=label)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if single_group:
        env, task = groups[0][0], groups[0][1]
        fig.suptitle(f"{env} / {task}")
    ax_ret.set_title("Greedy evaluation return")
    ax_ret.set_ylabel("mean episode return")
    ax_win.set_title("Greedy evaluation win rate")
    ax_win.set_ylabel("win rate")
    ax_win.set_ylim(-0.03, 1.03)
    for ax in (ax_ret, ax_win):
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    ax_ret.legend(loc="best", fontsize="small", title="mean, min-max over seeds")

    out_png = pathlib.Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def read_fronts(metrics_jsonl: PathLike) -> list[dict[str, Any]]:
    """The ``{"kind": "front"}`` records of a run's ``metrics.jsonl``, in file order."""
    fronts = []
    with pathlib.Path(metrics_jsonl).open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the partial last line of a killed run
                continue
            if record.get("kind") == "front":
                fronts.append(record)
    return fronts


def plot_fronts(metrics_jsonl: PathLike, out_png: PathLike) -> None:
    """Plot every evaluation's front of a multi-objective run, one panel per seed.

    Each evaluation's non-dominated value vectors (the mean return of each evaluation
    preference) are drawn as points joined along the first objective, coloured from
    the first evaluation (dark) to the last (light). With more than two objectives
    the first two are drawn. Raises ``ValueError`` when the file holds no front.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from marl.pareto import pareto_front

    records = read_fronts(metrics_jsonl)
    if not records:
        raise ValueError(f"no front in {metrics_jsonl}")
    seeds = sorted({int(r["seed"]) for r in records})
    steps = sorted({int(r["step"]) for r in records})
    names = records[0].get("objective_names") or ["objective 0", "objective 1"]
    norm = Normalize(min(steps), max(max(steps), min(steps) + 1))
    colours = colormaps["viridis"]
    fig = Figure(figsize=(4.2 * len(seeds) + 1, 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(seeds)))
    for ax, seed in zip(axes, seeds, strict=True):
        for record in (r for r in records if int(r["seed"]) == seed):
            values = np.asarray(none_to_nan_rows(record["values"]), np.float64)[:, :2]
            values = values[np.isfinite(values).all(1)]
            if values.size == 0:
                continue
            front = pareto_front(values)
            front = front[np.argsort(front[:, 0])]
            colour = colours(norm(int(record["step"])))
            ax.plot(front[:, 0], front[:, 1], "-o", color=colour, markersize=3, linewidth=1)
        ax.set_title(f"seed {seed}")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.grid(alpha=0.3)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=list(axes), label="environment steps")
    fig.suptitle("Greedy front at every evaluation (mean return per evaluation preference)")
    out_png = pathlib.Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def none_to_nan_rows(rows: Any) -> list[list[float]]:
    """A JSON list of lists with ``null`` for non-finite numbers, as floats with NaN."""
    return [none_to_nan(row) for row in rows]
