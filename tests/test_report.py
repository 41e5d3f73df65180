"""marl-report: aggregate statistics of runs through marl-eval and rliable."""

import json
import os

import numpy as np
import pytest

if os.environ.get("MARL_LAB_REQUIRE_MARL_EVAL"):
    import marl_eval  # noqa: F401
else:
    pytest.importorskip(
        "marl_eval", reason="pip install --no-deps id-marl-eval==0.0.4 (as .ci/run does)"
    )

from marl.experiments import report  # noqa: E402

# Final greedy win rates per seed: A wins more than B on one task, ties on the other.
FINAL = {
    "3m": {"a": [1.0, 1.0, 1.0, 1.0, 0.5], "b": [0.0, 0.0, 0.5, 0.5, 0.5]},
    "2s3z": {"a": [0.5, 0.5, 0.5, 0.5, 0.5], "b": [0.5, 0.5, 0.5, 0.5, 0.5]},
}


def write_run(path, task, algo, seed, final):
    """A results.json as marl-train writes it: two evaluations, the last one final."""
    entry = lambda step, w: {"step_count": step, "return": [20 * w] * 4, "win_rate": [w]}  # noqa: E731
    seed_entries = {"step_0": entry(1_000, 0.0), "step_1": entry(2_000, final)}
    seed_entries["absolute_metrics"] = {"return": [20 * final] * 4, "win_rate": [final]}
    path.mkdir(parents=True, exist_ok=True)
    payload = {"smac": {task: {algo: {f"seed_{seed}": seed_entries}}}}
    (path / "results.json").write_text(json.dumps(payload))


@pytest.fixture
def runs(tmp_path):
    for task, algos in FINAL.items():
        for algo, finals in algos.items():
            for seed, final in enumerate(finals):
                write_run(tmp_path / "runs" / f"{algo}_{task}_{seed}", task, algo, seed, final)
    # A multirun folder links to a run that is also found directly: read once.
    (tmp_path / "multirun" / "0").mkdir(parents=True)
    os.symlink(tmp_path / "runs" / "a_3m_0", tmp_path / "multirun" / "0" / "run")
    return tmp_path


def test_statistics_match_hand_computed_values(runs, capsys):
    report.main([str(runs / "runs"), str(runs / "multirun"), "--out", str(runs / "out"),
                 "--reps", "500"])  # fmt: skip
    result = json.loads((runs / "out" / "report.json").read_text())
    assert len(result["results_files"]) == 20 and result["metric"] == "win_rate"
    smac = result["environments"]["smac"]
    assert smac["runs"] == {"a": 5, "b": 5} and smac["tasks_per_run"] == {"a": 2, "b": 2}
    a = np.array([FINAL["2s3z"]["a"], FINAL["3m"]["a"]]).T  # [seeds, tasks]
    b = np.array([FINAL["2s3z"]["b"], FINAL["3m"]["b"]]).T
    # IQM: the middle half of the 10 scores; mean; optimality gap: mean shortfall from 1.
    middle = lambda x: np.sort(x.ravel())[2:8].mean()  # noqa: E731
    for name, scores in (("a", a), ("b", b)):
        values = smac["aggregate"][name]
        assert values["IQM"]["value"] == pytest.approx(middle(scores))
        assert values["Mean"]["value"] == pytest.approx(scores.mean())
        assert values["Optimality gap"]["value"] == pytest.approx(np.mean(1 - scores))
        low, high = values["Mean"]["ci"]
        assert low <= scores.mean() <= high and high - low > 0
    # P(a > b), averaged over tasks: on 3m, a beats b in 22 of 25 seed pairs and ties in
    # 3 (counted half); on 2s3z every pair ties.
    expected = ((22 + 0.5 * 3) / 25 + 0.5) / 2
    assert smac["probability_of_improvement"]["a,b"]["value"] == pytest.approx(expected)
    assert smac["probability_of_improvement"]["b,a"]["value"] == pytest.approx(1 - expected)
    assert smac["final_per_task"]["3m"]["a"]["value"] == pytest.approx(0.9)
    assert smac["final_per_task"]["3m"]["b"]["seeds"] == 5
    for figure in smac["figures"].values():
        assert (runs / "out" / "smac" / figure).stat().st_size > 1_000
    assert set(smac["figures"]) >= {
        "aggregate_scores", "performance_profiles", "probability_of_improvement",
        "sample_efficiency", "task_3m", "task_2s3z",
    }  # fmt: skip
    printed = capsys.readouterr().out
    assert "| a > b |" in printed and "| 3m | a | 5 | 0.900 [" in printed


def test_bad_input_fails_in_one_line(runs, capsys):
    for argv, message in (
        ([str(runs / "nowhere")], "no such file or directory"),
        ([str(runs / "runs"), "--metric", "goals"], "metric 'goals' is not in every run"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            report.main([*argv, "--out", str(runs / "out")])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1
    empty = runs / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        report.main([str(empty), "--out", str(runs / "out")])
    assert "no results.json under" in capsys.readouterr().err
