"""``marl-evaluate checkpoint=RUN_DIR [episodes=N]``: greedy results of a saved run.

Reloads the run's config and latest checkpoint, plays ``episodes`` greedy
episodes per seed and prints the mean return and win rate.

``marl-evaluate checkpoint=RUN_DIR replay=PATH.gif [replay_fps=N] [replay_seed=S]
[replay_task=T]`` instead plays one greedy episode (seed ``S``'s first episode of the
evaluation above, the run's first seed by default; of a task-set run's task ``T``, its
first task by default),
renders every state from the reset to the end and writes them as an animated GIF
(``N`` frames per second, default 6; the last frame is held longer), creating
PATH's directory if needed. Replays need an environment whose ``render`` gives RGB
frames (``smac/*``, ``smacv2/*``, ``football/*``).

``marl-evaluate checkpoint=RUN_DIR engine=gfootball [episodes=N]`` plays a
``football/*`` run's greedy episodes in Google Research Football's real engine as well
(it needs the gfootball build of ``benchmarks/gfootball_setup.sh``), and prints each
seed's goal rate in both engines (:mod:`marl.sim_to_real`).

``marl-evaluate checkpoint=RUN_DIR export=PATH.msgpack`` writes the latest
checkpoint's parameters (every seed) and metadata to one small file, which
:func:`marl.checkpoint.load_exported` reads without the replay or orbax.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Sequence

import numpy as np

USAGE = (
    "usage: marl-evaluate checkpoint=RUN_DIR [episodes=N] [engine=jax|gfootball] [json=true] "
    "| checkpoint=RUN_DIR replay=PATH.gif [replay_fps=N] [replay_seed=S] [replay_task=T] "
    "[json=true] "
    "| checkpoint=RUN_DIR export=PATH.msgpack [json=true]"
)
ENGINES = ("jax", "gfootball")
DEFAULT_REPLAY_FPS = 6.0
LAST_FRAME_SECONDS = 1.5  # how long a replay shows the end of the episode


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments; raises ValueError with one line on anything else."""
    valid = {
        "checkpoint",
        "episodes",
        "json",
        "replay",
        "replay_fps",
        "replay_seed",
        "replay_task",
        "export",
        "engine",
    }
    args = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in valid:
            raise ValueError(f"unexpected argument '{arg}'; {USAGE}")
        args[key] = value
    if "checkpoint" not in args:
        raise ValueError(f"checkpoint is required; {USAGE}")
    if "json" in args and args["json"].lower() not in ("true", "false"):
        raise ValueError(f"json must be true or false, got '{args['json']}'")
    if "episodes" in args and (not args["episodes"].isdigit() or int(args["episodes"]) < 1):
        raise ValueError(f"episodes must be a positive integer, got '{args['episodes']}'")
    if args.get("engine", "jax") not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got '{args['engine']}'")
    if args.get("engine", "jax") != "jax" and ("replay" in args or "export" in args):
        raise ValueError("engine=gfootball evaluates; drop replay= and export=")
    if "export" in args:
        if not args["export"].lower().endswith(".msgpack"):
            raise ValueError(f"export must be a path ending in .msgpack, got '{args['export']}'")
        if set(args) - {"checkpoint", "export", "json"}:
            raise ValueError("export writes the parameters only; drop the other arguments")
    if "replay" in args:
        if not args["replay"].lower().endswith(".gif"):
            raise ValueError(f"replay must be a path ending in .gif, got '{args['replay']}'")
        if "episodes" in args:
            raise ValueError("a replay plays one episode; drop episodes=")
    if "replay_fps" in args:
        if "replay" not in args:
            raise ValueError("replay_fps needs replay=PATH.gif")
        try:
            fps = float(args["replay_fps"])
        except ValueError:
            fps = 0.0
        if not 0 < fps <= 100:
            raise ValueError(f"replay_fps must be a number in (0, 100], got '{args['replay_fps']}'")
    if "replay_task" in args and "replay" not in args:
        raise ValueError("replay_task needs replay=PATH.gif")
    if "replay_seed" in args:
        if "replay" not in args:
            raise ValueError("replay_seed needs replay=PATH.gif")
        if not args["replay_seed"].isdigit():
            raise ValueError(
                f"replay_seed must be a non-negative integer, got '{args['replay_seed']}'"
            )
    return args


