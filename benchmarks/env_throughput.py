"""Environment throughput: marl-lab's LBF 8x8-2p-2f-coop against Jumanji's, side by side.

The task is Jumanji's default ``LevelBasedForaging-v0`` (8x8 grid, 2 agents, 2 food,
fov 8, ``force_coop=True``, time limit 100), which marl-lab registers as
``lbf/8x8-2p-2f-coop``; the script checks that both reset to the same layouts and
levels before timing anything.

Every variant runs a jitted ``lax.scan`` of ``S`` vectorised steps of ``N``
environments, with random *available* actions drawn from the action mask inside the
scan and auto-reset on; env-steps/s = ``N * S / time``. Variants:

* ``ours``: ``marl.VectorEnv(marl.make_env("lbf/8x8-2p-2f-coop"), N)``, our adapter
  with the episode-metrics and agent-id wrappers and the selective auto-reset.
* ``ours_raw``: ``marl.VectorEnv(marl.make_raw_env("lbf/8x8-2p-2f-coop"), N)``, the same
  without the metrics and agent-id wrappers.
* ``jumanji_autoreset`` (the anchor): ``jax.vmap`` of
  ``jumanji.wrappers.AutoResetWrapper(jumanji.make("LevelBasedForaging-v0"))`` with
  its default ``next_obs_in_extras=False``. Under ``vmap`` its ``lax.cond`` becomes a
  select, so every environment is reset on every step.
* ``jumanji_no_reset``: ``jax.vmap`` of the plain Jumanji step, a reference ceiling
  (episodes never restart; not a usable loop).

The variants run in turns (A B C D A B C D ...); the ratios are medians of the
per-round ratios against the anchor. Compilation is timed separately. Usage::

    python benchmarks/env_throughput.py            # full: N = 1, 64, 1024; S = 200
    python benchmarks/env_throughput.py --quick    # seconds: N = 64; S = 20
    python benchmarks/env_throughput.py --task lbf/8x8-2p-2f \
        --out benchmarks/results/env_throughput_noncoop.json  # non-cooperative food levels

Without ``-coop`` random play eats food far more often, so episodes end at scattered
steps and the selective reset runs on almost every step at N = 1024; with it, nearly
every episode runs to the time limit and the batch resets in step.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jumanji
from common import command_line, machine_info, result_path, side_by_side, summary, timed, write_json
from jumanji.environments.routing.lbf.generator import RandomGenerator as LbfGenerator
from jumanji.wrappers import AutoResetWrapper

import marl
from marl.envs.jumanji_adapters import parse_lbf_task

TASK = "lbf/8x8-2p-2f-coop"
JUMANJI_ID = "LevelBasedForaging-v0"
ANCHOR = "jumanji_autoreset"
TARGET_RATIO = 2.5
TARGET_NUM_ENVS = 1024

# Descriptions; {task} and {jumanji} are filled in with the task benchmarked.
VARIANTS = {
    "ours": "marl.VectorEnv(marl.make_env('{task}'), N): adapter + episode metrics + "
    "agent ids + selective auto-reset",
    "ours_raw": "marl.VectorEnv(marl.make_raw_env('{task}'), N): adapter + selective "
    "auto-reset, no metrics/agent-id wrappers",
    ANCHOR: "jax.vmap(jumanji.wrappers.AutoResetWrapper({jumanji}))",
    "jumanji_no_reset": "jax.vmap({jumanji}.step), no reset (ceiling)",
}


class Batched(NamedTuple):
    """A batch of ``N`` environments: ``reset(key)`` and ``step(state, actions)``."""

    reset: Callable[[jax.Array], tuple[Any, Any]]
    step: Callable[[Any, jax.Array], tuple[Any, Any]]


def vmapped(env: jumanji.Environment, num_envs: int) -> Batched:
    """``env`` under ``jax.vmap`` with one reset key per environment."""

    def reset(key: jax.Array) -> tuple[Any, Any]:
        return jax.vmap(env.reset)(jax.random.split(key, num_envs))

    return Batched(reset, jax.vmap(env.step))


def jumanji_env(task: str = TASK) -> jumanji.Environment:
    """Jumanji's own LBF for an ``lbf/...`` task: ``jumanji.make(JUMANJI_ID)`` for the
    default task, else the same class with the task's generator and time limit."""
    if task == TASK:
        return jumanji.make(JUMANJI_ID)
    ours = marl.make_raw_env(task)
    generator = LbfGenerator(
        grid_size=ours.grid_size,
        fov=ours.fov,
        num_agents=ours.num_agents,
        num_food=ours.num_food,
        max_agent_level=ours.max_agent_level,
        force_coop=is_coop(task),
    )
    return jumanji.make(JUMANJI_ID, generator=generator, time_limit=ours.time_limit)


