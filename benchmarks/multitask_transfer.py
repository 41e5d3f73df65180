"""Shared-layer multitask pre-training, then transfer to a held-out task against the
same network from scratch: greedy win rate against env steps and wall time, 3 seeds.

Four runs of ``marl-train algo=mt_vdn arch.num_seeds=S`` per family, into
``benchmarks/runs/multitask_transfer/<family>/<stage>``:

* ``pretrain``: the pre-training set in one program (SMAC: ``multitask/smac_cpu``,
  3m, 8m and 2s3z; football: the paper's academy set without the held-out task);
* ``scratch``: the held-out task alone, fresh decision layers;
* ``frozen``: the held-out task, decision layers from ``pretrain`` and kept
  (``algo.init_from``, ``algo.transfer=frozen``: the paper's default);
* ``finetune``: the same, the decision layers trained at a tenth of the rate.

Every seed of a transfer run starts from the pre-training run's first seed's decision
layers (what ``algo.init_from`` loads), so the transfer seeds differ in their
perception layers, mixers and data, not in what they inherit. After pre-training the
script exports those layers to ``benchmarks/results/multitask_transfer_<family>_
decision.msgpack`` (a few kilobytes, kept in git), and the transfer stages start from
that file when the pre-training run is not there: ``--stages`` runs some stages, e.g.
pre-training in one session and the transfers in another; the JSON keeps the stages
run before. A killed run resumes when the script is started again. Usage::

    python benchmarks/multitask_transfer.py --family smac
    python benchmarks/multitask_transfer.py --family football
    python benchmarks/multitask_transfer.py --family smac --stages pretrain scratch
    python benchmarks/multitask_transfer.py --family smac --report-only
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import command_line, earlier_payload, machine_info, result_path, write_json
from learning_curves import REPO, Study, marl_train, plot, read_curve, summarise

RUNS = REPO / "benchmarks" / "runs" / "multitask_transfer"
ALGO = "mt_vdn"
TRANSFER_STAGES = ("scratch", "frozen", "finetune")
STAGES = ("pretrain", *TRANSFER_STAGES)
PRETRAIN_LABEL = "pretrain (all tasks in one program)"  # its key in the JSON


def _task_list(names: list[str]) -> str:
    return "[" + ",".join(f"{{name:{name}}}" for name in names) + "]"


FAMILIES: dict[str, dict[str, Any]] = {
    "smac": {
        "pretrain": ["env=multitask/smac_cpu"],
        "pretrain_tasks": ["smac/3m", "smac/8m", "smac/2s3z"],
        "held_out": "smac/3s5z",
        "pretrain_steps": 300_000,
        "transfer_steps": 300_000,
        "eval_interval": 30_000,
        # For every stage alike: the CPU-sized width (conf/tuned/multitask/smac_cpu/);
        # one update per 8 envs x 40 steps, near the paper's one update per 8 episodes
        # per task (these maps' episodes last 25-80 steps), where marl-train's default
        # 8 x 20 updates two to four times as often; windows of 40 steps instead of
        # whole episodes (up to 150 steps on 3s5z). The learner runs its GRU once per
        # candidate action: with the defaults, 3 seeds of the set had not finished their
        # first 30k steps after 33 minutes (beside another run); these two settings cut
        # the cost per env step about 6x.
        "overrides": [
            "algo.hidden_dim=64",
            "arch.rollout_length=40",
            "algo.sequence_length=40",
        ],
    },
    "football": {
        "pretrain": [
            "env=multitask/football",
            "env.tasks="
            + _task_list(
                [
                    "football/academy_3_vs_1_with_keeper",
                    "football/academy_counterattack_easy",
                    "football/academy_run_to_score_with_keeper",
                ]
            ),
        ],
        "pretrain_tasks": [
            "football/academy_3_vs_1_with_keeper",
            "football/academy_counterattack_easy",
            "football/academy_run_to_score_with_keeper",
        ],
        "held_out": "football/academy_run_pass_and_shoot_with_keeper",
        "pretrain_steps": 200_000,
        "transfer_steps": 200_000,
        "eval_interval": 20_000,
        # CPU-sized, for every stage alike: width 64 (the paper's is 256), 40-step
        # rollouts and windows, and 2 gradient steps per 8 envs x 40 steps, a quarter of
        # football's family rate for the value-decomposition learners. The learner runs
        # its GRU once per candidate action, 19 on football: with 4 gradient steps per
        # rollout, 3 seeds of the three-task set trained at 15 env steps/s beside two
        # other runs.
        "overrides": [
            "algo.hidden_dim=64",
            "arch.rollout_length=40",
            "algo.sequence_length=40",
            "algo.updates_per_rollout=2",
        ],
    },
}


def _marl_train(run_dir: Path, overrides: list[str]) -> None:
    marl_train(run_dir, [f"algo={ALGO}", *overrides])


def decision_file(family: str, out: Path | None = None) -> Path:
    """Where the pre-trained decision layers of ``family`` are kept (beside the JSON)."""
    directory = out.parent if out is not None else REPO / "benchmarks" / "results"
    return directory / f"multitask_transfer_{family}_decision.msgpack"


def export_decision_layers(pretrain_dir: Path, path: Path) -> Path:
    """Writes the pre-training run's decision layers (every seed) to ``path``."""
    from marl.algorithms.value_decomposition.multitask import DECISION
    from marl.checkpoint import export_params

    path.parent.mkdir(parents=True, exist_ok=True)
    export_params(pretrain_dir, path, groups=[DECISION])
    return path


