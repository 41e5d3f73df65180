"""Host-side logging of a training run.

:class:`RunLogger` is called by the training loop between compiled chunks, with
plain NumPy arrays holding one value per seed. It writes, inside ``run_dir``:

* ``metrics.jsonl``: one JSON object per line and per seed, ``{"kind": "train" |
  "eval" | "absolute", "step": ..., "seed": i, ...}``. Non-finite numbers are
  written as ``null`` so that every line is strict JSON.
* ``results.json``: the greedy evaluations in the layout read by marl-eval
  (github.com/instadeepai/marl-eval)::

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
  is written last, by :meth:`RunLogger.close`, so a run that was killed has none.
  Every entry carries the same metric names, which marl-eval's ``DiagnoseData``
  checks.
* ``tensorboard/seed_<i>/`` and ``tensorboard/mean/``: one TensorBoard run per seed
  plus one for the mean over seeds, all with the same tags (``train/<name>``,
  ``eval/return``, ``eval/win_rate``, ``eval/<extra>``), so TensorBoard draws the
  seeds of one metric on one chart.
* ``summary.txt`` and ``learning_curve.png``, written by :meth:`RunLogger.close`.

A run resumed from a checkpoint at ``resume_step`` keeps what was logged up to that
step and drops what came after it, since the resumed run will log those steps again.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging as std_logging
import math
import os
import pathlib
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

__all__ = ["RunLogger", "load_results", "plot_learning_curves"]

_log = std_logging.getLogger(__name__)

RESULTS_FILE = "results.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
SUMMARY_FILE = "summary.txt"
CURVE_FILE = "learning_curve.png"
ABSOLUTE_KEY = "absolute_metrics"

# Keys that RunLogger puts in every JSONL record; a metric of that name would clash.
_RESERVED_TRAIN = frozenset({"kind", "step", "seed", "wall_time"})
# Keys of a results.json evaluation entry that come from log_eval itself.
_RESERVED_EVAL = frozenset({"step_count", "return", "win_rate"})

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- files


def _temp_path(path: pathlib.Path) -> pathlib.Path:
    """A fresh hidden file name next to ``path``.

    Same directory, so that ``os.replace`` is a rename within one file system, which
    POSIX makes atomic. Not ``mkstemp``: its files are private (0600) whatever the
    umask, which hides results from the rest of a group on shared clusters.
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
    """Replace ``path`` by a file holding ``text``, never leaving it half written."""
    tmp = _temp_path(path)
    try:
        with tmp.open("x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            # Without fsync a crash soon after the rename can leave an empty file.
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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


# --------------------------------------------------------------------------- values


def _json_number(value: Any) -> Any:
    """A JSON-safe Python scalar: NaN and infinities become ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_list(values: np.ndarray) -> list[Any]:
    return [_json_number(v) for v in np.asarray(values).ravel().tolist()]


def _nanmean(values: Any) -> float:
    """Mean of the finite values, NaN when there are none (and no RuntimeWarning)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    finite = arr[np.isfinite(arr)]
    return float(finite.mean()) if finite.size else math.nan


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _fmt(value: float, spec: str = ".3f") -> str:
    return format(value, spec) if math.isfinite(value) else "n/a"


# --------------------------------------------------------------------------- layout


def _step_entries(run: Mapping[str, Any]) -> list[dict[str, Any]]:
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


def _is_absolute_key(key: str) -> bool:
    # marl-eval accepts any key containing "absolute" as the absolute-metrics entry.
    return "absolute" in key.lower()


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
            for entry in _step_entries(run):
                step = int(entry["step_count"])
                if "return" in entry:
                    returns.setdefault(step, []).append(_nanmean(_none_to_nan(entry["return"])))
                if "win_rate" in entry:
                    wins.setdefault(step, []).append(_nanmean(_none_to_nan(entry["win_rate"])))
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
            mean = np.array([_nanmean(v) for v in per_seed])
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
    tmp = _temp_path(out_png)
    try:
        fig.savefig(tmp, format="png", dpi=120)
        os.replace(tmp, out_png)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _none_to_nan(values: Any) -> list[float]:
    if not isinstance(values, list):
        values = [values]
    return [math.nan if v is None else v for v in values]


# --------------------------------------------------------------------------- logger


class RunLogger:
    """Progress bar, JSONL, TensorBoard and marl-eval JSON for one training run.

    All seeds of a run are trained together (vmapped), so every call takes arrays
    whose leading axis is the seed. See the module docstring for the files written.

    Args:
        run_dir: directory of the run; created if missing.
        env_name: environment name, first level of ``results.json``.
        task_name: task (scenario) name, second level.
        algo_name: algorithm name, third level. marl-eval rejects names with commas.
        num_seeds: number of seeds trained together.
        total_timesteps: environment steps (per seed) the run will reach; the
            progress bar's total.
        use_tensorboard: write TensorBoard event files under ``run_dir/tensorboard``.
        progress_bar: show a live rich progress bar and a line per evaluation. When
            stdout is not an interactive terminal (CI, pytest, a log file) a plain
            status line is printed every ``status_interval`` seconds instead of the
            bar. False silences both; the summary of :meth:`close` is always printed.
        resume_step: the environment step of the checkpoint the run resumes from,
            0 for a fresh run. A fresh run replaces any ``results.json`` and
            ``metrics.jsonl`` in ``run_dir``; a resumed one keeps what they hold up
            to ``resume_step`` (inclusive) and drops the rest.
    """

    status_interval: float = 30.0

    def __init__(
        self,
        run_dir: str | pathlib.Path,
        env_name: str,
        task_name: str,
        algo_name: str,
        num_seeds: int,
        total_timesteps: int,
        use_tensorboard: bool = True,
        progress_bar: bool = True,
        resume_step: int = 0,
    ) -> None:
        if num_seeds < 1:
            raise ValueError(f"num_seeds must be at least 1, got {num_seeds}")
        if resume_step < 0:
            raise ValueError(f"resume_step must be non-negative, got {resume_step}")
        self.run_dir = pathlib.Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env_name = env_name
        self.task_name = task_name
        self.algo_name = algo_name
        self.num_seeds = int(num_seeds)
        self.total_timesteps = int(total_timesteps)
        self.resume_step = int(resume_step)
        self.results_path = self.run_dir / RESULTS_FILE
        self.metrics_path = self.run_dir / METRICS_FILE

        self._closed = False
        self._start = time.monotonic()
        self._last_step = self.resume_step
        self._extra_names: set[str] = set()

        self._results = self._load_or_create_results()
        self._write_results()
        self._jsonl = self._open_jsonl()

        self._writers: list[Any] = []
        self._mean_writer: Any = None
        if use_tensorboard:
            self._open_tensorboard()

        # Progress state: rates are measured on the host between calls, so that they
        # include everything (chunk, evaluation, logging) the ETA has to account for.
        self._console = Console()
        self._prev_time = self._start
        self._prev_step = self.resume_step
        self._eta_anchor: tuple[float, int] | None = None
        self._last_status = -math.inf
        self._shown = {"sps": "-", "eta": "-:--:--", "ret": "-", "win": "-"}
        self._live = progress_bar and (self._console.is_interactive or self._console.is_jupyter)
        self._plain_status = progress_bar and not self._live
        self._progress: Progress | None = None
        self._task_id: Any = None
        if self._live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                # Kept narrow so the whole line fits an 80-column terminal for most runs.
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[sps]} sps"),
                TextColumn("ETA {task.fields[eta]}"),
                TextColumn("ret {task.fields[ret]}"),
                TextColumn("win {task.fields[win]}"),
                console=self._console,
            )
            self._task_id = self._progress.add_task(
                f"{algo_name} {env_name}/{task_name}",
                total=self.total_timesteps,
                completed=self.resume_step,
                **self._shown,
            )
            self._progress.start()

    # ------------------------------------------------------------------ set-up

    def _seed_key(self, seed: int) -> str:
        return f"seed_{seed}"

    def _algo_node(self) -> dict[str, Any]:
        return self._results[self.env_name][self.task_name][self.algo_name]

    def _load_or_create_results(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        if self.resume_step > 0 and self.results_path.exists():
            try:
                results = load_results(self.results_path)
            except (OSError, json.JSONDecodeError) as err:
                # Writes are atomic, so this means a foreign or hand-edited file.
                _log.warning("cannot read %s (%s); starting a new one", self.results_path, err)
                results = {}
        algo = (
            results.setdefault(self.env_name, {})
            .setdefault(self.task_name, {})
            .setdefault(self.algo_name, {})
        )
        stored = [key for key in algo if key.startswith("seed_")]
        if stored and len(stored) != self.num_seeds:
            _log.warning(
                "%s holds %d seeds for %s but the run has %d",
                self.results_path,
                len(stored),
                self.algo_name,
                self.num_seeds,
            )
        for key, run in list(algo.items()):
            if isinstance(run, Mapping):
                algo[key] = self._trim_run(run)
        for seed in range(self.num_seeds):
            algo.setdefault(self._seed_key(seed), {})
        return results

    def _trim_run(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the evaluations up to ``resume_step``, renumbered ``step_0, step_1, ...``.

        ``absolute_metrics`` is dropped: it described the end of the previous
        session, and :meth:`close` writes a new one.
        """
        kept = [e for e in _step_entries(run) if e.get("step_count", 0) <= self.resume_step]
        trimmed: dict[str, Any] = {f"step_{k}": dict(e) for k, e in enumerate(kept)}
        for key, value in run.items():
            if not key.lower().startswith("step_") and not _is_absolute_key(key):
                trimmed[key] = value
        for entry in kept:
            self._extra_names.update(set(entry) - _RESERVED_EVAL)
        return trimmed

    def _open_jsonl(self) -> io.TextIOWrapper:
        if self.resume_step > 0 and self.metrics_path.exists():
            kept = []
            with self.metrics_path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                        step = int(record["step"])
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                        # Most likely the partial last line of a killed process.
                        continue
                    if step <= self.resume_step:
                        kept.append(line if line.endswith("\n") else line + "\n")
            _atomic_write_text(self.metrics_path, "".join(kept))
            return self.metrics_path.open("a", encoding="utf-8")
        return self.metrics_path.open("w", encoding="utf-8")

    def _open_tensorboard(self) -> None:
        from tensorboardX import SummaryWriter

        # TensorBoard hides events at or after purge_step written before this
        # session: a resumed run thereby replaces what followed its checkpoint, and
        # a fresh run in an old directory replaces everything.
        purge_step = self.resume_step + 1 if self.resume_step > 0 else 0
        root = self.run_dir / TENSORBOARD_DIR
        self._writers = [
            SummaryWriter(logdir=str(root / f"seed_{seed}"), purge_step=purge_step)
            for seed in range(self.num_seeds)
        ]
        self._mean_writer = SummaryWriter(logdir=str(root / "mean"), purge_step=purge_step)

    # ------------------------------------------------------------------ helpers

    def _per_seed(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim == 0:
            # A figure shared by all seeds, e.g. a host-measured rate.
            arr = np.broadcast_to(arr, (self.num_seeds,))
        if arr.shape != (self.num_seeds,):
            raise ValueError(
                f"metric {name!r} must have shape ({self.num_seeds},), got {arr.shape}"
            )
        return arr

    def _per_seed_episodes(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != self.num_seeds:
            raise ValueError(
                f"{name} must have shape ({self.num_seeds}, num_episodes) or "
                f"({self.num_seeds},), got {np.shape(value)}"
            )
        return arr

    def _write_jsonl(self, records: list[dict[str, Any]]) -> None:
        self._jsonl.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
        # Flushed on every call: the file is read by people tailing a live run.
        self._jsonl.flush()

    def _write_results(self) -> None:
        text = json.dumps(self._results, indent=2, allow_nan=False)
        _atomic_write_text(self.results_path, text + "\n")

    def _scalar(self, tag: str, values: np.ndarray, step: int) -> None:
        if not self._writers:
            return
        for writer, value in zip(self._writers, values, strict=True):
            value = float(value)
            # NaN marks "no episode finished in this chunk"; TensorBoard would draw a gap
            # at best, so the point is skipped.
            if math.isfinite(value):
                writer.add_scalar(tag, value, step)
        mean = _nanmean(values)
        if math.isfinite(mean):
            self._mean_writer.add_scalar(tag, mean, step)

    def _print(self, message: str) -> None:
        console = self._progress.console if self._progress is not None else self._console
        # soft_wrap: a status line is one line in a log file, whatever the width.
        console.print(message, markup=False, highlight=False, soft_wrap=True)

    def _update_progress(self, step: int, metrics: Mapping[str, np.ndarray]) -> None:
        now = time.monotonic()
        if step > self._prev_step and now > self._prev_time:
            self._shown["sps"] = f"{(step - self._prev_step) / (now - self._prev_time):,.0f}"
        # The ETA uses the average rate since the first chunk ended, which leaves out
        # compilation; until then it falls back to the rate since start-up.
        anchor_time, anchor_step = self._eta_anchor or (self._start, self.resume_step)
        if step > anchor_step and now > anchor_time:
            rate = (step - anchor_step) / (now - anchor_time)
            self._shown["eta"] = _fmt_duration(max(self.total_timesteps - step, 0) / rate)
        if self._eta_anchor is None:
            self._eta_anchor = (now, step)
        self._prev_time, self._prev_step = now, step
        if "episode_return" in metrics:
            self._shown["ret"] = _fmt(_nanmean(metrics["episode_return"]))
        if "win_rate" in metrics:
            self._shown["win"] = _fmt(_nanmean(metrics["win_rate"]), ".2f")

        if self._progress is not None:
            self._progress.update(self._task_id, completed=step, **self._shown)
        elif self._plain_status and (
            now - self._last_status >= self.status_interval or step >= self.total_timesteps
        ):
            self._last_status = now
            pct = 100.0 * step / self.total_timesteps if self.total_timesteps else 100.0
            self._print(
                f"[{self.algo_name} {self.env_name}/{self.task_name}] "
                f"step {step:,}/{self.total_timesteps:,} ({pct:.1f}%) | "
                f"{self._shown['sps']} sps | ETA {self._shown['eta']} | "
                f"return {self._shown['ret']} | win {self._shown['win']}"
            )

    # ------------------------------------------------------------------ public API

    def log_train(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Record training metrics at environment step ``step``.

        Args:
            step: environment steps done so far (per seed).
            metrics: name -> array of shape ``(num_seeds,)`` (a scalar is taken as
                shared by all seeds). ``episode_return`` and ``win_rate`` feed the
                progress bar. NaN values are written as ``null`` in the JSONL file and
                skipped in TensorBoard.

        Each seed gets a ``{"kind": "train", "step", "seed", "wall_time", **metrics}``
        JSONL record and ``train/<name>`` TensorBoard scalars.
        """
        self._check_open()
        step = int(step)
        clash = _RESERVED_TRAIN.intersection(metrics)
        if clash:
            raise ValueError(f"metric names {sorted(clash)} are reserved")
        arrays = {name: self._per_seed(name, value) for name, value in metrics.items()}
        wall_time = round(time.time(), 3)
        self._write_jsonl(
            [
                {"kind": "train", "step": step, "seed": seed, "wall_time": wall_time}
                | {name: _json_number(arr[seed]) for name, arr in arrays.items()}
                for seed in range(self.num_seeds)
            ]
        )
        for name, arr in arrays.items():
            self._scalar(f"train/{name}", arr.astype(np.float64), step)
        self._last_step = max(self._last_step, step)
        self._update_progress(step, arrays)

    def log_eval(
        self,
        step: int,
        episode_returns: np.ndarray,
        episode_won: np.ndarray,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Record a greedy evaluation made at environment step ``step``.

        Args:
            step: environment steps done when the evaluated parameters were taken.
            episode_returns: ``(num_seeds, num_episodes)`` team return per episode.
            episode_won: ``(num_seeds, num_episodes)`` 1/0 (or bool) per episode.
            extra: more evaluation metrics, name -> ``(num_seeds,)`` (one value per
                seed, stored as a one-element list like ``win_rate``) or
                ``(num_seeds, num_episodes)`` (one value per episode). Log the same
                names at every evaluation: marl-eval requires identical metric sets.

        Adds ``step_<k>`` (k = number of evaluations so far) to every seed of
        ``results.json`` and rewrites it atomically, writes ``{"kind": "eval"}``
        JSONL records and ``eval/return``, ``eval/win_rate``, ``eval/<extra>`` scalars.
        """
        self._check_open()
        step = int(step)
        entries = self._eval_entries(episode_returns, episode_won, extra)
        self._check_extra_names(set(extra or {}), "this evaluation")
        index = 0
        for seed, entry in enumerate(entries):
            run = self._algo_node()[self._seed_key(seed)]
            # Counted per seed, so a file whose seeds disagree still gets dense keys.
            index = sum(1 for key in run if key.lower().startswith("step_"))
            run[f"step_{index}"] = {"step_count": step} | entry
            # absolute_metrics stays the last key: old marl-eval versions take the
            # last entry of a seed as the absolute metrics.
            if ABSOLUTE_KEY in run:
                run[ABSOLUTE_KEY] = run.pop(ABSOLUTE_KEY)
        self._write_results()

        returns = np.array([_nanmean(_none_to_nan(e["return"])) for e in entries])
        win_rates = np.array([_nanmean(_none_to_nan(e["win_rate"])) for e in entries])
        extra_names = sorted(set(entries[0]) - _RESERVED_EVAL)
        wall_time = round(time.time(), 3)
        records = []
        for seed, entry in enumerate(entries):
            episodes = np.asarray(_none_to_nan(entry["return"]), dtype=np.float64)
            record: dict[str, Any] = {
                "kind": "eval",
                "step": step,
                "seed": seed,
                "wall_time": wall_time,
                "eval_index": index,
                "num_episodes": int(episodes.size),
                "return_mean": _json_number(returns[seed]),
                "return_std": _json_number(_episode_std(episodes)),
                "win_rate": _json_number(win_rates[seed]),
            }
            for name in extra_names:
                record[name] = _json_number(_nanmean(_none_to_nan(entry[name])))
            records.append(record)
        self._write_jsonl(records)

        self._scalar("eval/return", returns, step)
        self._scalar("eval/win_rate", win_rates, step)
        for name in extra_names:
            values = np.array([_nanmean(_none_to_nan(e[name])) for e in entries])
            self._scalar(f"eval/{name}", values, step)
        self._last_step = max(self._last_step, step)
        if self._live or self._plain_status:
            self._print(
                f"eval @ step {step:,}: return {_fmt(_nanmean(returns))} ± {_fmt(_std(returns))} "
                f"over {self.num_seeds} seed(s), win rate {_fmt(_nanmean(win_rates), '.2f')}"
            )

    def _check_extra_names(self, names: set[str], where: str) -> None:
        """Warn when the extra metrics differ from those logged before.

        marl-eval's ``DiagnoseData`` requires every entry of a run to carry the same
        metric names; a mismatch is not fatal here but makes the file fail its check.
        """
        if self._extra_names and names != self._extra_names:
            _log.warning(
                "extra evaluation metrics %s in %s differ from earlier ones %s; "
                "marl-eval needs the same set in every entry",
                sorted(names),
                where,
                sorted(self._extra_names),
            )
        self._extra_names |= names

    def _eval_entries(
        self,
        episode_returns: Any,
        episode_won: Any,
        extra: Mapping[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """One marl-eval entry (without ``step_count``) per seed."""
        returns = np.asarray(episode_returns, dtype=np.float64)
        won = np.asarray(episode_won, dtype=np.float64)
        if returns.ndim != 2 or returns.shape[0] != self.num_seeds:
            raise ValueError(
                f"episode_returns must have shape ({self.num_seeds}, num_episodes), "
                f"got {returns.shape}"
            )
        if won.shape != returns.shape:
            raise ValueError(f"episode_won has shape {won.shape}, expected {returns.shape}")
        extras = {
            name: self._per_seed_episodes(f"extra[{name!r}]", value)
            for name, value in (extra or {}).items()
        }
        clash = _RESERVED_EVAL.intersection(extras)
        if clash:
            raise ValueError(f"extra metric names {sorted(clash)} are reserved")
        return [
            {
                "return": _json_list(returns[seed]),
                # One value, as marl-eval asks for metrics computed over many episodes.
                "win_rate": [_json_number(float(won[seed].mean()))],
            }
            | {name: _json_list(arr[seed]) for name, arr in extras.items()}
            for seed in range(self.num_seeds)
        ]

    def close(
        self,
        final_eval: tuple[np.ndarray, np.ndarray]
        | tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
        | None = None,
    ) -> None:
        """Finish the run: absolute metrics, summary, learning curve.

        Args:
            final_eval: ``(episode_returns, episode_won)`` of the final (or best)
                greedy evaluation, shaped ``(num_seeds, num_episodes)`` like in
                :meth:`log_eval`; marl-eval's protocol uses 10 times the episodes of a
                regular evaluation. An optional third element holds extra metrics as
                in :meth:`log_eval`, so that ``absolute_metrics`` carries the same
                metric names as the evaluation points. Without it, the last
                evaluation (of this session or a resumed one) is used.

        Writes ``absolute_metrics`` to every seed of ``results.json``, prints a
        summary table (also saved to ``summary.txt``) and, if there is at least one
        evaluation point, saves ``learning_curve.png``. Calling it twice is a no-op.
        """
        if self._closed:
            return
        # Validated before anything is torn down, so a bad argument can be corrected.
        final_entries = None
        if final_eval is not None:
            if len(final_eval) not in (2, 3):
                raise ValueError("final_eval must be (returns, won) or (returns, won, extra)")
            extra = final_eval[2] if len(final_eval) == 3 else None
            final_entries = self._eval_entries(final_eval[0], final_eval[1], extra)
            self._check_extra_names(set(extra or {}), "final_eval")
        self._closed = True
        try:
            if self._progress is not None:
                self._progress.stop()
            source = self._write_absolute_metrics(final_entries)
            self._write_summary(source)
            if any(_step_entries(run) for run in self._algo_node().values()):
                plot_learning_curves(self.results_path, self.run_dir / CURVE_FILE)
        finally:
            for writer in [*self._writers, self._mean_writer]:
                if writer is not None:
                    writer.close()
            self._jsonl.close()

    def _write_absolute_metrics(self, final_entries: list[dict[str, Any]] | None) -> str | None:
        """Fill ``absolute_metrics``; return a description of where it came from."""
        algo = self._algo_node()
        seeds = [algo[self._seed_key(seed)] for seed in range(self.num_seeds)]
        if final_entries is not None:
            entries = final_entries
            source = f"final evaluation, {len(entries[0]['return'])} episodes per seed"
        else:
            history = [_step_entries(run) for run in seeds]
            if not all(history):
                return None
            entries = [
                {k: v for k, v in points[-1].items() if k != "step_count"} for points in history
            ]
            source = f"last evaluation, at step {history[0][-1]['step_count']:,}"
        for run, entry in zip(seeds, entries, strict=True):
            run.pop(ABSOLUTE_KEY, None)
            run[ABSOLUTE_KEY] = entry
        self._write_results()

        records = []
        for seed, entry in enumerate(entries):
            record: dict[str, Any] = {"kind": "absolute", "step": self._last_step, "seed": seed}
            for name, values in entry.items():
                key = "return_mean" if name == "return" else name
                record[key] = _json_number(_nanmean(_none_to_nan(values)))
            records.append(record)
        self._write_jsonl(records)
        return source

    def _write_summary(self, source: str | None) -> None:
        wall = time.monotonic() - self._start
        table = Table(title=f"{self.algo_name} on {self.env_name}/{self.task_name}")
        table.add_column("seed", justify="right")
        table.add_column("mean return", justify="right")
        table.add_column("win rate", justify="right")
        if source is not None:
            algo = self._algo_node()
            absolute = [algo[self._seed_key(s)][ABSOLUTE_KEY] for s in range(self.num_seeds)]
            returns = np.array([_nanmean(_none_to_nan(a["return"])) for a in absolute])
            wins = np.array([_nanmean(_none_to_nan(a["win_rate"])) for a in absolute])
            for seed in range(self.num_seeds):
                table.add_row(str(seed), _fmt(returns[seed]), _fmt(wins[seed]))
            table.add_section()
            table.add_row(
                "mean ± std",
                f"{_fmt(_nanmean(returns))} ± {_fmt(_std(returns))}",
                f"{_fmt(_nanmean(wins))} ± {_fmt(_std(wins))}",
                style="bold",
            )

        resumed = f" (since resume at step {self.resume_step:,})" if self.resume_step else ""
        notes = Text(
            f"greedy results: {source or 'no evaluation'}\n"
            f"steps: {self._last_step:,} / {self.total_timesteps:,}\n"
            f"wall time: {_fmt_duration(wall)}{resumed}"
        )
        summary = Group(table, notes)
        self._console.print(summary)
        # A second, colourless console renders the same text for the file.
        buffer = io.StringIO()
        Console(file=buffer, width=100, color_system=None, force_terminal=False).print(summary)
        _atomic_write_text(self.run_dir / SUMMARY_FILE, buffer.getvalue())

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RunLogger is closed")

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _episode_std(episodes: np.ndarray) -> float:
    """Population standard deviation over the finite episode values (NaN if none)."""
    finite = episodes[np.isfinite(episodes)]
    return float(finite.std()) if finite.size else math.nan


def _std(values: np.ndarray) -> float:
    """Sample standard deviation over seeds (ddof=1), 0 for a single finite value."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0
