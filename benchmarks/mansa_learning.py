"""MANSA against its four baselines on the same loop and budget: greedy win rate and
return against env steps and wall time, the fraction of steps CL acted in, and what
CL's updates cost, 3 seeds.

Every stage is ``marl-train algo=mansa`` with IL and CL from the pair (IQL with QMIX
by default), into ``benchmarks/runs/mansa_learning/<pair>/<task>/<stage>``:

* ``mansa``: the learned switch, ``algo.budget`` calls per episode;
* ``il``: IL alone (``algo.switch=never``);
* ``cl``: CL alone (``algo.switch=always algo.budget_scope=unlimited``);
* ``random``: CL with the probability of MANSA's final CL-step fraction;
* ``first_k``: CL for the first k steps of each episode, k the CL calls per episode
  MANSA ended with (at least 1).

The last two need MANSA's result first: its run, or its result already in the JSON
(``--stages`` runs some stages of a task, e.g. in another session; the JSON keeps the
stages run before). IL and CL alone run inside MANSA (each acts at
every step, the other's update sees no step of its own), so their wall time carries
both parts' acting and updates. The parts take the settings tuned for them on the
task (``experiments/conf/tuned/<env>/<algo>.yaml``) where they exist. A killed stage
resumes when the script is started again. Usage::

    python benchmarks/mansa_learning.py --tasks lbf/8x8-2p-2f-coop
    python benchmarks/mansa_learning.py --tasks smac/3m smac/2s3z
    python benchmarks/mansa_learning.py --tasks smac/3m --pair ippo mappo
    python benchmarks/mansa_learning.py --tasks smac/2s3z --stages mansa il
    python benchmarks/mansa_learning.py --tasks smac/3m --report-only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import command_line, earlier_payload, machine_info, result_path, write_json
from learning_curves import REPO, Study, marl_train, plot, read_curve, summarise

RUNS = REPO / "benchmarks" / "runs" / "mansa_learning"
STAGES = ("mansa", "il", "cl", "random", "first_k")
# Whole chunks of the tuned rollout (SMAC: 20 steps x 8 envs, so multiples of 160).
STEPS = {"lbf/8x8-2p-2f-coop": 300_000, "smac/3m": 200_000, "smac/2s3z": 320_000}
EVAL_INTERVAL = {"lbf/8x8-2p-2f-coop": 20_000, "smac/3m": 20_000, "smac/2s3z": 32_000}


def part_overrides(task: str, il: str, cl: str) -> list[str]:
    """What marl-train tunes for ``il`` and ``cl`` alone on ``task`` (their algo
    settings off their defaults, and the arch settings they change), as MANSA's
    overrides."""
    import dataclasses

    import marl

    mansa_arch = marl.tuned("mansa", task).arch
    overrides: list[str] = []
    for part, algo in (("il", il), ("cl", cl)):
        config = marl.tuned(algo, task)
        defaults = marl.algorithm_options(algo)
        for field in dataclasses.fields(config.algo):
            value = getattr(config.algo, field.name)
            if value != getattr(defaults, field.name):
                overrides.append(f"algo.{part}_options.{field.name}={value}")
        for field in dataclasses.fields(config.arch):
            value = getattr(config.arch, field.name)
            setting = f"arch.{field.name}={value}"
            if value != getattr(mansa_arch, field.name) and setting not in overrides:
                overrides.append(setting)
    return overrides


def final_train_metric(run_dir: Path, name: str) -> list[float]:
    """``name`` of the last training record of every seed."""
    last: dict[int, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "train" and name in record:
            last[record["seed"]] = record[name]
    return [last[seed] for seed in sorted(last)]


def mansa_rates(mansa_dir: Path, earlier: dict[str, Any] | None) -> tuple[list[float], list[float]]:
    """MANSA's final CL-step fraction and CL calls per episode, per seed: from its run,
    else from its result in the JSON (the stage ran in another session)."""
    if (mansa_dir / "metrics.jsonl").exists():
        return (
            final_train_metric(mansa_dir, "cl_step_fraction"),
            final_train_metric(mansa_dir, "cl_calls_per_episode"),
        )
    if earlier is not None:
        summary = earlier["summary"]
        return summary["cl_step_fraction_per_seed"], summary["cl_calls_per_episode_per_seed"]
    raise SystemExit(
        f"mansa_learning: the random and first_k stages take MANSA's CL rate, and there is "
        f"no MANSA run in {mansa_dir} nor a MANSA result in the JSON: run --stages mansa first"
    )


def stage_overrides(stage: str, fractions: list[float], calls: list[float]) -> list[str]:
    """The stage's switch, given MANSA's final CL-step fraction and calls per episode."""
    if stage == "mansa":
        return ["algo.switch=learned"]
    if stage == "il":
        return ["algo.switch=never"]
    if stage == "cl":
        return ["algo.switch=always", "algo.budget_scope=unlimited"]
    if stage == "random":
        rate = min(max(sum(fractions) / len(fractions), 1e-3), 1.0)
        return ["algo.switch=random", f"algo.cl_rate={rate:.4f}"]
    first_k = max(round(sum(calls) / len(calls)), 1)
    return ["algo.switch=first_k", f"algo.first_k={first_k}"]


def run_task(
    task: str,
    pair: tuple[str, str],
    seeds: int,
    report_only: bool,
    steps: int | None = None,
    runs_root: Path = RUNS,
    stages: tuple[str, ...] = STAGES,
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs (or, with ``report_only``, reads) ``stages`` of ``task``; ``earlier`` is the
    task's stages already in the JSON."""
    il, cl = pair
    runs = runs_root / f"{il}_{cl}" / task
    steps = steps or STEPS.get(task, 300_000)
    common = [
        "algo=mansa",
        f"algo.il={il}",
        f"algo.cl={cl}",
        f"env={task}",
        f"arch.num_seeds={seeds}",
        f"arch.total_timesteps={steps}",
        f"arch.eval_interval={min(EVAL_INTERVAL.get(task, 20_000), steps)}",
        *part_overrides(task, il, cl),
    ]
    results: dict[str, Any] = {}
    earlier = earlier or {}
    for stage in stages:
        run_dir = runs / stage
        if not report_only:
            rates = ([], [])
            if stage in ("random", "first_k"):
                mansa = results.get("mansa", earlier.get("mansa"))
                rates = mansa_rates(runs / "mansa", mansa)
            marl_train(run_dir, [*common, *stage_overrides(stage, *rates)])
        if not (run_dir / "metrics.jsonl").exists():
            print(f"{task} {stage}: no run in {run_dir}; left out", flush=True)
            continue
        curve = read_curve(run_dir)
        if not curve["evaluations"]:
            continue
        summary = summarise(curve, 0.9)
        summary["cl_step_fraction_per_seed"] = final_train_metric(run_dir, "cl_step_fraction")
        summary["cl_calls_per_episode_per_seed"] = final_train_metric(
            run_dir, "cl_calls_per_episode"
        )
        results[stage] = {**curve, "summary": summary}
        wins = ", ".join(f"{w:.2f}" for w in summary["final_win_rate_per_seed"])
        fractions = ", ".join(f"{f:.2f}" for f in summary["cl_step_fraction_per_seed"])
        print(
            f"{task} {stage}: greedy win rate per seed {wins} at {summary['final_step']:,} "
            f"steps ({summary['final_wall_s'] / 60:.1f} min); CL steps {fractions}",
            flush=True,
        )
    return results


