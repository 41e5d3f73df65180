"""The benchmark scripts run in ``--quick`` mode and write well-formed result files.

The scripts are started at once in subprocesses (they spend their time compiling,
which is single-threaded), sharing the test suite's persistent compilation cache.
The figures of a quick run are not checked beyond being positive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Each script with the arguments its quick run takes besides --quick and --out.
SCRIPTS = {
    "env_throughput": [],
    "train_throughput": [],
    "smac_throughput": [],
    "football_throughput": [],
    "football_baselines": [],
    "smac_scripted": [],
    # The JAX side only: GRF's engine is a benchmark dependency CI does not install
    # (test_football_fidelity_runs_against_the_real_engine runs both where it is).
    "football_fidelity": ["--engine", "ours"],
}
TIMEOUT_S = 300


def _run_quick(out_dir: Path, scripts: dict[str, list[str]] = SCRIPTS) -> dict[str, dict]:
    """Runs every script with ``--quick --out <out_dir>/<name>.json``; returns the JSONs."""
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # one CPU device, as the scripts are meant to run
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                f"benchmarks/{name}.py",
                "--quick",
                "--out",
                str(out_dir / f"{name}.json"),
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in scripts.items()
    }
    results = {}
    failures = []
    for name, proc in procs.items():
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            failures.append(f"{name} timed out after {TIMEOUT_S} s:\n{output[-3000:]}")
            continue
        if proc.returncode != 0:
            failures.append(f"{name} exited with {proc.returncode}:\n{output[-3000:]}")
            continue
        results[name] = json.loads((out_dir / f"{name}.json").read_text())
    if failures:
        pytest.fail("\n\n".join(failures))
    return results


def _check_machine(payload: dict) -> None:
    machine = payload["machine"]
    for key in ("cpu_model", "cpu_cores", "jax", "jaxlib", "device_kind"):
        assert machine[key], key
    assert payload["mode"] == "quick"


def _check_env_throughput(payload: dict) -> None:
    _check_machine(payload)
    assert payload["settings"]["anchor"] == "jumanji_autoreset"
    variants = {"ours", "ours_raw", "jumanji_autoreset", "jumanji_no_reset"}
    assert set(payload["variants"]) == variants
    assert [row["num_envs"] for row in payload["results"]] == [64]
    for row in payload["results"]:
        assert set(row["variants"]) == variants
        for result in row["variants"].values():
            assert result["env_steps_per_s"]["median"] > 0
            assert all(rate > 0 for rate in result["env_steps_per_s_reps"])
            assert len(result["env_steps_per_s_reps"]) == payload["settings"]["reps"]
            assert result["compile_s"] > 0
        assert set(row["ratio_vs_anchor"]) == variants - {"jumanji_autoreset"}
        assert all(r["median"] > 0 for r in row["ratio_vs_anchor"].values())
    assert {"ratio_ours_vs_anchor", "num_envs", "measured", "met"} <= set(payload["target"])


def _check_train_throughput(payload: dict) -> None:
    _check_machine(payload)
    assert payload["anchor"]["re_run"] is False
    assert payload["results"], "no configuration was run"
    for row in payload["results"].values():
        assert row["env_steps_per_s"]["median"] > 0
        assert all(rate > 0 for rate in row["env_steps_per_s_reps"])
        assert row["first_chunk_s"] > 0
        assert row["steps_per_chunk"] > 0
        assert sum(row["gradient_updates_per_chunk"]) > 0


def _check_smac_throughput(payload: dict) -> None:
    _check_machine(payload)
    assert payload["settings"]["anchor"] == "smax"
    assert [(row["map"], row["num_envs"]) for row in payload["results"]] == [("3m", 1), ("3m", 8)]
    for row in payload["results"]:
        for name in ("ours", "ours_exact", "smax"):
            result = row["variants"][name]
            assert result["env_steps_per_s"]["median"] > 0
            assert len(result["env_steps_per_s_reps"]) == payload["settings"]["reps"]
        assert row["ratio_vs_anchor"]["ours"]["median"] > 0
        assert row["ratio_vs_anchor"]["ours_exact"]["median"] > 0
    (scaling,) = payload["scaling"]
    assert scaling["map"] == "3m" and scaling["num_units"] == 6
    assert scaling["unit_steps_per_s"] == pytest.approx(6 * scaling["env_steps_per_s"]["median"])


def _check_football_throughput(payload: dict) -> None:
    _check_machine(payload)
    rows = payload["rows"]
    assert [(r["scenario"], r["num_envs"]) for r in rows] == [
        ("academy_3_vs_1_with_keeper", 1),
        ("academy_3_vs_1_with_keeper", 8),
    ]
    for r in rows:
        assert r["num_agents"] == 3
        assert r["env_steps_per_s"]["median"] > 0 and r["env_steps_per_s"]["n"] == 2
    assert payload["target"] is None  # 1024 environments are not run in quick mode


def _check_football_baselines(payload: dict) -> None:
    """On 3_vs_1 random play (a carrier kicks the ball away 4 times in 18) almost never
    scores; running at the goal and shooting does sometimes; a pass to the free attacker
    first scores less often than that: its receiver shoots from close in at a keeper that
    has come out at him (GRF's keeper; in GRF's engine it scores 1% of the time)."""
    _check_machine(payload)
    rates = {r["policy"]: r["goal_rate"] for r in payload["rows"]}
    assert set(rates) == {"random", "run_and_shoot_11", "pass_then_run_11"}
    assert all(r["scenario"] == "academy_3_vs_1_with_keeper" for r in payload["rows"])
    assert rates["random"] < 0.1
    assert rates["run_and_shoot_11"] >= 0.1
    assert rates["pass_then_run_11"] < rates["run_and_shoot_11"]
    for row in payload["rows"]:
        assert sum(row["end_reasons"].values()) == payload["settings"]["episodes"]


def _check_smac_scripted(payload: dict) -> None:
    """On 3m with SC2's starts, focus fire beats the built-in AI (the hand-computed fight of
    tests/test_smac_fights.py in the env), and passive agents (hold, no-op) never win."""
    _check_machine(payload)
    rows = {(r["policy"], r["spawn_jitter"]): r for r in payload["rows"]}
    assert set(rows) == {(p, j) for p in ("focus_fire", "spread_fire", "hold", "no_op")
                         for j in (0.0, 0.5)}  # fmt: skip
    assert rows["focus_fire", 0.0]["win_rate"] >= 0.75
    for jitter in (0.0, 0.5):
        hold, no_op = rows["hold", jitter], rows["no_op", jitter]
        assert hold["win_rate"] == no_op["win_rate"] == 0.0
        assert hold["length_mean"] == no_op["length_mean"]  # no-op keeps the stop order
    for row in payload["rows"]:
        assert 0 < row["length_mean"] <= 60  # 3m's limit
        if row["win_rate"] > 0:
            assert 0.0 < row["health_left_on_wins"] <= 1.0


def _check_football_fidelity(payload: dict, engines: tuple[str, ...] = ("ours",)) -> None:
    _check_machine(payload)
    policies = [r["policy"] for r in payload["rows"]]
    assert policies == ["uniform", "random", "run_and_shoot_11", "pass_then_run_11"]
    for row in payload["rows"]:
        for engine in engines:
            stats = row[engine]
            assert len(stats["length_deciles"]) == 9
            assert stats["length_deciles"] == sorted(stats["length_deciles"])
            low, high = stats["goal_rate_ci95"]
            assert low <= stats["goal_rate"] <= high
            assert sum(stats["end_reasons"].values()) == pytest.approx(1.0)
            assert "running" not in stats["end_reasons"]
        if "real" in engines:  # GRF hands control around: how much, for this row
            assert 0.0 <= row["real"]["own_keeper_driven"] <= 1.0
            assert row["real"]["control_changes_per_episode"] >= 0.0
    # Quick mode shoots from 11 m only; every try ends within its 40 steps.
    assert [row["policy"] for row in payload["keeper"]] == ["run_and_shoot_60", "shoot_at_corner"]
    for keeper in payload["keeper"]:
        assert (keeper["distance"], keeper["offset"]) == (11.0, 0.0)
        for engine in engines:
            stats = keeper[engine]
            assert sum(stats["end_reasons"].values()) == pytest.approx(1.0)
            assert stats["length_mean"] <= 40
            assert "conceded" not in stats["end_reasons"]
    for row in payload["rows"]:  # ours alone: our own keeper's parries
        ours = row["ours"]
        assert 0.0 <= ours["conceded_after_own_parry"] <= ours["own_keeper_parried"] <= 1.0
        assert ours["conceded_after_own_parry"] <= ours["end_reasons"].get("conceded", 0.0)
    (save,) = payload["saves"].values()  # quick: one shot from 11 m, pressed held
    assert (save["distance"], save["offset"], save["policy"]) == (11.0, 0.0, "run_and_shoot_60")
    for engine in engines:
        summary = save[engine]
        assert summary["tries"] == 1 and sum(summary["end_reasons"].values()) == 1
        if summary["released"]:
            assert summary["release_speed"]["mean"] > 12.0  # a shot, not a dribble
            assert summary["release_delay"]["min"] >= 1
    assert set(payload["traces"]) == {"shot", "short_pass", "long_pass"}
    for trace in payload["traces"].values():
        for engine in engines:
            summary = trace[engine]
            assert summary["released"] == summary["tries"] == 1
            assert summary["release_speed"]["mean"] > 5.0  # m/s: the ball was kicked


def test_every_script_runs_in_quick_mode(tmp_path: Path) -> None:
    """One test for all the scripts, run by ``reproduce.py --quick`` (side by side), which
    also renders BENCHMARKS.md from their results; the results are checked here rather
    than through a shared fixture, which two xdist workers would each run."""
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    command = [sys.executable, "benchmarks/reproduce.py", "--quick", "--out", str(tmp_path),
               "--only", *SCRIPTS]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=3 * TIMEOUT_S)  # all seven at once, beside the suite  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in SCRIPTS}
    for payload in results.values():
        assert payload["mode"] == "quick"  # not the committed results standing in
    _check_env_throughput(results["env_throughput"])
    _check_train_throughput(results["train_throughput"])
    _check_smac_throughput(results["smac_throughput"])
    _check_football_throughput(results["football_throughput"])
    _check_football_baselines(results["football_baselines"])
    _check_smac_scripted(results["smac_scripted"])
    _check_football_fidelity(results["football_fidelity"])
    rendered = (tmp_path / "BENCHMARKS.md").read_text()
    committed = (REPO / "BENCHMARKS.md").read_text()
    assert rendered.count("<!-- table: ") == committed.count("<!-- table: ") > 0


def test_football_fidelity_runs_against_the_real_engine(tmp_path: Path) -> None:
    from marl.envs.football.real_engine import SETUP_HINT, gfootball_available

    if not gfootball_available():
        pytest.skip(f"gfootball is not installed: {SETUP_HINT}")
    results = _run_quick(tmp_path, {"football_fidelity": []})
    _check_football_fidelity(results["football_fidelity"], engines=("ours", "real"))


def test_grf_and_ours_hand_the_agents_the_same_players_at_reset_and_after() -> None:
    """GRF's own hand-out (BENCHMARKS.md, "Control moves as in GRF"): on
    empty_goal_close the one agent drives the keeper after the reset and the striker
    from the first step; on pass_and_shoot agent 0 keeps the keeper; ours shows the same
    on those and on 3_vs_1 and the corner."""
    from marl.envs.football.real_engine import SETUP_HINT, gfootball_available

    if not gfootball_available():
        pytest.skip(f"gfootball is not installed: {SETUP_HINT}")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import grf_hand_out

    (close,) = grf_hand_out.hand_out("academy_empty_goal_close", episodes=1, steps=2)
    assert close == [[0], [1], [1]]
    (shoot,) = grf_hand_out.hand_out("academy_pass_and_shoot_with_keeper", episodes=1, steps=2)
    assert shoot == [[0, 2], [0, 2], [0, 2]]
    for scenario in ("academy_empty_goal_close", "academy_pass_and_shoot_with_keeper",
                     "academy_3_vs_1_with_keeper", "academy_corner"):  # fmt: skip
        grf = grf_hand_out.hand_out(scenario, episodes=1, steps=2)
        assert grf_hand_out.ours_hand_out(scenario, episodes=1, steps=2) == grf, scenario


def test_a_parry_is_read_off_the_ball_and_keeper_positions():
    """A hand-made shot: held two steps, pressed at step 1, loose at 30 m/s from step 2,
    off the keeper at x = 48 within a step (the ball's step there is short), back at 15
    m/s 0.1 rad from straight back and lifted, the keeper still after it. A dribble (the
    ball moving with its owner) is no release."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import football_fidelity
    import numpy as np

    xs = [30.0, 30.6, 31.2, 34.2, 37.2, 40.2, 43.2, 46.2, 47.0]  # 3 m a step, then 0.8
    ys = [0.0] * len(xs)
    zs = [0.1] * len(xs)
    owners = [1, 1, 1] + [-1] * 6
    back = np.array([-np.cos(0.1), np.sin(0.1)]) * 1.5  # 15 m/s, 0.1 rad off
    for step in range(4):
        xs.append(xs[-1] + back[0])
        ys.append(ys[-1] + back[1])
        zs.append(0.1 + 0.3 * step)
        owners.append(-1)
    keeper = np.tile([48.0, 0.0], (len(xs), 1))
    pressed = np.zeros(len(xs), bool)
    pressed[1:3] = True
    balls = np.stack([xs, ys, zs], axis=1)
    result = football_fidelity.save_metrics(balls, np.array(owners), keeper, pressed)
    assert result["released"] and result["parried"]
    assert result["release_delay"] == 1  # pressed at 1, the ball loose and fast from 2 to 3
    assert result["release_speed"] == pytest.approx(30.0)
    assert result["incoming_speed"] == pytest.approx(30.0)
    assert result["rebound_speed"] == pytest.approx(15.0)
    assert result["rebound_angle"] == pytest.approx(0.1, abs=1e-6)
    assert result["rebound_peak_height"] == pytest.approx(1.0)
    assert result["keeper_speed_after"] == pytest.approx(0.0)
    dribble = football_fidelity.save_metrics(balls[:3], np.array(owners[:3]), keeper[:3],
                                             pressed[:3])  # fmt: skip
    assert not dribble["released"]


def test_smac_learning_reads_runs_into_curves_summaries_and_a_plot(tmp_path, monkeypatch):
    """``--report-only`` over hand-written metrics of two algorithms: the threshold
    step, the final win rates and the wall time without a resume's gap."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import smac_learning

    monkeypatch.setattr(smac_learning, "RUNS", tmp_path / "runs")
    rates = {"qmix": [0.2, 0.95, 1.0], "mappo": [0.0, 0.5, 0.92]}
    for algo, wins in rates.items():
        run_dir = tmp_path / "runs" / algo / "3m"
        run_dir.mkdir(parents=True)
        lines = []
        for index, win in enumerate(wins):
            step = 1000 * (index + 1)
            lines.append({"kind": "train", "step": step, "sps": 100.0})
            for seed in range(2):
                lines.append(
                    {"kind": "eval", "step": step, "seed": seed, "win_rate": win, "return_mean": 1}
                )
        (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "smac_learning.json"
    smac_learning.main(
        ["--report-only", "--algos", "qmix", "mappo", "--maps", "3m", "--out", str(out)]
    )
    results = json.loads(out.read_text())["results"]
    assert results["qmix"]["3m"]["summary"]["all_seeds_at_threshold_step"] == 2000
    assert results["mappo"]["3m"]["summary"]["all_seeds_at_threshold_step"] == 3000
    assert results["mappo"]["3m"]["summary"]["final_win_rate_per_seed"] == [0.92, 0.92]
    # 1000 steps per chunk at 100 steps/s: 10 s each.
    assert results["qmix"]["3m"]["summary"]["final_wall_s"] == pytest.approx(30.0)
    assert out.with_suffix(".png").stat().st_size > 0


def test_football_learning_reports_the_goal_rate_with_its_own_settings(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import football_learning

    monkeypatch.setattr(football_learning, "RUNS", tmp_path / "runs")
    run_dir = tmp_path / "runs" / "vdn" / "academy_empty_goal_close"
    run_dir.mkdir(parents=True)
    lines = [{"kind": "train", "step": 1000, "sps": 50.0}]
    lines += [
        {"kind": "eval", "step": 1000, "seed": s, "win_rate": w, "return_mean": 1}
        for s, w in enumerate([0.97, 0.5])
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    started = tmp_path / "runs" / "qmix" / "academy_3_vs_1_with_keeper"
    started.mkdir(parents=True)
    (started / "metrics.jsonl").write_text("")  # its first chunk is still running
    out = tmp_path / "football_learning.json"
    football_learning.main(["--report-only", "--algos", "vdn", "qmix", "--out", str(out)])
    payload = json.loads(out.read_text())
    summary = payload["results"]["vdn"]["academy_empty_goal_close"]["summary"]
    assert summary["final_win_rate_per_seed"] == [0.97, 0.5]
    assert summary["all_seeds_at_threshold_step"] is None
    assert summary["final_wall_s"] == pytest.approx(20.0)
    assert payload["results"]["qmix"] == {}  # no run or no evaluation yet: left out
    assert payload["settings"]["steps"]["qmix"]["academy_3_vs_1_with_keeper"] == 3_000_000
    assert payload["settings"]["steps"]["vdn"]["academy_3_vs_1_with_keeper"] == 1_000_000


def test_football_probe_forces_the_carriers_first_kick_and_records_the_pass():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import football_probe
    import jax
    import numpy as np

    import marl
    from marl.loop import Runner

    tiny = {"hidden_dim": 8, "buffer_size": 64, "batch_size": 2, "sequence_length": 4}
    env = marl.make_env("football/academy_3_vs_1_with_keeper")
    runner = Runner(
        env,
        marl.make_algorithm("qmix", marl.env_spec(env), envs_per_device=1, **tiny),
        envs_per_device=1,
        rollout_length=1,
        iterations_per_chunk=1,
        num_seeds=1,
        num_devices=1,
    )
    algo_state = jax.tree_util.tree_map(lambda x: x[0, 0], runner.init([0]).algo_state)
    records = football_probe.probe_episodes(
        runner, algo_state, jax.random.PRNGKey(0), 64, football_probe.KICKS["short_pass"]
    )
    records = jax.tree_util.tree_map(np.asarray, records)
    # The ball starts loose at the carrier's feet and is his after the first step, so
    # every episode's first kick is the forced pass, at the second step.
    np.testing.assert_array_equal(records["first_kick"], football_probe.KICKS["short_pass"])
    np.testing.assert_array_equal(records["first_kick_step"], 1)
    assert np.all(records["passer"] >= 0)
    # The ball leaves the carrier about 18 m from goal (GRF's start positions) ...
    assert np.all((records["loose_distance"] > 12.0) & (records["loose_distance"] < 25.0))
    # ... and teammates receive some (81% standing; an untrained policy's wanderers
    # about a third; 64 episodes keep the sample's spread well inside the bound).
    summary = football_probe.summarise(records)
    assert summary["first_kick_share"]["short_pass"] == 1.0
    assert 0.15 <= summary["passes_completed"] <= 1.0
    assert sum(summary["end_reason_share"].values()) == pytest.approx(1.0)
    after = summary["after_completed_pass"]
    assert after["episodes"] == int(records["pass_completed"].sum())
    assert sum(after["end_reason_share"].values()) == pytest.approx(1.0)


def test_a_learning_report_keeps_the_earlier_results_of_runs_it_did_not_read(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import football_learning

    monkeypatch.setattr(football_learning, "RUNS", tmp_path / "runs")
    out = tmp_path / "football_learning.json"
    point = {"step": 1000, "wall_s": 10.0, "seeds": {"0": {"win_rate": 0.5, "return": 1}}}
    earlier_qmix = {"evaluations": [point], "summary": {"final_win_rate_per_seed": [0.5]}}
    out.write_text(
        json.dumps(
            {
                "benchmark": "football_learning",
                "settings": {"steps": {"qmix": {"academy_empty_goal_close": 200_000}}},
                "results": {
                    "qmix": {"academy_empty_goal_close": earlier_qmix},
                    "vdn": {"academy_empty_goal_close": {"stale": True}},
                },
            }
        )
    )
    run_dir = tmp_path / "runs" / "vdn" / "academy_empty_goal_close"
    run_dir.mkdir(parents=True)
    lines = [{"kind": "train", "step": 1000, "sps": 50.0}]
    lines += [{"kind": "eval", "step": 1000, "seed": 0, "win_rate": 0.9, "return_mean": 1}]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    football_learning.main(
        ["--report-only", "--algos", "vdn", "--tasks", "academy_empty_goal_close"]
        + ["--out", str(out)]
    )
    payload = json.loads(out.read_text())
    assert payload["results"]["qmix"]["academy_empty_goal_close"] == earlier_qmix
    assert payload["settings"]["steps"]["qmix"]["academy_empty_goal_close"] == 200_000
    vdn = payload["results"]["vdn"]["academy_empty_goal_close"]
    assert vdn["summary"]["final_win_rate_per_seed"] == [0.9]  # the new run replaced it


def test_multitask_transfer_reads_each_task_of_the_pretraining_and_each_transfer(
    tmp_path, monkeypatch
):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import multitask_transfer

    monkeypatch.setattr(multitask_transfer, "RUNS", tmp_path / "runs")
    runs = tmp_path / "runs" / "smac"
    pretrain = {"smac/3m": [0.5, 1.0], "smac/8m": [0.1, 0.2], "smac/2s3z": [0.0, 0.95]}
    stages = {"scratch": [0.0, 0.4], "frozen": [0.3, 0.9], "finetune": [0.2, 1.0]}
    for stage, per_task in [("pretrain", pretrain)] + [(s, {None: w}) for s, w in stages.items()]:
        (runs / stage).mkdir(parents=True)
        lines = []
        for index in range(2):
            step = 1000 * (index + 1)
            lines.append({"kind": "train", "step": step, "sps": 100.0})
            for task, wins in per_task.items():
                for seed in range(2):
                    record = {"kind": "eval", "step": step, "seed": seed, "return_mean": 1}
                    record |= {"win_rate": wins[index]} | ({"task": task} if task else {})
                    lines.append(record)
        (runs / stage / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    out = tmp_path / "transfer.json"
    payload = multitask_transfer.main(["--family", "smac", "--report-only", "--out", str(out)])
    results = payload["results"]
    pretrained = results["pretrain (all tasks in one program)"]
    assert {task: r["summary"]["final_win_rate_mean"] for task, r in pretrained.items()} == {
        "smac/3m": 1.0,
        "smac/8m": 0.2,
        "smac/2s3z": 0.95,
    }
    assert pretrained["smac/3m"]["summary"]["all_seeds_at_threshold_step"] == 2000
    for stage, wins in stages.items():
        summary = results[stage]["smac/3s5z"]["summary"]
        assert summary["final_win_rate_per_seed"] == [wins[1]] * 2
    assert out.with_suffix(".png").stat().st_size > 0
    # A later invocation of some stages keeps the others (stages run in other sessions).
    (runs / "frozen" / "metrics.jsonl").unlink()
    again = multitask_transfer.main(
        ["--family", "smac", "--report-only", "--stages", "scratch", "--out", str(out)]
    )["results"]
    assert again["frozen"] == results["frozen"] and set(again) == set(results)
    # Transfers load the pre-training run, else its exported layers; neither is refused.
    exported = multitask_transfer.decision_file("smac", out)
    assert exported.parent == tmp_path
    with pytest.raises(SystemExit, match="run --stages pretrain first"):
        multitask_transfer.transfer_source(runs / "pretrain", exported)
    exported.write_bytes(b"layers")
    assert multitask_transfer.transfer_source(runs / "pretrain", exported) == exported
    (runs / "pretrain" / "checkpoints").mkdir()
    assert multitask_transfer.transfer_source(runs / "pretrain", exported) == runs / "pretrain"


def test_mansa_benchmark_sets_its_baselines_from_mansas_run_and_tunes_the_parts(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import mansa_learning

    mansa_dir = tmp_path / "mansa"
    mansa_dir.mkdir()
    records = [
        {"kind": "train", "step": 1000, "seed": seed, "cl_step_fraction": 0.5, "sps": 1.0}
        for seed in range(2)
    ] + [
        {
            "kind": "train",
            "step": 2000,
            "seed": seed,
            "cl_step_fraction": fraction,
            "cl_calls_per_episode": calls,
            "sps": 1.0,
        }
        for seed, fraction, calls in ((0, 0.2, 3.0), (1, 0.3, 4.4))
    ]
    (mansa_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    assert mansa_learning.final_train_metric(mansa_dir, "cl_step_fraction") == [0.2, 0.3]
    rates = mansa_learning.mansa_rates(mansa_dir, None)
    assert rates == ([0.2, 0.3], [3.0, 4.4])
    assert mansa_learning.stage_overrides("random", *rates) == [
        "algo.switch=random",
        "algo.cl_rate=0.2500",
    ]
    assert mansa_learning.stage_overrides("first_k", *rates)[1] == "algo.first_k=4"
    assert mansa_learning.stage_overrides("cl", [], []) == [
        "algo.switch=always",
        "algo.budget_scope=unlimited",
    ]
    # MANSA ran in another session: its rates come from its result in the JSON.
    summary = {"cl_step_fraction_per_seed": [0.5], "cl_calls_per_episode_per_seed": [7.0]}
    recorded = {"summary": summary}
    assert mansa_learning.mansa_rates(tmp_path / "gone", recorded) == ([0.5], [7.0])
    with pytest.raises(SystemExit, match="run --stages mansa first"):
        mansa_learning.mansa_rates(tmp_path / "gone", None)
    # The parts get what marl-train tunes for them alone: LBF's value-decomposition
    # settings, and its 4-step rollouts once.
    overrides = mansa_learning.part_overrides("lbf/8x8-2p-2f-coop", "iql", "qmix")
    assert "algo.il_options.gamma=0.95" in overrides and "algo.cl_options.gamma=0.95" in overrides
    assert overrides.count("arch.rollout_length=4") == 1
    assert mansa_learning.part_overrides("smac/3m", "iql", "qmix") == []
    stages = {
        "mansa": {"summary": {"cl_step_fraction_per_seed": [0.2, 0.3]}},
        "cl": {"summary": {"cl_step_fraction_per_seed": [1.0, 1.0]}},
    }
    costs = {"il": {"flops": 1e9, "seconds": 0.1}, "cl": {"flops": 4e9, "seconds": 0.2}}
    estimate = mansa_learning.cl_compute(stages, costs)
    assert estimate["mansa"]["cl_gflop_per_update"] == pytest.approx(1.0)
    assert estimate["mansa"]["cl_ms_per_update"] == pytest.approx(50.0)
    assert estimate["mansa"]["saved_against_cl_everywhere"] == pytest.approx(0.75)
    assert estimate["cl"]["saved_against_cl_everywhere"] == 0.0


@pytest.mark.slow
def test_the_multiprocess_benchmark_compares_layouts_and_seed_packing_in_quick_mode(tmp_path):
    out = tmp_path / "multiprocess.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    subprocess.run(
        [sys.executable, "benchmarks/multiprocess.py", "--quick", "--out", str(out)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    payload = json.loads(out.read_text())
    _check_machine(payload)
    for layout in ("1x2", "2x1"):
        rates = payload["layouts"]["per_chunk"][layout]
        assert len(rates) == 2 and all(rate > 0 for rate in rates)  # chunks after the first
    assert payload["two_processes_vs_one"] > 0
    for way in ("packed", "swept"):
        assert payload["seeds"]["wall_seconds"][way]["median"] > 0
    assert payload["packed_vs_swept"] > 0


def test_a_curve_says_when_where_and_how_its_best_policies_did(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import learning_curves

    run_dir = tmp_path / "run"
    learning_curves.record_provenance(run_dir)  # a start, then a resume
    learning_curves.record_provenance(run_dir)
    assert not run_dir.exists()  # beside it: marl-train starts runs in new directories
    run_dir.mkdir()
    records = [
        {"kind": "train", "step": 1000, "sps": 100.0},
        {"kind": "eval", "step": 1000, "seed": 0, "win_rate": 0.5, "return_mean": 1.0,
         "wall_time": 1796601600.0},
    ]  # fmt: skip
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    # marl-train's replay of each seed's best policy, from the run's marl-eval file.
    best = {"step_0": {"step_count": 1000, "return": [1.0], "win_rate": [0.5]},
            "absolute_metrics": {"return": [20.0, 18.0], "win_rate": [0.9]}}  # fmt: skip
    results = {"smac": {"3m": {"qmix": {"seed_0": best}}}}
    (run_dir / "results.json").write_text(json.dumps(results))
    curve = learning_curves.read_curve(run_dir)
    measured = curve["measured"]
    assert measured["last_evaluation"] == "2026-12-07T00:00:00+0000"
    assert len(measured["commits"]) == 1 and measured["usable_cores"] >= 1
    assert curve["best_policy"] == {"0": {"return": 19.0, "win_rate": 0.9, "num_episodes": 2}}


def test_a_mansa_report_of_some_tasks_or_stages_keeps_the_others(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import mansa_learning

    path = tmp_path / "mansa.json"
    name = "mansa_learning_iql_qmix"
    earlier = {
        "lbf/8x8-2p-2f-coop": {"stages": {"il": 1}},
        "smac/3m": {"stages": {"il": 2, "mansa": 4}, "update_costs": 5},
    }
    path.write_text(json.dumps({"benchmark": name, "results": earlier}))
    assert mansa_learning.earlier_payload(path, name)["results"] == earlier
    assert mansa_learning.earlier_payload(path, "mansa_learning_ippo_mappo") == {}
    merged = mansa_learning.keep_earlier(
        earlier, {"smac/3m": {"stages": {"il": 3}, "update_costs": 6}}
    )
    assert merged == {
        "lbf/8x8-2p-2f-coop": {"stages": {"il": 1}},
        "smac/3m": {"stages": {"il": 3, "mansa": 4}, "update_costs": 6},
    }
