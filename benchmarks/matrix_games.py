"""Value-decomposition methods on the matrix games of their papers.

Every registered value-decomposition method (IQL, VDN, QMIX, QPLEX, CW-QMIX,
OW-QMIX, QTRAN) is trained on

* ``one_step``: the non-monotonic payoff ``[[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]``
  (QTRAN's game, used again by weighted QMIX and QPLEX), and
* ``two_step``: QMIX's two-step game (optimum 8 through state 2B; 7 through 2A),

over several vmapped seeds, as in the papers: uniform exploration throughout
(epsilon = 1), one-step targets (``td_lambda = 0``) and otherwise each method's
defaults. For every method, game and seed it records the payoff of the greedy
joint action and the learned joint value ``Q_tot`` (QTRAN: ``Q_jt``) of the
optimal joint action in the first state, and prints them beside what the papers
report. Usage::

    python benchmarks/matrix_games.py                 # 5 seeds, every method, both games
    python benchmarks/matrix_games.py --seeds 10 --algos qmix,qplex --games one_step
    python benchmarks/matrix_games.py --quick         # a short budget, for testing the script
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from common import machine_info, result_path, write_json

import marl
from marl.loop import Runner
from marl.registry import algorithm_options_class

ALGORITHMS = ("iql", "vdn", "qmix", "qplex", "cw_qmix", "ow_qmix", "qtran")


@dataclass(frozen=True)
class Game:
    env: str
    optimal_joint_action: tuple[int, int]  # in the first state
    optimal_payoff: float
    discount_steps: int  # steps from the first state to the optimal payoff


GAMES = {
    "one_step": Game("matrix/one_step", (0, 0), 8.0, 0),
    "two_step": Game("matrix/two_step", (1, 1), 8.0, 1),
}

# What the papers report (uniform data). "optimal" means the greedy joint action
# earns the game's optimum; the Q column gives the paper's learned value at the
# optimum where it states one.
PAPER: dict[tuple[str, str], tuple[str, str]] = {
    ("one_step", "vdn"): ("suboptimal", "Son et al. 2019, Rashid et al. 2020"),
    ("one_step", "qmix"): ("suboptimal", "Son et al. 2019, Rashid et al. 2020"),
    ("one_step", "qtran"): ("optimal, Q_jt = 8", "Son et al. 2019"),
    ("one_step", "cw_qmix"): ("optimal, Q_tot = 8", "Rashid et al. 2020"),
    ("one_step", "ow_qmix"): ("optimal, Q_tot = 8", "Rashid et al. 2020"),
    ("one_step", "qplex"): ("optimal", "Wang et al. 2021"),
    ("two_step", "vdn"): ("7 (state 2A)", "Rashid et al. 2018"),
    ("two_step", "qmix"): ("8 (state 2B)", "Rashid et al. 2018"),
}

# The papers' protocol: uniform data and one-step targets (TD(lambda) on uniform
# data would bootstrap towards the random policy's returns).
TRAINING: dict[str, Any] = {
    "td_lambda": 0.0,
    "epsilon_start": 1.0,
    "epsilon_finish": 1.0,
    "batch_size": 32,
    "buffer_size": 2_000,
    "target_update_interval": 10,
}
NUM_ENVS = 8
ROLLOUT_LENGTH = 4


class MatrixRun(NamedTuple):
    runner: Runner
    env: Any
    state: Any  # the runner's state after training
    payoff_history: list[list[float]]  # [checkpoint][seed] greedy payoff


def train_matrix_game(
    algorithm: str,
    game: str,
    seeds: list[int],
    iterations: int,
    checkpoints: int = 1,
    overrides: dict[str, Any] | None = None,
) -> MatrixRun:
    """Trains ``algorithm`` on ``game`` for every seed at once (vmapped).

    ``iterations`` counts (rollout, update) iterations of ``NUM_ENVS x ROLLOUT_LENGTH``
    env-steps and one gradient step each; the greedy payoff is measured after
    each of ``checkpoints`` equal parts of them.
    """
    if iterations % checkpoints:
        raise ValueError(f"iterations ({iterations}) must divide into {checkpoints} checkpoints")
    env = marl.make_env(GAMES[game].env)
    learner = marl.make_algorithm(
        algorithm, marl.env_spec(env), envs_per_device=NUM_ENVS, **TRAINING, **(overrides or {})
    )
    runner = Runner(
        env,
        learner,
        envs_per_device=NUM_ENVS,
        rollout_length=ROLLOUT_LENGTH,
        iterations_per_chunk=iterations // checkpoints,
        num_seeds=len(seeds),
        num_devices=1,
    )
    state = runner.init(seeds)
    history = []
    for _ in range(checkpoints):
        state, _ = runner.run_chunk(state)
        returns, _ = runner.evaluate(state, 1, jax.random.PRNGKey(0))
        history.append(returns[:, 0].tolist())
    return MatrixRun(runner, env, state, history)


def summarise(run: MatrixRun, game: str) -> dict[str, Any]:
    """Per seed: the final greedy payoff (and its history), ``Q_tot`` at the optimal
    joint action and, for every joint action of the first state, ``Q_tot`` (``[S, A, A]``)."""
    q_table = first_state_values(run.runner, run.env, run.state)
    optimum = GAMES[game].optimal_joint_action
    return {
        "greedy_payoff": run.payoff_history[-1],
        "payoff_history": run.payoff_history,
        "q_at_optimum": q_table[(slice(None), *optimum)].tolist(),
        "q_table": q_table.tolist(),
    }


def first_state_values(runner: Runner, env: Any, state: Any) -> np.ndarray:
    """Every seed's learned joint value of every joint action in the first state:
    ``[S, A, A]`` (for IQL, the mean of the agents' own values)."""
    num_actions = runner.env_spec.num_actions
    joint_actions = jnp.asarray(list(itertools.product(range(num_actions), repeat=2)), jnp.int32)
    _, timestep = env.reset(jax.random.PRNGKey(0))
    obs = jax.tree_util.tree_map(
        lambda x: jnp.repeat(x[None], joint_actions.shape[0], axis=0), timestep.observation
    )
    params = jax.tree_util.tree_map(lambda x: x[0], state.algo_state.params)  # device 0

    def values(seed_params):
        joint = runner.algorithm.joint_values(seed_params, obs, joint_actions)
        return joint.mean(-1).reshape(num_actions, num_actions)

    return np.asarray(jax.jit(jax.vmap(values))(params))


def settled_at(history: list[list[float]], optimum: float, interval: int) -> str:
    """The iterations after which every seed's greedy payoff stays optimal, or "never"."""
    optimal = np.all(np.asarray(history) == optimum, axis=1)
    if not optimal[-1]:
        return "never"
    last_miss = np.flatnonzero(~optimal)
    first = 0 if last_miss.size == 0 else int(last_miss[-1]) + 1
    return f"{(first + 1) * interval:,}"


def format_table(results: dict[str, dict[str, dict[str, Any]]], gamma: float, interval: int) -> str:
    """A Markdown table: greedy payoff (optimal seeds), when all seeds settled on the
    optimum, ``Q_tot`` at the optimum, and the papers' result."""
    lines = [
        "| game | method | greedy payoff, mean (seeds optimal) | all seeds optimal from "
        "(updates) | Q_tot at the optimum, mean ± sd (true value) | paper |",
        "|---|---|---|---|---|---|",
    ]
    for game, by_algo in results.items():
        spec = GAMES[game]
        true_value = spec.optimal_payoff * gamma**spec.discount_steps
        for algorithm, result in by_algo.items():
            payoff = np.asarray(result["greedy_payoff"])
            q = np.asarray(result["q_at_optimum"])
            optimal = int(np.sum(payoff == spec.optimal_payoff))
            paper, source = PAPER.get((game, algorithm), ("not reported", ""))
            paper_cell = f"{paper} ({source})" if source else paper
            lines.append(
                f"| {game} | {algorithm} | {payoff.mean():.2f} ({optimal}/{payoff.size}) "
                f"| {settled_at(result['payoff_history'], spec.optimal_payoff, interval)} "
                f"| {q.mean():.2f} ± {q.std():.2f} ({true_value:.2f}) | {paper_cell} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per method and game")
    parser.add_argument("--algos", default=",".join(ALGORITHMS), help="comma-separated methods")
    parser.add_argument("--games", default=",".join(GAMES), help="comma-separated games")
    parser.add_argument(
        "--iterations", type=int, default=10_000, help="iterations (one update each) per run"
    )
    parser.add_argument(
        "--checkpoints", type=int, default=10, help="greedy evaluations along the run"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 100 iterations")
    parser.add_argument("--out", default=None, help="result JSON path")
    args = parser.parse_args(argv)

    algorithms = [a for a in args.algos.split(",") if a]
    games = [g for g in args.games.split(",") if g]
    for name in algorithms:
        if name not in ALGORITHMS:
            parser.error(f"--algos: unknown method '{name}'; valid: {', '.join(ALGORITHMS)}")
    for name in games:
        if name not in GAMES:
            parser.error(f"--games: unknown game '{name}'; valid: {', '.join(GAMES)}")
    if args.quick:
        num_seeds, iterations, checkpoints = 2, 100, 2
    else:
        num_seeds, iterations, checkpoints = args.seeds, args.iterations, args.checkpoints
    if iterations % checkpoints:
        parser.error(f"--iterations {iterations} is not a multiple of --checkpoints {checkpoints}")
    seeds = list(range(num_seeds))

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for game in games:
        results[game] = {}
        for algorithm in algorithms:
            start = time.perf_counter()
            run = train_matrix_game(algorithm, game, seeds, iterations, checkpoints)
            result = summarise(run, game)
            result["wall_seconds"] = time.perf_counter() - start
            results[game][algorithm] = result
            print(
                f"{game:9s} {algorithm:8s} payoff {result['greedy_payoff']} "
                f"Q_tot(opt) {np.round(result['q_at_optimum'], 2).tolist()} "
                f"[{result['wall_seconds']:.0f} s]",
                flush=True,
            )
    gamma = algorithm_options_class("qmix")().gamma
    table = format_table(results, gamma, iterations // checkpoints)
    print(table)
    payload = {
        "machine": machine_info(),
        "protocol": {
            "training": TRAINING,
            "num_envs": NUM_ENVS,
            "rollout_length": ROLLOUT_LENGTH,
            "iterations": iterations,
            "checkpoints": checkpoints,
            "env_steps": iterations * NUM_ENVS * ROLLOUT_LENGTH,
            "seeds": seeds,
        },
        "results": results,
        "table": table,
    }
    path = write_json(result_path(args.out, "matrix_games"), payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