def is_coop(task: str) -> bool:
    """Whether an ``lbf/...`` task forces cooperation (its ``-coop`` suffix)."""
    sizes = parse_lbf_task(task.partition("/")[2])
    if sizes is None:
        raise ValueError(f"not an LBF task: {task!r}")
    return bool(sizes["force_coop"])


def make_batched(name: str, num_envs: int, task: str = TASK) -> Batched:
    """The batched environment of variant ``name``."""
    if name == "ours":
        vec = marl.VectorEnv(marl.make_env(task), num_envs)
        return Batched(vec.reset, vec.step)
    if name == "ours_raw":
        vec = marl.VectorEnv(marl.make_raw_env(task), num_envs)
        return Batched(vec.reset, vec.step)
    if name == ANCHOR:
        return vmapped(AutoResetWrapper(jumanji_env(task)), num_envs)
    if name == "jumanji_no_reset":
        return vmapped(jumanji_env(task), num_envs)
    raise ValueError(f"unknown variant {name!r}; valid: {sorted(VARIANTS)}")


def check_same_task(task: str = TASK, num_keys: int = 16) -> None:
    """Raises unless ours and the anchor reset to the same layouts and levels."""
    keys = jax.random.split(jax.random.PRNGKey(0), num_keys)
    ours, _ = jax.vmap(marl.make_raw_env(task).reset)(keys)
    anchor_env = jumanji_env(task)
    anchor, _ = jax.vmap(anchor_env.reset)(keys)
    fields = {
        "agent positions": (ours.agents.position, anchor.agents.position),
        "agent levels": (ours.agents.level, anchor.agents.level),
        "food positions": (ours.food_items.position, anchor.food_items.position),
        "food levels": (ours.food_items.level, anchor.food_items.level),
    }
    for what, (a, b) in fields.items():
        if not bool(jnp.all(a == b)):
            raise RuntimeError(f"{task} and {JUMANJI_ID} differ in {what}: not the same task")
    if marl.make_raw_env(task).time_limit != anchor_env.time_limit:
        raise RuntimeError(f"{task} and {JUMANJI_ID} have different time limits")


class Carry(NamedTuple):
    state: Any
    observation: Any  # carried whole so that no part of the observation is optimised away
    key: jax.Array
    reward_sum: jax.Array
    episodes: jax.Array


