"""SMAC scripted policies: what fixed rules win on each map family, against the built-in AI.

Every policy plays through the environment's own interface (SMAC's actions and mask,
the built-in opponent at difficulty 7, SC2's weapon delays), ``E`` episodes vmapped in
one ``lax.scan`` per map:

* ``focus_fire``: every agent attacks the lowest-index enemy its attack actions offer
  (the enemies within its shoot range); an agent with none in range moves one step
  towards the living enemies' centre (along the larger of the two axes);
* ``spread_fire``: agent ``i`` attacks the ``(i mod k)``-th of the ``k`` enemies in its
  range, and otherwise moves as above;
* ``hold``: every agent stops (action 1) every step;
* ``no_op``: every agent sends action 0, which SMAC only offers dead agents: the
  environment plays it as "keep the current order", so it is ``hold`` by another
  route (on SC2, SMAC refuses it with an assertion).

Medivacs (MMM maps) heal, in both fire policies, the most wounded ally (by fraction of
health) their heal actions offer, and otherwise follow their team's centre.

Each map is played with SC2's placement (units start at the same spots every episode,
``spawn_jitter=0``, as in SMAC on SC2) and with a random spread of 0.5 around each start
(``spawn_jitter=0.5``, this simulator's old default), to show how much the outcome
depends on it. Reported: win rate, mean episode length (agent steps) and the health
and shields the agents have left (a fraction of their total, averaged over won
episodes).

Published figures for these policies on SC2: none that we could find. The SMAC paper
and repository publish learning curves only; SMAC's ``heuristic_ai`` option (ally
units keep a target until it dies) comes without results; SMAC-R1 (arXiv 2410.16024)
reports LLM-written python-sc2 scripts, a different interface and different
policies. What SC2's rules say of these policies without a number: SMAC's allies are
passive copies (they never fire unless ordered), so ``hold`` and ``no_op`` lose every
episode the enemy reaches them in.

Usage::

    python benchmarks/smac_scripted.py          # the map families, 256 episodes each
    python benchmarks/smac_scripted.py --quick  # 3m only, a few episodes
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import machine_info, result_path, write_json

from marl.envs.smac.env import NUM_FIXED_ACTIONS, SMAC, SMACState

MAPS = (
    "3m", "8m", "5m_vs_6m", "8m_vs_9m", "25m",  # marines
    "2s3z", "3s5z", "1c3s5z", "3s5z_vs_3s6z",  # stalkers and zealots (and colossi)
    "MMM", "MMM2",  # marines, marauders, medivacs
    "2s_vs_1sc", "3s_vs_5z", "6h_vs_8z", "corridor", "bane_vs_bane", "2c_vs_64zg",  # micro
)  # fmt: skip
POLICIES = ("focus_fire", "spread_fire", "hold", "no_op")
JITTERS = (0.0, 0.5)
STOP = 1
NORTH, SOUTH, EAST, WEST = 2, 3, 4, 5


def _towards(gap: jax.Array, mask: jax.Array) -> jax.Array:
    """The move action along the larger axis of ``gap [A, 2]``; stop if it is unavailable."""
    horizontal = jnp.abs(gap[:, 0]) >= jnp.abs(gap[:, 1])
    move = jnp.where(
        horizontal,
        jnp.where(gap[:, 0] > 0, EAST, WEST),
        jnp.where(gap[:, 1] > 0, NORTH, SOUTH),
    )
    available = jnp.take_along_axis(mask, move[:, None], axis=1)[:, 0]
    return jnp.where(available, move, STOP)


def fire_policy(env: SMAC, spread: bool):
    """``focus_fire`` or ``spread_fire`` (see the module docstring)."""
    num_agents = env.num_agents

    def act(state: SMACState, mask: jax.Array) -> jax.Array:
        battle = state.battle
        roster = env.generator.roster(battle)
        targets = mask[:, NUM_FIXED_ACTIONS:]  # [A, E] (a medivac: allies to heal)
        in_range = targets.sum(axis=1)
        if spread:
            rank = jnp.arange(num_agents) % jnp.maximum(in_range, 1)
            nth = (jnp.cumsum(targets, axis=1) == (rank + 1)[:, None]) & targets
            choice = jnp.argmax(nth, axis=1)
        else:
            choice = jnp.argmax(targets, axis=1)  # the lowest index offered
        alive = battle.alive
        position = battle.position
        enemy_alive = alive[num_agents:]
        enemy_centre = (position[num_agents:] * enemy_alive[:, None]).sum(0) / jnp.maximum(
            enemy_alive.sum(), 1
        )
        fighter = alive[:num_agents] & ~roster.is_medivac[:num_agents]
        team_centre = (position[:num_agents] * fighter[:, None]).sum(0) / jnp.maximum(
            fighter.sum(), 1
        )
        agents = position[:num_agents]
        fight = jnp.where(
            in_range > 0, NUM_FIXED_ACTIONS + choice, _towards(enemy_centre - agents, mask)
        )
        # Medivacs heal the most wounded ally on offer, else follow the team.
        health_fraction = battle.health[:num_agents] / jnp.maximum(
            roster.max_health[:num_agents], 1.0
        )
        wounded = targets[:, :num_agents] & (health_fraction < 1.0)[None, :]
        patient = jnp.argmin(jnp.where(wounded, health_fraction[None, :], jnp.inf), axis=1)
        follow = jnp.where(
            jnp.linalg.norm(team_centre - agents, axis=1) > 2.0,
            _towards(team_centre - agents, mask),
            STOP,
        )
        heal = jnp.where(wounded.any(axis=1), NUM_FIXED_ACTIONS + patient, follow)
        action = jnp.where(roster.is_medivac[:num_agents], heal, fight)
        return jnp.where(alive[:num_agents], action, 0).astype(jnp.int32)

    return act


def constant_policy(env: SMAC, action: int):
    def act(state: SMACState, mask: jax.Array) -> jax.Array:
        alive = state.battle.alive[: env.num_agents]
        return jnp.where(alive, action, 0).astype(jnp.int32)

    return act


def make_policy(env: SMAC, name: str):
    if name == "focus_fire":
        return fire_policy(env, spread=False)
    if name == "spread_fire":
        return fire_policy(env, spread=True)
    if name == "hold":
        return constant_policy(env, STOP)
    if name == "no_op":
        return constant_policy(env, 0)
    raise ValueError(f"unknown policy {name!r}; choose from {POLICIES}")


def play(env: SMAC, policy, episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Per episode: won, length in agent steps, health and shields left (fraction)."""

    def episode(key):
        state, timestep = env.reset(key)
        roster = env.generator.roster(state.battle)
        agents = slice(0, env.num_agents)
        full = (roster.max_health[agents] + roster.full_shield[agents]).sum()

        def body(carry, _):
            state, timestep, done, won, length, left = carry
            action = policy(state, timestep.observation.action_mask)
            state, timestep = env.step(state, action)
            battle = state.battle
            now_left = (battle.health[agents] + battle.shield[agents]).sum() / full
            won = jnp.where(done, won, timestep.extras["won"] > 0)
            left = jnp.where(done, left, now_left)
            length = length + (~done).astype(jnp.int32)
            return (state, timestep, done | timestep.last(), won, length, left), None

        start = (state, timestep, jnp.bool_(False), jnp.bool_(False), jnp.int32(0),
                 jnp.float32(1.0))  # fmt: skip
        carry, _ = jax.lax.scan(body, start, None, length=env.time_limit)
        return carry[3], carry[4], carry[5]

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    won, length, left = jax.jit(jax.vmap(episode))(keys)
    return {"won": np.asarray(won), "length": np.asarray(length), "left": np.asarray(left)}


