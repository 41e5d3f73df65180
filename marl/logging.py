"""Host-side logging of a training run: one logger, one small class per output.

:class:`RunLogger` is called by the training loop between compiled chunks, with
plain NumPy arrays holding one value per seed, and hands every record to its
outputs, which write inside ``run_dir``:

* :class:`JsonlOutput`, ``metrics.jsonl``: one JSON object per line and per seed,
  ``{"kind": "train" | "eval" | "front" | "absolute", "step": ..., "seed": i, ...}``
  (and a composite learner's ``update_costs``, one line per part);
  non-finite numbers are ``null`` so that every line is strict JSON. A
  multi-objective run's ``front`` records hold each evaluation's value vectors (one
  per evaluation preference), and :meth:`RunLogger.close` draws them in
  ``fronts.png``.
* :class:`ResultsOutput`, ``results.json``: the greedy evaluations in marl-eval's
  layout (:mod:`marl.results`); ``absolute_metrics`` is written last, by
  :meth:`RunLogger.close`, so a run that was killed has none.
* :class:`TensorBoardOutput`, ``tensorboard/seed_<i>/`` and ``tensorboard/mean/``:
  one TensorBoard run per seed plus one for the mean over seeds, all with the same
  tags (``train/<name>``, ``eval/return``, ``eval/win_rate``, ``eval/<extra>``), so
  TensorBoard draws the seeds of one metric on one chart.
* :class:`WandbOutput` (optional, ``pip install 'marl-lab[wandb]'``): one Weights &
  Biases run per seed, grouped, with the same ``train/`` and ``eval/`` names keyed
  by ``env_steps``; offline mode writes ``wandb/`` for a later ``wandb sync``.
* :class:`ConsoleOutput`: a progress bar (or a plain status line when stdout is
  not a terminal), a line per evaluation, and at the end a summary table, also
  saved as ``summary.txt``; :meth:`RunLogger.close` adds ``learning_curve.png``.

A run resumed from a checkpoint at ``resume_step`` keeps what was logged up to that
step and drops what came after it, since the resumed run will log those steps again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging as std_logging
import math
import pathlib
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from marl import results as layout
from marl.files import atomic_write_text
from marl.results import json_number, nanmean, none_to_nan

__all__ = [
    "ConsoleOutput",
    "JsonlOutput",
    "ResultsOutput",
    "RunLogger",
    "TensorBoardOutput",
    "WandbError",
    "WandbOutput",
    "WandbSettings",
]

_log = std_logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
SUMMARY_FILE = "summary.txt"
CURVE_FILE = "learning_curve.png"
FRONTS_FILE = "fronts.png"

# Keys that RunLogger puts in every JSONL record; a metric of that name would clash.
_RESERVED_TRAIN = frozenset({"kind", "step", "seed", "wall_time"})


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _fmt(value: float, spec: str = ".3f") -> str:
    return format(value, spec) if math.isfinite(value) else "n/a"


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


# --------------------------------------------------------------------------- outputs


class JsonlOutput:
    """``metrics.jsonl``, flushed on every write (people tail a live run's file)."""

    def __init__(self, path: pathlib.Path, resume_step: int):
        self.path = path
        if resume_step > 0 and path.exists():
            kept = []
            with path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                        step = int(record["step"])
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                        # Most likely the partial last line of a killed process.
                        continue
                    # An interrupted session's absolute metrics describe where it
                    # stopped, not the run: the run's end writes its own.
                    if step <= resume_step and record.get("kind") != "absolute":
                        kept.append(line if line.endswith("\n") else line + "\n")
            atomic_write_text(path, "".join(kept))
            self._file = path.open("a", encoding="utf-8")
        else:
            self._file = path.open("w", encoding="utf-8")

    def write(self, records: list[dict[str, Any]]) -> None:
        self._file.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardOutput:
    """One event-file directory per seed and one for the mean over seeds."""

    def __init__(self, root: pathlib.Path, seeds: list[int], resume_step: int):
        from tensorboardX import SummaryWriter

        # TensorBoard hides events at or after purge_step written before this
        # session: a resumed run thereby replaces what followed its checkpoint, and
        # a fresh run in an old directory replaces everything.
        purge_step = resume_step + 1 if resume_step > 0 else 0
        self._writers = [
            SummaryWriter(logdir=str(root / f"seed_{seed}"), purge_step=purge_step)
            for seed in seeds
        ]
        self._mean = SummaryWriter(logdir=str(root / "mean"), purge_step=purge_step)

    def scalar(self, tag: str, values: np.ndarray, step: int) -> None:
        for writer, value in zip(self._writers, values, strict=True):
            value = float(value)
            # NaN marks "no episode finished in this chunk"; TensorBoard would draw a
            # gap at best, so the point is skipped.
            if math.isfinite(value):
                writer.add_scalar(tag, value, step)
        mean = nanmean(values)
        if math.isfinite(mean):
            self._mean.add_scalar(tag, mean, step)

    def close(self) -> None:
        for writer in [*self._writers, self._mean]:
            writer.close()


class WandbError(RuntimeError):
    """W&B could not start or write a run (one line, with what to do instead)."""


@dataclasses.dataclass(frozen=True)
class WandbSettings:
    """Where :class:`WandbOutput` logs: ``project``, ``entity`` (empty: the user's
    default), ``group`` (empty: the run dir), ``mode`` (``offline`` or ``online``)
    and the run's ``config`` (shown in W&B's table; each run adds its ``seed``)."""

    project: str = "marl-lab"
    entity: str = ""
    group: str = ""
    mode: str = "offline"
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def wandb_run_id(run_dir: pathlib.Path, seed: int) -> str:
    """A W&B run id fixed by the run dir and seed, so a resumed run continues its
    W&B runs instead of starting new ones."""
    text = f"{pathlib.Path(run_dir).resolve()}:{seed}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class WandbOutput:
    """One W&B run per seed, grouped, keyed by ``env_steps`` like the other outputs.

    W&B cannot drop history, so when a killed run resumes, the points its last
    session logged after the checkpoint appear twice; ``metrics.jsonl`` and
    TensorBoard are the record without duplicates.
    """

    def __init__(
        self, run_dir: pathlib.Path, seeds: list[int], label: str, settings: WandbSettings
    ) -> None:
        import wandb

        group = settings.group or str(run_dir)
        self._runs = []
        try:
            for seed in seeds:
                run = wandb.init(
                    project=settings.project,
                    entity=settings.entity or None,
                    dir=str(run_dir),
                    mode=settings.mode,
                    group=group,
                    name=f"{label} seed {seed}",
                    id=wandb_run_id(run_dir, seed),
                    resume="allow",
                    reinit="create_new",
                    config={**settings.config, "seed": seed},
                    settings=wandb.Settings(silent=True, console="off"),
                )
                run.define_metric("env_steps")
                run.define_metric("*", step_metric="env_steps")
                self._runs.append(run)
        except Exception as error:
            self.close()
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            hint = "; logger.wandb_mode=offline logs without a network" * (
                settings.mode == "online"
            )
            raise WandbError(
                f"logger.wandb: W&B could not start a run ({type(error).__name__}: {message}){hint}"
            ) from None

    def log(self, step: int, values: Mapping[str, np.ndarray]) -> None:
        """``values``: name -> one number per seed; non-finite ones are left out."""
        for index, run in enumerate(self._runs):
            row = {name: float(arr[index]) for name, arr in values.items()}
            run.log({"env_steps": step} | {k: v for k, v in row.items() if math.isfinite(v)})

    def summarise(self, values: Mapping[str, np.ndarray]) -> None:
        """Sets each seed's run summary (the absolute metrics)."""
        for index, run in enumerate(self._runs):
            for name, arr in values.items():
                value = float(arr[index])
                run.summary[name] = value if math.isfinite(value) else None

    def close(self) -> None:
        for run in self._runs:
            run.finish()
        self._runs = []


class ResultsOutput:
    """``results.json`` for one algorithm on one or more (env, task) pairs, rewritten
    atomically on change.

    A fresh run replaces the file; a resumed one keeps its evaluations up to
    ``resume_step`` (and other algorithms' and tasks' entries).
    """

    def __init__(
        self,
        path: pathlib.Path,
        tasks: Sequence[tuple[str, str]],
        algo_name: str,
        seeds: list[int],
        resume_step: int,
    ):
        self.path = path
        self.seeds = list(seeds)
        num_seeds = len(self.seeds)
        self.metric_names: set[str] = set()  # the extra metrics logged so far
        data: dict[str, Any] = {}
        if resume_step > 0 and path.exists():
            try:
                data = layout.load_results(path)
            except (OSError, json.JSONDecodeError) as err:
                # Writes are atomic, so this means a foreign or hand-edited file.
                _log.warning("cannot read %s (%s); starting a new one", path, err)
                data = {}
        self._algos: list[dict[str, Any]] = []
        for env_name, task_name in tasks:
            algo = data.setdefault(env_name, {}).setdefault(task_name, {})
            algo = algo.setdefault(algo_name, {})
            stored = [key for key in algo if key.startswith("seed_")]
            if stored and len(stored) != num_seeds:
                _log.warning(
                    "%s holds %d seeds for %s but the run has %d",
                    path,
                    len(stored),
                    algo_name,
                    num_seeds,
                )
            for key, run in list(algo.items()):
                if isinstance(run, Mapping):
                    algo[key] = layout.trim_run(run, resume_step)
                    for entry in layout.step_entries(algo[key]):
                        self.metric_names.update(set(entry) - layout.RESERVED_EVAL)
            for seed in self.seeds:
                algo.setdefault(f"seed_{seed}", {})
            self._algos.append(algo)
        self._data = data
        self.write()

    def seed(self, index: int, task: int = 0) -> dict[str, Any]:
        """The entries of the run's ``index``-th seed (keyed by the seed itself) on
        the ``task``-th (env, task) pair."""
        return self._algos[task][f"seed_{self.seeds[index]}"]

    def has_evaluations(self) -> bool:
        return any(layout.step_entries(run) for algo in self._algos for run in algo.values())

    def add_evaluation(self, step: int, entries: list[dict[str, Any]], task: int = 0) -> int:
        """Adds one entry per seed; returns the evaluation's index."""
        index = 0
        for seed, entry in enumerate(entries):
            index = layout.add_evaluation(self.seed(seed, task), step, entry)
        self.write()
        return index

    def set_absolute(self, entries: list[dict[str, Any]], task: int = 0) -> None:
        for seed, entry in enumerate(entries):
            layout.set_absolute(self.seed(seed, task), entry)
        self.write()

    def check_metric_names(self, names: set[str], where: str) -> None:
        """Warns when the extra metrics differ from those logged before: marl-eval's
        ``DiagnoseData`` needs every entry of a run to carry the same names."""
        if self.metric_names and names != self.metric_names:
            _log.warning(
                "extra evaluation metrics %s in %s differ from earlier ones %s; "
                "marl-eval needs the same set in every entry",
                sorted(names),
                where,
                sorted(self.metric_names),
            )
        self.metric_names |= names

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps(self._data, indent=2, allow_nan=False) + "\n")