def random_available(key: jax.Array, action_mask: jax.Array) -> jax.Array:
    """A uniformly random available action per agent: ``[..., A, K] -> [..., A]``."""
    logits = jnp.where(action_mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def make_rollout(batched: Batched, scan_steps: int) -> tuple[Callable, Callable]:
    """``init(key) -> carry`` and ``run(carry) -> carry`` (a scan of ``scan_steps`` steps).

    The reward sum and episode count are accumulated so that the consumer-visible
    outputs of a step are live, as they would be in a training loop.
    """

    def init(key: jax.Array) -> Carry:
        env_key, loop_key = jax.random.split(key)
        state, timestep = batched.reset(env_key)
        return Carry(state, timestep.observation, loop_key, jnp.float32(0.0), jnp.int32(0))

    def body(carry: Carry, _: None) -> tuple[Carry, None]:
        key, act_key = jax.random.split(carry.key)
        actions = random_available(act_key, carry.observation.action_mask)
        state, timestep = batched.step(carry.state, actions)
        reward_sum = carry.reward_sum + jnp.sum(timestep.reward)
        episodes = carry.episodes + jnp.sum(timestep.last()).astype(jnp.int32)
        return Carry(state, timestep.observation, key, reward_sum, episodes), None

    def run(carry: Carry) -> Carry:
        return jax.lax.scan(body, carry, None, scan_steps)[0]

    return init, run


class Compiled(NamedTuple):
    run: Callable[[Carry], Carry]
    carry: Carry
    compile_s: float


def compile_variant(batched: Batched, scan_steps: int, seed: int = 0) -> Compiled:
    """Compiles the rollout ahead of time; ``compile_s`` is trace + lower + compile."""
    init, run = make_rollout(batched, scan_steps)
    carry = jax.block_until_ready(jax.jit(init)(jax.random.PRNGKey(seed)))
    start = time.perf_counter()
    compiled = jax.jit(run).lower(carry).compile()
    return Compiled(compiled, carry, time.perf_counter() - start)


def steps_per_second(compiled: Compiled, num_envs: int, scan_steps: int, reps: int) -> list[float]:
    """Env-steps/s of ``reps`` timed calls of a compiled rollout, after one warm-up call."""
    rates = []
    for rep in range(reps + 1):
        seconds = timed(lambda: compiled.run(compiled.carry))
        if rep:  # the first call is a warm-up
            rates.append(num_envs * scan_steps / seconds)
    return rates


def bench_num_envs(
    num_envs: int,
    scan_steps: int,
    reps: int,
    warmup: int,
    min_rep_s: float,
    variants: list[str],
    task: str = TASK,
) -> dict[str, Any]:
    """All LBF variants at one batch size, side by side."""
    return bench_num_envs_generic(
        lambda name: make_batched(name, num_envs, task),
        num_envs,
        scan_steps,
        reps,
        warmup,
        min_rep_s,
        variants,
        ANCHOR,
    )


def bench_num_envs_generic(
    build: Callable[[str], Batched],
    num_envs: int,
    scan_steps: int,
    reps: int,
    warmup: int,
    min_rep_s: float,
    variants: list[str],
    anchor: str,
) -> dict[str, Any]:
    """The variants ``build(name)`` (``num_envs`` envs each) side by side against ``anchor``."""
    compiled = {name: compile_variant(build(name), scan_steps) for name in variants}
    carries = {name: c.carry for name, c in compiled.items()}
    episodes_before = {name: int(c.carry.episodes) for name, c in compiled.items()}

    def one_call(name: str) -> Carry:
        carries[name] = compiled[name].run(carries[name])
        return carries[name]

    # Several scans per repetition when one is too short to time (small N).
    single = {name: timed(lambda n=name: one_call(n)) for name in variants}
    calls = max(1, math.ceil(min_rep_s / max(min(single.values()), 1e-9)))

    def repeated(name: str) -> Callable[[], Carry]:
        def fn() -> Carry:
            for _ in range(calls):
                out = one_call(name)
            return out

        return fn

    timing = side_by_side(
        {name: repeated(name) for name in variants},
        reps=reps,
        warmup=warmup,
        baseline=anchor if anchor in variants else None,
    )
    steps_per_rep = num_envs * scan_steps * calls
    total_calls = 1 + calls * (warmup + reps)
    row: dict[str, Any] = {
        "num_envs": num_envs,
        "scan_steps": scan_steps,
        "calls_per_rep": calls,
        "env_steps_per_rep": steps_per_rep,
        "variants": {},
        "ratio_vs_anchor": timing.get("ratios", {}),
    }
    for name in variants:
        rates = [steps_per_rep / t for t in timing["times"][name]]
        carry = jax.device_get(carries[name])
        env_steps = num_envs * scan_steps * total_calls
        row["variants"][name] = {
            "compile_s": compiled[name].compile_s,
            "env_steps_per_s": summary(rates),
            "env_steps_per_s_reps": rates,
            "seconds_per_rep": timing["times"][name],
            # Sanity check: random play ends about one episode per 100 env-steps.
            "episodes_per_env_step": (int(carry.episodes) - episodes_before[name]) / env_steps,
        }
    return row


def print_table(rows: list[dict[str, Any]], variants: list[str], task: str = TASK) -> None:
    """Prints median env-steps/s per variant and the ratios against the anchor."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{task} env-steps/s (median of reps; ratio = median pairwise vs anchor)")
    table.add_column("N", justify="right")
    for name in variants:
        table.add_column(name, justify="right")
    for name in variants:
        if name != ANCHOR:
            table.add_column(f"{name}/anchor", justify="right")
    table.add_column("compile s (ours/anchor)", justify="right")
    for row in rows:
        cells = [str(row["num_envs"])]
        for name in variants:
            cells.append(f"{row['variants'][name]['env_steps_per_s']['median']:,.0f}")
        for name in variants:
            if name != ANCHOR:
                cells.append(f"{row['ratio_vs_anchor'][name]['median']:.2f}x")
        compile_ours = row["variants"].get("ours", {}).get("compile_s", float("nan"))
        compile_anchor = row["variants"][ANCHOR]["compile_s"]
        cells.append(f"{compile_ours:.1f} / {compile_anchor:.1f}")
        table.add_row(*cells)
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=None)
    parser.add_argument("--scan-steps", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument(
        "--task",
        default=TASK,
        help="an lbf/... task; the anchor is Jumanji's LBF with the same generator "
        f"(default {TASK}, Jumanji's default task)",
    )
    args = parser.parse_args(argv)

    if args.quick:
        # Quick mode only checks that the script runs: compile fast, figures meaningless.
        jax.config.update("jax_disable_most_optimizations", True)
        num_envs, scan_steps, reps, warmup, min_rep_s = [64], 20, 2, 1, 0.0
    else:
        num_envs, scan_steps, reps, warmup, min_rep_s = [1, 64, 1024], 200, 7, 2, 0.3
    num_envs = args.num_envs or num_envs
    scan_steps = args.scan_steps or scan_steps
    reps = args.reps or reps
    variants = list(VARIANTS)

    task = args.task
    jumanji_name = f"jumanji.make('{JUMANJI_ID}')"
    if task != TASK:
        jumanji_name = f"jumanji.make('{JUMANJI_ID}', generator=<{task}'s>)"
    check_same_task(task)
    info = machine_info()
    rows = []
    for n in num_envs:
        print(f"N={n}: compiling and timing {len(variants)} variants ...", flush=True)
        rows.append(bench_num_envs(n, scan_steps, reps, warmup, min_rep_s, variants, task))
    print_table(rows, variants, task)

    target_row = next((r for r in rows if r["num_envs"] == TARGET_NUM_ENVS), None)
    target_ratio = target_row["ratio_vs_anchor"]["ours"]["median"] if target_row else None
    payload = {
        "benchmark": "env_throughput",
        "command": command_line("env_throughput.py", argv),
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "env": {
            "ours": task,
            "anchor": JUMANJI_ID if task == TASK else f"{JUMANJI_ID} with {task}'s generator",
            "jumanji": jumanji.__version__,
            "task": repr(marl.make_raw_env(task)),
            "force_coop": is_coop(task),
        },
        "settings": {
            "num_envs": num_envs,
            "scan_steps": scan_steps,
            "reps": reps,
            "warmup_reps": warmup,
            "min_rep_s": min_rep_s,
            "xla_optimisations": "disabled (quick mode)" if args.quick else "default",
            "same_task_checked": True,
            "actions": "uniform over available actions (action_mask), sampled in the scan",
            "anchor": ANCHOR,
        },
        "variants": {
            name: VARIANTS[name].format(task=task, jumanji=jumanji_name) for name in variants
        },
        "results": rows,
        "target": {
            "ratio_ours_vs_anchor": TARGET_RATIO,
            "num_envs": TARGET_NUM_ENVS,
            "measured": target_ratio,
            "met": None if target_ratio is None else bool(target_ratio >= TARGET_RATIO),
        },
    }
    path = write_json(result_path(args.out, "env_throughput"), payload)
    print(f"wrote {path}")
    if target_ratio is not None:
        verdict = "met" if target_ratio >= TARGET_RATIO else "NOT met"
        print(
            f"target ours >= {TARGET_RATIO}x anchor at N={TARGET_NUM_ENVS}: {verdict} "
            f"({target_ratio:.2f}x)"
        )
    return payload


if __name__ == "__main__":
    main()
