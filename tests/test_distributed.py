"""Many processes, one run: two processes with one CPU device each train exactly what
one process with two devices trains, resume each other's checkpoints, and a process
that dies stops the other within the timeout, in one line."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from marl.checkpoint import load_params
from marl.distributed import DistributedError, layout_from_command_line

BIN = pathlib.Path(sys.executable).parent
# 8 envs x 4-step rollouts: 32 env steps an iteration, two iterations a chunk.
RUN = [
    "algo=vdn",
    "env=matrix/two_step",
    "algo.hidden_dim=8",
    "algo.batch_size=8",
    "algo.buffer_size=64",
    "arch.num_envs=8",
    "arch.rollout_length=4",
    "arch.eval_interval=64",
    "arch.eval_episodes=4",
    "logger=quiet",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _start(args: list[str], devices: int, log: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "marl-train"), *RUN, *args],
        env=_env(devices),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _two_processes(run_dir: pathlib.Path, steps: int, *extra: str, resume: bool = False):
    """Starts processes 0 and 1 of one run (one CPU device each)."""
    layout = [
        "arch.num_processes=2",
        "arch.num_devices=1",
        f"arch.coordinator=127.0.0.1:{_free_port()}",
    ]
    common = [*layout, f"arch.total_timesteps={steps}", f"run_dir={run_dir}", f"resume={resume}"]
    return [
        _start(
            [*common, f"arch.process_id={index}", *extra],
            1,
            run_dir.parent / f"{run_dir.name}_{index}.log",
        )
        for index in range(2)
    ]


def _one_process(run_dir: pathlib.Path, steps: int, resume: bool = False) -> None:
    args = [
        "arch.num_devices=2",
        f"arch.total_timesteps={steps}",
        f"run_dir={run_dir}",
        f"resume={resume}",
    ]
    log = run_dir.parent / f"{run_dir.name}_single.log"
    assert _start(args, 2, log).wait(timeout=600) == 0, log.read_text()[-2000:]


def _wait_all(processes: list[subprocess.Popen], run_dir: pathlib.Path) -> None:
    codes = [process.wait(timeout=600) for process in processes]
    logs = [(run_dir.parent / f"{run_dir.name}_{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n".join(log[-2000:] for log in logs)
    assert "process 1 done after" in logs[1]


def _wait_for_checkpoint(run_dir: pathlib.Path, chunk: int, processes: list) -> None:
    """Until chunk ``chunk``'s checkpoint exists (both processes still running)."""
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / str(chunk)).is_dir():
        log = (run_dir.parent / f"{run_dir.name}_0.log").read_text()[-2000:]
        assert all(p.poll() is None for p in processes), log
        assert time.monotonic() < deadline, log
        time.sleep(0.5)


