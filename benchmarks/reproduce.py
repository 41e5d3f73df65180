"""Runs (or resumes) every benchmark and regenerates BENCHMARKS.md's tables from their JSON.

BENCHMARKS.md is prose around generated blocks::

    <!-- table: multiprocess.layouts -->
    | layout | ... |
    ...
    <!-- /table -->

Each block's body is what the renderer of that name in :mod:`tables` makes of the
committed results (``benchmarks/results/*.json``), followed by a line saying when,
on what machine and at which commit the figures were measured, and by which command.
Nobody edits a block by hand: ``--render-only`` rewrites them all, ``--check`` fails
when one is out of date (CI runs it).

Usage::

    python benchmarks/reproduce.py                  # run/resume every benchmark, render
    python benchmarks/reproduce.py --only multiprocess smac_learning
    python benchmarks/reproduce.py --render-only    # re-render from the committed JSON
    python benchmarks/reproduce.py --check          # exit 1 if BENCHMARKS.md is stale
    python benchmarks/reproduce.py --quick --out DIR  # every quick mode, rendered into DIR

The full mode is hours to days of this 2-core CPU (the learning benchmarks dominate);
each benchmark resumes its own runs, so the command can be stopped and restarted.
``--quick`` runs every benchmark that has a quick mode (small sizes, seconds to a
minute each) into ``DIR`` and renders ``DIR/BENCHMARKS.md`` from those results,
with the committed results standing in for benchmarks that have none: it proves the
pipeline, not the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCUMENT = REPO / "BENCHMARKS.md"
RESULTS = HERE / "results"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w.\-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark: the commands of its full run (one or more invocations of a
    script), its quick run (None: it has none) and the result files it writes."""

    name: str
    full: tuple[tuple[str, ...], ...]
    quick: tuple[str, ...] | None
    results: tuple[str, ...]

    def commands(self, quick: bool, out: Path) -> list[list[str]]:
        runs = ([self.quick] if self.quick else []) if quick else list(self.full)
        commands = []
        for args in runs:
            command = [sys.executable, str(HERE / f"{args[0]}.py"), *args[1:]]
            commands.append([*command, "--out", str(out / f"{self.results[0]}.json")])
        return commands


def _one(*args: str) -> tuple[tuple[str, ...], ...]:
    return (args,)


# In the order they run: the throughput benchmarks first (minutes), learning last (hours
# to days on this CPU). The learning commands are the budgets BENCHMARKS.md shows.
BENCHMARKS = (
    Benchmark("env_throughput", _one("env_throughput"), ("env_throughput", "--quick"),
              ("env_throughput",)),
    Benchmark("train_throughput", _one("train_throughput"), ("train_throughput", "--quick"),
              ("train_throughput",)),
    Benchmark("train_throughput_smac",
              _one("train_throughput", "--configs", "smac3m-qmix", "smac3m-mappo",
                   "smac3m-mat", "smac3m-cmat", "--chunks", "3"),
              None, ("train_throughput_smac",)),
    Benchmark("smac_throughput", _one("smac_throughput"), ("smac_throughput", "--quick"),
              ("smac_throughput",)),
    Benchmark("football_throughput", _one("football_throughput"),
              ("football_throughput", "--quick"), ("football_throughput",)),
    Benchmark("football_baselines", _one("football_baselines"),
              ("football_baselines", "--quick"), ("football_baselines",)),
    Benchmark("smac_scripted", _one("smac_scripted"), ("smac_scripted", "--quick"),
              ("smac_scripted",)),
    Benchmark("football_fidelity", _one("football_fidelity"),
              ("football_fidelity", "--quick", "--engine", "ours"), ("football_fidelity",)),
    Benchmark("matrix_games", _one("matrix_games"), ("matrix_games", "--quick"),
              ("matrix_games",)),
    Benchmark("multiprocess", _one("multiprocess"), ("multiprocess", "--quick"),
              ("multiprocess",)),
    Benchmark("smac_learning",
              (("smac_learning", "--algos", "qmix", "--maps", "3m", "2s3z", "5m_vs_6m"),
               ("smac_learning", "--algos", "mappo", "mat", "cmat", "--maps", "3m",
                "--steps", "3m=400000"),
               ("smac_learning", "--algos", "mappo", "mat", "cmat", "--maps", "2s3z",
                "--steps", "2s3z=960000"),
               ("smac_learning", "--algos", "mappo", "--maps", "5m_vs_6m",
                "--steps", "5m_vs_6m=960000")),
              None, ("smac_learning",)),
    Benchmark("football_learning", _one("football_learning"), None, ("football_learning",)),
    Benchmark("mo_smac", _one("mo_learning", "--family", "mo-smac"), None,
              ("mo_smac_learning",)),
    Benchmark("mo_football", _one("mo_learning", "--family", "mo-football"), None,
              ("mo_football_learning",)),
    Benchmark("multitask_transfer_smac", _one("multitask_transfer", "--family", "smac"), None,
              ("multitask_transfer_smac",)),
    Benchmark("multitask_transfer_football", _one("multitask_transfer", "--family", "football"),
              None, ("multitask_transfer_football",)),
    Benchmark("mansa_learning",
              _one("mansa_learning", "--tasks", "lbf/8x8-2p-2f-coop", "smac/3m", "smac/2s3z"),
              None, ("mansa_learning_iql_qmix",)),
    Benchmark("ranking", _one("ranking", "--uniform"), None, ("ranking",)),
)  # fmt: skip


