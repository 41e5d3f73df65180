"""Where the time of marl-lab's LBF step goes, against Jumanji's, side by side.

A diagnostic companion of ``env_throughput.py`` (same task, same timed rollout: a
jitted ``lax.scan`` with random available actions). It separates

* the step without any reset: Jumanji's plain step (the ceiling), our adapter's step,
  our adapter without its invalid-action count, and with the metrics and agent-id
  wrappers;
* the auto-reset strategies: Jumanji's ``AutoResetWrapper`` under ``vmap`` (the
  anchor), our ``VectorEnv`` around Jumanji's own environment, around our adapter at
  several ``reset_fraction`` values, and around the adapter without the invalid count;
* the cost of a batched ``reset`` on its own.

Figures are env-steps/s medians and the median of per-round ratios against the
anchor. Usage::

    python benchmarks/env_profile.py                 # N = 1024 (and --num-envs ...)
    python benchmarks/env_profile.py --quick
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import jumanji
from common import machine_info, result_path, side_by_side, summary, timed, write_json
from env_throughput import (
    ANCHOR,
    JUMANJI_ID,
    TASK,
    Batched,
    check_same_task,
    compile_variant,
    make_batched,
    vmapped,
)
from jumanji.types import TimeStep
from jumanji.wrappers import AutoResetWrapper

import marl
from marl.envs.jumanji_adapters import LevelBasedForaging, team_timestep
from marl.wrappers import AgentIDWrapper, EpisodeMetricsWrapper


class LbfWithoutInvalidCount(LevelBasedForaging):
    """Our LBF adapter with ``extras["invalid_actions"]`` fixed at 0 (not recomputed).

    The adapter counts invalid actions by recomputing the pre-step action mask, which
    Jumanji's step does not reuse; this variant measures what that costs.
    """

    def step(self, state: Any, action: jax.Array) -> tuple[Any, TimeStep]:
        action = jnp.asarray(action, jnp.int32)
        next_state, inner = self._env.step(state, action)
        next_state = marl.envs.jumanji_adapters.strong_types(next_state)
        all_eaten = jnp.all(next_state.food_items.eaten)
        obs = self._observation(next_state, inner.observation)
        extras = {"won": all_eaten.astype(jnp.float32), "invalid_actions": jnp.int32(0)}
        timestep = team_timestep(
            jnp.sum(inner.reward),
            obs,
            terminated=all_eaten,
            truncated=next_state.step_count >= self.time_limit,
            extras=extras,
            num_agents=self.num_agents,
        )
        return next_state, timestep


def _no_invalid_env(wrapped: bool) -> jumanji.Environment:
    sizes = marl.envs.jumanji_adapters.parse_lbf_task(TASK.split("/", 1)[1])
    env = LbfWithoutInvalidCount(**sizes)
    return AgentIDWrapper(EpisodeMetricsWrapper(env)) if wrapped else env


def _vector(env: jumanji.Environment, num_envs: int, reset_fraction: float = 0.125) -> Batched:
    vec = marl.VectorEnv(env, num_envs, reset_fraction=reset_fraction)
    return Batched(vec.reset, vec.step)


def variants(num_envs: int) -> dict[str, tuple[str, Batched]]:
    """Name -> (description, batched environment)."""
    raw = lambda: marl.make_raw_env(TASK)  # noqa: E731
    return {
        "jumanji_no_reset": (
            "vmap(Jumanji step), no reset: ceiling",
            vmapped(jumanji.make(JUMANJI_ID), num_envs),
        ),
        "adapter_no_reset": ("vmap(our adapter step), no reset", vmapped(raw(), num_envs)),
        "adapter_no_invalid_no_reset": (
            "vmap(adapter step without invalid count), no reset",
            vmapped(_no_invalid_env(False), num_envs),
        ),
        "wrapped_no_reset": (
            "vmap(make_env step: + metrics + agent id), no reset",
            vmapped(marl.make_env(TASK), num_envs),
        ),
        ANCHOR: (
            "vmap(AutoResetWrapper(Jumanji)) (anchor)",
            vmapped(AutoResetWrapper(jumanji.make(JUMANJI_ID)), num_envs),
        ),
        "vector_jumanji": (
            "VectorEnv(Jumanji env): our reset, Jumanji's step",
            _vector(jumanji.make(JUMANJI_ID), num_envs),
        ),
        "ours_raw_f0": (
            "VectorEnv(adapter, reset_fraction=0 -> 1 slot)",
            _vector(raw(), num_envs, 0.0),
        ),
        "ours_raw_f1/64": (
            "VectorEnv(adapter, reset_fraction=1/64)",
            _vector(raw(), num_envs, 1 / 64),
        ),
        "ours_raw": (
            "VectorEnv(adapter), default reset_fraction=1/8",
            make_batched("ours_raw", num_envs),
        ),
        "ours_raw_f1/2": ("VectorEnv(adapter, reset_fraction=1/2)", _vector(raw(), num_envs, 0.5)),
        "ours_raw_f1": (
            "VectorEnv(adapter, reset_fraction=1: always reset_all)",
            _vector(raw(), num_envs, 1.0),
        ),
        "ours_raw_no_invalid": (
            "VectorEnv(adapter without invalid count)",
            _vector(_no_invalid_env(False), num_envs),
        ),
        "ours": (
            "VectorEnv(make_env): the benchmarked configuration",
            make_batched("ours", num_envs),
        ),
        "ours_no_invalid": (
            "VectorEnv(make_env without invalid count)",
            _vector(_no_invalid_env(True), num_envs),
        ),
    }


def reset_cost(num_envs: int, reps: int) -> dict[str, Any]:
    """Seconds per batched reset of ``num_envs`` environments, ours and Jumanji's."""
    out = {}
    for name, env in (("ours_raw", marl.make_raw_env(TASK)), ("jumanji", jumanji.make(JUMANJI_ID))):
        reset = jax.jit(lambda k, env=env: jax.vmap(env.reset)(jax.random.split(k, num_envs)))
        call = partial(reset, jax.random.PRNGKey(0))
        timed(call)
        out[name] = summary([timed(call) for _ in range(reps)])
    return out


