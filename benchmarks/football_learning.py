"""Football learning curves: QMIX and VDN on GRF's academy scenarios, several seeds, on this CPU.

For each algorithm and scenario the script runs ``marl-train algo=<algo>
env=football/<scenario> arch.num_seeds=S`` (the seeds vmapped in one process) into
``benchmarks/runs/football_learning/<algo>/<scenario>`` with the settings below, then
reads the greedy evaluations (``eval_episodes`` episodes per seed; an episode is
"won" when the agents scored) against env steps and training wall-clock seconds. A
killed run is resumed when the script is started again. Usage::

    python benchmarks/football_learning.py                      # QMIX and VDN, four scenarios
    python benchmarks/football_learning.py --algos qmix --tasks academy_empty_goal_close
    python benchmarks/football_learning.py --algos mappo --tasks academy_3_vs_1_with_keeper \\
        --steps academy_3_vs_1_with_keeper=3000000
    python benchmarks/football_learning.py --report-only

The runs use marl-train's settings for football (``conf/family_tuned/football/``),
nothing on top: 40-step replay windows, a short exploration phase and 8 gradient
steps per rollout for the value-decomposition learners, a gradient-norm clip of 0.5
for the PPO learners (MAPPO is run on 3_vs_1 for contrast, as above); on 3_vs_1
QMIX also explores epsilon-z-greedy over 32 envs and sees egocentric observations
(``conf/tuned/football/academy_3_vs_1_with_keeper/qmix.yaml``), for 3M steps. The issue's
targets: at least 95% goals on academy_empty_goal_close and 50% on
academy_3_vs_1_with_keeper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import command_line
from learning_curves import REPO, Study, run

RUNS = REPO / "benchmarks" / "runs" / "football_learning"
SCENARIOS = (
    "academy_empty_goal_close",
    "academy_run_to_score_with_keeper",
    "academy_pass_and_shoot_with_keeper",
    "academy_3_vs_1_with_keeper",
)
STEPS = {
    "academy_empty_goal_close": 200_000,
    "academy_run_to_score_with_keeper": 500_000,
    "academy_pass_and_shoot_with_keeper": 500_000,
    "academy_3_vs_1_with_keeper": 1_000_000,
}


# QMIX on 3_vs_1 explores epsilon-z-greedy over 32 envs with egocentric observations
# (conf/tuned/football/academy_3_vs_1_with_keeper/qmix.yaml); its seeds pass 50% goals
# between 0.9M and 2.2M steps.
ALGO_STEPS = {("qmix", "academy_3_vs_1_with_keeper"): 3_000_000}


def steps(algo: str, scenario: str) -> int:
    return ALGO_STEPS.get((algo, scenario), STEPS.get(scenario, 500_000))


def eval_interval(algo: str, scenario: str) -> int:
    return min(steps(algo, scenario) // 10, 100_000)


STUDY = Study(
    "football_learning",
    "football",
    SCENARIOS,
    ("qmix", "vdn"),
    steps,
    eval_interval,
    metric="greedy goal rate",
    # The published curves were trained before the env handed control around as GRF
    # does (envs/football/control.py, now the default); they reproduce with it off.
    overrides=lambda algo, task: ("env.kwargs.control=fixed",),
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    runs: Path = RUNS  # read at call time: tests point it elsewhere
    return run(
        STUDY, runs, argv, __doc__.split("\n")[0], command_line("football_learning.py", argv)
    )


if __name__ == "__main__":
    main()
