"""Data-parallel training across processes, as launched by ``torchrun``.

``torchrun --nproc_per_node N -m aevb train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in their environment; aevb joins
the process group (gloo on CPU, NCCL on GPU) and splits every minibatch between them.
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints and logs."""
        return self.rank == 0


def info() -> ProcessInfo:
    """Rank and world size of this process (from the process group or the environment)."""
    if dist.is_available() and dist.is_initialized():
        return ProcessInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return ProcessInfo(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def setup(device: torch.device) -> ProcessInfo:
    """Join the process group when launched by torchrun with more than one process."""
    me = info()
    if me.world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(me.local_rank)
        dist.init_process_group(backend=backend)
    return me


def barrier() -> None:
    """Wait for every process (no-op for one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def teardown(wait: bool = True) -> None:
    """Leave the process group; with ``wait``, first wait for every process to get here.

    Exiting with the group still open lets one process close its sockets while a peer's
    gloo threads still read them, which aborts that peer (SIGABRT) at interpreter exit.
    After an error pass ``wait=False``: the peers may be blocked in another collective.
    """
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def all_true(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true in every process, so all take the same branch."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def shard_bounds(batch: int, me: ProcessInfo) -> tuple[int, int]:
    """Rows ``start, stop`` of a global minibatch of ``batch`` rows that ``me`` computes."""
    base, extra = divmod(batch, me.world)
    start = me.rank * base + min(me.rank, extra)
    return start, start + base + (1 if me.rank < extra else 0)
