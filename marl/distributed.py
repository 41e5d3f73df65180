"""Many processes, one run, through JAX's own distributed runtime.

A run of ``arch.num_processes`` processes is one program: ``jax.distributed``
connects them (process 0 hosts the coordinator at ``arch.coordinator``), the mesh
spans every process's devices, each process steps the environments of its own
devices, and the learners' ``pmean`` over the mesh axis averages gradients across all
of them, so parameters stay identical everywhere. On CPUs the collectives go through
gloo. Process 0 alone evaluates, logs and writes checkpoints: a checkpoint holds the
whole run's state, gathered from every process (:func:`gather`), and a resumed run
hands each process its part of it from process 0 (:func:`broadcast`), so only
process 0 needs to see the run directory.

``arch.num_processes=0`` lets JAX detect the processes from the cluster (Slurm, Open
MPI, a TPU pod slice); ``1`` (the default) is one process and touches none of this.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import jax
import numpy as np

#: What a run asked for when it initialised the runtime (one layout per Python process).
_INITIALISED: dict[str, Any] = {}


class DistributedError(RuntimeError):
    """The processes of a run could not start or lost one another (one line)."""


def initialize(
    num_processes: int,
    process_id: int,
    coordinator: str,
    distributed_timeout: int,
    program: str = "marl-lab",
) -> None:
    """Starts JAX's distributed runtime for this process of a run, before anything
    touches a device; nothing for a one-process run.

    ``num_processes`` 0 detects the layout from the cluster's environment. The same
    layout asked again is a no-op (a sweep's runs in one Python process share it);
    another one is refused, since JAX starts its runtime once per process. When the
    processes have not all joined within ``distributed_timeout`` seconds, this process
    prints one line (as ``program``) and exits with code 4: JAX's runtime would abort
    it anyway, with a stack trace.
    """
    if num_processes == 1:
        return
    wanted = {
        "num_processes": num_processes,
        "process_id": process_id,
        "coordinator": coordinator,
    }
    if _INITIALISED:
        if _INITIALISED != wanted:
            raise DistributedError(
                f"this Python process already joined a run of {_INITIALISED}; JAX starts "
                "its distributed runtime once per process, so every run it trains must ask "
                "for the same arch.num_processes, arch.process_id and arch.coordinator"
            )
        return
    if jax.distributed.is_initialized():  # the caller started it: take it as it is
        _INITIALISED.update(wanted)
        return
    if _backend_started():
        raise DistributedError(
            "arch.num_processes: JAX's backend started before the processes could join "
            "(JAX allows it in that order only); set the arch.num_processes, process_id, "
            "coordinator and distributed_timeout on marl-train's command line, or in Python "
            "call marl.distributed.initialize(...) before anything else of marl"
        )
    # gloo carries CPU collectives across processes; it must be chosen before the
    # backend starts, and it changes nothing for GPUs and TPUs.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {
        # JAX aborts the process (from C++) when the others do not join in time; the
        # watchdog below says so in one line first.
        "initialization_timeout": distributed_timeout + 60,
        # A lost process fails the next collective, which the run reports in one line;
        # failing that (a process busy elsewhere), JAX's runtime ends every process once
        # the lost one has been silent this long.
        "heartbeat_timeout_seconds": distributed_timeout,
        "shutdown_timeout_seconds": distributed_timeout,
    }
    if num_processes > 1:
        kwargs.update(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    where = f"the coordinator at {coordinator}" if coordinator else "the cluster's processes"
    joined = threading.Event()

    def watchdog() -> None:
        if not joined.wait(distributed_timeout):
            print(
                f"{program}: error: process {process_id} could not join {where} within "
                f"{distributed_timeout} s (arch.distributed_timeout): check that every "
                "process of the run started, with the same arch.num_processes and "
                "arch.coordinator, and that process 0's host and port are reachable",
                file=sys.stderr,
                flush=True,
            )
            sys.stdout.flush()
            os._exit(4)

    threading.Thread(target=watchdog, name="marl-distributed-join", daemon=True).start()
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as error:  # jaxlib raises its own status errors
        text = str(error).strip()
        first = text.splitlines()[0][:200] if text else type(error).__name__
        raise DistributedError(f"could not join {where}: {first}") from None
    finally:
        joined.set()
    _INITIALISED.update(wanted)


#: The command line's keys that lay out the processes, and their types.
PROCESS_KEYS = {
    "num_processes": int,
    "process_id": int,
    "coordinator": str,
    "distributed_timeout": int,
}
_DEFAULTS = {"num_processes": 1, "process_id": 0, "coordinator": "", "distributed_timeout": 120}


def layout_from_command_line(argv: list[str]) -> dict[str, Any]:
    """The ``arch.num_processes``, ``arch.process_id``, ``arch.coordinator`` and
    ``arch.distributed_timeout`` a command line sets (``+``/``++`` allowed), with
    their defaults; a value that is not of the key's type or a list of several (a
    sweep over the layout) raises :class:`DistributedError` in one line."""
    layout = dict(_DEFAULTS)
    for word in argv:
        key, equals, value = word.lstrip("+").partition("=")
        name = key.removeprefix("arch.")
        if not equals or not key.startswith("arch.") or name not in PROCESS_KEYS:
            continue
        if "," in value:
            raise DistributedError(
                f"{key}: one value per run (JAX joins a process to one run), got {value!r}"
            )
        try:
            layout[name] = PROCESS_KEYS[name](value.strip().strip("'\""))
        except ValueError:
            raise DistributedError(f"{key}: must be an integer, got {value!r}") from None
    return layout


def _backend_started() -> bool:
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "_backends", None))


def lost_process(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because a process of the run went
    away (gloo's broken connections, the runtime's unavailable tasks)."""
    text = str(error).lower()
    return isinstance(error, jax.errors.JaxRuntimeError) or any(
        sign in text for sign in ("gloo", "connection reset", "connection closed", "unavailable")
    )


