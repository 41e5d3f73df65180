"""SMAC learning curves: marl-train's recipes on smac/<map>, several seeds, on this CPU.

For each algorithm and map the script runs ``marl-train algo=<algo> env=smac/<map>
arch.num_seeds=S`` (the seeds vmapped in one process, the algorithm's defaults
otherwise: QMIX 8 envs x 20-step rollouts, the PPO learners 32 envs x 100 steps)
into ``benchmarks/runs/smac_learning/<algo>/<map>``, then reads the run's
``metrics.jsonl``: the greedy evaluations (``kind: eval``, ``eval_episodes`` episodes
per seed) against env steps and training wall-clock seconds (see
:func:`learning_curves.read_curve`). A killed run is resumed (``resume=true``) when the
script is started again. Usage::

    python benchmarks/smac_learning.py                              # QMIX on 3m, 2s3z, 5m_vs_6m
    python benchmarks/smac_learning.py --algos mappo mat cmat --maps 3m
    python benchmarks/smac_learning.py --maps 3m --steps 3m=200000  # MAP=STEPS for every algo
    python benchmarks/smac_learning.py --report-only --algos qmix mappo --maps 3m

Results go to ``benchmarks/results/smac_learning.json`` (and ``.png``); the summary
gives, per algorithm and map, the final greedy win rate per seed and the first
evaluation at which every seed reached the threshold (90% by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import command_line
from learning_curves import REPO, Study, run

RUNS = REPO / "benchmarks" / "runs" / "smac_learning"
MAPS = ("3m", "2s3z", "5m_vs_6m")
# Env steps per seed: the PPO learners need more samples than QMIX's replay.
DEFAULT_STEPS = {
    "qmix": {"3m": 200_000, "2s3z": 400_000, "5m_vs_6m": 400_000},
    "ppo": {"3m": 800_000, "2s3z": 2_000_000, "5m_vs_6m": 2_000_000},
}
DEFAULT_EVAL_INTERVAL = {
    "qmix": {"3m": 20_000, "2s3z": 40_000, "5m_vs_6m": 40_000},
    "ppo": {"3m": 80_000, "2s3z": 160_000, "5m_vs_6m": 160_000},
}


def family(algo: str) -> str:
    return "ppo" if algo in ("ippo", "mappo", "mat", "cmat") else "qmix"


def steps(algo: str, map_name: str) -> int:
    return DEFAULT_STEPS[family(algo)].get(map_name, 1_000_000)


def eval_interval(algo: str, map_name: str) -> int:
    return DEFAULT_EVAL_INTERVAL[family(algo)].get(map_name, steps(algo, map_name) // 10)


STUDY = Study("smac_learning", "smac", MAPS, ("qmix",), steps, eval_interval)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    runs: Path = RUNS  # read at call time: tests point it elsewhere
    return run(STUDY, runs, argv, __doc__.split("\n")[0], command_line("smac_learning.py", argv))


if __name__ == "__main__":
    main()
