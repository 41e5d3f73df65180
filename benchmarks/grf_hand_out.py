"""Which players GRF's engine hands the agents at reset and in the first steps, beside
ours.

Plays idle actions in GRF's engine (``RealFootball``) and in ours (``control="grf"``)
and prints, per episode, the players the agents drive as each engine's observation
shows them (the active player of simple115) after the reset and after each step (left
team first, the numbering of ``football/<scenario>``). ``--engine ours`` needs nothing
else; GRF's side needs the engine (``bash benchmarks/gfootball_setup.sh``; run with the
python of the venv it makes)::

    python benchmarks/grf_hand_out.py academy_3_vs_1_with_keeper academy_corner
    python benchmarks/grf_hand_out.py academy_pass_and_shoot_with_keeper --episodes 5
    python benchmarks/grf_hand_out.py academy_corner --engine ours
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.football.env import Football
from marl.envs.football.real_engine import RealFootball, require_gfootball

ACTIVE = slice(97, 108)  # simple115's one-hot of the agent's active left player


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


def ours_hand_out(scenario: str, episodes: int = 3, steps: int = 4, seed: int = 0) -> list[list]:
    """The same as :func:`hand_out` for our engine with GRF's hand-over."""
    env = Football(scenario, control="grf")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    idle = jnp.zeros((env.num_agents,), jnp.int32)
    played = []
    for episode in range(episodes):
        state, timestep = reset(jax.random.PRNGKey(seed + episode))
        seen = []
        for _ in range(steps + 1):
            active = np.asarray(timestep.observation.agents_view[:, ACTIVE]).argmax(1)
            seen.append(active.tolist())
            if bool(timestep.last()):
                break
            state, timestep = step(state, idle)
        played.append(seen)
    return played


def main(argv: list[str] | None = None) -> dict[str, list]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("both", "grf", "ours"), default="both")
    args = parser.parse_args(argv)
    engines = {"grf": hand_out, "ours": ours_hand_out}
    chosen = list(engines) if args.engine == "both" else [args.engine]
    result: dict[str, dict[str, list]] = {}
    for scenario in args.scenarios:
        for engine in chosen:
            played = engines[engine](scenario, args.episodes, args.steps, args.seed)
            result.setdefault(scenario, {})[engine] = played
            for episode, seen in enumerate(played):
                print(f"{engine} {scenario} episode {episode}: {seen}", flush=True)
    return result


if __name__ == "__main__":
    main()
