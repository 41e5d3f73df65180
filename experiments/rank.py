"""``marl-rank runs=DIR[,DIR...] [delta=0.05] [matches_per_round=8] [max_matches=400]
[confidence=hoeffding|clopper-pearson] [sampling=adaptive|uniform] [alpha=100]
[json=PATH]``: ranks trained teams by playing them against each other.

Every seed of every run is a team (``<algo>/seed<k>``; runs of the same algorithm are
told apart by their directory's name). They play greedy matches on their common SMAC
map, one team on each side, until ResponseGraphUCB knows who beats whom with
confidence ``1 - delta`` (or a pair has played ``max_matches``); then alpha-Rank ranks
them, with Elo beside it (:mod:`marl.matches`, :mod:`marl.ranking`). Prints the
ranking as a markdown table; ``json=PATH`` also writes every figure.
"""

from __future__ import annotations

import json
import pathlib
import sys

from marl.ranking import CONFIDENCE_METHODS

USAGE = (
    "usage: marl-rank runs=DIR[,DIR...] [delta=0.05] [matches_per_round=8] "
    "[max_matches=400] [confidence=hoeffding|clopper-pearson] [sampling=adaptive|uniform] "
    "[alpha=100] [json=PATH]"
)
SAMPLING = ("adaptive", "uniform")


def parse_args(argv: list[str]) -> dict[str, object]:
    """The settings from ``key=value`` arguments; a bad one raises ValueError in one line."""
    valid = {"runs", "delta", "matches_per_round", "max_matches", "confidence", "sampling",
             "alpha", "json"}  # fmt: skip
    raw: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in valid:
            raise ValueError(f"unexpected argument '{arg}'; {USAGE}")
        raw[key] = value
    if not raw.get("runs"):
        raise ValueError(f"runs is required; {USAGE}")
    runs = [pathlib.Path(p) for p in raw["runs"].split(",") if p]
    for run in runs:
        if not (run / "config.yaml").exists():
            raise ValueError(f"runs: '{run}' is not a marl-lab run directory (no config.yaml)")
    settings: dict[str, object] = {"runs": runs}

    def number(key: str, default: float, cast: type, low: float, high: float) -> None:
        text = raw.get(key)
        if text is None:
            settings[key] = default
            return
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not low < value < high:
            kind = "an integer" if cast is int else "a number"
            raise ValueError(f"{key} must be {kind} in ({low}, {high}), got '{text}'")
        settings[key] = value

    number("delta", 0.05, float, 0.0, 1.0)
    number("matches_per_round", 8, int, 0, 10**6)
    number("max_matches", 400, int, 0, 10**9)
    number("alpha", 100.0, float, 0.0, float("inf"))
    confidence = raw.get("confidence", "hoeffding")
    if confidence not in CONFIDENCE_METHODS:
        raise ValueError(
            f"confidence must be one of {', '.join(CONFIDENCE_METHODS)}, got '{confidence}'"
        )
    sampling = raw.get("sampling", "adaptive")
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}, got '{sampling}'")
    settings.update(confidence=confidence, sampling=sampling, json=raw.get("json"))
    return settings


def main() -> None:
    """Entry point of ``marl-rank``."""
    try:
        settings = parse_args(sys.argv[1:])
    except ValueError as error:
        print(f"marl-rank: error: {error}", file=sys.stderr)
        sys.exit(2)
    from marl.compile_cache import enable_compile_cache
    from marl.config import ConfigError
    from marl.matches import MatchError, load_teams, rank_teams
    from marl.train import read_run_config

    enable_compile_cache("marl-rank")
    runs: list[pathlib.Path] = settings["runs"]  # type: ignore[assignment]
    try:
        algos = [read_run_config(run).algo.name for run in runs]
        teams = []
        for run, algo in zip(runs, algos, strict=True):
            label = algo if algos.count(algo) == 1 else f"{algo}:{run.name}"
            teams.extend(load_teams(run, name=label))
        result = rank_teams(
            teams,
            delta=settings["delta"],  # type: ignore[arg-type]
            matches_per_round=settings["matches_per_round"],  # type: ignore[arg-type]
            max_matches_per_pair=settings["max_matches"],  # type: ignore[arg-type]
            confidence=settings["confidence"],  # type: ignore[arg-type]
            adaptive=settings["sampling"] == "adaptive",
            alpha=settings["alpha"],  # type: ignore[arg-type]
        )
    except (MatchError, ConfigError, FileNotFoundError) as error:
        print(f"marl-rank: error: {error}", file=sys.stderr)
        sys.exit(2)
    unresolved = sum(not r for row in result["resolved"] for r in row) // 2
    print(
        f"{len(teams)} teams on {result['env']}: {result['matches']} matches in "
        f"{result['rounds']} rounds ({result['seconds']:.0f} s); "
        f"{unresolved} pairs still within the confidence asked (ties)"
    )
    print(result["table"])
    if settings["json"]:
        path = pathlib.Path(settings["json"])  # type: ignore[arg-type]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
