"""benchmarks/reproduce.py: BENCHMARKS.md's tables are rendered from the committed JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import reproduce  # noqa: E402
import tables  # noqa: E402


def test_benchmarks_md_is_what_the_committed_results_render():
    done = subprocess.run(
        [sys.executable, "benchmarks/reproduce.py", "--check"], cwd=REPO, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    text = (REPO / "BENCHMARKS.md").read_text()
    used = reproduce.block_names(text)
    assert used and set(used) <= set(tables.names())
    assert len(used) == len(set(used))  # every block once
    assert reproduce.tables_outside_blocks(text) == []


def test_every_result_names_a_script_that_exists_and_how_it_was_called():
    commands = {}
    for path in sorted((REPO / "benchmarks/results").glob("*.json")):
        payload = json.loads(path.read_text())
        results = payload.get("results") if isinstance(payload, dict) else None
        tasks = results.values() if isinstance(results, dict) else []
        found = [payload.get("command") if isinstance(payload, dict) else None] + [
            task.get("measured", {}).get("command") for task in tasks if isinstance(task, dict)
        ]
        commands[path.name] = [command for command in found if command]
    assert sum(map(len, commands.values())) >= 10
    for name, found in commands.items():
        for command in found:
            python, script, *_ = command.split()
            assert python == "python" and (REPO / script).is_file(), (name, command)


def test_a_results_command_is_the_script_and_the_arguments_it_ran_with(monkeypatch):
    from common import command_line

    assert command_line("mo_learning.py", ["--family", "mo-smac"]) == (
        "python benchmarks/mo_learning.py --family mo-smac"
    )
    monkeypatch.setattr(sys, "argv", ["benchmarks/ranking.py", "--uniform"])
    assert command_line("ranking.py") == "python benchmarks/ranking.py --uniform"
    assert command_line("ranking.py", []) == "python benchmarks/ranking.py"


def test_a_table_typed_outside_a_block_is_found():
    text = (
        "intro\n<!-- table: ranking.population -->\n| a |\n|---|\n<!-- /table -->\n\n"
        "| typed | in |\n|---|---|\n| 1 | 2 |\ntext\n| another |\n|---|\n"
    )
    assert reproduce.tables_outside_blocks(text) == [7, 11]


def test_recorded_tables_are_all_used_and_say_they_are_recorded():
    text = (REPO / "BENCHMARKS.md").read_text()
    recorded = json.loads((REPO / "benchmarks/results/recorded_tables.json").read_text())
    used = {name for name in reproduce.block_names(text) if name.startswith("recorded.")}
    assert used == {f"recorded.{name}" for name in recorded["tables"]}
    body, _ = tables.render("recorded.ppo.distrax_rounds", REPO / "benchmarks/results")
    assert body.startswith("| learner | distrax, round 1 / 2 |")
    assert "recorded figures, which reproduce.py does not re-run" in body


def test_a_block_is_replaced_by_its_renderer_with_provenance(tmp_path):
    payload = {
        "command": "python benchmarks/ranking.py",
        "machine": {"timestamp": "2026-12-06T23:00:00+0000", "cpu_model": "Test CPU",
                    "usable_cores": 2, "git": "abc1234"},
        "adaptive": {"table": "| team | mass |\n|---|---|\n| a | 1 |", "matches": 1200,
                     "rounds": 7, "seconds": 90.0, "resolved": [[True, True], [True, True]]},
    }  # fmt: skip
    (tmp_path / "ranking.json").write_text(json.dumps(payload))
    text = "before\n<!-- table: ranking.population -->\nstale\n<!-- /table -->\nafter\n"
    rendered = reproduce.render(text, tmp_path)
    assert rendered == (
        "before\n<!-- table: ranking.population -->\n| team | mass |\n|---|---|\n| a | 1 |\n\n"
        "<sub>Measured 2026-12-06 on Test CPU (2 cores), commit abc1234, "
        "`python benchmarks/ranking.py`.</sub>\n<!-- /table -->\nafter\n"
    )
    assert reproduce.render(rendered, tmp_path) == rendered  # rendering is idempotent
    sampling = reproduce.render("<!-- table: ranking.sampling -->\n<!-- /table -->\n", tmp_path)
    assert "| adaptive | 1,200 | 7 | 1 of 1 | 1.5 |" in sampling


def test_unknown_blocks_and_missing_results_are_named(tmp_path):
    with pytest.raises(KeyError, match="no renderer for table 'nothing'"):
        reproduce.render("<!-- table: nothing -->\n<!-- /table -->\n", tmp_path)
    with pytest.raises(FileNotFoundError, match="ranking.json"):
        reproduce.render("<!-- table: ranking.population -->\n<!-- /table -->\n", tmp_path)


def test_unknown_benchmark_names_fail_in_one_line():
    done = subprocess.run(
        [sys.executable, "benchmarks/reproduce.py", "--render-only", "--only", "smac_lerning"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown benchmark smac_lerning; valid: env_throughput" in done.stderr


def test_mansa_tables_name_a_task_without_results_and_show_the_last_evaluation():
    import tables_mansa

    steps = [20_000 * k for k in range(1, 11)]
    assert tables_mansa._shown_steps([{"step": s} for s in steps]) == [
        40_000, 80_000, 120_000, 160_000, 200_000,
    ]  # fmt: skip
    assert tables_mansa._shown_steps([{"step": 5}]) == [5]
    with pytest.raises(KeyError, match="no results for smac/2s3z; it has lbf"):
        tables_mansa.stages_table({"results": {"lbf/8x8-2p-2f-coop": {}}}, "smac/2s3z")
