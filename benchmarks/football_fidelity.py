"""Football fidelity: the same policies in the JAX simulator and in GRF's real engine.

For each scenario and policy, both engines play episodes from the scenario's start and
the script reports, side by side:

* the episode length (mean, median, deciles), in steps of 0.1 s;
* the goal rate (fraction of episodes in which the agents scored) with a 95% Wilson
  interval;
* how episodes end: scored, conceded, out of play, possession change, time limit;

shots at a keeper alone (GRF has no academy scenario that isolates its keeper): a
striker 1 m behind the ball, straight in front of the goal at 11, 16, 22 and 30 m and
at 16 m from 8.5 m off-centre, runs onto it and shoots at once, at the keeper (its
held direction points at the goal's centre) or at the bottom corner (it turns
down-right first); how often it scores,
the keeper holds it (a change of possession), it goes out of play or is still loose
when the step limit of 40 ends the try; the same shots at the keeper followed step by
step (``saves``): how long the striker, pressing shot on every step, takes to shoot and
how fast, and when the keeper parries, the ball's speed coming in and going out, the
rebound's angle from straight back and its height, and how much the keeper moves in the
second after (a keeper on the ground does not); and, for three kicks from fixed positions (a
shot in ``academy_empty_goal_close``, a short and a long pass by the carrier in
``academy_3_vs_1_with_keeper``: the agent nearest the ball runs right until the ball
is his, then kicks), the ball's trace: steps from the command to the ball leaving the
foot, its speed then and 5 and 10 steps later, how far it went in 10 and 30 steps, its
peak height and who had it next. Ours alone also counts the episodes in which the
agents' own keeper parried and those conceded after it had (GRF does not say who
parried).

Policies (``football_baselines.py``'s, through one :class:`View` of either engine):
``uniform`` (any of the 19 actions, no mask: kicks by players without the ball do
nothing in either engine), ``random`` (uniform over the JAX env's available actions,
masked the same way in GRF), ``run_and_shoot_11`` and, with two or more agents,
``pass_then_run_11``.

GRF's engine is a benchmark dependency: build it with ``bash
benchmarks/gfootball_setup.sh`` and run this script with that venv's python (it has
marl-lab installed too). ``--engine ours`` runs only the JAX side (CI checks that path
runs; the real-engine path is checked where gfootball is installed). GRF's engine
plays each episode in one of two team processing orders, drawn per episode
(``--grf-team-order normal`` or ``reversed`` measures one alone). Usage::

    /work/gfootball-venv/bin/python benchmarks/football_fidelity.py
    /work/gfootball-venv/bin/python benchmarks/football_fidelity.py --quick
    python benchmarks/football_fidelity.py --quick --engine ours
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import machine_info, result_path, write_json
from football_baselines import (
    SCENARIOS as BASELINE_SCENARIOS,
)
from football_baselines import (
    View,
    first_carrier,
    pass_then_run,
    play_episodes,
    random_policy,
    run_and_shoot,
    uniform_policy,
    view_of,
)

from marl.envs.football import sim
from marl.envs.football.control import CONTROL_MODES
from marl.envs.football.env import (
    END_REASONS,
    IDLE,
    LONG_PASS,
    RELEASE_DIRECTION,
    SHORT_PASS,
    SHOT,
    make_football,
)
from marl.envs.football.real_engine import (
    SETUP_HINT,
    TEAM_ORDERS,
    RealFootball,
    gfootball_available,
)
from marl.envs.football.scenarios import (
    BUILDER_Y_METRES,
    HALF_LENGTH,
    X_SCALE,
    Y_SCALE,
    Player,
    Scenario,
    get_scenario,
    register_scenario,
)

# The learning scenarios of football_baselines, a counterattack and the corner.
SCENARIOS = (*BASELINE_SCENARIOS, "academy_counterattack_hard", "academy_corner")
SHOOTING_DISTANCE = 11.0
KICKS = {
    "shot": ("academy_empty_goal_close", SHOT),
    "short_pass": ("academy_3_vs_1_with_keeper", SHORT_PASS),
    "long_pass": ("academy_3_vs_1_with_keeper", LONG_PASS),
}
TRACE_STEPS = 30
# Shots at a keeper alone: (metres from the goal line, metres off-centre).
KEEPER_SHOTS = ((11.0, 0.0), (16.0, 0.0), (22.0, 0.0), (30.0, 0.0), (16.0, 8.5))
KEEPER_STEPS = 40
# At the keeper (the held direction points at the goal's centre) and at the bottom corner.
KEEPER_POLICIES = ("run_and_shoot_60", "shoot_at_corner")
RIGHT, BOTTOM_RIGHT = 5, 6  # GRF's direction actions towards the opponents' goal


def keeper_scenario(distance: float, offset: float) -> Scenario:
    """A striker 1 m behind the ball ``distance`` m from the right goal line and
    ``offset`` m off-centre, the opponents' keeper alone in its goal."""
    # The ball in the observation's units, the players in the builder's (as GRF's files).
    ball = ((HALF_LENGTH - distance) / X_SCALE, offset / Y_SCALE)
    striker = Player("CF", (HALF_LENGTH - distance - 1.0) / HALF_LENGTH, offset / BUILDER_Y_METRES)
    return Scenario(
        f"fidelity_keeper_{distance:g}m_{offset:g}m".replace(".", "_"),  # a module name for GRF
        ball,
        (Player("GK", -1.0, 0.0), striker),
        (Player("GK", -1.0, 0.0),),
        controlled=(1,),
        time_limit=KEEPER_STEPS,
    )


