"""BENCHMARKS.md's tables of throughput, matrix games, scripted play and football fidelity.

The renderers of the sections from "Environment throughput" to "Football against
GRF's real engine", and of "Training throughput on SMAC 3m"; :mod:`tables` imports
this module to register them. Figures that are in no result file (earlier
side-by-side runs, quoted references) stay hand-written in BENCHMARKS.md, next to
the block they belong to.
"""

from __future__ import annotations

import re
from typing import Any

from tables import markdown, rate, table, thousands

# How the football tables name an episode's end.
END_NAMES = {
    "scored": "goal",
    "out_of_play": "out",
    "possession_change": "lost",
    "time_limit": "time",
    "conceded": "conceded",
}


def _bold_if(text: str, bold: bool) -> str:
    return f"**{text}**" if bold else text


def _times(value: float) -> str:
    """A speed-up ratio: ``2.75x``."""
    return f"{value:.2f}x"


# ------------------------------------------------------------- env throughput
ENV_VARIANTS = ("ours", "ours_raw", "jumanji_autoreset", "jumanji_no_reset")


def _env_throughput(payload: dict[str, Any], compile_column: bool) -> str:
    """Env-steps/s of each variant at every N, and ours over the anchor (median of the
    pairwise ratios; bold at the target's N)."""
    target_envs = payload["target"]["num_envs"]
    header = ["N", "ours", "ours raw", "anchor", "no reset", "ours / anchor"]
    header += ["compile s (ours / anchor)"] if compile_column else []
    rows = []
    for result in payload["results"]:
        variants = result["variants"]
        median = {name: v["env_steps_per_s"]["median"] for name, v in variants.items()}
        ratio = _times(result["ratio_vs_anchor"]["ours"]["median"])
        row = [
            result["num_envs"],
            *(thousands(median[name]) for name in ENV_VARIANTS),
            _bold_if(ratio, result["num_envs"] == target_envs),
        ]
        if compile_column:
            ours, anchor = variants["ours"]["compile_s"], variants["jumanji_autoreset"]["compile_s"]
            row.append(f"{ours:.1f} / {anchor:.1f}")
        rows.append(row)
    return markdown(header, rows, "r" * len(header))


@table("env_throughput.lbf", "env_throughput")
def _env_throughput_coop(payload: dict[str, Any]) -> str:
    """LBF's cooperative task: ours against Jumanji's AutoResetWrapper, with compile times."""
    return _env_throughput(payload, compile_column=True)


@table("env_throughput_noncoop.lbf", "env_throughput_noncoop")
def _env_throughput_noncoop(payload: dict[str, Any]) -> str:
    """LBF's non-cooperative task (the one marl-train uses): the same comparison."""
    return _env_throughput(payload, compile_column=False)


# ----------------------------------------------------------- train throughput
TRAIN_LABELS = {
    "ci-small": "ci-small: {num_envs} envs, rollout {rollout_length}, "
    "batch {batch_size} x {sequence_length} steps",
    "pymarl2": "pymarl2 recipe: batch {batch_size} windows of {sequence_length} steps",
    "marl-train-default": "`marl-train` default: {algo_upper} on SMAC 3m",
}


@table("train_throughput.configs", "train_throughput")
def _train_throughput(payload: dict[str, Any]) -> str:
    """QMIX's training env-steps/s per config (median over the timed chunks), and the
    anchor the JSON quotes."""
    chunks = payload["settings"]["chunks_timed"]
    rows = []
    for name, result in payload["results"].items():
        config = result["config"]
        fields = {
            **config,
            **config["algo_config"],
            "sequence_length": result["sequence_length"],
            "algo_upper": str(config.get("algo", "")).upper(),
        }
        updates = sorted(set(result["gradient_updates_per_chunk"]))
        rows.append(
            [
                TRAIN_LABELS.get(name, name).format(**fields),
                thousands(result["steps_per_chunk"]),
                "-".join(str(u) for u in updates),
                thousands(result["env_steps_per_s"]["median"]),
            ]
        )
    anchor = payload.get("anchor")
    if anchor:
        quoted = "quoted from BENCHMARKING.md" + ("" if anchor["re_run"] else ", not re-run")
        rows.append([f"{anchor['name']}, {quoted}", "", "", f"~{anchor['env_steps_per_s']:.0f}"])
    header = ["config", "steps / chunk", "updates / chunk"]
    header.append(f"env-steps/s, median of {chunks} chunks")
    return markdown(header, rows, "lrrr")