def _assert_same_params(one: pathlib.Path, other: pathlib.Path) -> None:
    left, right = load_params(one), load_params(other)
    assert jax.tree_util.tree_structure(left) == jax.tree_util.tree_structure(right)
    for a, b in zip(jax.tree_util.tree_leaves(left), jax.tree_util.tree_leaves(right), strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_processes_train_and_resume_exactly_as_one_process_with_two_devices(tmp_path):
    """The mesh is the same two devices either way, in the same order, and pmean over
    two values adds them in one order, so the runs agree bitwise; checkpoints hold the
    whole run's state, so each layout resumes the other's."""
    pair, single = tmp_path / "pair", tmp_path / "single"
    processes = _two_processes(pair, 128)
    _one_process(single, 128)
    _wait_all(processes, pair)
    assert sorted(os.listdir(pair / "checkpoints")) == ["0", "1"]
    assert (pair / "results.json").exists() and not (tmp_path / "pair-1").exists()
    _assert_same_params(pair, single)
    # Each resumes the other's layout, two more chunks.
    _one_process(pair, 256, resume=True)
    _wait_all(_two_processes(single, 256, resume=True), single)
    _assert_same_params(pair, single)
    # A run of another device count in all is refused in one line.
    result = subprocess.run(
        [
            str(BIN / "marl-train"),
            *RUN,
            "arch.num_devices=1",
            "arch.total_timesteps=512",
            f"run_dir={pair}",
            "resume=true",
        ],
        env=_env(1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "arch.num_devices: the checkpoint in" in result.stderr
    assert "holds the state of 2 devices in all" in result.stderr


def test_a_killed_process_stops_the_other_within_the_timeout_and_keeps_the_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    processes = _two_processes(run_dir, 2_000_000, "arch.distributed_timeout=10")
    # From the second checkpoint on everything is compiled, and process 0 spends its
    # time in the chunk's collectives, which notice the loss at once.
    _wait_for_checkpoint(run_dir, 1, processes)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = processes[0].wait(timeout=60)
    stopped_after = time.monotonic() - killed
    log = (tmp_path / "run_0.log").read_text()
    assert code == 4, log[-2000:]
    assert stopped_after < 10 + 5  # the heartbeat timeout, and then some
    lines = [line for line in log.splitlines() if "marl-train: error:" in line]
    assert len(lines) == 1 and "process 0 lost another process of the run" in lines[0]
    assert "the checkpoints written before are kept in" in lines[0]
    chunks = [name for name in os.listdir(run_dir / "checkpoints") if name.isdigit()]
    assert chunks and load_params(run_dir) is not None


def test_an_unreachable_coordinator_ends_the_process_in_one_line_within_the_timeout(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [
            str(BIN / "marl-train"),
            *RUN,
            "arch.num_processes=2",
            "arch.process_id=1",
            f"arch.coordinator=127.0.0.1:{_free_port()}",
            "arch.distributed_timeout=3",
            f"run_dir={tmp_path / 'run'}",
        ],
        env=_env(1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4
    assert time.monotonic() - started < 60
    errors = [line for line in result.stderr.splitlines() if line.startswith("marl-train: error:")]
    assert len(errors) == 1
    assert "process 1 could not join the coordinator at 127.0.0.1:" in errors[0]
    assert "within 3 s (arch.distributed_timeout)" in errors[0]


def test_the_command_lines_process_layout_is_read_before_jax_starts():
    assert layout_from_command_line(["algo=vdn"]) == {
        "num_processes": 1,
        "process_id": 0,
        "coordinator": "",
        "distributed_timeout": 120,
    }
    layout = layout_from_command_line(
        ["arch.num_processes=4", "+arch.process_id=3", "arch.coordinator=node0:1234"]
    )
    assert layout["num_processes"] == 4 and layout["process_id"] == 3
    assert layout["coordinator"] == "node0:1234"
    with pytest.raises(DistributedError, match="arch.process_id: one value per run"):
        layout_from_command_line(["arch.process_id=0,1"])
    with pytest.raises(DistributedError, match="arch.num_processes: must be an integer, got 'two'"):
        layout_from_command_line(["arch.num_processes=two"])


def test_sigterm_to_one_process_stops_every_process_after_the_chunk_with_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    processes = _two_processes(run_dir, 2_000_000)
    _wait_for_checkpoint(run_dir, 1, processes)
    processes[1].send_signal(signal.SIGTERM)
    codes = [process.wait(timeout=120) for process in processes]
    logs = [(tmp_path / f"run_{index}.log").read_text() for index in range(2)]
    assert codes == [128 + signal.SIGTERM] * 2, "\n".join(log[-1500:] for log in logs)
    assert "stopped by SIGTERM" in logs[0] and "stopped by SIGTERM" in logs[1]
    (stopped_at,) = [line for line in logs[0].splitlines() if "stopped by SIGTERM" in line]
    chunk = int(stopped_at.split("checkpoint of chunk ")[1].split(" ")[0])
    assert str(chunk) in os.listdir(run_dir / "checkpoints")
