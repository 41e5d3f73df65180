"""A smoke test of an installed marl-lab, run from a directory outside the repo.

Used by ``.ci/floors`` (every dependency at its declared floor) and by the wheel
test (``tests/test_cli.py``): the installed package must be the one imported, each
environment family must reset and step under jit, and ``marl-train`` must train
two learners (value-based and policy-gradient) for a few hundred steps and
``marl-evaluate`` reload what they wrote. Families of an optional extra that is
not installed (jaxmarl's) are skipped and said so.

    python smoke.py [--quick]      # --quick: one marl-train run, no env families
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile

TASKS = {
    "matrix": "matrix/two_step",
    "lbf": "lbf/5x5-2p-1f",
    "rware": "rware/tiny-2ag",
    "smac": "smac/3m",
    "smacv2": "smacv2/terran_5_vs_5",
    "football": "football/academy_empty_goal_close",
    "smax": "smax/3m",
    "mpe": "mpe/simple_spread_v3",
}
OPTIONAL = {"smax": "jaxmarl", "mpe": "jaxmarl"}
TINY = [
    "arch.total_timesteps=512",
    "arch.eval_interval=256",
    "arch.eval_episodes=4",
    "arch.num_devices=1",
    "logger=quiet",
]


def check_installed_copy() -> None:
    import marl

    location = pathlib.Path(marl.__file__).resolve()
    here = pathlib.Path(__file__).resolve().parent.parent
    if here in location.parents:
        sys.exit(f"smoke: marl imported from the source tree ({location}), not an install")
    print(f"smoke: marl {marl.__version__} from {location.parent}")


def check_env_families() -> None:
    import importlib.util

    import jax
    import jax.numpy as jnp

    from marl.registry import make_env

    for family, task in TASKS.items():
        extra = OPTIONAL.get(family)
        if extra and importlib.util.find_spec(extra) is None:
            print(f"smoke: {family} skipped ({extra} is not installed)")
            continue
        env = make_env(task)
        state, timestep = jax.jit(env.reset)(jax.random.PRNGKey(0))
        action = jnp.argmax(timestep.observation.action_mask, axis=-1)
        state, timestep = jax.jit(env.step)(state, action)
        assert bool(jnp.all(jnp.isfinite(timestep.reward))), task
        print(f"smoke: {task} resets and steps")


def train_and_evaluate(bin_dir: pathlib.Path, work: pathlib.Path, algo: str, env: str) -> None:
    run_dir = work / f"{algo}-run"
    extra = ["algo.batch_size=16", "arch.rollout_length=2"] if algo == "qmix" else []
    train = subprocess.run(
        [str(bin_dir / "marl-train"), f"algo={algo}", f"env={env}", *TINY, *extra,
         f"run_dir={run_dir}"],
        cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    if train.returncode != 0:
        sys.exit(f"smoke: marl-train {algo} on {env} failed:\n{train.stderr[-3000:]}")
    evaluate = subprocess.run(
        [str(bin_dir / "marl-evaluate"), f"checkpoint={run_dir}", "episodes=2", "json=true"],
        cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    if evaluate.returncode != 0:
        sys.exit(f"smoke: marl-evaluate of {algo} failed:\n{evaluate.stderr[-3000:]}")
    summary = json.loads(evaluate.stdout.strip().splitlines()[-1])
    assert summary["algo"] == algo and summary["episodes_per_seed"] == 2, summary
    results = json.loads((run_dir / "results.json").read_text())
    assert results, "results.json is empty"
    print(f"smoke: marl-train {algo} on {env} and marl-evaluate ran")


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    check_installed_copy()
    if not quick:
        check_env_families()
    bin_dir = pathlib.Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as work:
        train_and_evaluate(bin_dir, pathlib.Path(work), "qmix", "matrix/one_step")
        if not quick:
            train_and_evaluate(bin_dir, pathlib.Path(work), "mappo", "lbf/8x8-2p-2f")
    print("smoke: passed")


if __name__ == "__main__":
    main()
