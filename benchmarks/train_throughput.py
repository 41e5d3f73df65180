"""Training throughput: env-steps/s of marl-lab's compiled training loop, updates included.

For each configuration, a :class:`marl.loop.Runner` is built and initialised, the
first chunk (which compiles) is timed on its own, and then env-steps/s is measured
over several more chunks: ``runner.steps_per_chunk / wall time`` of a chunk, which
includes the updates (``run_chunk`` blocks and returns host metrics). One seed, one
device.

Configurations run by default (QMIX):

* ``ci-small``: on ``lbf/8x8-2p-2f``, 8 envs, ``batch_size=32, sequence_length=20,
  buffer_size=50_000``; rollouts of 20 steps, 50 iterations per chunk.
* ``pymarl2``: on ``lbf/8x8-2p-2f``, 8 envs, ``batch_size=128, sequence_length=0``
  (whole-episode windows of ``time_limit + 1 = 101`` steps), otherwise the
  algorithm's defaults; rollouts of 20 steps, 50 iterations per chunk.
* ``marl-train-default``: what ``marl-train`` runs with no overrides, read from its
  Hydra config (``experiments/conf``): QMIX on SMAC 3m, one chunk per evaluation
  interval.

On request (``--configs smac3m-qmix smac3m-mappo smac3m-mat smac3m-cmat``): each
learner with marl-train's own settings for it on ``smac/3m`` (QMIX 8 envs x 20
steps; the PPO learners 32 envs x 100 steps, 10 epochs per update).

The anchor, JaxMARL's QMIX script on SMAX 3m (about 160 env-steps/s while learning,
compile about 36 s, on this kind of machine), is quoted from BENCHMARKING.md as a
reference figure and not re-run here. Usage::

    python benchmarks/train_throughput.py            # full (a few minutes)
    python benchmarks/train_throughput.py --configs smac3m-qmix smac3m-mappo smac3m-mat smac3m-cmat
    python benchmarks/train_throughput.py --quick    # seconds: ci-small, short chunks
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import jax
import numpy as np
from common import command_line, machine_info, result_path, summary, write_json

import marl
from marl.loop import Runner

TASK = "lbf/8x8-2p-2f"
DEFAULT = "marl-train-default"

CONFIGS: dict[str, dict[str, Any]] = {
    "ci-small": {
        "env": TASK,
        "algo_config": {"batch_size": 32, "sequence_length": 20, "buffer_size": 50_000},
        "num_envs": 8,
        "rollout_length": 20,
        "iterations_per_chunk": 50,
    },
    "pymarl2": {
        "env": TASK,
        "algo_config": {"batch_size": 128, "sequence_length": 0},
        "num_envs": 8,
        "rollout_length": 20,
        "iterations_per_chunk": 50,
    },
}

# Every learner with marl-train's own settings for it on SMAC 3m (not run by default).
SMAC_CONFIGS = {
    f"smac3m-{algo}": (f"algo={algo}", "env=smac/3m") for algo in ("qmix", "mappo", "mat", "cmat")
}

ANCHOR = {
    "name": "JaxMARL 0.2.0 QMIX script on SMAX 3m (its SMAX config)",
    "env_steps_per_s": 160.0,
    "compile_s": 36.0,
    "source": "/work/shared/BENCHMARKING.md (measured on this kind of 2-core CPU machine)",
    "re_run": False,
    "note": "reference figure only: different environment and network sizes, not side by side",
}


def marl_train_config(overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Runner settings of ``marl-train <overrides>`` (its Hydra config)."""
    from hydra import compose, initialize_config_module

    from marl.config import register_schema
    from marl.experiments.train import compose_config

    register_schema()
    with initialize_config_module(config_module="marl.experiments.conf", version_base=None):
        config = compose_config(compose(config_name="config", overrides=list(overrides)))
    options = dataclasses.asdict(config.algo)
    return {
        "algo": options.pop("name"),
        "env": config.env.name,
        "env_kwargs": config.env.kwargs,
        "add_agent_id": config.env.add_agent_id,
        "algo_config": options,
        "num_envs": config.arch.num_envs,
        "rollout_length": config.arch.rollout_length,
        "iterations_per_chunk": config.arch.chunk_layout()[0],
        # Timed on one device here whatever arch.num_devices says.
        "num_devices_in_config": config.arch.num_devices,
    }


def marl_train_default() -> dict[str, Any]:
    """The Runner settings of ``marl-train`` with no overrides."""
    config = marl_train_config()
    if config["algo"] != "qmix":
        raise ValueError("marl-train's default algorithm is no longer QMIX")
    return config


def _finite(value: Any) -> float | None:
    x = float(np.asarray(value).ravel()[0])
    return x if np.isfinite(x) else None


def _updates(state: Any) -> int:
    return int(np.asarray(state.algo_state.updates).ravel()[0])