def provenance(payload: dict) -> str:
    """When, where, at which commit and by which command a result was measured."""
    import tables

    return tables.provenance(payload)


def render(text: str, results: Path) -> str:
    """``text`` with every generated block re-rendered from the JSON in ``results``."""
    import tables

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        body, payload = tables.render(name, results)
        body = body.rstrip()
        if "<sub>Measured" not in body:  # renderers of merged results say it per row
            body += f"\n\n{provenance(payload)}"
        return f"{match[1]}{body}\n{match[4]}"

    return BLOCK.sub(replace, text)


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order."""
    return [m["name"] for m in BLOCK.finditer(text)]


def tables_outside_blocks(text: str) -> list[int]:
    """The line numbers at which a markdown table starts outside every generated block
    (a table typed into the document instead of rendered from results)."""
    starts, inside, previous = [], False, ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("<!-- table:"):
            inside = True
        elif line.startswith("<!-- /table"):
            inside = False
        elif line.startswith("|") and not inside and not previous.startswith("|"):
            starts.append(number)
        previous = line
    return starts


def run(benchmarks: list[Benchmark], quick: bool, out: Path, parallel: bool) -> None:
    """Runs the benchmarks' full (or quick) commands; quick ones side by side."""
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # one CPU device, as the scripts are meant to run
    commands = [(b, c) for b in benchmarks for c in b.commands(quick, out)]
    if parallel:
        procs = [
            (b, subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True))
            for b, c in commands
        ]  # fmt: skip
        failures = []
        for benchmark, proc in procs:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                failures.append(f"{benchmark.name} exited {proc.returncode}:\n{output[-3000:]}")
        if failures:
            raise SystemExit("\n\n".join(failures))
        return
    for benchmark, command in commands:
        print(f"== {benchmark.name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, cwd=REPO, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="every quick mode, into --out")
    mode.add_argument("--render-only", action="store_true", help="only re-render the tables")
    mode.add_argument("--check", action="store_true", help="fail if BENCHMARKS.md is stale")
    parser.add_argument("--only", nargs="+", help="these benchmarks only (by name)")
    parser.add_argument("--out", help="--quick: where results and BENCHMARKS.md go")
    args = parser.parse_args(argv)
    names = [b.name for b in BENCHMARKS]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; valid: {', '.join(names)}")
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    text = DOCUMENT.read_text()
    if args.check:
        typed = tables_outside_blocks(text)
        if typed:
            lines = ", ".join(map(str, typed))
            print(
                f"BENCHMARKS.md has tables outside generated blocks at lines {lines}: "
                "give each a renderer in benchmarks/tables*.py and a block"
            )
            return 1
        rendered = render(text, RESULTS)
        if rendered != text:
            diff = difflib.unified_diff(
                text.splitlines(), rendered.splitlines(), "BENCHMARKS.md", "rendered", lineterm=""
            )
            print("\n".join(diff))
            print("BENCHMARKS.md is stale: python benchmarks/reproduce.py --render-only")
            return 1
        print(f"BENCHMARKS.md: {len(block_names(text))} generated tables up to date")
        return 0
    if args.quick:
        if not args.out:
            parser.error("--quick needs --out DIR (quick figures never go into BENCHMARKS.md)")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        # The committed results stand in for every benchmark not run quick here.
        for path in RESULTS.glob("*.json"):
            shutil.copy(path, out / path.name)
        run([b for b in chosen if b.quick is not None], quick=True, out=out, parallel=True)
        (out / "BENCHMARKS.md").write_text(render(text, out))
        print(f"rendered {len(block_names(text))} tables into {out / 'BENCHMARKS.md'}")
        return 0
    if not args.render_only:
        run(chosen, quick=False, out=RESULTS, parallel=False)
    DOCUMENT.write_text(render(text, RESULTS))
    print(f"rendered {len(block_names(text))} tables into {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
