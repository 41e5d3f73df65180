"""Ranking trained SMAC 3m teams by playing them against each other (alpha-Rank, Elo).

The population is every seed of the SMAC learning runs on 3m
(``benchmarks/runs/smac_learning/<algo>/3m``, trained by
``benchmarks/smac_learning.py``; the script trains the missing ones first): QMIX, VDN
and QPLEX (200k steps), MAPPO and CMAT (400k), 3 seeds each. Teams play greedy
matches, one on each side of 3m (half of each pair's matches with the sides swapped),
until ResponseGraphUCB knows every pair's winner with confidence ``1 - delta`` or the
pair has played ``--max-matches``; alpha-Rank (alpha 100, m 50) ranks the teams and
Elo (Bradley-Terry) stands beside it, both with 90% posterior intervals
(:func:`marl.matches.rank_teams`). ``--uniform`` also plays the same ranking with
uniform sampling, to count the matches adaptivity saves.

Usage::

    python benchmarks/ranking.py                 # trains what is missing, then ranks
    python benchmarks/ranking.py --uniform       # and the uniform-sampling baseline
    python benchmarks/ranking.py --algos qmix vdn --seeds 2

Results go to ``benchmarks/results/ranking.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import command_line, machine_info, result_path, write_json

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "benchmarks" / "runs" / "smac_learning"
ALGOS = ("qmix", "vdn", "qplex", "mappo", "cmat")
STEPS = {"qmix": 200_000, "vdn": 200_000, "qplex": 200_000}  # the PPO family: 400k


def ensure_runs(algos: list[str]) -> list[Path]:
    """The 3m run of every algorithm, trained (or resumed) when it has not finished."""
    runs = []
    for algo in algos:
        run_dir = RUNS / algo / "3m"
        steps = STEPS.get(algo, 400_000)
        if not _finished(run_dir, steps):
            subprocess.run(
                [sys.executable, str(REPO / "benchmarks" / "smac_learning.py"), "--algos",
                 algo, "--maps", "3m", "--steps", f"3m={steps}"],
                check=True,
            )  # fmt: skip
        runs.append(run_dir)
    return runs


def _finished(run_dir: Path, steps: int) -> bool:
    import json

    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return False
    done = 0
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "eval":
            done = max(done, int(record["step"]))
    return done >= steps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds per run (the first S)")
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--matches-per-round", type=int, default=8)
    parser.add_argument("--max-matches", type=int, default=200)
    parser.add_argument("--uniform", action="store_true", help="also rank with uniform sampling")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    runs = ensure_runs(args.algos)
    from marl.compile_cache import enable_compile_cache
    from marl.matches import load_teams, rank_teams

    enable_compile_cache("benchmarks")
    teams = []
    for run_dir, algo in zip(runs, args.algos, strict=True):
        teams.extend(load_teams(run_dir, name=algo, seeds=list(range(args.seeds))))
    settings = {
        "delta": args.delta,
        "matches_per_round": args.matches_per_round,
        "max_matches_per_pair": args.max_matches,
    }
    results = {"adaptive": rank_teams(teams, adaptive=True, **settings)}
    if args.uniform:
        results["uniform"] = rank_teams(teams, adaptive=False, **settings)
    payload = {
        "benchmark": "ranking",
        "command": command_line("ranking.py", argv),
        "machine": machine_info(),
        "runs": {
            algo: str(run.relative_to(REPO)) for algo, run in zip(args.algos, runs, strict=True)
        },
        "settings": settings,
        **results,
    }
    path = write_json(result_path(args.out, "ranking"), payload)
    for name, result in results.items():
        unresolved = sum(not r for row in result["resolved"] for r in row) // 2
        print(
            f"{name}: {len(teams)} teams, {result['matches']} matches in {result['rounds']} "
            f"rounds, {result['seconds']:.0f} s; {unresolved} pairs unresolved"
        )
        print(result["table"])
    print(f"results in {path}")
    return payload


if __name__ == "__main__":
    main()