def write_gif(frames: Sequence[np.ndarray], path: str | pathlib.Path, fps: float) -> None:
    """Writes RGB ``frames`` as a looping animated GIF, holding the last one longer.

    Every frame is kept (they must differ from their predecessor: Pillow merges equal
    consecutive frames), each reduced to its own palette of at most 256 colours.
    """
    from PIL import Image

    images = [Image.fromarray(np.asarray(frame, np.uint8), "RGB") for frame in frames]
    images = [image.quantize(colors=256, method=Image.Quantize.MEDIANCUT) for image in images]
    frame_ms = max(20, int(round(1000.0 / fps)))
    durations = [frame_ms] * len(images)
    durations[-1] = max(frame_ms, int(LAST_FRAME_SECONDS * 1000))
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=False,
    )


def _run_errors() -> tuple[type[BaseException], ...]:
    """What a damaged, foreign or mismatched run raises: reported in one line."""
    from marl.checkpoint import CheckpointDamagedError, CheckpointLayoutError
    from marl.config import ConfigError
    from marl.files import RunFileError
    from marl.plugins import PluginError
    from marl.train import NoRGBRenderError, NoSuchSeedError, NoSuchTaskError, RunBuildError

    return (
        FileNotFoundError,
        PluginError,
        NoRGBRenderError,
        NoSuchSeedError,
        NoSuchTaskError,
        CheckpointLayoutError,
        CheckpointDamagedError,
        ConfigError,
        RunFileError,
        RunBuildError,
    )