def summarise(played: dict[str, np.ndarray]) -> dict[str, Any]:
    won = played["won"]
    return {
        "episodes": int(won.size),
        "win_rate": float(won.mean()),
        "length_mean": float(played["length"].mean()),
        "health_left_on_wins": float(played["left"][won].mean()) if won.any() else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| map | policy | win rate, SC2 starts / spread 0.5 | length | health left on wins |",
        "|---|---|---|---|---|",
    ]
    by_key = {(r["map"], r["policy"], r["spawn_jitter"]): r for r in rows}
    for row in rows:
        if row["spawn_jitter"] != 0.0:
            continue
        other = by_key.get((row["map"], row["policy"], 0.5))

        def fmt(value, pattern="{:.2f}"):
            return "-" if value is None else pattern.format(value)

        lines.append(
            f"| {row['map']} | {row['policy']} | {row['win_rate']:.2f} / "
            f"{fmt(other and other['win_rate'])} | {row['length_mean']:.0f} / "
            f"{fmt(other and other['length_mean'], '{:.0f}')} | "
            f"{fmt(row['health_left_on_wins'])} / {fmt(other and other['health_left_on_wins'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds; checks it runs")
    parser.add_argument("--maps", nargs="+", default=list(MAPS))
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.maps, args.episodes = ["3m"], 8

    rows = []
    for map_name in args.maps:
        for jitter in JITTERS:
            env = SMAC(map_name, spawn_jitter=jitter)
            for name in POLICIES:
                started = time.perf_counter()
                result = summarise(play(env, make_policy(env, name), args.episodes, args.seed))
                row = {"map": map_name, "policy": name, "spawn_jitter": jitter, **result}
                row["seconds"] = time.perf_counter() - started
                rows.append(row)
                print(f"{map_name} {name} jitter {jitter}: win {result['win_rate']:.3f}, "
                      f"length {result['length_mean']:.1f}", flush=True)  # fmt: skip
    payload = {
        "benchmark": "smac_scripted",
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "settings": {
            "episodes": args.episodes,
            "seed": args.seed,
            "difficulty": 7,
            "weapon_delay": True,
            "spawn_jitters": list(JITTERS),
        },  # fmt: skip
        "rows": rows,
    }
    print(table(rows))
    path = write_json(result_path(args.out, "smac_scripted"), payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
