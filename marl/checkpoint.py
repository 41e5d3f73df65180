"""Saving and resuming the whole training state with orbax.

A checkpoint of chunk ``k`` is a directory ``checkpoints/<k>/`` with two items:

* ``state``: every array of the loop's :class:`marl.loop.RunnerState`
  (parameters, optimiser, target network, replay, environment states, PRNG keys,
  counters), leading axes ``[num_devices, num_seeds]``; without the replay
  when the run was told not to keep it (``arch.checkpoint_replay=false``: much
  smaller, but a resumed run refills its replay first, so it is not the run an
  uninterrupted one would have been);
* ``params``: the algorithm's ``params`` alone (the field the algorithm contract
  declares), so that another run can start from them without reading the rest;

and orbax's step metadata (:meth:`Checkpointer.metadata`): env steps, chunk,
marl-lab version, a hash of the training-relevant config, the ``[devices,
seeds]`` layout, whether the replay is kept and a fingerprint of the state's
structure. The fingerprint tells a checkpoint of another version or config
(refused: :class:`CheckpointLayoutError`) from a damaged one (truncated or
garbled files: :class:`CheckpointDamagedError`), and a damaged latest checkpoint
is skipped for the newest intact one (:meth:`Checkpointer.restore_latest`).

It is written synchronously so that a run killed at any moment leaves either the
previous or the new checkpoint, never a half-written one. The config a run was
started with is kept beside them (``config.yaml``); resuming under a different config is refused
with the keys that differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pathlib
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import yaml

from marl.files import RunFileError, atomic_write, atomic_write_text

# Keys that may change between a run and its resumption: they do not affect what
# is learned (logging, how often to save or evaluate) or only extend the run.
RESUMABLE_KEYS = (
    "resume",
    "run_dir",
    "arch.total_timesteps",
    "arch.checkpoint_interval",
    "arch.checkpoint_replay",
    "arch.eval_episodes",
    # How the run's devices are spread over processes; their count in all is checked
    # against the checkpoint's layout instead (every device's envs and replay).
    "arch.num_devices",
    "arch.num_processes",
    "arch.process_id",
    "arch.coordinator",
    "arch.distributed_timeout",
    "logger.",
)


# Where orbax keeps a step's metadata (custom_metadata among it).
STEP_METADATA_FILE = "_CHECKPOINT_METADATA"


class ConfigMismatchError(ValueError):
    """A checkpoint was made under a config that differs in training-relevant keys."""


class CheckpointLayoutError(ValueError):
    """A checkpoint's arrays do not fit this version's training state (e.g. it was
    written by a marl-lab version whose algorithm kept a different state)."""


class CheckpointDamagedError(ValueError):
    """A checkpoint's files are truncated or garbled (and no intact one is left)."""


def state_fingerprint(state: Any) -> str:
    """A short hash of a state's tree structure, shapes and dtypes: equal for two
    states exactly when one can be restored into the other."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    described = [str(treedef)] + [f"{np.shape(x)}:{np.asarray(x).dtype}" for x in leaves]
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:16]


def config_hash(config: dict) -> str:
    """A short hash of the training-relevant part of a config (``RESUMABLE_KEYS`` left out)."""
    flat = _flatten(config)
    kept = {k: v for k, v in flat.items() if not _resumable(k)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _resumable(key: str) -> bool:
    return any(key == r or (r.endswith(".") and key.startswith(r)) for r in RESUMABLE_KEYS)


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
    return [k for k in keys if a.get(k, "<missing>") != b.get(k, "<missing>") and not _resumable(k)]


def without_replay(state: Any, replay_fields: Sequence[str]) -> Any:
    """``state`` with the algorithm state's ``replay_fields`` emptied (``None``)."""
    if not replay_fields:
        return state
    algo_state = state.algo_state.replace(**{name: None for name in replay_fields})
    return state.replace(algo_state=algo_state)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:160]}" if text else type(error).__name__


def _drop_closed_loop_callbacks() -> None:
    """Installs (once) an unraisable-exception hook that drops orbax's closed-loop noise.

    orbax restores in an event loop that it closes as soon as one read fails (a
    truncated file, say); tensorstore's reads still in flight then call back into the
    closed loop, and Python prints each ``RuntimeError('Event loop is closed')`` as an
    unraisable exception: dozens of tracebacks that bury the one-line message about
    the damage, which is raised normally. Only those are dropped; every other
    unraisable exception goes to the previous hook. The failed reads' own tasks are
    likewise logged by asyncio when collected: ``_UnretrievedReadErrors`` drops those.
    """
    previous = sys.unraisablehook
    if getattr(previous, "_marl_lab_closed_loop_filter", False):
        return

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook._marl_lab_closed_loop_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _UnretrievedReadErrors) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(_UnretrievedReadErrors())


