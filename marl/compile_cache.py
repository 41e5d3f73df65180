"""JAX's persistent compilation cache for the command-line programs.

Compiling a training chunk takes most of a short run's start-up (40 s and more
on a laptop CPU for the default chunk); with the cache, a second run of the same
program loads the compiled executables instead. ``marl-train`` and
``marl-evaluate`` call :func:`enable_compile_cache` before anything compiles.

Where: ``$MARL_LAB_COMPILE_CACHE`` when set to a directory, else JAX's own
setting when the user made one (``JAX_COMPILATION_CACHE_DIR``), else
``$XDG_CACHE_HOME/marl-lab/xla`` (``~/.cache/marl-lab/xla``). Off:
``MARL_LAB_COMPILE_CACHE=off``. Library users decide for themselves (this module
is not called on import).
"""

from __future__ import annotations

import os
import pathlib
import sys

import jax

CACHE_VARIABLE = "MARL_LAB_COMPILE_CACHE"
_OFF_WORDS = ("off", "false", "no", "0", "none")
# Compiles faster than this are not worth a disk read on the next start.
MIN_COMPILE_SECONDS = 1.0


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/marl-lab/xla``, or ``~/.cache/marl-lab/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "marl-lab" / "xla"


def enable_compile_cache(program: str = "marl") -> pathlib.Path | None:
    """Turns the persistent compilation cache on for this process, as
    ``$MARL_LAB_COMPILE_CACHE`` says; returns its directory, or None when it is off
    (asked for, or the directory cannot be created: then a one-line warning)."""
    setting = os.environ.get(CACHE_VARIABLE, "").strip()
    if setting.lower() in _OFF_WORDS:
        return None
    if setting:
        directory = pathlib.Path(setting).expanduser()
    elif jax.config.jax_compilation_cache_dir:
        directory = pathlib.Path(jax.config.jax_compilation_cache_dir)
    else:
        directory = default_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(f"'{directory}' is not writable")
    except OSError as error:
        print(
            f"{program}: warning: compilation cache off ({error}); set {CACHE_VARIABLE} "
            f"to a writable directory, or to off",
            file=sys.stderr,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return directory