def process_index() -> int:
    """This process's index in the run (0 for a one-process run)."""
    return jax.process_index()


def process_count() -> int:
    """The run's processes (1 for a one-process run)."""
    return jax.process_count()


def is_main_process() -> bool:
    """Whether this process evaluates, logs and writes checkpoints."""
    return jax.process_index() == 0


def mesh_devices(devices_per_process: int) -> list[jax.Device]:
    """The run's devices, in mesh order: the first ``devices_per_process`` local
    devices of process 0, then of process 1, and so on."""
    by_process: dict[int, list[jax.Device]] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    devices = []
    for process in sorted(by_process):
        local = sorted(by_process[process], key=lambda d: d.id)
        if len(local) < devices_per_process:
            raise DistributedError(
                f"process {process} has {len(local)} devices; the run asks "
                f"{devices_per_process} of each (arch.num_devices)"
            )
        devices += local[:devices_per_process]
    return devices


def first_device(tree: Any) -> Any:
    """Each leaf's slice on this process's first mesh device, kept on that device
    (what ``pmean`` keeps identical is the same on every device of every process)."""

    def first(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return np.asarray(x)[0]
        shard = min(x.addressable_shards, key=lambda s: s.index[0].start or 0)
        return shard.data[0]

    return jax.tree_util.tree_map(first, tree)


def gather(tree: Any) -> Any:
    """The whole of every leaf on the host, every process's devices included (a
    collective: every process calls it)."""
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def broadcast(tree: Any) -> Any:
    """Process 0's ``tree`` on every process (a collective; every process passes a
    tree of the same structure and shapes)."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.broadcast_one_to_all(tree)


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is set on any process (a collective), e.g. a stop signal that
    reached one of them."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
    return bool(np.max(flags))


__all__ = [
    "DistributedError",
    "any_process",
    "broadcast",
    "first_device",
    "gather",
    "initialize",
    "is_main_process",
    "lost_process",
    "layout_from_command_line",
    "mesh_devices",
    "process_count",
    "process_index",
]
