"""The console scripts' first step: a run of several processes joins JAX's
distributed runtime before anything of marl-lab starts JAX's backend (the
environments' dependencies create arrays on import), then the program runs."""

from __future__ import annotations

import sys
from typing import Any


def train() -> None:
    """Entry point of ``marl-train``: exit 2 for a process layout that cannot be
    read, 4 when the processes cannot join within ``arch.distributed_timeout``."""
    from marl.distributed import DistributedError, initialize, layout_from_command_line

    try:
        layout = layout_from_command_line(sys.argv[1:])
    except DistributedError as error:
        print(f"marl-train: error: {error}", file=sys.stderr)
        sys.exit(2)
    if layout["num_processes"] != 1:
        try:
            initialize(**layout, program="marl-train")
        except DistributedError as error:
            print(f"marl-train: error: {error}", file=sys.stderr)
            sys.exit(4)
    from marl.experiments.train import main

    main()


def task(cfg: Any) -> Any:
    """Hydra's task function for every launcher: a job started in a fresh process (a
    Slurm task through submitit, say) joins its run's processes as ``cfg.arch`` says
    (``arch.num_processes=0``: as the cluster says) before marl-lab is imported, then
    trains (:func:`marl.experiments.train.run`)."""
    from marl.distributed import DistributedError, initialize

    arch = cfg.arch
    if arch.num_processes != 1:
        try:
            initialize(
                int(arch.num_processes),
                int(arch.process_id),
                str(arch.coordinator),
                int(arch.distributed_timeout),
                program="marl-train",
            )
        except DistributedError as error:
            print(f"marl-train: error: {error}", file=sys.stderr)
            sys.exit(4)
    from marl.experiments.train import run

    return run(cfg)
