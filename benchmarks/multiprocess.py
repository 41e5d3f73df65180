"""One run on several processes against one process, and seeds packed into one
program against a sweep of one run per seed, on this machine.

Two comparisons, each measured in alternating rounds (A B A B) in this one script:

* ``layouts``: the same ``marl-train`` run (QMIX on SMAC 3m with marl-train's
  settings, 8 envs split over 2 devices) as one process with two CPU devices
  (``arch.num_devices=2``) and as two processes with one device each
  (``arch.num_processes=2``, gloo collectives over 127.0.0.1). Env steps/s are
  read from the runs' ``metrics.jsonl`` (each chunk's ``sps``), leaving out the
  first, compiling chunk; the two layouts compute the same parameters (the tests
  check it bitwise), so the difference is what the processes and their
  collectives cost.
* ``seeds``: 3 seeds as ``arch.num_seeds=3`` in one program against ``marl-train -m
  seed=0,1,2`` (Hydra's basic launcher: one run after another in one process),
  the same env steps per seed. What counts is the wall time of the whole command,
  compiles included, which is what a user waits for.

Usage::

    python benchmarks/multiprocess.py               # a few minutes per round, alone
    python benchmarks/multiprocess.py --quick       # the matrix game, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import command_line, machine_info, result_path, summary, write_json

BIN = Path(sys.executable).parent
FULL = {
    "run": ["env=smac/3m", "algo=qmix", "arch.num_envs=8", "logger=quiet"],
    "chunk_steps": 4_000,
    "chunks": 4,
    "seed_steps": 20_000,
    "rounds": 2,
}
QUICK = {
    "run": [
        "env=matrix/two_step",
        "algo=vdn",
        "algo.hidden_dim=8",
        "algo.batch_size=8",
        "arch.num_envs=8",
        "arch.rollout_length=4",
        "logger=quiet",
    ],
    "chunk_steps": 64,
    "chunks": 3,
    "seed_steps": 128,
    "rounds": 1,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _marl_train(args: list[str], devices: int) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen(
        [str(BIN / "marl-train"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        _, error = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise RuntimeError(f"marl-train failed ({process.returncode}): {error[-2000:]}")


def _chunk_rates(run_dir: Path) -> list[float]:
    """Env steps/s of every chunk but the first (the one that compiles)."""
    rates = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train" and record["seed"] == 0:
            rates.append(record["sps"])
    return rates[1:]


def layout_round(setup: dict[str, Any], layout: str, work: Path) -> list[float]:
    """One run in ``layout`` (``1x2`` or ``2x1``); its chunks' env steps/s."""
    run_dir = work / f"layout-{layout}-{time.monotonic_ns()}"
    common = [
        *setup["run"],
        f"arch.eval_interval={setup['chunk_steps']}",
        f"arch.total_timesteps={setup['chunk_steps'] * setup['chunks']}",
        f"run_dir={run_dir}",
    ]
    if layout == "1x2":
        _check([_marl_train([*common, "arch.num_devices=2"], 2)])
    else:
        coordinator = f"127.0.0.1:{_free_port()}"
        layout_args = [
            "arch.num_processes=2",
            "arch.num_devices=1",
            f"arch.coordinator={coordinator}",
        ]
        _check(
            [
                _marl_train([*common, *layout_args, f"arch.process_id={index}"], 1)
                for index in range(2)
            ]
        )
    rates = _chunk_rates(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    return rates


def seeds_round(setup: dict[str, Any], way: str, work: Path) -> float:
    """Wall seconds of 3 seeds' runs, ``packed`` into one program or ``swept``."""
    base = work / f"seeds-{way}-{time.monotonic_ns()}"
    common = [
        *setup["run"],
        f"arch.eval_interval={setup['seed_steps'] // 2}",
        f"arch.total_timesteps={setup['seed_steps']}",
        "arch.num_devices=1",
    ]
    started = time.perf_counter()
    if way == "packed":
        _check([_marl_train([*common, "arch.num_seeds=3", f"run_dir={base}"], 1)])
    else:
        _check([_marl_train(["-m", *common, "seed=0,1,2", f"run_dir={base}/${{seed}}"], 1)])
    seconds = time.perf_counter() - started
    shutil.rmtree(base, ignore_errors=True)
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the matrix game, seconds")
    parser.add_argument("--out", default=None, help="the JSON's path")
    args = parser.parse_args(argv)
    setup = QUICK if args.quick else FULL
    layouts: dict[str, list[float]] = {"1x2": [], "2x1": []}
    seeds: dict[str, list[float]] = {"packed": [], "swept": []}
    with tempfile.TemporaryDirectory(prefix="marl-multiprocess-") as scratch:
        work = Path(scratch)
        for round_index in range(setup["rounds"]):
            for layout in layouts:
                layouts[layout] += layout_round(setup, layout, work)
                print(f"round {round_index}: {layout} done", flush=True)
            for way in seeds:
                seeds[way].append(seeds_round(setup, way, work))
                print(f"round {round_index}: seeds {way} {seeds[way][-1]:.1f} s", flush=True)
    layout_summary = {layout: summary(rates) for layout, rates in layouts.items()}
    seed_steps = 3 * setup["seed_steps"]
    seed_summary = {
        way: {**summary(values), "env_steps_per_s": seed_steps / min(values)}
        for way, values in seeds.items()
    }
    payload = {
        "benchmark": "multiprocess",
        "command": command_line("multiprocess.py", argv),
        "machine": machine_info(),
        "mode": "quick" if args.quick else "full",
        "settings": dict(setup),
        "layouts": {"env_steps_per_s": layout_summary, "per_chunk": layouts},
        "two_processes_vs_one": layout_summary["2x1"]["median"] / layout_summary["1x2"]["median"],
        "seeds": {"wall_seconds": seed_summary, "per_round": seeds},
        "packed_vs_swept": seed_summary["swept"]["median"] / seed_summary["packed"]["median"],
    }
    path = write_json(result_path(args.out, "multiprocess"), payload)
    print(
        f"two processes x 1 device: {layout_summary['2x1']['median']:.0f} env steps/s, one "
        f"process x 2 devices: {layout_summary['1x2']['median']:.0f} "
        f"({payload['two_processes_vs_one']:.2f}x); 3 seeds packed in "
        f"{seed_summary['packed']['median']:.1f} s, swept in "
        f"{seed_summary['swept']['median']:.1f} s ({payload['packed_vs_swept']:.2f}x faster "
        f"packed); {path}",
        flush=True,
    )
    return payload


if __name__ == "__main__":
    main()