# Registered at import, so that GRF's worker processes (spawned) know them too.
KEEPER_SCENARIOS = {shot: keeper_scenario(*shot) for shot in KEEPER_SHOTS}
for _scenario in KEEPER_SCENARIOS.values():
    register_scenario(_scenario, overwrite=True)
ENGINES = ("ours", "real", "both")
PARTS = ("episodes", "keeper", "traces", "saves")


def policy_names(num_agents: int) -> list[str]:
    names = ["uniform", "random", f"run_and_shoot_{SHOOTING_DISTANCE:g}"]
    if num_agents > 1:
        names.append(f"pass_then_run_{SHOOTING_DISTANCE:g}")
    return names


def shoot_at_corner(view: View, mask: jax.Array, step: jax.Array, key: jax.Array) -> jax.Array:
    """Runs right onto the ball; once it is his, turns down-right and shoots when facing
    there (GRF aims a shot between the posts by the held direction)."""
    has_ball = jnp.asarray(view.controlled) == view.owner
    facing = jnp.asarray(view.held_direction) == BOTTOM_RIGHT
    action = jnp.where(has_ball, jnp.where(facing, SHOT, BOTTOM_RIGHT), RIGHT)
    return action.astype(jnp.int32)


def policy_by_name(name: str, scenario: str) -> Any:
    if name.startswith("run_and_shoot_"):
        return run_and_shoot(float(name.rsplit("_", 1)[1]))
    if name.startswith("pass_then_run_"):
        carrier = first_carrier(get_scenario(scenario))
        return pass_then_run(float(name.rsplit("_", 1)[1]), carrier)
    named = {"uniform": uniform_policy, "random": random_policy, "shoot_at_corner": shoot_at_corner}
    return named[name]


# ----------------------------------------------------------------- statistics
def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial proportion."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    half /= 1 + z * z / trials
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(lengths: np.ndarray, scored: np.ndarray, reasons: list[str]) -> dict[str, Any]:
    """Length distribution, goal rate with its interval and end-reason fractions."""
    lengths = np.asarray(lengths, np.float64)
    episodes = len(lengths)
    goals = int(np.sum(scored))
    names, counts = np.unique(np.asarray(reasons), return_counts=True)
    return {
        "episodes": episodes,
        "length_mean": float(lengths.mean()),
        "length_median": float(np.median(lengths)),
        "length_deciles": [float(v) for v in np.percentile(lengths, np.arange(10, 100, 10))],
        "goal_rate": goals / episodes,
        "goal_rate_ci95": list(wilson_interval(goals, episodes)),
        "end_reasons": {
            str(name): float(count) / episodes for name, count in zip(names, counts, strict=True)
        },
    }


# ------------------------------------------------------------------ episodes
def ours_episodes(
    scenario: str, policy_name: str, episodes: int, seed: int, control: str = "grf"
) -> dict[str, Any]:
    env = make_football(scenario, mask_ball_actions=policy_name != "uniform", control=control)
    played = play_episodes(env, policy_by_name(policy_name, scenario), episodes, seed)
    reasons = [END_REASONS[i] for i in played["end_reason"]]
    result = summarise(played["length"], played["scored"], reasons)
    # Ours only (GRF does not say who parried): how often the agents' own keeper parried,
    # and the episodes conceded after it had.
    parried = played["own_keeper_parried"]
    conceded = np.asarray(reasons) == "conceded"
    result["own_keeper_parried"] = float(parried.mean())
    result["conceded_after_own_parry"] = float((conceded & parried).mean())
    # Counted as in GRF's rows (real_episodes).
    result["own_keeper_driven"] = float(played["own_keeper_steps"].sum() / played["length"].sum())
    result["control_changes_per_episode"] = float(played["control_changes"].mean())
    return result