class _UnretrievedReadErrors(logging.Filter):
    """Drops asyncio's "Task (or Future) exception was never retrieved" records for
    failed reads.

    When orbax gives up on a damaged checkpoint, the reads it had started for the
    other arrays fail too; their tasks are garbage-collected unretrieved, and asyncio
    logs each with a traceback. The damage is reported once, in one line, by the
    restore itself; every other asyncio record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # "Task exception ..." or "Future exception ...", after the class collected.
        if not str(record.msg).split("\n")[0].endswith("exception was never retrieved"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and "Error reading" in str(error))


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a run in ``run_dir/checkpoints``.

    ``create=False`` reads a run without creating ``checkpoints/`` where there is none.
    """

    def __init__(self, run_dir: str | pathlib.Path, max_to_keep: int = 2, create: bool = True):
        # orbax reports every step of its work at INFO through absl, and logs as
        # warnings and errors what it then raises or what marl-lab reports in one line
        # itself (unreadable metadata, damaged items): keep the console for those lines.
        logging.getLogger("absl").setLevel(logging.CRITICAL)
        _drop_closed_loop_callbacks()
        self.run_dir = pathlib.Path(run_dir).absolute()
        self.directory = self.run_dir / "checkpoints"
        self.manager = None
        if create or self.directory.is_dir():
            options: dict[str, Any] = {}
            if jax.process_count() > 1:
                # One process of a run (process 0) reads and writes its checkpoints,
                # with host arrays gathered from all: orbax must not wait for the others.
                if create:
                    self.directory.mkdir(parents=True, exist_ok=True)
                index = jax.process_index()
                options["create"] = False
                options["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                    primary_host=index, active_processes={index}
                )
            self.manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    **{
                        "max_to_keep": max_to_keep,
                        "enable_async_checkpointing": False,
                        "create": create,
                        **options,
                    }
                ),
            )

    def chunks(self) -> list[int]:
        """The chunk indices of the complete checkpoints, oldest first."""
        return sorted(self.manager.all_steps()) if self.manager is not None else []

    def latest_chunk(self) -> int | None:
        """The chunk index of the newest complete checkpoint, or ``None``."""
        chunks = self.chunks()
        return chunks[-1] if chunks else None

    def save(
        self,
        chunk: int,
        state: Any,
        metadata: dict[str, Any] | None = None,
        replay_fields: Sequence[str] = (),
        best: Any = None,
    ) -> None:
        """Saves ``state`` (without the algorithm state's ``replay_fields``) as chunk
        ``chunk``'s checkpoint, with ``metadata`` and the state's fingerprint, and
        ``best`` (a pytree of host arrays, e.g. each seed's best parameters) as an
        item of its own."""
        host_state = jax.tree_util.tree_map(np.asarray, without_replay(state, replay_fields))
        custom = {
            **(metadata or {}),
            "chunk": int(chunk),
            "replay_kept": not replay_fields,
            "state_fingerprint": state_fingerprint(host_state),
        }
        items = {
            "state": ocp.args.StandardSave(host_state),
            "params": ocp.args.StandardSave(host_state.algo_state.params),
        }
        if best is not None:
            items["best"] = ocp.args.StandardSave(jax.tree_util.tree_map(np.asarray, best))
        self.manager.save(chunk, args=ocp.args.Composite(**items), custom_metadata=custom)
        self.manager.wait_until_finished()

    def metadata(self, chunk: int) -> dict[str, Any] | None:
        """Chunk ``chunk``'s metadata (see the module docstring), None when unreadable."""
        try:
            return dict(self.manager.metadata(chunk).custom_metadata or {}) or None
        except Exception:
            pass
        # Once the manager knows the items' handlers, its metadata() also parses each
        # item's own metadata, which fails for a damaged item: read the step's file.
        try:
            step_file = self.directory / str(chunk) / STEP_METADATA_FILE
            custom = json.loads(step_file.read_text()).get("custom_metadata")
            return dict(custom) if isinstance(custom, dict) and custom else None
        except (OSError, ValueError, AttributeError):
            return None

    def restore(self, chunk: int, like: Any, replay_fields: Sequence[str] = ()) -> Any:
        """Restores chunk ``chunk``'s state into the structure (and shapes) of ``like``.

        A checkpoint saved without the replay gets ``like``'s (fresh) replay back.
        Raises :class:`CheckpointLayoutError` for a checkpoint of another layout and
        :class:`CheckpointDamagedError` for one whose files are damaged, in one line.
        """
        metadata = self.metadata(chunk)
        if metadata is not None and not metadata.get("replay_kept", True):
            replay_fields = tuple(replay_fields)
            if not replay_fields:
                raise CheckpointLayoutError(
                    f"checkpoint {chunk} in {self.run_dir} holds no replay, which this "
                    "algorithm's state needs no separate slot for; resume with the "
                    "version that wrote it"
                )
        elif metadata is not None:
            replay_fields = ()
        partial = without_replay(like, replay_fields)
        target = jax.tree_util.tree_map(
            lambda x: np.zeros(x.shape, x.dtype) if hasattr(x, "shape") else x, partial
        )
        expected = state_fingerprint(target)
        if metadata is not None and metadata.get("state_fingerprint") != expected:
            version = metadata.get("marl_lab_version", "an unknown version")
            raise CheckpointLayoutError(
                f"checkpoint {chunk} in {self.run_dir} was written by marl-lab {version} "
                "for another training state (another algorithm, env or layout, or another "
                "version's state); start a new run or resume with the version and config "
                "that wrote it"
            )
        try:
            restored = self.manager.restore(
                chunk, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
            )
        except Exception as error:  # orbax and tensorstore raise many types for both cases
            if metadata is None and self._others_carry_metadata(chunk):
                # This version writes metadata into every checkpoint: its loss is damage.
                raise CheckpointDamagedError(
                    f"checkpoint {chunk} in {self.run_dir} is damaged (its metadata file is "
                    "missing or garbled, where the run's other checkpoints carry theirs); "
                    f"{_first_line(error)}"
                ) from None
            if metadata is None:
                raise CheckpointLayoutError(
                    f"checkpoint {chunk} in {self.run_dir} carries no marl-lab metadata and "
                    "does not fit this version's training state (written by an earlier "
                    f"marl-lab version, or damaged); {_first_line(error)}"
                ) from None
            raise CheckpointDamagedError(
                f"checkpoint {chunk} in {self.run_dir} is damaged (truncated or garbled "
                f"files; its metadata matches this run); {_first_line(error)}"
            ) from None
        state = restored.state
        if replay_fields:
            fresh = {name: getattr(like.algo_state, name) for name in replay_fields}
            state = state.replace(algo_state=state.algo_state.replace(**fresh))
        return state

    def _others_carry_metadata(self, chunk: int) -> bool:
        return any(self.metadata(other) is not None for other in self.chunks() if other != chunk)

    def restore_best(self, chunk: int, like: Any) -> Any:
        """Chunk ``chunk``'s ``best`` item in the structure of ``like``, or None when the
        checkpoint has none (or it does not fit)."""
        target = jax.tree_util.tree_map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), like)
        try:
            restored = self.manager.restore(
                chunk, args=ocp.args.Composite(best=ocp.args.StandardRestore(target))
            )
        except Exception:
            return None
        return restored.best

    def restore_latest(
        self, like: Any, replay_fields: Sequence[str] = ()
    ) -> tuple[Any, int, list[str]]:
        """The newest intact checkpoint: ``(state, chunk, notes)``.

        Damaged newer checkpoints are moved to ``run_dir/damaged_checkpoints/`` (kept,
        not deleted, and out of the way of the chunks the run will save again) and
        described in ``notes``. Raises :class:`CheckpointDamagedError` when no
        checkpoint is intact, :class:`CheckpointLayoutError` at the first of another
        layout, ``FileNotFoundError`` when there is none.
        """
        chunks = self.chunks()
        if not chunks:
            raise FileNotFoundError(f"no checkpoint in '{self.directory}'")
        notes: list[str] = []
        for chunk in reversed(chunks):
            try:
                state = self.restore(chunk, like, replay_fields)
            except CheckpointDamagedError as error:
                notes.append(str(error))
                continue
            for note_chunk in chunks:
                if note_chunk > chunk:
                    self._set_aside(note_chunk)
            if notes:
                notes.append(f"resuming from checkpoint {chunk}, the newest intact one")
            return state, chunk, notes
        raise CheckpointDamagedError(
            f"every checkpoint in {self.directory} is damaged ({len(chunks)}: "
            f"{', '.join(map(str, chunks))}); the newest says: {notes[0]}"
        )

    def _set_aside(self, chunk: int) -> None:
        aside = self.run_dir / "damaged_checkpoints" / f"{chunk}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.directory / str(chunk)), str(aside))
        self.manager.reload()

    def close(self) -> None:
        if self.manager is not None:
            with contextlib.suppress(Exception):
                self.manager.close()


