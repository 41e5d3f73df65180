"""Faults a user meets: damaged run files, a run dir that is not a run or is in use,
resuming wrongly, a run that diverges, and a run stopped by a signal.

One small run (two chunks, two checkpoints) is trained once per module and copied
for each test that damages it.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from marl.checkpoint import (
    CheckpointDamagedError,
    Checkpointer,
    CheckpointLayoutError,
    read_config,
    write_config,
)
from marl.config import ConfigError
from marl.files import RunFileError
from marl.rundir import RunDirError, RunLock
from marl.train import TrainingDivergedError, evaluate_run, train

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
TWO_CHUNKS = {"arch.total_timesteps": 2_048, "arch.eval_interval": 1_024}
ALGO = {"batch_size": 16, "buffer_size": 512, "epsilon_anneal_steps": 500}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from conftest import _small_config

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train(_small_config(run_dir, algo_options=ALGO, **TWO_CHUNKS))
    return run_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


def _garble(checkpoint: pathlib.Path) -> None:
    """Truncates every array file of a checkpoint's state item to half its size."""
    files = [p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.stat().st_size > 64]
    assert files, f"no data files under {checkpoint}"
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def _cli(args, cwd, timeout=600):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_checkpoints_carry_their_metadata(trained_run):
    checkpointer = Checkpointer(trained_run, create=False)
    try:
        assert checkpointer.chunks() == [0, 1]
        metadata = checkpointer.metadata(1)
    finally:
        checkpointer.close()
    assert metadata["env_steps"] == 2_048 and metadata["chunk"] == 1
    assert metadata["layout"] == {"num_devices": 1, "num_seeds": 1}
    assert metadata["marl_lab_version"] == "0.1.0" and metadata["replay_kept"] is True
    assert len(metadata["config_hash"]) == 16 and len(metadata["state_fingerprint"]) == 16


def test_best_policy_keeps_each_seeds_best_parameters():
    from marl.train import BestPolicy

    best = BestPolicy({"w": np.zeros((2, 3))}, num_seeds=2)
    # Scores per seed (an evaluation's mean return, or a multi-objective hypervolume).
    best.update(np.array([2.0, 5.0]), {"w": np.ones((2, 3))}, step=10)
    best.update(np.array([4.0, 0.5]), {"w": np.full((2, 3), 2.0)}, step=20)
    # Seed 0 improved at step 20 (4 > 2), seed 1 kept step 10's (5 > 0.5).
    np.testing.assert_array_equal(best.params["w"], [[2.0] * 3, [1.0] * 3])
    np.testing.assert_array_equal(best.score, [4.0, 5.0])
    np.testing.assert_array_equal(best.step, [20, 10])
    best.update(np.full(2, np.nan), {"w": np.full((2, 3), 9.0)}, step=30)
    np.testing.assert_array_equal(best.step, [20, 10])  # no finished episode: no change


def test_absolute_metrics_are_the_best_policy_over_ten_times_the_episodes(trained_run):
    results = json.loads((trained_run / "results.json").read_text())
    run = results["matrix"]["two_step"]["qmix"]["seed_0"]
    assert len(run["absolute_metrics"]["return"]) == 10 * 4  # eval_episodes=4
    best = max(np.mean(v["return"]) for k, v in run.items() if k.startswith("step_"))
    # The two-step game is deterministic: the best parameters score again what they scored.
    assert np.mean(run["absolute_metrics"]["return"]) == pytest.approx(best)
    assert "best policy (at step" in (trained_run / "summary.txt").read_text()