def real_view(snapshot) -> View:
    opponents = np.flatnonzero((snapshot.team == 1) & ~snapshot.keeper)
    return View(
        snapshot.x.astype(np.float32),
        snapshot.y.astype(np.float32),
        np.int32(snapshot.owner),
        snapshot.controlled,
        opponents,
        sim.HALF_LENGTH,
        np.float32(snapshot.ball_x),
        np.float32(snapshot.ball_y),
        snapshot.held_direction,
    )


def real_episodes(
    scenario: str, policy_name: str, episodes: int, seed: int, team_order: str = "both"
) -> dict[str, Any]:
    """Plays ``episodes`` episodes in GRF's engine (one process, one episode at a time).
    Besides :func:`summarise`'s figures, GRF's hand-over of control: the share of steps
    in which an agent drives its own keeper, and how often the set of driven players
    changes per episode (ours: :func:`ours_episodes`)."""
    masked = policy_name != "uniform"
    env = RealFootball(scenario, seed=seed, mask_ball_actions=masked, team_order=team_order)
    act = jax.jit(policy_by_name(policy_name, scenario))
    key = jax.random.PRNGKey(seed)
    lengths, scored, reasons = [], [], []
    keeper_steps = changes = 0
    started = time.perf_counter()
    try:
        for _ in range(episodes):
            _, mask, snapshot = env.reset()
            own_keeper = np.flatnonzero(snapshot.keeper & (snapshot.team == 0))
            goal = False
            for step in range(env.time_limit + 1):
                key, act_key = jax.random.split(key)
                action = np.asarray(act(real_view(snapshot), mask, jnp.int32(step), act_key))
                driven = set(snapshot.controlled.tolist())
                _, mask, snapshot, reward, done, reason = env.step(action)
                goal = goal or reward > 0
                if done:  # GRF's last observation after a goal is already the restart
                    break
                keeper_steps += bool(np.isin(snapshot.controlled, own_keeper).any())
                changes += set(snapshot.controlled.tolist()) != driven
            lengths.append(env.steps)
            scored.append(goal)
            reasons.append(reason)
    finally:
        env.close()
    result = summarise(np.asarray(lengths), np.asarray(scored), reasons)
    result["own_keeper_driven"] = keeper_steps / max(sum(lengths), 1)
    result["control_changes_per_episode"] = changes / episodes
    result["seconds"] = time.perf_counter() - started
    return result


def _real_job(job: tuple[str, str, int, int, str]) -> tuple[str, str, dict[str, Any]]:
    scenario, policy_name, episodes, seed, team_order = job
    result = real_episodes(scenario, policy_name, episodes, seed, team_order)
    print(f"  real {scenario} {policy_name}: {result['seconds']:.0f} s", flush=True)
    return scenario, policy_name, result


# -------------------------------------------------------------------- traces
def trace_metrics(balls: np.ndarray, owners: list[int], left_team: int) -> dict[str, Any]:
    """What one kick did: ``balls [T, 3]`` (metres) from the step the command was given,
    ``owners`` the player on the ball at each of those steps (-1 loose). The kick leaves
    the foot at the first step the ball moves faster than 5 m/s."""
    step_speed = np.linalg.norm(np.diff(balls[:, :2], axis=0), axis=1) / sim.STEP_SECONDS
    fast = np.flatnonzero(step_speed > 5.0)
    if not fast.size:
        return {"released": False}
    release = int(fast[0])  # the ball moves between step ``release`` and the next

    def speed_at(offset: int) -> float | None:
        index = release + offset
        return float(step_speed[index]) if index < len(step_speed) else None

    start = balls[release, :2]
    travelled = np.linalg.norm(balls[:, :2] - start, axis=1)
    after = [owners[i] for i in range(release + 2, len(owners)) if owners[i] >= 0]
    next_owner = after[0] if after else -1
    received = "nobody" if next_owner < 0 else ("team" if next_owner < left_team else "opponent")
    return {
        "released": True,
        "release_delay": release,
        "release_speed": float(step_speed[release : release + 2].max()),
        "speed_after_5": speed_at(5),
        "speed_after_10": speed_at(10),
        "distance_10": float(travelled[min(release + 10, len(travelled) - 1)]),
        "distance_30": float(travelled[-1]),
        "peak_height": float(balls[release:, 2].max()),
        "next_owner": received,
    }


