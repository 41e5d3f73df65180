"""A run directory: what may be written into, which one a run continues, and one
process at a time.

``marl-train`` writes a run's files (:data:`RUN_ENTRIES`) into its ``run_dir``.
Before anything is compiled the directory is checked (:func:`check_writable_run_dir`):
it can be created and written, and it is empty or holds only a run's files, so a
folder of someone else's files is never written over. While a run trains, it holds
an exclusive lock on ``run_dir/.lock`` (:class:`RunLock`): a second process on the
same directory stops with one line instead of corrupting the first one's files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import re
import tempfile
from types import TracebackType

LOCK_FILE = ".lock"
#: What marl-lab writes in a run directory; anything else makes it someone else's.
RUN_ENTRIES = frozenset(
    {
        LOCK_FILE,
        "config.yaml",
        "checkpoints",
        "damaged_checkpoints",
        "metrics.jsonl",
        "results.json",
        "summary.txt",
        "learning_curve.png",
        "fronts.png",
        "tensorboard",
        "wandb",
    }
)
# A chunk's finished checkpoint: orbax names it by the step; unfinished ones carry a
# temporary suffix.
_FINISHED_CHECKPOINT = re.compile(r"^\d+$")


class RunDirError(ValueError):
    """The run directory cannot be used (one line naming it and why)."""


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds at least one finished checkpoint."""
    checkpoints = pathlib.Path(run_dir) / "checkpoints"
    if not checkpoints.is_dir():
        return False
    return any(_FINISHED_CHECKPOINT.match(entry.name) for entry in checkpoints.iterdir())


def is_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a run: its config or a finished checkpoint."""
    path = pathlib.Path(run_dir)
    return (path / "config.yaml").is_file() or has_checkpoint(path)


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno in (errno.EROFS,):
        return "read-only file system"
    return error.strerror or type(error).__name__


def probe_run_dir(run_dir: str) -> None:
    """Whether ``run_dir`` could be created and written, without creating it: a
    directory is made and removed in its nearest existing ancestor. Raises
    :class:`RunDirError`."""
    if not run_dir or not run_dir.strip():
        raise RunDirError("run_dir: must name a directory, got an empty string")
    path = pathlib.Path(run_dir).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run_dir: '{path}' is a file, not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunDirError(f"run_dir: cannot create '{path}': '{ancestor}' is a file")
    try:
        probe = pathlib.Path(tempfile.mkdtemp(prefix=".marl-lab-probe-", dir=ancestor))
        probe.rmdir()
    except OSError as error:
        raise RunDirError(f"run_dir: cannot create '{path}' ({_reason(error)})") from None


def check_writable_run_dir(run_dir: str) -> pathlib.Path:
    """Creates ``run_dir`` if needed and proves it can be written; raises
    :class:`RunDirError` when it is empty, a file, cannot be created or written,
    or holds files that are not a run's."""
    if not run_dir or not run_dir.strip():
        raise RunDirError("run_dir: must name a directory, got an empty string")
    path = pathlib.Path(run_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run_dir: '{path}' is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirError(f"run_dir: cannot create '{path}' ({_reason(error)})") from None
    foreign = sorted(entry.name for entry in path.iterdir() if entry.name not in RUN_ENTRIES)
    foreign = [name for name in foreign if not name.startswith(".")]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise RunDirError(
            f"run_dir: '{path}' holds files that are not a marl-lab run ({shown}); "
            "choose a new or empty directory"
        )
    probe = path / f".write-test-{os.getpid()}"
    try:
        with probe.open("wb") as f:
            f.write(b"marl-lab")
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        raise RunDirError(f"run_dir: cannot write in '{path}' ({_reason(error)})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return path


class RunLock:
    """An exclusive lock on ``run_dir/.lock`` for as long as the run trains.

    ``flock`` locks end with the process, so a killed run never leaves its
    directory locked.
    """

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.path = pathlib.Path(run_dir) / LOCK_FILE
        self._file = None

    def acquire(self) -> RunLock:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirError(
                f"run_dir: '{self.path.parent}' is in use by another process (pid {holder}); "
                "wait for it to end or choose another run_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
