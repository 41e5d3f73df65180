"""Tests for marl.logging: marl-eval JSON, JSONL, TensorBoard, summary, plot, resume."""

from __future__ import annotations

import json
import pathlib
import struct

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
