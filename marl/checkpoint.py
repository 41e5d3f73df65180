"""Saving and resuming the whole training state with orbax.

A checkpoint of chunk ``k`` is a directory ``checkpoints/<k>/`` with two items:

* ``state``: every array of the loop's :class:`marl.loop.RunnerState`
  (parameters, optimiser, target network, replay, environment states, PRNG keys,
  counters), leading axes ``[num_devices, num_seeds]``;
* ``params``: the algorithm's ``params`` alone (the field the algorithm contract
  declares), so that another run can start from them without reading the rest.

It is written synchronously so that a run killed at any moment leaves either the
previous or the new checkpoint, never a half-written one. The config a run was
started with is kept beside them; resuming under a different config is refused
with the keys that differ.
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from marl.files import atomic_write_text
from marl.loop import RunnerState

# Keys that may change between a run and its resumption: they do not affect what
# is learned (logging, how often to save or evaluate) or only extend the run.
RESUMABLE_KEYS = (
    "resume",
    "run_dir",
    "arch.total_timesteps",
    "arch.checkpoint_interval",
    "arch.eval_episodes",
    "logger.",
)


class ConfigMismatchError(ValueError):
    """A checkpoint was made under a config that differs in training-relevant keys."""


class CheckpointLayoutError(ValueError):
    """A checkpoint's arrays do not fit this version's training state (e.g. it was
    written by a marl-lab version whose algorithm kept a different state)."""


def _flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(saved: dict, current: dict) -> list[str]:
    """The dotted keys whose values differ, ignoring :data:`RESUMABLE_KEYS`."""
    a, b = _flatten(saved), _flatten(current)
    keys = sorted(set(a) | set(b))
    return [
        k
        for k in keys
        if a.get(k, "<missing>") != b.get(k, "<missing>")
        and not any(k == r or (r.endswith(".") and k.startswith(r)) for r in RESUMABLE_KEYS)
    ]


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a run in ``run_dir/checkpoints``."""

    def __init__(self, run_dir: str | pathlib.Path, max_to_keep: int = 2):
        # orbax reports every step of its work at INFO through absl; keep the console
        # for the run's own output.
        logging.getLogger("absl").setLevel(logging.WARNING)
        self.run_dir = pathlib.Path(run_dir).absolute()
        self.manager = ocp.CheckpointManager(
            self.run_dir / "checkpoints",
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
            ),
        )

    def latest_chunk(self) -> int | None:
        """The chunk index of the newest complete checkpoint, or ``None``."""
        return self.manager.latest_step()

    def save(self, chunk: int, state: RunnerState) -> None:
        host_state = jax.tree_util.tree_map(np.asarray, state)
        self.manager.save(
            chunk,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(host_state),
                params=ocp.args.StandardSave(host_state.algo_state.params),
            ),
        )
        self.manager.wait_until_finished()

    def restore(self, chunk: int, like: RunnerState) -> RunnerState:
        """Restores chunk ``chunk``'s state into the structure (and shapes) of ``like``."""
        target = jax.tree_util.tree_map(
            lambda x: np.zeros(x.shape, x.dtype) if hasattr(x, "shape") else x, like
        )
        try:
            restored = self.manager.restore(
                chunk, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
            )
            return restored.state
        except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise CheckpointLayoutError(
                f"checkpoint {chunk} in {self.run_dir} does not fit this version's training "
                "state (written by another marl-lab version?); start a new run or resume "
                f"with the version that wrote it ({type(error).__name__}: {reason})"
            ) from None

    def close(self) -> None:
        self.manager.close()


def load_params(run_dir: str | pathlib.Path) -> Any:
    """The learned parameters in ``run_dir``'s latest checkpoint (device 0, first seed).

    Used to start a run from another run's parameters (e.g. CMAT's fine-tuning);
    only the checkpoint's ``params`` item is read. Raises ``ValueError`` in one
    line when ``run_dir`` holds no checkpoint of this layout.
    """
    checkpoints = pathlib.Path(run_dir).absolute() / "checkpoints"
    logging.getLogger("absl").setLevel(logging.ERROR)
    manager = None
    if checkpoints.is_dir():
        options = ocp.CheckpointManagerOptions(create=False)
        manager = ocp.CheckpointManager(checkpoints, options=options)
    if manager is None or manager.latest_step() is None:
        raise ValueError(f"'{run_dir}' holds no checkpoint to start from")
    latest = manager.latest_step()
    try:
        saved = manager.restore(latest, args=ocp.args.Composite(params=ocp.args.StandardRestore()))
    except (ValueError, KeyError, TypeError, FileNotFoundError):
        raise ValueError(
            f"'{run_dir}' checkpoint {latest} has no params item (written by another "
            "marl-lab version?)"
        ) from None
    finally:
        manager.close()
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[0, 0], saved.params)


def write_config(run_dir: str | pathlib.Path, config: dict) -> None:
    atomic_write_text(
        pathlib.Path(run_dir) / "config.json", json.dumps(config, indent=2, sort_keys=True)
    )


def read_config(run_dir: str | pathlib.Path) -> dict | None:
    path = pathlib.Path(run_dir) / "config.json"
    return json.loads(path.read_text()) if path.exists() else None