def cl_compute(
    stages: dict[str, Any], costs: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Per stage, what CL's updates would cost if CL trained only in proportion to the
    steps it acted in (its update's FLOPs and seconds times the stage's mean final CL
    step fraction), and the share saved against CL at every step. Inside one compiled
    run both parts update at every rollout, so this is an estimate, not a timing."""
    estimates = {}
    for stage, result in stages.items():
        fractions = result["summary"]["cl_step_fraction_per_seed"]
        if not fractions:
            continue
        fraction = sum(fractions) / len(fractions)
        estimates[stage] = {
            "cl_step_fraction": fraction,
            "cl_gflop_per_update": costs["cl"]["flops"] * fraction / 1e9,
            "cl_ms_per_update": costs["cl"]["seconds"] * fraction * 1e3,
            "saved_against_cl_everywhere": 1.0 - fraction,
        }
    return estimates


def measure_costs(task: str, pair: tuple[str, str]) -> dict[str, dict[str, float]]:
    """Each part's update cost on ``task`` with marl-train's default sizes."""
    import jax

    import marl
    from marl.algorithms.mansa import update_costs

    env = marl.make_env(task)
    il, cl = pair
    learner = marl.make_algorithm("mansa", marl.env_spec(env), 8, il=il, cl=cl)
    return update_costs(learner, env, 20, jax.random.PRNGKey(0))


def keep_earlier(earlier: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """``results`` on top of ``earlier``: other tasks are kept, and so are a task's
    stages this invocation did not run (tasks and stages run in separate sessions)."""
    merged = dict(earlier)
    for task, result in results.items():
        stages = {**earlier.get(task, {}).get("stages", {}), **result["stages"]}
        merged[task] = {**earlier.get(task, {}), **result, "stages": stages}
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["lbf/8x8-2p-2f-coop"])
    parser.add_argument("--pair", nargs=2, default=["iql", "qmix"], metavar=("IL", "CL"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="read finished runs")
    parser.add_argument("--out", default=None, help="the JSON's path")
    parser.add_argument("--steps", type=int, default=None, help="env steps per stage")
    parser.add_argument("--runs", default=str(RUNS), help="where the runs go")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run"
    )
    args = parser.parse_args(argv)
    pair = (args.pair[0], args.pair[1])
    name = f"mansa_learning_{pair[0]}_{pair[1]}"
    earlier = earlier_payload(result_path(args.out, name), name).get("results", {})
    results = {}
    for task in args.tasks:
        stages = run_task(
            task,
            pair,
            args.seeds,
            args.report_only,
            args.steps,
            Path(args.runs),
            tuple(args.stages),
            earlier.get(task, {}).get("stages"),
        )
        results[task] = {
            "stages": stages,
            "update_costs": measure_costs(task, pair),
            # Tasks run in separate invocations share the JSON: each keeps its own.
            "measured": {
                "command": command_line("mansa_learning.py", argv),
                "machine": machine_info(),
            },
        }
        costs = results[task]["update_costs"]
        print(
            f"{task}: one update of {pair[0]} {costs['il']['flops'] / 1e9:.2f} GFLOP "
            f"({costs['il']['seconds'] * 1e3:.0f} ms), of {pair[1]} "
            f"{costs['cl']['flops'] / 1e9:.2f} GFLOP ({costs['cl']['seconds'] * 1e3:.0f} ms)",
            flush=True,
        )
    results = keep_earlier(earlier, results)
    for task in args.tasks:  # over every stage of the task, those run before included
        results[task]["cl_compute"] = cl_compute(
            results[task]["stages"], results[task]["update_costs"]
        )
    payload = {
        "benchmark": name,
        "command": command_line("mansa_learning.py", argv),
        "machine": machine_info(),
        "settings": {"seeds": args.seeds, "pair": list(pair), "steps": STEPS},
        "results": results,
    }
    path = write_json(result_path(args.out, name), payload)
    by_stage: dict[str, dict[str, Any]] = {}
    for task, result in results.items():
        for stage, curve in result["stages"].items():
            by_stage.setdefault(stage, {})[task] = curve
    if by_stage:
        for value, metric, suffix in (
            ("win_rate", "greedy win rate", ""),
            ("return", "greedy return", "_return"),
        ):
            study = Study(
                name=f"MANSA ({pair[0]}+{pair[1]})",
                family="",
                tasks=list(results),
                default_algos=STAGES,
                steps=lambda algo, task: 0,
                eval_interval=lambda algo, task: 0,
                metric=metric,
                value=value,
            )
            plot(by_stage, path.with_name(f"{path.stem}{suffix}.png"), study)
    return payload


if __name__ == "__main__":
    main()