class ConsoleOutput:
    """Progress (a live rich bar on a terminal, a plain status line every
    ``status_interval`` seconds elsewhere; nothing without ``progress_bar``), a line
    per evaluation and the final summary."""

    def __init__(
        self,
        title: str,
        total_timesteps: int,
        resume_step: int,
        progress_bar: bool,
        status_interval: float,
    ):
        self.title = title
        self.total_timesteps = total_timesteps
        self.resume_step = resume_step
        self.status_interval = status_interval
        self._console = Console()
        # Rates are measured on the host between calls, so that they include
        # everything (chunk, evaluation, logging) the ETA has to account for.
        self._start = time.monotonic()
        self._prev_time = self._start
        self._prev_step = resume_step
        self._eta_anchor: tuple[float, int] | None = None
        self._last_status = -math.inf
        self._shown = {"sps": "-", "eta": "-:--:--", "ret": "-", "win": "-"}
        self._live = progress_bar and (self._console.is_interactive or self._console.is_jupyter)
        self._plain_status = progress_bar and not self._live
        self._progress: Progress | None = None
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
                title, total=total_timesteps, completed=resume_step, **self._shown
            )
            self._progress.start()

    @property
    def wall_seconds(self) -> float:
        return time.monotonic() - self._start

    def _print(self, message: str) -> None:
        console = self._progress.console if self._progress is not None else self._console
        # soft_wrap: a status line is one line in a log file, whatever the width.
        console.print(message, markup=False, highlight=False, soft_wrap=True)

    def train(self, step: int, metrics: Mapping[str, np.ndarray]) -> None:
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
            self._shown["ret"] = _fmt(nanmean(metrics["episode_return"]))
        # A run of several tasks reports win_rate/<task>: the mean over its tasks.
        wins = [v for k, v in metrics.items() if k == "win_rate" or k.startswith("win_rate/")]
        if wins:
            self._shown["win"] = _fmt(nanmean(np.stack(wins)), ".2f")

        if self._progress is not None:
            self._progress.update(self._task_id, completed=step, **self._shown)
        elif self._plain_status and (
            now - self._last_status >= self.status_interval or step >= self.total_timesteps
        ):
            self._last_status = now
            pct = 100.0 * step / self.total_timesteps if self.total_timesteps else 100.0
            self._print(
                f"[{self.title}] step {step:,}/{self.total_timesteps:,} ({pct:.1f}%) | "
                f"{self._shown['sps']} sps | ETA {self._shown['eta']} | "
                f"return {self._shown['ret']} | win {self._shown['win']}"
            )

    def note(self, message: str) -> None:
        """A line about the run (not a metric), shown with the progress."""
        if self._live or self._plain_status:
            self._print(message)

    def evaluation(
        self,
        step: int,
        returns: np.ndarray,
        win_rates: np.ndarray,
        hypervolume: np.ndarray | None = None,
        task: str | None = None,
    ) -> None:
        if self._live or self._plain_status:
            spread = ""
            if returns.size > 1:  # a spread over one seed says nothing
                spread = f" ± {_fmt(_std(returns))} over {returns.size} seeds"
            headline = f"return {_fmt(nanmean(returns))}{spread}"
            if hypervolume is not None:  # a multi-objective run's headline
                spread = f" ± {_fmt(_std(hypervolume))}" if hypervolume.size > 1 else ""
                headline = (
                    f"hypervolume {_fmt(nanmean(hypervolume))}{spread}, "
                    f"mean utility {_fmt(nanmean(returns))}"
                )
            where = f" on {task}" if task else ""
            self._print(
                f"eval @ step {step:,}{where}: {headline}, "
                f"win rate {_fmt(nanmean(win_rates), '.2f')}"
            )

    def summary(
        self,
        tables: Sequence[Table],
        source: str | None,
        last_step: int,
        summary_path: pathlib.Path,
    ) -> None:
        """Prints the summary (``tables``, one per task, and notes) and saves it without
        colours."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        resumed = f" (since resume at step {self.resume_step:,})" if self.resume_step else ""
        notes = Text(
            f"greedy results: {source or 'no evaluation'}\n"
            f"steps: {last_step:,} / {self.total_timesteps:,}\n"
            f"wall time: {_fmt_duration(self.wall_seconds)}{resumed}"
        )
        summary = Group(*tables, notes)
        self._console.print(summary)
        buffer = io.StringIO()
        Console(file=buffer, width=100, color_system=None, force_terminal=False).print(summary)
        atomic_write_text(summary_path, buffer.getvalue())

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# --------------------------------------------------------------------------- logger


class RunLogger:
    """Progress, JSONL, TensorBoard and marl-eval JSON for one training run.

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
        first_seed: the run's first seed; seed ``i`` of the arrays is labelled
            ``first_seed + i`` in every file (``seed_<label>`` in ``results.json``
            and TensorBoard, ``"seed"`` in JSONL, the summary table).
        resume_step: the environment step of the checkpoint the run resumes from,
            0 for a fresh run. A fresh run replaces any ``results.json`` and
            ``metrics.jsonl`` in ``run_dir``; a resumed one keeps what they hold up
            to ``resume_step`` (inclusive) and drops the rest.
        wandb: log to Weights & Biases too (:class:`WandbOutput`); None: not.
        tasks: the (env, task) pairs of a run of several tasks (marl-eval's first two
            levels, one per task); ``env_name`` and ``task_name`` then name the set.
            Evaluations say which task they are of (``task``, an index into it).
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
        first_seed: int = 0,
        wandb: WandbSettings | None = None,
        tasks: Sequence[tuple[str, str]] | None = None,
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
        self.seeds = [int(first_seed) + index for index in range(self.num_seeds)]
        self.total_timesteps = int(total_timesteps)
        self.resume_step = int(resume_step)
        self.results_path = self.run_dir / layout.RESULTS_FILE
        self.metrics_path = self.run_dir / METRICS_FILE
        self._closed = False
        self._has_fronts = False
        self._last_step = self.resume_step
        self.tasks = [tuple(pair) for pair in tasks] if tasks else [(env_name, task_name)]
        self.task_labels = [f"{env}/{task}" for env, task in self.tasks]

        label = f"{algo_name} {env_name}/{task_name}"
        # First: a W&B run that cannot start leaves no file of this session open.
        self.wandb = (
            WandbOutput(self.run_dir, self.seeds, label, wandb) if wandb is not None else None
        )
        self.results = ResultsOutput(
            self.results_path, self.tasks, algo_name, self.seeds, self.resume_step
        )
        self.jsonl = JsonlOutput(self.metrics_path, self.resume_step)
        self.tensorboard = (
            TensorBoardOutput(self.run_dir / TENSORBOARD_DIR, self.seeds, self.resume_step)
            if use_tensorboard
            else None
        )
        self.console = ConsoleOutput(
            label,
            self.total_timesteps,
            self.resume_step,
            progress_bar,
            self.status_interval,
        )

    def _scalar(self, tag: str, values: np.ndarray, step: int) -> None:
        if self.tensorboard is not None:
            self.tensorboard.scalar(tag, values, step)

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

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RunLogger is closed")

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
        self.jsonl.write(
            [
                {"kind": "train", "step": step, "seed": seed, "wall_time": wall_time}
                | {name: json_number(arr[index]) for name, arr in arrays.items()}
                for index, seed in enumerate(self.seeds)
            ]
        )
        for name, arr in arrays.items():
            self._scalar(f"train/{name}", arr.astype(np.float64), step)
        if self.wandb is not None:
            self.wandb.log(
                step, {f"train/{name}": arr.astype(np.float64) for name, arr in arrays.items()}
            )
        self._last_step = max(self._last_step, step)
        self.console.train(step, arrays)

    def note(self, message: str) -> None:
        """Shows ``message`` on the console with the progress (not with a quiet console)."""
        self.console.note(message)

    def log_update_costs(self, costs: Mapping[str, Mapping[str, float]]) -> None:
        """Record what one update of each part of a composite learner costs (measured
        once, as the run starts): one ``{"kind": "update_costs", "step": 0, "part",
        "flops", "seconds"}`` line per part in ``metrics.jsonl``, and a console note."""
        self._check_open()
        self.jsonl.write(
            [
                {
                    "kind": "update_costs",
                    "step": 0,
                    "part": part,
                    **{name: json_number(value) for name, value in cost.items()},
                }
                for part, cost in costs.items()
            ]
        )
        self.console.note(
            "one update costs "
            + "; ".join(
                f"{part} {cost['flops'] / 1e9:.3g} GFLOP, {cost['seconds'] * 1e3:.0f} ms"
                for part, cost in costs.items()
            )
        )

    def log_eval(
        self,
        step: int,
        episode_returns: np.ndarray,
        episode_won: np.ndarray,
        extra: Mapping[str, np.ndarray] | None = None,
        task: int = 0,
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
            task: which of the run's tasks was evaluated (an index into ``tasks``).

        Adds ``step_<k>`` (k = number of evaluations so far) to every seed of the
        task's entry in ``results.json``, writes ``{"kind": "eval"}`` JSONL records
        (with the task's ``env/task`` name) and ``eval/return``, ``eval/win_rate``,
        ``eval/<extra>`` scalars (``eval/<env>/<task>/...`` for a run of several tasks).
        """
        self._check_open()
        step = int(step)
        entries = layout.eval_entries(episode_returns, episode_won, extra, self.num_seeds)
        self.results.check_metric_names(set(extra or {}), "this evaluation")
        index = self.results.add_evaluation(step, entries, task)

        returns = np.array([nanmean(none_to_nan(e["return"])) for e in entries])
        win_rates = np.array([nanmean(none_to_nan(e["win_rate"])) for e in entries])
        extra_names = sorted(set(entries[0]) - layout.RESERVED_EVAL)
        wall_time = round(time.time(), 3)
        records = []
        for position, entry in enumerate(entries):
            seed = self.seeds[position]
            episodes = np.asarray(none_to_nan(entry["return"]), dtype=np.float64)
            record: dict[str, Any] = {
                "kind": "eval",
                "step": step,
                "seed": seed,
                "task": self.task_labels[task],
                "wall_time": wall_time,
                "eval_index": index,
                "num_episodes": int(episodes.size),
                "return_mean": json_number(returns[position]),
                "return_std": json_number(_episode_std(episodes)),
                "win_rate": json_number(win_rates[position]),
            }
            for name in extra_names:
                record[name] = json_number(nanmean(none_to_nan(entry[name])))
            records.append(record)
        self.jsonl.write(records)

        prefix = "eval/" if len(self.tasks) == 1 else f"eval/{self.task_labels[task]}/"
        scalars = {f"{prefix}return": returns, f"{prefix}win_rate": win_rates}
        for name in extra_names:
            scalars[f"{prefix}{name}"] = np.array([nanmean(none_to_nan(e[name])) for e in entries])
        for tag, values in scalars.items():
            self._scalar(tag, values, step)
        if self.wandb is not None:
            self.wandb.log(step, scalars)
        self._last_step = max(self._last_step, step)
        label = self.task_labels[task] if len(self.tasks) > 1 else None
        self.console.evaluation(
            step, returns, win_rates, scalars.get(f"{prefix}hypervolume"), label
        )

    def log_front(
        self,
        step: int,
        values: np.ndarray,
        preferences: np.ndarray,
        objective_names: tuple[str, ...],
    ) -> None:
        """Record a multi-objective evaluation's front at environment step ``step``.

        Args:
            values: ``(num_seeds, num_preferences, num_objectives)``: each evaluation
                preference's mean return vector (dominated ones included; the plot
                and the metrics drop them).
            preferences: ``(num_preferences, num_objectives)``, the evaluation grid.
            objective_names: one name per objective.

        Writes one ``{"kind": "front"}`` JSONL record per seed; ``fronts.png`` is drawn
        from them when the logger closes.
        """
        self._check_open()
        values = np.asarray(values, np.float64)
        preferences = np.asarray(preferences, np.float64)
        expected = (self.num_seeds, len(preferences), len(objective_names))
        if values.shape != expected:
            raise ValueError(f"front values must have shape {expected}, got {values.shape}")
        self.jsonl.write(
            [
                {
                    "kind": "front",
                    "step": int(step),
                    "seed": seed,
                    "objective_names": list(objective_names),
                    "preferences": preferences.tolist(),
                    "values": [[json_number(v) for v in row] for row in values[index]],
                }
                for index, seed in enumerate(self.seeds)
            ]
        )
        self._has_fronts = True

    def close(
        self,
        final_eval: tuple[np.ndarray, np.ndarray]
        | tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
        | Sequence[tuple]
        | None = None,
        final_source: str | None = None,
    ) -> None:
        """Finish the run: absolute metrics, summary, learning curve.

        Args:
            final_eval: ``(episode_returns, episode_won)`` of the final (or best)
                greedy evaluation, shaped ``(num_seeds, num_episodes)`` like in
                :meth:`log_eval`; marl-eval's protocol uses 10 times the episodes of a
                regular evaluation. An optional third element holds extra metrics as
                in :meth:`log_eval`, so that ``absolute_metrics`` carries the same
                metric names as the evaluation points. A run of several tasks gives a
                list of such tuples, one per task. ``final_source`` says in the
                summary what was evaluated (default: "final evaluation"). Without it, the last
                evaluation (of this session or a resumed one) is used.

        Writes ``absolute_metrics`` to every seed of ``results.json``, prints a
        summary table (also saved to ``summary.txt``) and, if there is at least one
        evaluation point, saves ``learning_curve.png``. Calling it twice is a no-op.
        """
        if self._closed:
            return
        # Validated before anything is torn down, so a bad argument can be corrected.
        finals: list[tuple | None] = [None] * len(self.tasks)
        if final_eval is not None:
            finals = list(final_eval) if len(self.tasks) > 1 else [final_eval]
            if len(finals) != len(self.tasks):
                raise ValueError(
                    f"final_eval must hold one evaluation per task ({len(self.tasks)})"
                )
        final_entries: list[list[dict[str, Any]] | None] = []
        for final in finals:
            if final is None:
                final_entries.append(None)
                continue
            if len(final) not in (2, 3):
                raise ValueError("final_eval must be (returns, won) or (returns, won, extra)")
            extra = final[2] if len(final) == 3 else None
            final_entries.append(layout.eval_entries(final[0], final[1], extra, self.num_seeds))
            self.results.check_metric_names(set(extra or {}), "final_eval")
        self._closed = True
        try:
            self.console.close()
            sources = [
                self._write_absolute_metrics(entries, final_source, task)
                for task, entries in enumerate(final_entries)
            ]
            tables = [
                self._summary_table(source is not None, task) for task, source in enumerate(sources)
            ]
            self.console.summary(tables, sources[0], self._last_step, self.run_dir / SUMMARY_FILE)
            if self.results.has_evaluations():
                layout.plot_learning_curves(self.results_path, self.run_dir / CURVE_FILE)
            if self._has_fronts or (self.resume_step > 0 and layout.read_fronts(self.metrics_path)):
                layout.plot_fronts(self.metrics_path, self.run_dir / FRONTS_FILE)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            if self.wandb is not None:
                self.wandb.close()
            self.jsonl.close()

    def _write_absolute_metrics(
        self,
        final_entries: list[dict[str, Any]] | None,
        final_source: str | None = None,
        task: int = 0,
    ) -> str | None:
        """Fill the task's ``absolute_metrics``; return a description of where it came
        from."""
        if final_entries is not None:
            entries = final_entries
            source = final_source or (
                f"final evaluation, {len(entries[0]['return'])} episodes per seed"
            )
        else:
            history = [
                layout.step_entries(self.results.seed(s, task)) for s in range(self.num_seeds)
            ]
            if not all(history):
                return None
            entries = [
                {k: v for k, v in points[-1].items() if k != "step_count"} for points in history
            ]
            source = f"last evaluation, at step {history[0][-1]['step_count']:,}"
        self.results.set_absolute(entries, task)
        records = []
        for seed, entry in zip(self.seeds, entries, strict=True):
            record: dict[str, Any] = {
                "kind": "absolute",
                "step": self._last_step,
                "seed": seed,
                "task": self.task_labels[task],
            }
            for name, values in entry.items():
                key = "return_mean" if name == "return" else name
                record[key] = json_number(nanmean(none_to_nan(values)))
            records.append(record)
        self.jsonl.write(records)
        if self.wandb is not None:
            # The absolute metrics under the evaluation's names (absolute/return, ...).
            prefix = "absolute/" if len(self.tasks) == 1 else f"absolute/{self.task_labels[task]}/"
            self.wandb.summarise(
                {
                    f"{prefix}{name}": np.array(
                        [nanmean(none_to_nan(entry[name])) for entry in entries], dtype=np.float64
                    )
                    for name in entries[0]
                }
            )
        return source

    def _summary_table(self, with_results: bool, task: int = 0) -> Table:
        table = Table(title=f"{self.algo_name} on {self.task_labels[task]}")
        absolute = []
        if with_results:
            absolute = [
                self.results.seed(s, task)[layout.ABSOLUTE_KEY] for s in range(self.num_seeds)
            ]
        # A multi-objective run leads with its front's hypervolume.
        names = ["hypervolume"] if absolute and "hypervolume" in absolute[0] else []
        names += ["return", "win_rate"]
        headers = {"hypervolume": "hypervolume", "return": "mean return", "win_rate": "win rate"}
        table.add_column("seed", justify="right")
        for name in names:
            table.add_column(headers[name], justify="right")
        if absolute:
            columns = [
                np.array([nanmean(none_to_nan(a[name])) for a in absolute]) for name in names
            ]
            for index, seed in enumerate(self.seeds):
                table.add_row(str(seed), *[_fmt(column[index]) for column in columns])
            if self.num_seeds > 1:  # a spread over one seed says nothing
                table.add_section()
                table.add_row(
                    "mean ± std",
                    *[f"{_fmt(nanmean(column))} ± {_fmt(_std(column))}" for column in columns],
                    style="bold",
                )
        return table

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