LEARNER_LABELS = {
    "qmix": "QMIX",
    "mappo": "MAPPO",
    "mat": "MAT",
    "cmat": "CMAT",
}
LEARNER_NOTES = {
    "mat": "acting decodes the {agents} agents one by one",
    "cmat": "every forward generates {agents} consensus tokens",
}


def _data_per_update(config: dict[str, Any]) -> str:
    """What one update learns from, from the learner's marl-train config."""
    algo = config["algo_config"]
    text = f"{config['num_envs']} envs x {config['rollout_length']} steps"
    if "num_epochs" in algo:
        text += f", {algo['num_epochs']} epochs"
    else:
        steps = algo["updates_per_rollout"]
        text += f", {steps} gradient step{'s' * (steps != 1)} on {algo['batch_size']} sequences"
    note = LEARNER_NOTES.get(config["algo"])
    if note:
        marines = re.fullmatch(r"smac/(\d+)m", config["env"])  # smac/3m: 3 agents
        text += "; " + note.format(agents=marines[1] if marines else "all")
    return text


@table("train_throughput_smac.learners", "train_throughput_smac")
def _train_throughput_smac(payload: dict[str, Any]) -> str:
    """Each learner's training env-steps/s on SMAC 3m with marl-train's settings for it."""
    rows = []
    for result in payload["results"].values():
        config = result["config"]
        label = LEARNER_LABELS.get(config["algo"], config["algo"])
        if config["algo_config"].get("recurrent"):
            label += " (GRU)"
        spread = result["env_steps_per_s"]
        rows.append(
            [
                label,
                _data_per_update(config),
                f"{thousands(spread['median'])} ({thousands(spread['min'])}"
                f"-{thousands(spread['max'])})",
            ]
        )
    return markdown(["learner", "data per update", "env-steps/s, median (min-max)"], rows)


# --------------------------------------------------------------- matrix games
@table("matrix_games.outcomes", "matrix_games")
def _matrix_games(payload: dict[str, Any]) -> str:
    """Every method on both games: greedy payoff, when all seeds settled, Q_tot at the
    optimum, beside the papers' results (the table matrix_games.py wrote with its JSON)."""
    return payload["table"]


@table("matrix_games.q_tables", "matrix_games")
def _matrix_games_q(payload: dict[str, Any]) -> str:
    """Seed 0's learned joint values over the one-step game's joint actions (IQL's
    mean of utilities left out)."""
    rows = []
    for method, result in payload["results"]["one_step"].items():
        if method == "iql":
            continue
        values = result["q_table"][0]
        cells = ("[" + ", ".join(f"{v:.1f}" for v in row) + "]" for row in values)
        rows.append([method, "; ".join(cells)])
    return markdown(["method", "learned values"], rows)


# ------------------------------------------------------------- SMAC throughput
@table("smac_throughput.maps", "smac_throughput")
def _smac_throughput(payload: dict[str, Any]) -> str:
    """Ours, ours without weapon delays and SMAX: medians and ratios (median of the
    per-round ratios, range over the rounds; bold on the maps with a target)."""
    targets = payload["target"]["maps"]
    rows = []
    for result in payload["results"]:
        median = {k: v["env_steps_per_s"]["median"] for k, v in result["variants"].items()}
        ours, exact = result["ratio_vs_anchor"]["ours"], result["ratio_vs_anchor"]["ours_exact"]
        spread = f"({min(ours['pairwise']):.2f}-{max(ours['pairwise']):.2f})"
        rows.append(
            [
                result["map"],
                result["num_envs"],
                thousands(median["ours"]),
                thousands(median["ours_exact"]),
                thousands(median["smax"]),
                f"{_bold_if(_times(ours['median']), result['map'] in targets)} {spread}",
                _times(exact["median"]),
            ]
        )
    header = ["map", "envs", "ours", "ours_exact", "SMAX", "ours / SMAX", "ours_exact / SMAX"]
    return markdown(header, rows, "lrrrrrr")