def check_output_path(path: pathlib.Path, key: str) -> None:
    """Creates ``path``'s directory and proves a file can be written there, before
    anything is loaded or played; raises ValueError with one line naming ``key``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(
            f"{key}: cannot write '{path}' ({error.strerror or type(error).__name__})"
        ) from None
    if path.is_dir():
        raise ValueError(f"{key}: '{path}' is a directory")


def _export(args: dict[str, str]) -> None:
    from marl.checkpoint import export_params

    path = pathlib.Path(args["export"])
    try:
        check_output_path(path, "export")
        metadata = export_params(args["checkpoint"], path)
    except (ValueError, *_run_errors()) as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    summary = {"export": str(path), "bytes": path.stat().st_size, **metadata}
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    env_steps = metadata.get("env_steps")
    steps = f"{env_steps:,}" if isinstance(env_steps, int) else "?"
    print(
        f"wrote {path} ({summary['bytes']:,} bytes): the parameters of chunk "
        f"{metadata.get('chunk')} ({steps} env steps), every seed; "
        "load with marl.checkpoint.load_exported"
    )


def _replay(args: dict[str, str]) -> None:
    from marl.train import replay_run

    seed = int(args["replay_seed"]) if "replay_seed" in args else None
    path = pathlib.Path(args["replay"])
    try:
        check_output_path(path, "replay")
        result = replay_run(args["checkpoint"], seed, args.get("replay_task"))
    except (ValueError, *_run_errors()) as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    fps = float(args.get("replay_fps", DEFAULT_REPLAY_FPS))
    write_gif(result["frames"], path, fps)
    config = result["config"]
    ret = np.asarray(result["return"], np.float64)
    summary = {
        "algo": config.algo.name,
        "env": config.env.name,
        "chunk": int(result["chunk"]),
        "seed": int(result["seed"]),
        "task": result["task"],
        "replay": str(path),
        "frames": len(result["frames"]),
        "length": int(result["length"]),
        "return": float(ret) if ret.ndim == 0 else [float(r) for r in ret],
        "won": bool(result["won"] > 0),
    }
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    ret_text = f"{ret:.3f}" if ret.ndim == 0 else str(summary["return"])
    print(
        f"{summary['algo']} on {summary['env']} (checkpoint of chunk {summary['chunk']}), "
        f"greedy episode of seed {summary['seed']}:"
    )
    outcome = "won" if summary["won"] else "not won"
    print(f"  return {ret_text}, {outcome}, {summary['length']} steps")
    print(f"  wrote {path} ({summary['frames']} frames at {fps:g} fps)")


def _real_engine(args: dict[str, str]) -> None:
    from marl.sim_to_real import RealEngineError, evaluate_run_in_gfootball
    from marl.train import evaluate_run

    episodes = int(args["episodes"]) if "episodes" in args else None
    try:
        real = evaluate_run_in_gfootball(args["checkpoint"], episodes)
        ours = evaluate_run(args["checkpoint"], real["goals"].shape[1])
    except (RealEngineError, ModuleNotFoundError, *_run_errors()) as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    config = real["config"]
    summary = {
        "algo": config.algo.name,
        "env": config.env.name,
        "chunk": int(real["chunk"]),
        "episodes_per_seed": int(real["goals"].shape[1]),
        "goal_rate_per_seed_jax": [float(w) for w in ours["won"].mean(axis=1)],
        "goal_rate_per_seed_gfootball": [float(g) for g in real["goals"].mean(axis=1)],
        "goal_rate_jax": float(np.mean(ours["won"])),
        "goal_rate_gfootball": float(np.mean(real["goals"])),
        "length_mean_gfootball": float(np.mean(real["lengths"])),
        "end_reasons_gfootball": real["end_reasons"],
        "gfootball_seconds": float(real["seconds"]),
    }
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    print(f"{summary['algo']} on {summary['env']} (checkpoint of chunk {summary['chunk']}), "
          f"greedy goal rate in our engine and in GRF's:")  # fmt: skip
    for seed, jax_rate, real_rate in zip(
        config.seeds(),
        summary["goal_rate_per_seed_jax"],
        summary["goal_rate_per_seed_gfootball"],
        strict=True,
    ):
        print(f"  seed {seed}: {jax_rate:.2f} here, {real_rate:.2f} in gfootball")
    print(
        f"  all: {summary['goal_rate_jax']:.2f} here, {summary['goal_rate_gfootball']:.2f} in "
        f"gfootball over {real['goals'].size} greedy episodes each"
    )


def main() -> None:
    """Entry point of ``marl-evaluate``."""
    try:
        args = parse_args(sys.argv[1:])
    except ValueError as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    from marl.compile_cache import enable_compile_cache

    enable_compile_cache("marl-evaluate")
    if "replay" in args:
        _replay(args)
        return
    if "export" in args:
        _export(args)
        return
    if args.get("engine", "jax") == "gfootball":
        _real_engine(args)
        return
    from marl.train import evaluate_run

    episodes = int(args["episodes"]) if "episodes" in args else None
    try:
        result = evaluate_run(args["checkpoint"], episodes)
    except _run_errors() as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    returns, won = result["returns"], result["won"]
    config = result["config"]
    summary = {
        "algo": config.algo.name,
        "env": config.env.name,
        "chunk": int(result["chunk"]),
        "episodes_per_seed": int(returns.shape[1]),
        "return_per_seed": [float(r) for r in returns.mean(axis=1)],
        "win_rate_per_seed": [float(w) for w in won.mean(axis=1)],
        "return_mean": float(np.mean(returns)),
        "win_rate_mean": float(np.mean(won)),
    }
    if len(result["tasks"]) > 1:  # a task set: every task's figures; "all" pools them
        summary["tasks"] = {
            name: {
                "return_per_seed": [float(r) for r in task["returns"].mean(axis=1)],
                "win_rate_per_seed": [float(w) for w in task["won"].mean(axis=1)],
            }
            for name, task in result["tasks"].items()
        }
        returns = np.concatenate([task["returns"] for task in result["tasks"].values()], axis=1)
        won = np.concatenate([task["won"] for task in result["tasks"].values()], axis=1)
        summary["return_per_seed"] = [float(r) for r in returns.mean(axis=1)]
        summary["win_rate_per_seed"] = [float(w) for w in won.mean(axis=1)]
        summary["return_mean"] = float(np.mean(returns))
        summary["win_rate_mean"] = float(np.mean(won))
    pareto = result["pareto"]
    if pareto:  # a multi-objective learner: the front of every evaluation preference
        summary["returns_are"] = "each episode's return scalarised by its preference"
        summary["pareto_per_seed"] = {
            name: [float(v) for v in values] for name, values in pareto.items()
        }
        summary["front_per_seed"] = np.asarray(result["front"]).tolist()
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    print(f"{summary['algo']} on {summary['env']} (checkpoint of chunk {summary['chunk']}):")
    for seed, ret, win in zip(
        config.seeds(), summary["return_per_seed"], summary["win_rate_per_seed"], strict=True
    ):
        print(f"  seed {seed}: mean return {ret:.3f}, win rate {win:.2f}")
    for name, task in summary.get("tasks", {}).items():
        wins = ", ".join(f"{w:.2f}" for w in task["win_rate_per_seed"])
        print(f"  {name}: win rate per seed {wins}")
    for name, values in summary.get("pareto_per_seed", {}).items():
        print(f"  {name} per seed: {', '.join(f'{v:.3f}' for v in values)}")
    print(
        f"  all: mean return {summary['return_mean']:.3f}, win rate {summary['win_rate_mean']:.2f}"
        f" over {returns.size} greedy episodes"
    )


if __name__ == "__main__":
    main()
