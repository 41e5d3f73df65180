"""Writing files so that an interruption never leaves one half written."""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid
from collections.abc import Callable


class RunFileError(ValueError):
    """A file of a run directory is damaged or cannot be read (one line)."""


def _temp_path(path: pathlib.Path) -> pathlib.Path:
    """A fresh hidden file name next to ``path``.

    Same directory, so that ``os.replace`` is a rename within one file system, which
    POSIX makes atomic. Not ``mkstemp``: its files are private (0600) whatever the
    umask, which hides results from the rest of a group on shared clusters.
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | os.PathLike[str], write: Callable[[pathlib.Path], None]) -> None:
    """Replaces ``path`` by the file ``write(temporary_path)`` creates.

    The new file is synced to disk before the rename (without it, a crash soon
    after can leave an empty file), so ``path`` holds either its old or its new
    content, whatever happens.
    """
    path = pathlib.Path(path)
    tmp = _temp_path(path)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replaces ``path`` by a UTF-8 file holding ``text`` (see :func:`atomic_write`)."""

    def write(tmp: pathlib.Path) -> None:
        with tmp.open("x", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)