@table("smac_throughput.scaling", "smac_throughput")
def _smac_scaling(payload: dict[str, Any]) -> str:
    """Ours alone at the scaling run's N: env-steps/s and unit-steps/s by number of units."""
    rows = [
        [
            row["map"],
            row["num_units"],
            thousands(row["env_steps_per_s"]["median"]),
            thousands(row["unit_steps_per_s"]),
        ]
        for row in sorted(payload["scaling"], key=lambda row: row["num_units"])
    ]
    return markdown(["map", "units", "env-steps/s", "unit-steps/s"], rows, "lrrr")


# --------------------------------------------------------- football throughput
@table("football_throughput.scenarios", "football_throughput")
def _football_throughput(payload: dict[str, Any]) -> str:
    """Env-steps/s per scenario at every N: median (quartiles); bold at the target."""
    target = payload.get("target") or {}
    sizes = sorted({row["num_envs"] for row in payload["rows"]})
    by_scenario: dict[str, dict[int, dict[str, Any]]] = {}
    for row in payload["rows"]:
        by_scenario.setdefault(row["scenario"], {})[row["num_envs"]] = row
    rows = []
    for scenario, by_size in by_scenario.items():
        cells = []
        for size in sizes:
            if size not in by_size:
                cells.append("")
                continue
            spread = by_size[size]["env_steps_per_s"]
            hit = scenario == target.get("scenario") and size == target.get("num_envs")
            cells.append(
                f"{_bold_if(thousands(spread['median']), hit)} "
                f"({thousands(spread['q25'])}-{thousands(spread['q75'])})"
            )
        agents = next(iter(by_size.values()))["num_agents"]
        rows.append([scenario, agents, *cells])
    header = ["scenario", "agents", *(f"N = {size}" for size in sizes)]
    return markdown(header, rows, "ll" + "r" * len(sizes))


# --------------------------------------------------------------- SMAC scripted
SCRIPTED_POLICIES = (("focus_fire", True), ("spread_fire", True), ("hold", False))


@table("smac_scripted.policies", "smac_scripted")
def _smac_scripted(payload: dict[str, Any]) -> str:
    """Each scripted policy's win rate, length and health left on wins, per map, with
    SC2's starts / the random spread (hold and no-op share a column when they agree)."""
    first, second = payload["settings"]["spawn_jitters"]
    by_key = {(r["map"], r["policy"], r["spawn_jitter"]): r for r in payload["rows"]}

    def pair(map_name: str, policy: str, key: str) -> str:
        def fmt(row: dict[str, Any]) -> str:
            value = row[key]
            if value is None:
                return "-"
            return f"{value:.0f}" if key == "length_mean" else f"{value:.2f}"

        return " / ".join(fmt(by_key[(map_name, policy, j)]) for j in (first, second))

    rows = []
    for map_name in dict.fromkeys(r["map"] for r in payload["rows"]):
        row = [map_name]
        for policy, with_health in SCRIPTED_POLICIES:
            keys = ["win_rate", "length_mean"] + (["health_left_on_wins"] if with_health else [])
            for key in keys:
                cell = pair(map_name, policy, key)
                if policy == "hold" and (map_name, "no_op", first) in by_key:
                    no_op = pair(map_name, "no_op", key)
                    cell += "" if no_op == cell else f" (no-op {no_op})"
                row.append(cell)
        rows.append(row)
    header = ["map"]
    for label in ("focus fire", "spread fire"):
        header += [f"{label}: win", "length", "health left on wins"]
    header += ["hold and no-op: win", "length"]
    return markdown(header, rows)


# ---------------------------------------------------------- football fidelity
def _ends_share(reasons: dict[str, float]) -> str:
    """End reasons as shares, the most frequent first: ``lost 48% time 28%``."""
    items = sorted(reasons.items(), key=lambda kv: -kv[1])
    return " ".join(f"{END_NAMES.get(k, k)} {v:.0%}" for k, v in items)


