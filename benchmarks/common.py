"""Shared helpers for marl-lab's benchmarks (see ``/work/shared/BENCHMARKING.md``).

* :func:`machine_info`: CPU model, cores, jax/jaxlib versions and device, recorded in
  every result file.
* :func:`side_by_side`: times several callables in turns (A B A B ...) after a
  warm-up and reports per-repetition times and the median of pairwise ratios.
* :func:`summary`: a bootstrap-free summary (median, quartiles, min, max) of a list.
* :func:`write_json`: writes ``benchmarks/results/<name>.json`` (or a given path).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from marl.files import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_DIR = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's ``model name`` from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, load, jax and its device."""
    import jaxlib

    device = jax.devices()[0]
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable_cores,
        "load_average_1_5_15": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git": _git_revision(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, extremes and count of ``values`` (no bootstrap)."""
    x = np.asarray(values, dtype=np.float64)
    q25, median, q75 = np.percentile(x, [25, 50, 75])
    return {
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "min": float(x.min()),
        "max": float(x.max()),
        "n": int(x.size),
    }


def timed(fn: Callable[[], Any]) -> float:
    """Wall time of ``fn()`` in seconds, blocking on its (jax) result."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def side_by_side(
    fns: dict[str, Callable[[], Any]],
    reps: int,
    warmup: int = 1,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Times the callables in turns, ``A B C A B C ...``, ``reps`` rounds after ``warmup``.

    Every callable must be compiled already; its result is blocked on before the clock
    stops. Returns ``times`` (seconds per repetition, by name) and, when ``baseline`` is
    given, ``ratios``: for every other name, the per-round ``time[baseline] / time[name]``
    (the speed of ``name`` relative to the baseline) and their median. Pairing the
    rounds cancels most of the drift of a shared, noisy machine.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            timed(fns[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            times[name].append(timed(fns[name]))
    result: dict[str, Any] = {"times": times}
    if baseline is not None:
        base = np.asarray(times[baseline])
        result["ratios"] = {}
        for name in names:
            if name == baseline:
                continue
            pairwise = base / np.asarray(times[name])
            result["ratios"][name] = {
                "median": float(np.median(pairwise)),
                "pairwise": pairwise.tolist(),
            }
    return result


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run of ``benchmarks/<script>``, with ``argv``
    (a ``main(argv)`` call's) or else the process's own arguments."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}", *arguments])


def result_path(out: str | None, name: str) -> Path:
    """``out`` when given, else ``benchmarks/results/<name>.json``."""
    return Path(out) if out else RESULTS_DIR / f"{name}.json"


def earlier_payload(path: Path, name: str) -> dict[str, Any]:
    """What ``path`` already holds if it is benchmark ``name``'s JSON, else ``{}``: a
    report of some runs, tasks or stages keeps the others (e.g. run in another
    session)."""
    if not path.exists():
        return {}
    try:
        earlier = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return earlier if isinstance(earlier, dict) and earlier.get("benchmark") == name else {}


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` as indented JSON, creating the directory; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
