"""Sweeps through each Hydra launcher marl-lab ships as an extra (joblib, submitit,
ray): every job trains, and the sweep's folder reaches every run."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

BIN = pathlib.Path(sys.executable).parent
SWEEP = [
    "algo=iql,vdn",
    "env=matrix/one_step",
    "arch.total_timesteps=2048",
    "arch.eval_interval=1024",
    "arch.rollout_length=2",
    "arch.eval_episodes=4",
    "algo.batch_size=16",
    "logger=quiet",
]
LAUNCHERS = {
    "joblib": ["hydra.launcher.n_jobs=2"],
    # submitit's local executor: the Slurm launcher's code path without a cluster.
    "submitit_local": ["hydra.launcher.timeout_min=20"],
    # A Ray cluster started on this machine (ray.init with no address).
    "ray": [
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_a_sweep_runs_with_each_launcher_and_its_folder_reaches_every_run(tmp_path, launcher):
    result = subprocess.run(
        [str(BIN / "marl-train"), "-m", f"hydra/launcher={launcher}", *SWEEP, *LAUNCHERS[launcher]],
        cwd=tmp_path,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (sweep,) = (tmp_path / "multirun").iterdir()
    runs = sorted(sweep.glob("*/run"))
    assert [run.parent.name for run in runs] == ["0", "1"]
    for run, algo in zip(runs, ("iql", "vdn"), strict=True):
        assert (
            run.is_symlink()
            and run.resolve() == tmp_path / "runs" / "matrix" / "one_step" / algo / "seed0"
        )
        results = json.loads((run / "results.json").read_text())
        assert "absolute_metrics" in results["matrix"]["one_step"][algo]["seed_0"]