def _kicker(x: np.ndarray, y: np.ndarray, ball: tuple[float, float], controlled) -> int:
    """The agent driving the player nearest the ball."""
    distance = np.hypot(x[controlled] - ball[0], y[controlled] - ball[1])
    return int(np.argmin(distance))


def _trace_action(kicker: int, owner: int, driven: int, kicked: bool, kick: int, num_agents: int):
    """One step of the kick protocol, the same in both engines: the kicker runs right until
    he has the ball (a player gets it only by touching it), kicks, lets go of the
    direction the step after, and everyone else stands still."""
    action = np.full(num_agents, IDLE, np.int64)
    if kicked:
        action[kicker] = RELEASE_DIRECTION
    elif owner >= 0 and owner == driven:
        action[kicker] = kick
    else:
        action[kicker] = RIGHT
    return action


def ours_trace(scenario: str, kick: int, seed: int) -> dict[str, Any]:
    """One kick by the agent nearest the ball (:func:`_trace_action`) in the JAX simulator."""
    env = make_football(scenario)
    step = jax.jit(env.step)
    state, _ = env.reset(jax.random.PRNGKey(seed))
    controlled = np.asarray(env.controlled)
    balls, owners, kicked = [], [], False
    for _ in range(TRACE_STEPS + 20):
        match = state.match
        owner = int(match.owner)
        if not kicked:
            kicker = _kicker(np.asarray(match.x), np.asarray(match.y),
                             (float(match.ball.x), float(match.ball.y)), controlled)  # fmt: skip
        action = _trace_action(kicker, owner, int(controlled[kicker]), kicked, kick, env.num_agents)
        kicked = kicked or action[kicker] == kick
        if kicked:
            balls.append((float(match.ball.x), float(match.ball.y), float(match.ball.z)))
            owners.append(owner)
        state, timestep = step(state, jnp.asarray(action, jnp.int32))
        if bool(timestep.last()) or len(balls) > TRACE_STEPS:
            break
    else:
        ball = state.match.ball
        balls.append((float(ball.x), float(ball.y), float(ball.z)))
        owners.append(int(state.match.owner))
    if not balls:
        return {"released": False}
    return trace_metrics(np.asarray(balls), owners, env.num_left)


def real_trace(scenario: str, kick: int, seed: int, team_order: str = "both") -> dict[str, Any]:
    """As :func:`ours_trace`, in GRF's engine (whose control of players may move)."""
    env = RealFootball(scenario, seed=seed, team_order=team_order)
    try:
        _, _, snapshot = env.reset()
        num_left = int((snapshot.team == 0).sum())
        balls, owners, kicked = [], [], False
        for _ in range(TRACE_STEPS + 20):
            if not kicked:  # GRF hands control around: the agent nearest the ball now
                position = (snapshot.ball_x, snapshot.ball_y)
                kicker = _kicker(snapshot.x, snapshot.y, position, snapshot.controlled)
            driven = int(snapshot.controlled[kicker])
            action = _trace_action(kicker, snapshot.owner, driven, kicked, kick, env.num_agents)
            kicked = kicked or action[kicker] == kick
            if kicked:
                balls.append((snapshot.ball_x, snapshot.ball_y, snapshot.ball_z))
                owners.append(snapshot.owner)
            _, _, snapshot, _, done, _ = env.step(action)
            if done or len(balls) > TRACE_STEPS:
                break  # GRF's last observation after a goal is already the restart
        else:
            balls.append((snapshot.ball_x, snapshot.ball_y, snapshot.ball_z))
            owners.append(snapshot.owner)
    finally:
        env.close()
    if not balls:
        return {"released": False}
    return trace_metrics(np.asarray(balls), owners, num_left)


