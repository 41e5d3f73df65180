"""Tests for marl.logging: marl-eval JSON, JSONL, TensorBoard, summary, plot, resume."""

from __future__ import annotations

import json
import pathlib
import struct
import time

import numpy as np
import pytest

from marl.logging import RunLogger
from marl.results import load_results, plot_learning_curves

ENV, TASK, ALGO = "matrax", "climbing", "iql"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Two seeds, three evaluation episodes each.
EVAL_1 = (np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([[1, 0, 0], [1, 1, 0]]))
EVAL_2 = (np.array([[2.0, 4.0, 6.0], [8.0, 8.0, 8.0]]), np.array([[1, 1, 0], [1, 1, 1]]))


def make_logger(run_dir: pathlib.Path, **kwargs) -> RunLogger:
    kwargs = {"num_seeds": 2, "total_timesteps": 300, "progress_bar": False} | kwargs
    return RunLogger(run_dir, ENV, TASK, ALGO, **kwargs)


def read_jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def seeds_of(run_dir: pathlib.Path) -> dict:
    return load_results(run_dir / "results.json")[ENV][TASK][ALGO]


def tensorboard_scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] from the event files of one TensorBoard run directory.

    Reads the TFRecord framing (length, length CRC, payload, payload CRC) directly,
    since the tensorboard reader package is not a dependency.
    """
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack_from("<Q", data, pos)
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def run_full(run_dir: pathlib.Path, **kwargs) -> None:
    """Three training points and two evaluations on two seeds, then close()."""
    logger = make_logger(run_dir, **kwargs)
    for step in (100, 200, 300):
        logger.log_train(
            step,
            {
                "episode_return": np.array([step / 100, np.nan]),
                "win_rate": np.array([0.5, 1.0]),
                "loss": np.array([0.25, 0.5]),
                "epsilon": np.float32(0.1),  # a scalar is shared by all seeds
            },
        )
        if step == 200:
            logger.log_eval(150, *EVAL_1)
    logger.log_eval(300, *EVAL_2)
    logger.close()


def test_full_run_writes_marl_eval_layout(tmp_path: pathlib.Path) -> None:
    run_full(tmp_path)

    data = load_results(tmp_path / "results.json")
    assert list(data) == [ENV] and list(data[ENV]) == [TASK] and list(data[ENV][TASK]) == [ALGO]
    seeds = data[ENV][TASK][ALGO]
    assert list(seeds) == ["seed_0", "seed_1"]
    for run in seeds.values():
        # absolute_metrics last: older marl-eval versions take the last key as it.
        assert list(run) == ["step_0", "step_1", "absolute_metrics"]
    assert seeds["seed_0"]["step_0"] == {
        "step_count": 150,
        "return": [1.0, 2.0, 3.0],
        "win_rate": [pytest.approx(1 / 3)],
    }
    assert seeds["seed_1"]["step_0"] == {
        "step_count": 150,
        "return": [4.0, 5.0, 6.0],
        "win_rate": [pytest.approx(2 / 3)],
    }
    assert seeds["seed_0"]["step_1"] == {
        "step_count": 300,
        "return": [2.0, 4.0, 6.0],
        "win_rate": [pytest.approx(2 / 3)],
    }
    assert seeds["seed_1"]["step_1"]["win_rate"] == [1.0]
    # Without a final evaluation, the absolute metrics are the last evaluation's.
    assert seeds["seed_0"]["absolute_metrics"] == {
        "return": [2.0, 4.0, 6.0],
        "win_rate": [pytest.approx(2 / 3)],
    }
    assert seeds["seed_1"]["absolute_metrics"] == {"return": [8.0, 8.0, 8.0], "win_rate": [1.0]}


def test_full_run_writes_jsonl(tmp_path: pathlib.Path) -> None:
    run_full(tmp_path)

    records = read_jsonl(tmp_path / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    absolute = [r for r in records if r["kind"] == "absolute"]
    assert len(records) == len(train) + len(evals) + len(absolute)
    assert [(r["step"], r["seed"]) for r in train] == [
        (100, 0),
        (100, 1),
        (200, 0),
        (200, 1),
        (300, 0),
        (300, 1),
    ]
    assert train[2]["episode_return"] == 2.0
    assert train[3]["episode_return"] is None  # NaN is written as null: strict JSON
    assert train[3]["loss"] == 0.5
    assert train[0]["epsilon"] == pytest.approx(0.1)
    assert [(r["step"], r["seed"], r["eval_index"]) for r in evals] == [
        (150, 0, 0),
        (150, 1, 0),
        (300, 0, 1),
        (300, 1, 1),
    ]
    assert evals[0]["return_mean"] == 2.0
    assert evals[0]["num_episodes"] == 3
    assert evals[1]["win_rate"] == pytest.approx(2 / 3)
    assert evals[3]["return_mean"] == 8.0
    assert [(r["seed"], r["return_mean"]) for r in absolute] == [(0, 4.0), (1, 8.0)]


def test_full_run_writes_summary_and_plot(tmp_path: pathlib.Path) -> None:
    run_full(tmp_path)

    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    summary = (tmp_path / "summary.txt").read_text()
    # Per seed 4.000 and 8.000, mean 6.000, sample std sqrt(8) = 2.828.
    assert "6.000 ± 2.828" in summary
    assert "4.000" in summary and "8.000" in summary
    assert "last evaluation, at step 300" in summary
    assert "300 / 300" in summary
    # Atomic writes leave no temporary file behind.
    assert not list(tmp_path.glob(".*.tmp"))


def test_tensorboard_per_seed_runs(tmp_path: pathlib.Path) -> None:
    run_full(tmp_path, use_tensorboard=True)

    root = tmp_path / "tensorboard"
    assert sorted(p.name for p in root.iterdir()) == ["mean", "seed_0", "seed_1"]
    for sub in root.iterdir():
        assert list(sub.glob("events.out.tfevents.*"))
    seed_0 = tensorboard_scalars(root / "seed_0")
    seed_1 = tensorboard_scalars(root / "seed_1")
    mean = tensorboard_scalars(root / "mean")
    assert seed_0["train/episode_return"] == [(100, 1.0), (200, 2.0), (300, 3.0)]
    assert "train/episode_return" not in seed_1  # NaN points are skipped
    assert seed_1["train/loss"] == [(100, 0.5), (200, 0.5), (300, 0.5)]
    assert seed_0["eval/return"] == [(150, 2.0), (300, 4.0)]
    assert seed_1["eval/win_rate"] == [(150, pytest.approx(2 / 3)), (300, 1.0)]
    assert mean["eval/return"] == [(150, 3.5), (300, 6.0)]


def test_no_tensorboard_no_progress_bar(tmp_path: pathlib.Path, capsys) -> None:
    logger = make_logger(tmp_path, use_tensorboard=False, progress_bar=False)
    logger.log_train(100, {"episode_return": np.array([1.0, 2.0])})
    assert capsys.readouterr().out == ""  # no bar, no status line
    logger.close()
    assert "iql on matrax/climbing" in capsys.readouterr().out  # the summary still is
    assert not (tmp_path / "tensorboard").exists()
    # No evaluation: no curve, no absolute metrics, but a summary all the same.
    assert not (tmp_path / "learning_curve.png").exists()
    assert "no evaluation" in (tmp_path / "summary.txt").read_text()
    assert seeds_of(tmp_path) == {"seed_0": {}, "seed_1": {}}


def test_progress_bar_without_a_terminal(tmp_path: pathlib.Path, capsys) -> None:
    # Under pytest stdout is not a TTY: the bar turns into plain status lines.
    logger = make_logger(tmp_path, use_tensorboard=False, progress_bar=True)
    logger.log_train(100, {"episode_return": np.array([1.0, 3.0]), "win_rate": np.zeros(2)})
    logger.log_eval(300, *EVAL_1)
    logger.log_train(300, {"episode_return": np.array([1.0, 3.0]), "win_rate": np.zeros(2)})
    logger.close()
    out = capsys.readouterr().out
    assert "step 100/300" in out and "step 300/300" in out
    assert "return 2.000" in out
    assert "eval @ step 300: return 3.500" in out


def test_final_eval_sets_absolute_metrics(tmp_path: pathlib.Path) -> None:
    logger = make_logger(tmp_path, use_tensorboard=False)
    logger.log_eval(100, *EVAL_1)
    final_returns = np.arange(20, dtype=np.float64).reshape(2, 10)
    final_won = np.zeros((2, 10))
    final_won[1, :5] = 1
    logger.close(final_eval=(final_returns, final_won))
    seeds = seeds_of(tmp_path)
    assert seeds["seed_0"]["absolute_metrics"] == {
        "return": list(map(float, range(10))),
        "win_rate": [0.0],
    }
    assert seeds["seed_1"]["absolute_metrics"]["win_rate"] == [0.5]
    summary = (tmp_path / "summary.txt").read_text()
    assert "final evaluation, 10 episodes per seed" in summary
    assert "9.500 ± 7.071" in summary  # seed means 4.5 and 14.5


def test_extra_eval_metrics(tmp_path: pathlib.Path) -> None:
    logger = make_logger(tmp_path, use_tensorboard=False)
    lengths = np.array([[3, 4, 5], [6, 7, 8]])
    logger.log_eval(100, *EVAL_1, extra={"episode_length": lengths, "q_value": np.ones(2)})
    logger.close()
    step_0 = seeds_of(tmp_path)["seed_1"]["step_0"]
    assert step_0["episode_length"] == [6, 7, 8]
    assert step_0["q_value"] == [1.0]
    assert seeds_of(tmp_path)["seed_1"]["absolute_metrics"]["episode_length"] == [6, 7, 8]
    eval_record = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "eval"][1]
    assert eval_record["episode_length"] == 7.0


def test_resume_drops_points_after_checkpoint(tmp_path: pathlib.Path) -> None:
    first = make_logger(tmp_path, total_timesteps=400)
    for k, step in enumerate((100, 200, 300)):
        first.log_train(step, {"loss": np.full(2, float(k))})
        first.log_eval(step, np.full((2, 3), float(k)), np.zeros((2, 3)))
    first.close()
    assert "absolute_metrics" in seeds_of(tmp_path)["seed_0"]

    second = make_logger(tmp_path, total_timesteps=400, resume_step=200)
    # Trimmed as soon as the logger starts, not only at the next write.
    for run in seeds_of(tmp_path).values():
        assert list(run) == ["step_0", "step_1"]
        assert [run[k]["step_count"] for k in run] == [100, 200]
    assert {r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")} == {100, 200}

    second.log_train(400, {"loss": np.full(2, 9.0)})
    second.log_eval(400, np.full((2, 3), 9.0), np.ones((2, 3)))
    second.close()
    seeds = seeds_of(tmp_path)
    for run in seeds.values():
        assert list(run) == ["step_0", "step_1", "step_2", "absolute_metrics"]
        assert run["step_0"] == {"step_count": 100, "return": [0.0] * 3, "win_rate": [0.0]}
        assert run["step_1"]["return"] == [1.0] * 3
        assert run["step_2"] == {"step_count": 400, "return": [9.0] * 3, "win_rate": [1.0]}
        assert run["absolute_metrics"] == {"return": [9.0] * 3, "win_rate": [1.0]}
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in records if r["seed"] == 0] == [
        ("train", 100),
        ("eval", 100),
        ("train", 200),
        ("eval", 200),
        ("train", 400),
        ("eval", 400),
        ("absolute", 400),
    ]
    assert [r["eval_index"] for r in records if r["kind"] == "eval" and r["seed"] == 0] == [
        0,
        1,
        2,
    ]


def test_an_interrupted_sessions_absolute_metrics_do_not_outlive_the_resume(
    tmp_path: pathlib.Path,
) -> None:
    # A run stopped by a signal closes its logger at its last checkpoint's step, which
    # writes absolute metrics there; the resumed session starts from that very step.
    first = make_logger(tmp_path, total_timesteps=400)
    first.log_eval(200, np.full((2, 3), 1.0), np.zeros((2, 3)))
    first.close()
    second = make_logger(tmp_path, total_timesteps=400, resume_step=200)
    second.log_eval(400, np.full((2, 3), 9.0), np.ones((2, 3)))
    second.close()
    absolute = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "absolute"]
    assert [(r["step"], r["return_mean"]) for r in absolute] == [(400, 9.0), (400, 9.0)]


def test_resume_without_close_and_torn_jsonl_line(tmp_path: pathlib.Path) -> None:
    first = make_logger(tmp_path, use_tensorboard=False)
    for step in (100, 200, 300):
        first.log_eval(step, np.full((2, 1), float(step)), np.zeros((2, 1)))
    first.jsonl.close()  # simulate a kill: no close(), and a half-written last line
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')

    second = make_logger(tmp_path, use_tensorboard=False, resume_step=250)
    second.log_eval(350, np.full((2, 1), 1.0), np.ones((2, 1)))
    second.close()
    run = seeds_of(tmp_path)["seed_1"]
    assert [(k, v.get("step_count")) for k, v in run.items()] == [
        ("step_0", 100),
        ("step_1", 200),
        ("step_2", 350),
        ("absolute_metrics", None),
    ]
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [
        100,
        100,
        200,
        200,
        350,
        350,
        350,
        350,
    ]


def test_fresh_run_replaces_old_files(tmp_path: pathlib.Path) -> None:
    run_full(tmp_path, use_tensorboard=False)
    logger = make_logger(tmp_path, use_tensorboard=False)  # resume_step=0: a new run
    assert seeds_of(tmp_path) == {"seed_0": {}, "seed_1": {}}
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    logger.close()


def test_rejects_bad_shapes(tmp_path: pathlib.Path) -> None:
    logger = make_logger(tmp_path, use_tensorboard=False)
    with pytest.raises(ValueError, match="shape"):
        logger.log_train(1, {"loss": np.zeros(3)})
    with pytest.raises(ValueError, match="reserved"):
        logger.log_train(1, {"step": np.zeros(2)})
    with pytest.raises(ValueError, match="episode_returns"):
        logger.log_eval(1, np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="episode_won"):
        logger.log_eval(1, np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="episode_returns"):
        logger.close(final_eval=(np.zeros((3, 4)), np.zeros((3, 4))))
    logger.close()  # a rejected final_eval leaves the logger open to close properly
    logger.close()  # and closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        logger.log_train(1, {"loss": np.zeros(2)})


def test_plot_learning_curves_several_algorithms(tmp_path: pathlib.Path) -> None:
    results = {
        ENV: {
            TASK: {
                algo: {
                    f"seed_{seed}": {
                        f"step_{k}": {
                            "step_count": 100 * (k + 1),
                            "return": [float(k + seed + offset)] * 4,
                            "win_rate": [0.1 * k],
                        }
                        for k in range(5)
                    }
                    for seed in range(3)
                }
                for offset, algo in enumerate(("iql", "vdn"))
            }
        }
    }
    src = tmp_path / "results.json"
    src.write_text(json.dumps(results))
    out = tmp_path / "plots" / "curves.png"
    plot_learning_curves(src, out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({ENV: {TASK: {ALGO: {"seed_0": {}}}}}))
    with pytest.raises(ValueError, match="no evaluation"):
        plot_learning_curves(empty, tmp_path / "never.png")


def wandb_offline_runs(run_dir: pathlib.Path, wait_seconds: float = 60.0) -> list[dict]:
    """Each offline W&B run file under ``run_dir/wandb``, read back: its run record
    (id, group, name, config), history rows and summary, in writing order.

    ``run.finish()`` can return before W&B's service process has flushed a run's file
    (seen on a loaded CI machine: a file without its run record), so the files are
    read again until each holds its run and exit records, for up to ``wait_seconds``.

    The file is a LevelDB-style log (a 7-byte ``:W&B`` header, then 32 KiB blocks of
    records framed by CRC, length and a full/first/middle/last type) of protobuf
    ``Record`` messages; W&B ships no reader for it.
    """
    from wandb.proto.wandb_internal_pb2 import Record

    def payloads(data: bytes):
        block, pos, pending = 32 * 1024, 7, b""
        while pos + 7 <= len(data):
            room = block - pos % block
            if room < 7:  # a block's tail too short for a header is padding
                pos += room
                continue
            _, length, kind = struct.unpack_from("<IHB", data, pos)
            if (length, kind) == (0, 0):
                pos += room
                continue
            if pos + 7 + length > len(data):  # a record still being written
                return
            chunk = data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind == 1:
                yield chunk
            elif kind == 2:
                pending = chunk
            elif kind == 3:
                pending += chunk
            elif kind == 4:
                yield pending + chunk

    def items(entries) -> dict:
        return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}

    def read(path: pathlib.Path) -> dict:
        data = path.read_bytes()
        run: dict = {"history": [], "summary": {}, "exited": False}
        if data[:4] != b":W&B":
            return run
        for payload in payloads(data):
            record = Record.FromString(payload)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run |= {
                    "id": record.run.run_id,
                    "group": record.run.run_group,
                    "name": record.run.display_name,
                    "project": record.run.project,
                    "config": items(record.run.config.update),
                }
            elif kind == "history":
                run["history"].append(items(record.history.item))
            elif kind == "summary":
                run["summary"] |= items(record.summary.update)
            elif kind == "exit":
                run["exited"] = True
        return run

    deadline = time.monotonic() + wait_seconds
    while True:
        paths = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
        runs = [read(path) for path in paths]
        if all("id" in run and run["exited"] for run in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def _points(run: dict, tag: str) -> list[tuple[int, float]]:
    return [(row["env_steps"], row[tag]) for row in run["history"] if tag in row]


def test_wandb_offline_writes_one_run_per_seed_with_the_same_points(tmp_path) -> None:
    pytest.importorskip("wandb")
    from marl.logging import WandbSettings, wandb_run_id

    settings = WandbSettings(project="p", group="sweep-a", config={"algo": {"lr": 0.5}})
    run_full(tmp_path, first_seed=5, wandb=settings)

    runs = {run["config"]["seed"]: run for run in wandb_offline_runs(tmp_path)}
    assert sorted(runs) == [5, 6]
    for seed, run in runs.items():
        assert run["id"] == wandb_run_id(tmp_path, seed)
        assert (run["group"], run["project"], run["name"]) == (
            "sweep-a",
            "p",
            f"{ALGO} {ENV}/{TASK} seed {seed}",
        )
        assert run["config"]["algo"] == {"lr": 0.5}
        assert run["exited"]
    assert _points(runs[5], "train/episode_return") == [(100, 1.0), (200, 2.0), (300, 3.0)]
    assert _points(runs[6], "train/episode_return") == []  # NaN points are left out
    assert _points(runs[6], "train/loss") == [(100, 0.5), (200, 0.5), (300, 0.5)]
    assert _points(runs[5], "eval/return") == [(150, 2.0), (300, 4.0)]
    assert _points(runs[6], "eval/win_rate") == [(150, pytest.approx(2 / 3)), (300, 1.0)]
    # Without a final evaluation the absolute metrics are the last evaluation's.
    assert runs[5]["summary"]["absolute/return"] == 4.0
    assert runs[6]["summary"]["absolute/win_rate"] == 1.0


def test_wandb_resumed_run_continues_the_same_runs_and_group_defaults_to_run_dir(
    tmp_path,
) -> None:
    pytest.importorskip("wandb")
    from marl.logging import WandbSettings

    logger = make_logger(tmp_path, num_seeds=1, wandb=WandbSettings())
    logger.log_train(100, {"loss": np.array([1.0])})
    logger.close()
    resumed = make_logger(tmp_path, num_seeds=1, resume_step=100, wandb=WandbSettings())
    resumed.log_train(200, {"loss": np.array([2.0])})
    resumed.close()

    first, second = wandb_offline_runs(tmp_path)
    assert first["id"] == second["id"] and first["group"] == str(tmp_path)
    assert _points(first, "train/loss") == [(100, 1.0)]
    assert _points(second, "train/loss") == [(200, 2.0)]


def test_wandb_without_the_package_is_refused_in_one_line(monkeypatch) -> None:
    import importlib.util

    from marl.config import LoggerConfig
    from marl.options import OptionError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "wandb" else real_find_spec(name, *args),
    )
    LoggerConfig(wandb=False).check()  # not asked for: not needed
    with pytest.raises(OptionError, match=r"pip install 'marl-lab\[wandb\]'"):
        LoggerConfig(wandb=True).check()