def test_checkpoints_without_the_replay_resume_with_a_fresh_one(
    trained_run, tmp_path, train_config
):
    lean = train_config(run_dir=tmp_path / "lean", algo_options=ALGO,
                        **{**TWO_CHUNKS, "arch.checkpoint_replay": False})  # fmt: skip
    train(lean)
    checkpointer = Checkpointer(lean.run_dir, create=False)
    assert checkpointer.metadata(1)["replay_kept"] is False
    checkpointer.close()

    def saved_leaves(run_dir):
        metadata = run_dir / "checkpoints" / "1" / "state" / "_METADATA"
        return list(json.loads(metadata.read_text())["tree_metadata"])

    # The same run with its replay saves the buffer's arrays; the lean one saves the
    # buffer as None, with no array under it. (Comparing bytes on disk is not a test
    # here: a 512-window replay is small, and OCDBT's file sizes vary between saves.)
    under_buffer = "('algo_state', 'buffer_state', "
    assert any(leaf.startswith(under_buffer) for leaf in saved_leaves(trained_run))
    lean_leaves = saved_leaves(tmp_path / "lean")
    assert "('algo_state', 'buffer_state')" in lean_leaves
    assert not any(leaf.startswith(under_buffer) for leaf in lean_leaves)
    longer = train_config(run_dir=tmp_path / "lean", algo_options=ALGO, resume=True,
                          **{**TWO_CHUNKS, "arch.total_timesteps": 3_072,
                             "arch.checkpoint_replay": False})  # fmt: skip
    result = train(longer)
    assert result["env_steps"] == 3_072 and np.isfinite(result["returns"]).all()