def _spread(tries: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Mean, min and max over the tries of each measure some try has."""
    summary = {}
    for key in keys:
        values = [t[key] for t in tries if t.get(key) is not None]
        if values:
            summary[key] = {
                "mean": float(np.mean(values)),
                "min": float(np.min(values)),
                "max": float(np.max(values)),
            }
    return summary


def summarise_traces(tries: list[dict[str, Any]]) -> dict[str, Any]:
    released = [t for t in tries if t.get("released")]
    summary: dict[str, Any] = {"tries": len(tries), "released": len(released)}
    summary |= _spread(released, ("release_delay", "release_speed", "speed_after_5",
                                  "speed_after_10", "distance_10", "distance_30",
                                  "peak_height"))  # fmt: skip
    owners = [t["next_owner"] for t in released]
    summary["next_owner"] = {name: owners.count(name) for name in sorted(set(owners))}
    return summary


# --------------------------------------------------------------------- saves
# The striker presses shot on every step once the ball is his (a charged shot), at the
# keeper; each try is followed step by step until it ends.
SAVE_POLICY = "run_and_shoot_60"
SHOT_SPEED = 12.0  # m/s: faster than any dribble, slower than any shot of either engine
KEEPER_NEAR = 3.0  # m: a ball turning back this close to the keeper came off him
SAVE_WINDOW = 10  # steps after the contact over which the rebound is followed


def save_metrics(
    balls: np.ndarray, owners: np.ndarray, keeper_xy: np.ndarray, pressed: np.ndarray
) -> dict[str, Any]:
    """One shot at a lone keeper, from the frames before each step: ``balls [T, 3]`` and
    ``keeper_xy [T, 2]`` in metres, ``owners [T]`` (-1 loose), ``pressed [T]`` whether the
    striker pressed shot. The shot leaves at the first step from the first press after
    which the ball is loose, moving faster than :data:`SHOT_SPEED` (a sprinting dribbler
    moves it at up to about 9 m/s). It is parried at the first step after that at which
    the ball, loose, within :data:`KEEPER_NEAR` of the keeper, moves back against the
    shot's direction: the incoming speed is that of the last step the ball flew whole
    before, the rebound the step's after (unless the keeper has it then), its angle
    from straight back in radians, its peak height over the next :data:`SAVE_WINDOW`
    steps and the keeper's mean speed over them (a keeper on the ground does not move)."""
    presses = np.flatnonzero(pressed)
    moves = np.diff(balls[:, :2], axis=0) / sim.STEP_SECONDS  # [T-1, 2] m/s
    speeds = np.linalg.norm(moves, axis=1)
    if not presses.size:
        return {"released": False, "parried": False}
    steps = np.arange(len(speeds))
    fast = np.flatnonzero((speeds > SHOT_SPEED) & (steps >= presses[0]) & (owners[1:] < 0))
    if not fast.size:
        return {"released": False, "parried": False}
    release = int(fast[0])
    result: dict[str, Any] = {
        "released": True,
        "parried": False,
        "release_delay": int(release - presses[0]),
        "release_speed": float(speeds[release : release + 2].max()),
    }
    heading = moves[release] / speeds[release]
    for step in range(release + 1, len(moves)):
        near = min(np.linalg.norm(balls[i, :2] - keeper_xy[step + 1]) for i in (step, step + 1))
        if owners[step + 1] >= 0 or near > KEEPER_NEAR or moves[step] @ heading >= 0:
            continue
        result["parried"] = True
        # The ball met the keeper during this step or, when the step before moved it
        # much less than the one before that, already then: the incoming ball is the
        # last step it flew whole.
        before = step - 1
        if before - 1 >= release and speeds[before] < 0.8 * speeds[before - 1]:
            before -= 1
        result["incoming_speed"] = float(speeds[before])
        if step + 2 < len(owners) and owners[step + 2] < 0:  # not caught at once
            incoming, rebound = moves[before], moves[step + 1]
            cosine = -(incoming @ rebound) / max(speeds[before] * speeds[step + 1], 1e-9)
            result["rebound_speed"] = float(speeds[step + 1])
            result["rebound_angle"] = float(np.arccos(np.clip(cosine, -1.0, 1.0)))
            after = slice(step + 1, step + 2 + SAVE_WINDOW)
            result["rebound_peak_height"] = float(balls[after, 2].max())
            keeper_moves = np.diff(keeper_xy[after], axis=0) / sim.STEP_SECONDS
            result["keeper_speed_after"] = float(np.linalg.norm(keeper_moves, axis=1).mean())
        break
    return result


def _save_result(frames: list[tuple], reason: str) -> dict[str, Any]:
    ball, owner, keeper, pressed = (np.asarray(column) for column in zip(*frames, strict=True))
    return {**save_metrics(ball, owner, keeper, pressed), "end": reason}


def ours_saves(scenario: str, tries: int, seed: int) -> list[dict[str, Any]]:
    """:func:`save_metrics` of ``tries`` shots at the keeper in the JAX simulator."""
    env = make_football(scenario)
    step, act = jax.jit(env.step), jax.jit(policy_by_name(SAVE_POLICY, scenario))
    keeper = int(np.flatnonzero(np.asarray(env.statics.keeper) & (env.statics.team == 1))[0])
    results = []
    for attempt in range(tries):
        key = jax.random.PRNGKey(seed + attempt)
        state, timestep = env.reset(key)
        frames = []
        for index in range(env.time_limit):
            match = state.match
            action = act(view_of(env, state), timestep.observation.action_mask,
                         jnp.int32(index), jax.random.fold_in(key, index))  # fmt: skip
            frames.append(((float(match.ball.x), float(match.ball.y), float(match.ball.z)),
                           int(match.owner),
                           (float(match.x[keeper]), float(match.y[keeper])),
                           int(action[0]) == SHOT))  # fmt: skip
            state, timestep = step(state, action)
            if bool(timestep.last()):
                break
        results.append(_save_result(frames, END_REASONS[int(timestep.extras["end_reason"])]))
    return results


def real_saves(
    scenario: str, tries: int, seed: int, team_order: str = "both"
) -> list[dict[str, Any]]:
    """As :func:`ours_saves`, in GRF's engine."""
    env = RealFootball(scenario, seed=seed, team_order=team_order)
    act = jax.jit(policy_by_name(SAVE_POLICY, scenario))
    key = jax.random.PRNGKey(seed)
    results = []
    try:
        for _ in range(tries):
            _, mask, snapshot = env.reset()
            keeper = int(np.flatnonzero(snapshot.keeper & (snapshot.team == 1))[0])
            frames, reason = [], "time_limit"
            for index in range(env.time_limit + 1):
                key, act_key = jax.random.split(key)
                action = np.asarray(act(real_view(snapshot), mask, jnp.int32(index), act_key))
                frames.append(((snapshot.ball_x, snapshot.ball_y, snapshot.ball_z),
                               snapshot.owner,
                               (float(snapshot.x[keeper]), float(snapshot.y[keeper])),
                               int(action[0]) == SHOT))  # fmt: skip
                _, mask, snapshot, _, done, reason = env.step(action)
                if done:  # GRF's last observation after a goal is already the restart
                    break
            results.append(_save_result(frames, reason))
    finally:
        env.close()
    return results


SAVE_MEASURES = ("release_delay", "release_speed", "incoming_speed", "rebound_speed",
                 "rebound_angle", "rebound_peak_height", "keeper_speed_after")  # fmt: skip


def summarise_saves(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """How the tries ended, how many were parried, and the spread of each measure."""
    ends = [t["end"] for t in tries]
    summary: dict[str, Any] = {
        "tries": len(tries),
        "released": sum(t["released"] for t in tries),
        "parried": sum(t["parried"] for t in tries),
        "end_reasons": {name: ends.count(name) for name in sorted(set(ends))},
    }
    return summary | _spread(tries, SAVE_MEASURES)


# ---------------------------------------------------------------------- main
def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of ours against the engine."""
    lines = [
        "| scenario | policy | mean length ours / GRF (ratio) | median | goal rate ours / GRF "
        "(95% CI) | ends ours | ends GRF |",
        "|---|---|---|---|---|---|---|",
    ]

    def ends(stats: dict[str, Any]) -> str:
        short = {"scored": "goal", "out_of_play": "out", "possession_change": "lost",
                 "time_limit": "time", "conceded": "conceded"}  # fmt: skip
        items = sorted(stats["end_reasons"].items(), key=lambda kv: -kv[1])
        return " ".join(f"{short.get(k, k)} {v:.0%}" for k, v in items)

    for row in rows:
        ours, real = row.get("ours"), row.get("real")
        if ours is None or real is None:  # one engine only (--engine ours or real)
            continue
        ratio = ours["length_mean"] / max(real["length_mean"], 1e-9)
        ci_ours, ci_real = ours["goal_rate_ci95"], real["goal_rate_ci95"]
        lines.append(
            f"| {row['scenario'].removeprefix('academy_')} | {row['policy']} "
            f"| {ours['length_mean']:.0f} / {real['length_mean']:.0f} ({ratio:.2f}) "
            f"| {ours['length_median']:.0f} / {real['length_median']:.0f} "
            f"| {ours['goal_rate']:.2f} [{ci_ours[0]:.2f}, {ci_ours[1]:.2f}] / "
            f"{real['goal_rate']:.2f} [{ci_real[0]:.2f}, {ci_real[1]:.2f}] "
            f"| {ends(ours)} | {ends(real)} |"
        )
    return "\n".join(lines)


def keeper_provenance(earlier: dict | None, rows: list) -> dict | None:
    """When and at which commit GRF's side of the keeper shots was measured: this run,
    or the run the earlier file took it from."""
    if not rows:
        return None
    if earlier is None:
        info = machine_info()
        return {"date": info.get("timestamp"), "git": info.get("git")}
    return earlier["settings"].get("keeper_real_from") or {
        "date": earlier["machine"].get("timestamp"),
        "git": earlier["machine"].get("git"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a minute; checks it runs")
    parser.add_argument("--engine", choices=ENGINES, default="both")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--episodes-ours", type=int, default=1024)
    parser.add_argument("--episodes-real", type=int, default=200)
    parser.add_argument("--trace-tries", type=int, default=10)
    parser.add_argument("--save-tries", type=int, default=50, help="shots per place (saves)")
    parser.add_argument("--workers", type=int, default=2, help="processes for GRF's engine")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--grf-team-order",
        choices=TEAM_ORDERS,
        default="both",
        help="GRF's team processing order: drawn per episode (both), or one of them alone",
    )
    parser.add_argument(
        "--control",
        choices=CONTROL_MODES,
        default="grf",
        help="who the agents drive in our engine's episodes: handed around as GRF does "
        "(grf), or the scenario's players for good (fixed)",
    )
    parser.add_argument(
        "--real-from",
        nargs="+",
        default=None,
        help="take GRF's side from these earlier result files (same policies, episodes and "
        "seed; each part from the first file that has it) and run only ours: GRF does not "
        "change when our simulator does",
    )
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    args = parser.parse_args(argv)
    keeper_shots = KEEPER_SHOTS
    if args.quick:
        args.scenarios = ["academy_pass_and_shoot_with_keeper"]
        args.episodes_ours, args.episodes_real, args.trace_tries, args.save_tries = 64, 3, 1, 1
        keeper_shots = KEEPER_SHOTS[:1]
    earlier_files: list[dict] = []
    for path in args.real_from or []:
        earlier = json.loads(Path(path).read_text())
        earlier_files.append(earlier)
        has_saves = bool(earlier.get("saves"))
        checked = ("episodes_real", "trace_tries", "seed", "grf_team_order")
        for key in checked + ("save_tries",) * has_saves:
            theirs, ours = earlier["settings"].get(key), getattr(args, key)
            if theirs != ours:
                sys.exit(f"football_fidelity: --real-from {path} has {key}={theirs}, "
                         f"this run {ours}")  # fmt: skip
    if earlier_files:
        args.engine = "ours"
    real = args.engine in ("real", "both")
    if real and not gfootball_available():
        sys.exit(f"football_fidelity: {SETUP_HINT} (or pass --engine ours)")

    rows: list[dict[str, Any]] = []
    jobs = []
    for scenario in args.scenarios if "episodes" in args.parts else []:
        num_agents = make_football(scenario).num_agents
        for index, policy_name in enumerate(policy_names(num_agents)):
            row: dict[str, Any] = {"scenario": scenario, "policy": policy_name}
            if args.engine in ("ours", "both"):
                row["ours"] = ours_episodes(
                    scenario, policy_name, args.episodes_ours, args.seed, args.control
                )
                print(f"ours {scenario} {policy_name}: length "
                      f"{row['ours']['length_mean']:.1f}, goals {row['ours']['goal_rate']:.3f}",
                      flush=True)  # fmt: skip
            rows.append(row)
            jobs.append(
                (scenario, policy_name, args.episodes_real, args.seed + index, args.grf_team_order)
            )

    keeper_rows: list[dict[str, Any]] = []
    for distance, offset in keeper_shots if "keeper" in args.parts else ():
        spec = KEEPER_SCENARIOS[(distance, offset)]
        for policy_name in KEEPER_POLICIES:
            row = {"scenario": spec.name, "policy": policy_name, "distance": distance,
                   "offset": offset}  # fmt: skip
            if args.engine in ("ours", "both"):
                row["ours"] = ours_episodes(
                    spec.name, policy_name, args.episodes_ours, args.seed, args.control
                )
                print(f"ours {spec.name} {policy_name}: goals {row['ours']['goal_rate']:.3f}",
                      flush=True)  # fmt: skip
            keeper_rows.append(row)
            jobs.append((spec.name, policy_name, args.episodes_real, args.seed + len(jobs),
                         args.grf_team_order))  # fmt: skip

    traces: dict[str, Any] = {}
    for name, (scenario, kick) in KICKS.items() if "traces" in args.parts else []:
        if scenario not in args.scenarios and not args.quick:
            continue
        entry: dict[str, Any] = {"scenario": scenario}
        if args.engine in ("ours", "both"):
            tries = [ours_trace(scenario, kick, seed) for seed in range(args.trace_tries)]
            entry["ours"] = summarise_traces(tries)
        if real:
            tries = [real_trace(scenario, kick, seed, args.grf_team_order)
                     for seed in range(args.trace_tries)]  # fmt: skip
            entry["real"] = summarise_traces(tries)
        traces[name] = entry

    saves: dict[str, Any] = {}
    for distance, offset in keeper_shots if "saves" in args.parts else ():
        spec = KEEPER_SCENARIOS[(distance, offset)]
        entry = {"distance": distance, "offset": offset, "policy": SAVE_POLICY}
        if args.engine in ("ours", "both"):
            entry["ours"] = summarise_saves(ours_saves(spec.name, args.save_tries, args.seed))
        if real:
            tries = real_saves(spec.name, args.save_tries, args.seed, args.grf_team_order)
            entry["real"] = summarise_saves(tries)
        saves[spec.name] = entry

    if real and jobs:
        context = multiprocessing.get_context("spawn")
        with context.Pool(max(1, args.workers)) as pool:
            done = pool.map(_real_job, jobs, chunksize=1)
        by_key = {(scenario, policy): result for scenario, policy, result in done}
        for row in rows + keeper_rows:
            row["real"] = by_key[(row["scenario"], row["policy"])]

    keeper_from = None  # the earlier file GRF's keeper shots come from
    if earlier_files:
        real_rows: dict[tuple[str, str], Any] = {}
        for earlier in reversed(earlier_files):  # the first file that has a row wins
            measured = [r for r in earlier["rows"] + earlier.get("keeper", []) if "real" in r]
            real_rows |= {(r["scenario"], r["policy"]): (r["real"], earlier) for r in measured}
        for row in rows + keeper_rows:
            if (row["scenario"], row["policy"]) not in real_rows:
                sys.exit(f"football_fidelity: --real-from has no GRF result for "
                         f"{row['scenario']} {row['policy']}: run both engines")  # fmt: skip
            row["real"] = real_rows[(row["scenario"], row["policy"])][0]
        if keeper_rows:
            keeper_from = real_rows[(keeper_rows[0]["scenario"], keeper_rows[0]["policy"])][1]
        for part, found in (("traces", traces), ("saves", saves)):
            for name, entry in found.items():
                sources = [e[part][name]["real"] for e in earlier_files
                           if "real" in e.get(part, {}).get(name, {})]  # fmt: skip
                if not sources:
                    sys.exit(f"football_fidelity: --real-from has no GRF {part} for {name}: "
                             f"run both engines with --parts {part}")  # fmt: skip
                entry["real"] = sources[0]
        real = True
    payload = {
        "benchmark": "football_fidelity",
        "mode": "quick" if args.quick else "full",
        "engine": args.engine,
        "machine": machine_info(),
        "settings": {
            "episodes_ours": args.episodes_ours,
            "episodes_real": args.episodes_real,
            "trace_tries": args.trace_tries,
            "save_tries": args.save_tries,
            "grf_team_order": args.grf_team_order,
            "ours_control": args.control,
            "seed": args.seed,
            "shooting_distance": SHOOTING_DISTANCE,
            "parts": args.parts,
            "real_from": [
                {"path": path, "git": earlier["machine"].get("git")}
                for path, earlier in zip(args.real_from or [], earlier_files, strict=True)
            ],
            # GRF's keeper shots were measured apart from its episodes and traces.
            "keeper_real_from": keeper_provenance(
                keeper_from if earlier_files else None, keeper_rows
            ),
        },
        "rows": rows,
        "keeper": keeper_rows,
        "traces": traces,
        "saves": saves,
    }
    path = write_json(result_path(args.out, "football_fidelity"), payload)
    if real:
        print(table(rows))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