def _ends_count(counts: dict[str, int]) -> str:
    """End reasons as counts, the most frequent first: ``goal 63, out 1``."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{END_NAMES.get(k, k)} {n}" for k, n in items)


def _pair(ours: dict[str, Any], real: dict[str, Any], key: str, style: str) -> str:
    """``ours / GRF`` of one figure, ``-`` for a side that did not record it."""
    return " / ".join("-" if side.get(key) is None else style.format(side[key])
                      for side in (ours, real))  # fmt: skip


@table("football_fidelity.episodes", "football_fidelity")
def _football_fidelity(payload: dict[str, Any]) -> str:
    """The same policies in our simulator and in GRF: lengths, goal rates with their
    Wilson intervals, and how episodes end."""
    rows = []
    for row in payload["rows"]:
        ours, real = row["ours"], row.get("real")
        if real is None:
            continue
        ratio = ours["length_mean"] / max(real["length_mean"], 1e-9)
        (lo_ours, hi_ours), (lo_real, hi_real) = ours["goal_rate_ci95"], real["goal_rate_ci95"]
        rows.append(
            [
                row["scenario"].removeprefix("academy_"),
                row["policy"],
                f"{ours['length_mean']:.0f} / {real['length_mean']:.0f} ({ratio:.2f})",
                f"{ours['length_median']:.0f} / {real['length_median']:.0f}",
                f"{ours['goal_rate']:.2f} [{lo_ours:.2f}, {hi_ours:.2f}] / "
                f"{real['goal_rate']:.2f} [{lo_real:.2f}, {hi_real:.2f}]",
                _ends_share(ours["end_reasons"]),
                _ends_share(real["end_reasons"]),
                _pair(ours, real, "own_keeper_driven", "{:.0%}"),
                _pair(ours, real, "control_changes_per_episode", "{:.1f}"),
            ]
        )
    header = [
        "scenario",
        "policy",
        "mean length ours / GRF (ratio)",
        "median",
        "goal rate ours / GRF (95% CI)",
        "ends ours",
        "ends GRF",
        "own keeper driven ours / GRF",
        "control moves per episode ours / GRF",
    ]
    return markdown(header, rows)


KEEPER_ENDS = (
    ("possession_change", "held by the keeper"),
    ("out_of_play", "out of play"),
    ("time_limit", "loose at step 40"),
)


@table("football_fidelity.keeper", "football_fidelity")
def _football_keeper(payload: dict[str, Any]) -> str:
    """Shots at a keeper alone from fixed places, in both engines: the goal rate with its
    Wilson interval and the other ways a try ends."""
    rows = []
    for row in payload.get("keeper", []):
        ours, real = row["ours"], row.get("real")
        if real is None:
            continue
        place = f"{row['distance']:g} m, " + (
            f"{row['offset']:g} m off-centre" if row["offset"] else "centre"
        )
        (lo_ours, hi_ours), (lo_real, hi_real) = ours["goal_rate_ci95"], real["goal_rate_ci95"]
        aim = "corner" if row["policy"] == "shoot_at_corner" else "keeper"
        rows.append(
            [
                place,
                aim,
                f"{ours['goal_rate']:.2f} [{lo_ours:.2f}, {hi_ours:.2f}] / "
                f"{real['goal_rate']:.2f} [{lo_real:.2f}, {hi_real:.2f}]",
                *(
                    f"{ours['end_reasons'].get(reason, 0.0):.0%} / "
                    f"{real['end_reasons'].get(reason, 0.0):.0%}"
                    for reason, _ in KEEPER_ENDS
                ),
            ]
        )
    header = ["shot from", "aimed at", "goal rate ours / GRF (95% CI)"]
    header += [f"{label}, ours / GRF" for _, label in KEEPER_ENDS]
    return markdown(header, rows)


KICK_COLUMNS = (
    ("release_delay", "steps to leave"),
    ("release_speed", "speed leaving (m/s)"),
    ("speed_after_5", "after 5 steps"),
    ("speed_after_10", "after 10"),
    ("distance_10", "distance in 10 steps (m)"),
    ("distance_30", "in 30"),
    ("peak_height", "peak height (m)"),
)


@table("football_fidelity.kicks", "football_fidelity")
def _football_kicks(payload: dict[str, Any]) -> str:
    """Kicks from fixed positions in both engines: mean (min-max) of each trace measure."""
    rows = []
    for kick, entry in payload["traces"].items():
        for engine, label in (("ours", "ours"), ("real", "GRF")):
            stats = entry.get(engine)
            if stats is None:
                continue
            cells = [
                f"{s['mean']:.1f} ({s['min']:.1f}-{s['max']:.1f})" if (s := stats.get(key)) else "-"
                for key, _ in KICK_COLUMNS
            ]
            owners = ", ".join(f"{who} {n}" for who, n in stats["next_owner"].items())
            rows.append(
                [kick, label, f"{stats['released']}/{stats['tries']}", *cells, owners or "-"]
            )
    header = ["kick", "engine", "released", *(name for _, name in KICK_COLUMNS)]
    return markdown([*header, "next on the ball"], rows)


SAVE_ENDS = {**END_NAMES, "possession_change": "held", "time_limit": "loose at 40"}
SAVE_COLUMNS = (
    ("release_delay", "steps from first press to the shot"),
    ("release_speed", "shot speed (m/s)"),
    ("incoming_speed", "at the keeper"),
    ("rebound_speed", "rebound"),
    ("rebound_angle", "rebound's angle off straight back (rad)"),
    ("rebound_peak_height", "rebound's peak height (m)"),
    ("keeper_speed_after", "keeper's speed in the second after (m/s)"),
)


@table("football_fidelity.saves", "football_fidelity")
def _football_saves(payload: dict[str, Any]) -> str:
    """Shots at the keeper followed step by step in both engines: how the tries ended,
    how many the keeper parried, and the mean (min-max) of each measure."""
    rows = []
    for entry in payload.get("saves", {}).values():
        place = f"{entry['distance']:g} m, " + (
            f"{entry['offset']:g} m off-centre" if entry["offset"] else "centre"
        )
        for engine, label in (("ours", "ours"), ("real", "GRF")):
            stats = entry.get(engine)
            if stats is None:
                continue
            cells = []
            for key, _ in SAVE_COLUMNS:
                spread, digits = stats.get(key), 2 if key == "rebound_angle" else 1
                cells.append(
                    f"{spread['mean']:.{digits}f} ({spread['min']:.{digits}f}-"
                    f"{spread['max']:.{digits}f})"
                    if spread
                    else "-"
                )
            items = sorted(stats["end_reasons"].items(), key=lambda kv: -kv[1])
            ends = ", ".join(f"{SAVE_ENDS.get(k, k)} {n}" for k, n in items)
            rows.append([place, label, f"{stats['parried']}/{stats['tries']}", ends, *cells])
    header = ["shot from", "engine", "parried", "ends", *(name for _, name in SAVE_COLUMNS)]
    return markdown(header, rows)


SIM_TO_REAL_LABELS = {
    "academy_empty_goal_close": "academy_empty_goal_close, QMIX's football settings",
    "academy_3_vs_1_with_keeper": "academy_3_vs_1_with_keeper, simple115, QMIX's 3_vs_1 settings",
}


@table("sim_to_real.transfer", "sim_to_real")
def _sim_to_real(payload: dict[str, Any]) -> str:
    """Goal rates of runs trained here, greedy in our engine and in GRF's, per seed, and
    how each seed's GRF episodes end (sim_to_real.json records ``date`` and ``git``,
    which the provenance line reads, but no machine)."""
    results = payload["results"]
    rows = []
    for scenario, result in results.items():
        here, there = result["goal_rate_per_seed_jax"], result["goal_rate_per_seed_gfootball"]
        ends = "; ".join(
            f"seed {seed}: " + _ends_count(counts)
            for seed, counts in enumerate(result["end_reasons_gfootball"])
        )
        rows.append(
            [
                SIM_TO_REAL_LABELS.get(scenario, scenario),
                "/".join(map(rate, here)) + f" ({rate(result['goal_rate_jax'])})",
                "/".join(map(rate, there)) + f" ({rate(result['goal_rate_gfootball'])})",
                ends,
            ]
        )
    first = next(iter(results.values()))
    seeds = "/".join(str(i) for i in range(len(first["goal_rate_per_seed_jax"])))
    header = [
        "run",
        f"goal rate here, seeds {seeds} (mean)",
        "in GRF's engine (mean)",
        f"how GRF's episodes end (of {first['episodes_per_seed']} per seed)",
    ]
    return markdown(header, rows)
