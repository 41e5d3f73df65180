"""``marl-evaluate checkpoint=RUN_DIR [episodes=N]``: greedy results of a saved run.

Reloads the run's config and latest checkpoint, plays ``episodes`` greedy
episodes per seed and prints the mean return and win rate.

``marl-evaluate checkpoint=RUN_DIR replay=PATH.gif [replay_fps=N] [replay_seed=S]``
instead plays one greedy episode (seed ``S``'s first episode of the evaluation above,
the run's first seed by default),
renders every state from the reset to the end and writes them as an animated GIF
(``N`` frames per second, default 6; the last frame is held longer), creating
PATH's directory if needed. Replays need an environment whose ``render`` gives RGB
frames (``smac/*``, ``smacv2/*``, ``football/*``).
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Sequence

import numpy as np

USAGE = (
    "usage: marl-evaluate checkpoint=RUN_DIR [episodes=N] [json=true] "
    "| checkpoint=RUN_DIR replay=PATH.gif [replay_fps=N] [replay_seed=S] [json=true]"
)
DEFAULT_REPLAY_FPS = 6.0
LAST_FRAME_SECONDS = 1.5  # how long a replay shows the end of the episode


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments; raises ValueError with one line on anything else."""
    valid = {"checkpoint", "episodes", "json", "replay", "replay_fps", "replay_seed"}
    args = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in valid:
            raise ValueError(f"unexpected argument '{arg}'; {USAGE}")
        args[key] = value
    if "checkpoint" not in args:
        raise ValueError(f"checkpoint is required; {USAGE}")
    if "episodes" in args and (not args["episodes"].isdigit() or int(args["episodes"]) < 1):
        raise ValueError(f"episodes must be a positive integer, got '{args['episodes']}'")
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


def _replay(args: dict[str, str]) -> None:
    from marl.checkpoint import CheckpointLayoutError
    from marl.config import ConfigError
    from marl.train import NoRGBRenderError, NoSuchSeedError, replay_run

    seed = int(args["replay_seed"]) if "replay_seed" in args else None
    try:
        result = replay_run(args["checkpoint"], seed)
    except (
        FileNotFoundError,
        NoRGBRenderError,
        NoSuchSeedError,
        CheckpointLayoutError,
        ConfigError,
    ) as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    path = pathlib.Path(args["replay"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = float(args.get("replay_fps", DEFAULT_REPLAY_FPS))
    write_gif(result["frames"], path, fps)
    config = result["config"]
    ret = np.asarray(result["return"], np.float64)
    summary = {
        "algo": config.algo.name,
        "env": config.env.name,
        "chunk": int(result["chunk"]),
        "seed": int(result["seed"]),
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


def main() -> None:
    """Entry point of ``marl-evaluate``."""
    try:
        args = parse_args(sys.argv[1:])
    except ValueError as error:
        print(f"marl-evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)
    if "replay" in args:
        _replay(args)
        return
    from marl.checkpoint import CheckpointLayoutError
    from marl.config import ConfigError
    from marl.train import evaluate_run

    episodes = int(args["episodes"]) if "episodes" in args else None
    try:
        result = evaluate_run(args["checkpoint"], episodes)
    except (FileNotFoundError, CheckpointLayoutError, ConfigError) as error:
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
    if args.get("json", "false").lower() == "true":
        print(json.dumps(summary))
        return
    print(f"{summary['algo']} on {summary['env']} (checkpoint of chunk {summary['chunk']}):")
    for seed, (ret, win) in enumerate(
        zip(summary["return_per_seed"], summary["win_rate_per_seed"], strict=True)
    ):
        print(f"  seed {config.seed + seed}: mean return {ret:.3f}, win rate {win:.2f}")
    print(
        f"  all: mean return {summary['return_mean']:.3f}, win rate {summary['win_rate_mean']:.2f}"
        f" over {returns.size} greedy episodes"
    )


if __name__ == "__main__":
    main()
