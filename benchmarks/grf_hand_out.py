"""Which players GRF's engine hands the agents at reset and in the first steps.

Plays idle actions in GRF's engine (``RealFootball``) and prints, per episode, the
players the agents drive after the reset and after each step (left team first, the
numbering of ``football/<scenario>``). Needs the engine (``bash
benchmarks/gfootball_setup.sh``; run with the python of the venv it makes)::

    python benchmarks/grf_hand_out.py academy_3_vs_1_with_keeper academy_corner
    python benchmarks/grf_hand_out.py academy_pass_and_shoot_with_keeper --episodes 5
"""

from __future__ import annotations

import argparse

import numpy as np

from marl.envs.football.real_engine import RealFootball, require_gfootball


def hand_out(scenario: str, episodes: int = 3, steps: int = 4, seed: int = 0) -> list[list]:
    """Per episode, the driven players after the reset and after each of ``steps`` idle
    steps (lists of player indices, agent order)."""
    require_gfootball()
    env = RealFootball(scenario, seed=seed)
    played = []
    try:
        for _ in range(episodes):
            _, _, snapshot = env.reset()
            seen = [snapshot.controlled.tolist()]
            for _ in range(steps):
                _, _, snapshot, _, done, _ = env.step(np.zeros(env.num_agents, np.int64))
                seen.append(snapshot.controlled.tolist())
                if done:
                    break
            played.append(seen)
    finally:
        env.close()
    return played


def main(argv: list[str] | None = None) -> dict[str, list]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = {}
    for scenario in args.scenarios:
        result[scenario] = hand_out(scenario, args.episodes, args.steps, args.seed)
        for episode, seen in enumerate(result[scenario]):
            print(f"{scenario} episode {episode}: {seen}", flush=True)
    return result


if __name__ == "__main__":
    main()