def profile_num_envs(num_envs: int, scan_steps: int, reps: int, warmup: int) -> dict[str, Any]:
    """Every variant at one batch size, side by side; prints and returns the figures."""
    table = variants(num_envs)
    compiled = {}
    for name, (_, batched) in table.items():
        compiled[name] = compile_variant(batched, scan_steps)
        print(f"N={num_envs} compiled {name} in {compiled[name].compile_s:.1f} s", flush=True)
    carries = {name: c.carry for name, c in compiled.items()}

    def call(name: str) -> Any:
        carries[name] = compiled[name].run(carries[name])
        return carries[name]

    timing = side_by_side(
        {name: partial(call, name) for name in table}, reps=reps, warmup=warmup, baseline=ANCHOR
    )
    row: dict[str, Any] = {"num_envs": num_envs, "scan_steps": scan_steps, "variants": {}}
    print(f"\nN={num_envs}, S={scan_steps}: env-steps/s median, ratio vs {ANCHOR}, us/step")
    for name, (description, _) in table.items():
        rates = [num_envs * scan_steps / t for t in timing["times"][name]]
        ratio = timing["ratios"].get(name, {"median": 1.0})["median"]
        us_per_step = 1e6 * summary(timing["times"][name])["median"] / scan_steps
        row["variants"][name] = {
            "description": description,
            "compile_s": compiled[name].compile_s,
            "env_steps_per_s": summary(rates),
            "ratio_vs_anchor": ratio,
            "us_per_vector_step": us_per_step,
            "episodes_seen": int(jax.device_get(carries[name].episodes)),
        }
        print(
            f"  {name:28s} {summary(rates)['median']:>12,.0f} {ratio:6.2f}x "
            f"{us_per_step:9.1f} us  {description}"
        )
    row["reset_s"] = {k: reset_cost(k, reps) for k in sorted({num_envs, max(1, num_envs // 8)})}
    for k, costs in row["reset_s"].items():
        print(
            f"  batched reset of {k} envs: "
            + ", ".join(f"{name} {1e6 * c['median']:.0f} us" for name, c in costs.items())
        )
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--num-envs", type=int, nargs="+", default=None)
    parser.add_argument("--scan-steps", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        jax.config.update("jax_disable_most_optimizations", True)
    num_envs = args.num_envs or ([64] if args.quick else [1024])
    scan_steps = args.scan_steps or (20 if args.quick else 100)
    reps = args.reps or (2 if args.quick else 5)
    warmup = 1 if args.quick else 2

    check_same_task()
    info = machine_info()
    rows = [profile_num_envs(n, scan_steps, reps, warmup) for n in num_envs]

    payload = {
        "benchmark": "env_profile",
        "command": " ".join(["python", "benchmarks/env_profile.py", *sys.argv[1:]]),
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "settings": {
            "num_envs": num_envs,
            "scan_steps": scan_steps,
            "reps": reps,
            "warmup_reps": warmup,
        },
        "results": rows,
    }
    path = write_json(result_path(args.out, "env_profile"), payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
