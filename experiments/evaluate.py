"""``marl-evaluate checkpoint=RUN_DIR [episodes=N]``: greedy results of a saved run.

Reloads the run's config and latest checkpoint, plays ``episodes`` greedy
episodes per seed and prints the mean return and win rate.
"""

from __future__ import annotations

import json
import sys

import numpy as np

USAGE = "usage: marl-evaluate checkpoint=RUN_DIR [episodes=N] [json=true]"


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments; raises ValueError with one line on anything else."""
    valid = {"checkpoint", "episodes", "json"}
    args = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in valid:
            raise ValueError(f"unexpected argument '{arg}'; {USAGE}")
        args[key] = value
    if "checkpoint" not in args:
        raise ValueError(f"checkpoint is required; {USAGE}")
    if "episodes" in args and (not args["episodes"].isdigit() or int(args["episodes"]) < 1):
        raise ValueError(f"episodes must be a positive integer, got '{args['episodes']}'")
    return args


def main() -> None:
    """Entry point of ``marl-evaluate``."""
    try:
        args = parse_args(sys.argv[1:])
    except ValueError as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    from marl.train import evaluate_run

    episodes = int(args["episodes"]) if "episodes" in args else None
    try:
        result = evaluate_run(args["checkpoint"], episodes)
    except FileNotFoundError as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    returns, won = result["returns"], result["won"]
    config = result["config"]
    summary = {
        "algo": config["algo"]["name"],
        "env": config["env"]["name"],
        "chunk": int(result["chunk"]),
        "episodes_per_seed": int(returns.shape[1]),
        "return_per_seed": [float(r) for r in returns.mean(axis=1)],
        "win_rate_per_seed": [float(w) for w in won.mean(axis=1)],
        "return_mean": float(np.mean(returns)),
        "win_rate_mean": float(np.mean(won)),
    }
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    print(f"{summary['algo']} on {summary['env']} (checkpoint of chunk {summary['chunk']}):")
    for seed, (ret, win) in enumerate(
        zip(summary["return_per_seed"], summary["win_rate_per_seed"], strict=True)
    ):
        print(f"  seed {config['seed'] + seed}: mean return {ret:.3f}, win rate {win:.2f}")
    print(
        f"  all: mean return {summary['return_mean']:.3f}, win rate {summary['win_rate_mean']:.2f}"
        f" over {returns.size} greedy episodes"
    )


if __name__ == "__main__":
    main()