def test_parameters_export_to_one_file_that_loads_without_the_run(trained_run, tmp_path):
    import jax

    from marl.checkpoint import load_exported, load_params

    path = tmp_path / "out" / "params.msgpack"
    result = _cli(
        [str(BIN / "marl-evaluate"), f"checkpoint={trained_run}", f"export={path}", "json=true"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] == 2_048 and summary["chunk"] == 1
    params, metadata = load_exported(path)
    assert metadata["layout"] == {"num_devices": 1, "num_seeds": 1}
    first_seed = jax.tree_util.tree_map(lambda x: x[0], params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, first_seed, load_params(trained_run))
    # Far smaller than the checkpoint, which holds the replay.
    checkpoint_bytes = sum(
        p.stat().st_size for p in (trained_run / "checkpoints" / "1").rglob("*") if p.is_file()
    )
    assert path.stat().st_size < checkpoint_bytes / 4


def test_a_damaged_latest_checkpoint_falls_back_to_the_intact_one(run_copy, capsys):
    _garble(run_copy / "checkpoints" / "1")
    result = evaluate_run(run_copy, num_episodes=2)
    assert result["chunk"] == 0
    warning = capsys.readouterr().err
    assert "checkpoint 1" in warning and "is damaged (truncated or garbled files" in warning
    assert "resuming from checkpoint 0, the newest intact one" in warning
    # The damaged one is set aside, not deleted, so the run can save chunk 1 again.
    assert not (run_copy / "checkpoints" / "1").exists()
    assert len(list((run_copy / "damaged_checkpoints").iterdir())) == 1


def test_one_truncated_array_file_falls_back_with_no_traceback_on_the_console(run_copy):
    # orbax closes its event loop at the first failed read; the reads still in flight
    # used to print dozens of "Event loop is closed" tracebacks around the warning.
    state = run_copy / "checkpoints" / "1" / "state"
    largest = max((p for p in state.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[:100])
    result = _cli(
        [str(BIN / "marl-evaluate"), f"checkpoint={run_copy}", "episodes=2"], run_copy.parent
    )
    assert result.returncode == 0, result.stderr
    assert "(checkpoint of chunk 0)" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert "checkpoint 1" in lines[0] and "is damaged (truncated or garbled files" in lines[0]
    assert lines[1].endswith("resuming from checkpoint 0, the newest intact one")


def test_failed_reads_collected_unretrieved_print_nothing_but_other_task_errors_do(tmp_path):
    # Which of orbax's reads are still pending when it gives up is a race; this plays
    # the losing side deterministically: tasks that fail and are never awaited.
    script = f"""
import asyncio, gc, logging
logging.basicConfig()
from marl.checkpoint import Checkpointer
Checkpointer({str(tmp_path)!r}, create=False)
async def fail(text):
    raise ValueError(text)
async def main():
    for text in ('OUT_OF_RANGE: Error reading "x" in OCDBT database', 'a bug of ours'):
        task = asyncio.ensure_future(fail(text))
        await asyncio.sleep(0)
        del task
        gc.collect()
    future = asyncio.get_running_loop().create_future()
    future.set_exception(ValueError('DATA_LOSS: Error reading "y"'))
    del future
    gc.collect()
asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Error reading" not in result.stderr
    assert "Task exception was never retrieved" in result.stderr
    assert "a bug of ours" in result.stderr


def test_a_latest_checkpoint_whose_metadata_file_is_lost_is_damage_not_another_version(
    run_copy, capsys
):
    (run_copy / "checkpoints" / "1" / "_CHECKPOINT_METADATA").write_text("{{{")
    result = evaluate_run(run_copy, num_episodes=2)
    assert result["chunk"] == 0
    warning = capsys.readouterr().err
    assert "checkpoint 1" in warning and "its metadata file is missing or garbled" in warning
    assert "version" not in warning


def test_every_checkpoint_damaged_is_told_apart_from_another_version(run_copy):
    for chunk in (0, 1):
        _garble(run_copy / "checkpoints" / str(chunk))
    with pytest.raises(CheckpointDamagedError) as error:
        evaluate_run(run_copy)
    text = str(error.value)
    assert text.startswith("every checkpoint in") and "damaged" in text and "\n" not in text
    assert "version" not in text
    # From the command line: that one line, no traceback or orbax warning before it.
    result = _cli([str(BIN / "marl-evaluate"), f"checkpoint={run_copy}"], run_copy.parent)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("marl-evaluate: error: every checkpoint in")


def test_a_checkpoint_of_another_env_is_refused_in_one_line(run_copy):
    config = read_config(run_copy)
    config["env"]["name"] = "matrix/one_step"
    write_config(run_copy, config)
    with pytest.raises(CheckpointLayoutError) as error:
        evaluate_run(run_copy)
    assert "for another training state" in str(error.value) and "\n" not in str(error.value)


def test_a_garbled_config_is_named_as_damaged(run_copy):
    (run_copy / "config.yaml").write_text("algo: {name: qmix,\n  gamma: [")
    with pytest.raises(RunFileError, match="config.yaml' is damaged") as error:
        evaluate_run(run_copy)
    assert "\n" not in str(error.value)
    result = _cli([str(BIN / "marl-evaluate"), f"checkpoint={run_copy}"], run_copy.parent)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is damaged (" in result.stderr


def test_resume_without_config_or_with_fewer_steps_is_refused_and_changes_nothing(
    run_copy, train_config
):
    before = (run_copy / "config.yaml").read_text()
    shorter = train_config(
        run_dir=run_copy, algo_options=ALGO, resume=True, **{**TWO_CHUNKS,
                                                             "arch.total_timesteps": 1_024}
    )  # fmt: skip
    with pytest.raises(ConfigError, match="has trained 2,048 env steps already"):
        train(shorter)
    assert (run_copy / "config.yaml").read_text() == before
    (run_copy / "config.yaml").unlink()
    resume = train_config(run_dir=run_copy, algo_options=ALGO, resume=True, **TWO_CHUNKS)
    with pytest.raises(RunFileError, match="holds checkpoints but no config.yaml"):
        train(resume)


def test_a_folder_that_is_not_a_run_or_is_in_use_is_refused(tmp_path, train_config):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("results")
    with pytest.raises(RunDirError, match="holds files that are not a marl-lab run"):
        train(train_config(run_dir=foreign))
    assert sorted(p.name for p in foreign.iterdir()) == ["chapter1.tex"]
    busy = tmp_path / "busy"
    busy.mkdir()
    with RunLock(busy), pytest.raises(RunDirError, match="is in use by another process"):
        train(train_config(run_dir=busy))
    with pytest.raises(RunDirError, match="is a file, not a directory"):
        train(train_config(run_dir=foreign / "chapter1.tex"))


def test_a_run_that_diverges_stops_and_keeps_its_last_good_checkpoint(
    run_copy, train_config, monkeypatch
):
    import jax

    restore_latest = Checkpointer.restore_latest

    def poisoned(self, like, replay_fields=()):
        state, chunk, notes = restore_latest(self, like, replay_fields)
        params = jax.tree_util.tree_map(lambda x: x * np.nan, state.algo_state.params)
        return state.replace(algo_state=state.algo_state.replace(params=params)), chunk, notes

    monkeypatch.setattr(Checkpointer, "restore_latest", poisoned)
    longer = train_config(
        run_dir=run_copy, algo_options=ALGO, resume=True,
        **{**TWO_CHUNKS, "arch.total_timesteps": 4_096},
    )  # fmt: skip
    with pytest.raises(TrainingDivergedError) as error:
        train(longer)
    text = str(error.value)
    assert "diverged in the chunk ending at env step 3,072" in text and "not finite" in text
    assert "the last good checkpoint (chunk 1, 2,048 env steps) is kept" in text
    checkpointer = Checkpointer(run_copy, create=False)
    assert checkpointer.chunks() == [0, 1]
    checkpointer.close()


def test_marl_evaluate_checks_its_arguments_and_the_replay_path_first(run_copy, tmp_path):
    result = _cli([str(BIN / "marl-evaluate"), f"checkpoint={run_copy}", "json=maybe"], tmp_path)
    assert result.returncode == 2 and "json must be true or false, got 'maybe'" in result.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = _cli(
        [str(BIN / "marl-evaluate"), f"checkpoint={run_copy}", f"replay={blocked}/x.gif"],
        tmp_path,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"replay: cannot write '{blocked}/x.gif'" in result.stderr


@pytest.mark.slow
def test_sigterm_and_sigint_write_a_checkpoint_and_say_how_to_resume(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        str(BIN / "marl-train"),
        "env=matrix/two_step",
        "arch.num_devices=1",
        "arch.total_timesteps=64000",
        "arch.eval_interval=1000",
        "arch.rollout_length=4",
        "arch.eval_episodes=4",
        "arch.checkpoint_interval=1000",
        "algo.batch_size=16",
        "logger=quiet",
        f"run_dir={run_dir}",
    ]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(ROOT / ".jax_cache"))
    for number in (signal.SIGTERM, signal.SIGINT):
        args = command if number == signal.SIGTERM else [*command, "resume=true"]
        process = subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        metrics = run_dir / "metrics.jsonl"
        deadline = time.time() + 300
        start_lines = metrics.read_text().count("\n") if metrics.exists() else 0
        while time.time() < deadline:
            if metrics.exists() and metrics.read_text().count("\n") > start_lines:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(number)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 128 + number, stderr
        assert f"stopped by {signal.Signals(number).name} at env step" in stderr
        assert "to resume: marl-train" in stderr and "resume=true" in stderr
        assert "Traceback" not in stderr
        checkpointer = Checkpointer(run_dir, create=False)
        assert checkpointer.chunks(), "no checkpoint was written on the signal"
        checkpointer.close()


def test_a_rounded_budget_is_said_at_the_start(train_config):
    from marl.train import _layout_notes

    config = train_config(**{"arch.total_timesteps": 5_000, "arch.eval_interval": 1_000})
    iterations, num_chunks = config.arch.chunk_layout()
    steps_per_chunk = iterations * config.arch.rollout_length * config.arch.num_envs
    notes = _layout_notes(config, steps_per_chunk, num_chunks)
    assert notes == [
        "arch.eval_interval=1,000 runs as 992 env steps per chunk: whole iterations of "
        "rollout_length x num_envs (4 x 8)",
        "arch.total_timesteps=5,000 runs as 5,952 env steps: 6 whole chunks",
    ]
    exact = train_config(**{"arch.total_timesteps": 4_096, "arch.eval_interval": 1_024})
    assert _layout_notes(exact, 1_024, 4) == []


@pytest.fixture
def small_file_systems(tmp_path):
    """A nearly full and a read-only tmpfs (needs root and mount, as on CI's machines)."""
    full, read_only = tmp_path / "full", tmp_path / "read-only"
    full.mkdir()
    read_only.mkdir()
    mounted = []
    for path, options in ((full, "size=200k"), (read_only, "size=1m,ro")):
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            for other in mounted:
                subprocess.run(["umount", str(other)], check=False)
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)
    (full / "filler").write_bytes(b"\0" * 190 * 1024)
    yield full, read_only
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def test_a_full_or_read_only_file_system_ends_in_one_line(small_file_systems, tmp_path):
    full, read_only = small_file_systems
    common = [str(BIN / "marl-train"), "env=matrix/one_step", "arch.total_timesteps=2048",
              "arch.eval_interval=1024", "arch.rollout_length=2", "algo.batch_size=16",
              "algo.buffer_size=512", "logger=quiet"]  # fmt: skip
    result = _cli([*common, f"run_dir={read_only}/run"], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot create" in result.stderr and "read-only file system" in result.stderr
    result = _cli([*common, f"run_dir={full}/run"], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