def bench_config(config: dict[str, Any], chunks: int, seed: int = 0) -> dict[str, Any]:
    """Times init, the first (compiling) chunk and ``chunks`` further chunks of one config."""
    start = time.perf_counter()
    env = marl.make_env(
        config["env"], add_agent_id=config.get("add_agent_id", True), **config.get("env_kwargs", {})
    )
    algorithm = marl.make_algorithm(
        config.get("algo", "qmix"),
        marl.env_spec(env),
        envs_per_device=config["num_envs"],
        **config["algo_config"],
    )
    runner = Runner(
        env,
        algorithm,
        envs_per_device=config["num_envs"],
        rollout_length=config["rollout_length"],
        iterations_per_chunk=config["iterations_per_chunk"],
        num_seeds=1,
        num_devices=1,
    )
    state = jax.block_until_ready(runner.init([seed]))
    init_s = time.perf_counter() - start

    start = time.perf_counter()
    state, metrics = runner.run_chunk(state)
    first_chunk_s = time.perf_counter() - start

    times, updates = [], []
    for _ in range(chunks):
        before = _updates(state)
        start = time.perf_counter()
        state, metrics = runner.run_chunk(state)
        times.append(time.perf_counter() - start)
        updates.append(_updates(state) - before)

    steps = runner.steps_per_chunk
    rates = [steps / t for t in times]
    median_chunk_s = float(np.median(times))
    return {
        "config": config,
        "steps_per_chunk": steps,
        "sequence_length": getattr(runner.algorithm, "sequence_length", None),
        "init_s": init_s,
        "first_chunk_s": first_chunk_s,
        # The first chunk minus a steady chunk: an estimate of the chunk's compile time.
        "compile_s_estimate": max(0.0, first_chunk_s - median_chunk_s),
        "chunk_s": times,
        "env_steps_per_s": summary(rates),
        "env_steps_per_s_reps": rates,
        "gradient_updates_per_chunk": updates,
        "final_env_steps": int(np.asarray(metrics.env_steps).ravel()[0]),
        # None when no episode finished during the last chunk.
        "last_chunk_episode_return": _finite(metrics.episode_return),
    }


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    """Prints env-steps/s per configuration and the quoted anchor."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Training env-steps/s (after the first, compiling chunk)")
    columns = ("config", "algo", "env", "steps/chunk", "updates/chunk", "env-steps/s (median)")
    for column in (*columns, "min-max", "first chunk s", "compile s est."):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        rate = row["env_steps_per_s"]
        table.add_row(
            name,
            row["config"].get("algo", "qmix"),
            row["config"]["env"],
            f"{row['steps_per_chunk']:,}",
            str(int(np.median(row["gradient_updates_per_chunk"]))),
            f"{rate['median']:,.0f}",
            f"{rate['min']:,.0f}-{rate['max']:,.0f}",
            f"{row['first_chunk_s']:.1f}",
            f"{row['compile_s_estimate']:.1f}",
        )
    table.add_row(
        "anchor (quoted, not re-run)",
        "qmix",
        "smax/3m",
        "-",
        "-",
        f"~{ANCHOR['env_steps_per_s']:,.0f}",
        "-",
        "-",
        f"~{ANCHOR['compile_s']:.0f}",
    )
    Console(width=180).print(table)
    print(f"anchor: {ANCHOR['name']}; {ANCHOR['note']}.")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--chunks", type=int, default=None, help="chunks timed after the first")
    parser.add_argument(
        "--configs", nargs="+", default=None, choices=[*CONFIGS, DEFAULT, *SMAC_CONFIGS]
    )
    args = parser.parse_args(argv)

    if args.quick:
        # Quick mode only checks that the script runs: compile fast, figures meaningless.
        jax.config.update("jax_disable_most_optimizations", True)
        names = args.configs or ["ci-small"]
        chunks = args.chunks or 2
    else:
        names = args.configs or [*CONFIGS, DEFAULT]
        chunks = args.chunks or 4
    configs = {}
    for name in names:
        if name == DEFAULT:
            configs[name] = marl_train_default()
        elif name in SMAC_CONFIGS:
            configs[name] = marl_train_config(SMAC_CONFIGS[name])
        else:
            configs[name] = CONFIGS[name]
    if args.quick:
        configs = {n: {**c, "iterations_per_chunk": 5} for n, c in configs.items()}

    info = machine_info()
    rows = {}
    for name, config in configs.items():
        print(f"{name}: compiling and running {chunks + 1} chunks ...", flush=True)
        rows[name] = bench_config(config, chunks)
    print_table(rows)

    payload = {
        "benchmark": "train_throughput",
        "command": command_line("train_throughput.py", argv),
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "algorithms": sorted({c.get("algo", "qmix") for c in configs.values()}),
        "settings": {
            "chunks_timed": chunks,
            "num_seeds": 1,
            "num_devices": 1,
            "xla_optimisations": "disabled (quick mode)" if args.quick else "default",
        },
        "results": rows,
        "anchor": ANCHOR,
    }
    path = write_json(result_path(args.out, "train_throughput"), payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