def load_params(run_dir: str | pathlib.Path) -> Any:
    """The learned parameters in ``run_dir``'s latest checkpoint (device 0, first seed).

    Used to start a run from another run's parameters (e.g. CMAT's fine-tuning);
    only the checkpoint's ``params`` item is read. Raises ``ValueError`` in one
    line when ``run_dir`` holds no checkpoint of this layout.
    """
    checkpoints = pathlib.Path(run_dir).absolute() / "checkpoints"
    logging.getLogger("absl").setLevel(logging.CRITICAL)  # as in Checkpointer
    _drop_closed_loop_callbacks()
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


def export_params(
    run_dir: str | pathlib.Path,
    path: str | pathlib.Path,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Writes the latest checkpoint's parameters (device 0, every seed: leading axis
    ``[num_seeds]``) and its metadata to ``path`` as one msgpack file, which
    :func:`load_exported` reads without orbax, the replay or marl-lab's config.
    ``groups``: only these top-level entries of the parameters (e.g. a multitask
    learner's ``decision`` layers), all when ``None``. Returns the metadata written."""
    from flax import serialization

    checkpointer = Checkpointer(run_dir, create=False)
    try:
        latest = checkpointer.latest_chunk()
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in '{checkpointer.directory}'")
        metadata = checkpointer.metadata(latest) or {"chunk": latest}
        try:
            saved = checkpointer.manager.restore(
                latest, args=ocp.args.Composite(params=ocp.args.StandardRestore())
            )
        except Exception as error:
            raise CheckpointDamagedError(
                f"checkpoint {latest} in {checkpointer.run_dir}: its params cannot be read "
                f"({_first_line(error)})"
            ) from None
    finally:
        checkpointer.close()
    params = jax.tree_util.tree_map(lambda x: np.asarray(x)[0], saved.params)
    if groups is not None:
        missing = [group for group in groups if group not in params]
        if missing:
            raise ValueError(
                f"checkpoint {latest} in {run_dir}: its parameters have no "
                f"{', '.join(missing)} (they hold {', '.join(map(str, params))})"
            )
        params = {group: params[group] for group in groups}
    payload = {"params": params, "metadata": json.dumps(metadata, sort_keys=True)}
    data = serialization.msgpack_serialize(serialization.to_state_dict(payload))

    def write(tmp: pathlib.Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)
    return metadata


def load_exported(path: str | pathlib.Path) -> tuple[Any, dict[str, Any]]:
    """``(params, metadata)`` of a file :func:`export_params` wrote; ``params`` leaves
    have a leading ``[num_seeds]`` axis."""
    from flax import serialization

    payload = serialization.msgpack_restore(pathlib.Path(path).read_bytes())
    return payload["params"], json.loads(payload["metadata"])


#: The config a run was started with, beside its checkpoints. YAML, not JSON:
#: marl-eval's tools read every ``*.json`` under a folder as results.
CONFIG_FILE = "config.yaml"


def write_config(run_dir: str | pathlib.Path, config: dict) -> None:
    """Writes ``config`` (plain values) as the run's ``config.yaml``, atomically."""
    text = yaml.safe_dump(config, sort_keys=True, default_flow_style=False)
    atomic_write_text(pathlib.Path(run_dir) / CONFIG_FILE, text)


def read_config(run_dir: str | pathlib.Path) -> dict | None:
    """The ``config.yaml`` of ``run_dir`` (None when there is none); raises
    :class:`marl.files.RunFileError` in one line when it is damaged."""
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = _first_line(error).replace("\n", " ")
        raise RunFileError(
            f"'{path}' is damaged ({reason}): restore it from a copy, or start a new run_dir"
        ) from None
    if not isinstance(config, dict):
        raise RunFileError(
            f"'{path}' is damaged (it holds {type(config).__name__}, not a run's config): "
            "restore it from a copy, or start a new run_dir"
        )
    return config