def transfer_source(pretrain_dir: Path, exported: Path) -> Path:
    """What the transfer stages load: the pre-training run, else its exported layers."""
    if (pretrain_dir / "checkpoints").is_dir():
        return pretrain_dir
    if exported.is_file():
        return exported
    raise SystemExit(
        f"multitask_transfer: frozen and finetune start from the pre-trained decision "
        f"layers, and there is no pre-training run in {pretrain_dir} nor {exported}: run "
        "--stages pretrain first"
    )


def run_family(
    family: str,
    seeds: int,
    report_only: bool,
    stages: tuple[str, ...] = STAGES,
    exported: Path | None = None,
) -> dict[str, Any]:
    """Runs (or, with ``report_only``, reads) ``stages`` of ``family``; the pre-trained
    decision layers are exported to (or, without the run, read from) ``exported``."""
    setup = FAMILIES[family]
    runs = RUNS / family
    exported = exported or decision_file(family)
    common = [f"arch.num_seeds={seeds}", f"arch.eval_interval={setup['eval_interval']}"]
    common += setup["overrides"]
    pretrain_dir = runs / "pretrain"
    if not report_only:
        if "pretrain" in stages:
            _marl_train(
                pretrain_dir,
                [*setup["pretrain"], *common, f"arch.total_timesteps={setup['pretrain_steps']}"],
            )
            print(f"wrote {export_decision_layers(pretrain_dir, exported)}", flush=True)
        for stage in TRANSFER_STAGES:
            if stage not in stages:
                continue
            transfer = (
                []
                if stage == "scratch"
                else [
                    f"algo.init_from={transfer_source(pretrain_dir, exported)}",
                    f"algo.transfer={stage}",
                ]
            )
            _marl_train(
                runs / stage,
                [
                    f"env={setup['held_out']}",
                    *common,
                    *transfer,
                    f"arch.total_timesteps={setup['transfer_steps']}",
                ],
            )
    results: dict[str, dict[str, Any]] = {}
    for task in setup["pretrain_tasks"] if "pretrain" in stages else []:
        if (pretrain_dir / "metrics.jsonl").exists():
            curve = read_curve(pretrain_dir, task)
            if curve["evaluations"]:
                results.setdefault(PRETRAIN_LABEL, {})[task] = {
                    **curve,
                    "summary": summarise(curve, 0.9),
                }
    held_out = setup["held_out"]
    for stage in TRANSFER_STAGES:
        if stage not in stages:
            continue
        run_dir = runs / stage
        if not (run_dir / "metrics.jsonl").exists():
            print(f"{stage}: no run in {run_dir}; left out", flush=True)
            continue
        curve = read_curve(run_dir)
        if curve["evaluations"]:
            results.setdefault(stage, {})[held_out] = {**curve, "summary": summarise(curve, 0.9)}
    for stage, per_task in results.items():
        for task, result in per_task.items():
            s = result["summary"]
            wins = ", ".join(f"{w:.2f}" for w in s["final_win_rate_per_seed"])
            print(
                f"{stage} {task}: greedy win rate per seed {wins} at {s['final_step']:,} steps "
                f"({s['final_wall_s'] / 60:.1f} min); all seeds >= 90% from "
                f"{s['all_seeds_at_threshold_step']}",
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="smac")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="read finished runs")
    parser.add_argument("--out", default=None, help="the JSON's path (the PNG goes beside)")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run"
    )
    args = parser.parse_args(argv)
    name = f"multitask_transfer_{args.family}"
    out = result_path(args.out, name)
    results = run_family(
        args.family,
        args.seeds,
        args.report_only,
        tuple(args.stages),
        decision_file(args.family, Path(args.out) if args.out else None),
    )
    results = {**earlier_payload(out, name).get("results", {}), **results}
    payload = {
        "benchmark": name,
        "command": command_line("multitask_transfer.py", argv),
        "machine": machine_info(),
        "settings": {"seeds": args.seeds, "algo": ALGO, **FAMILIES[args.family]},
        "results": results,
    }
    path = write_json(out, payload)
    print(f"wrote {path}")
    if results:
        # Task names carry their family already ("smac/3m"): no family prefix.
        study = Study(name, "", [], [], lambda a, t: 0, lambda a, t: 0)
        print(f"wrote {plot(results, Path(path).with_suffix('.png'), study)}")
    return payload


if __name__ == "__main__":
    main()
