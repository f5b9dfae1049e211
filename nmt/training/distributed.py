"""Data-parallel training with torch.distributed, started by `torchrun`.

A run is distributed when `torchrun` set `WORLD_SIZE` > 1: NCCL on GPUs, gloo on CPUs. Every
rank trains on its share of each global batch, DDP averages the gradients, and only rank 0
writes logs, checkpoints and TensorBoard. Without `torchrun` everything here is a no-op, so the
trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from nmt.utils.device import resolve_device


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes.

    Attributes:
        rank: global rank (0 writes everything).
        world_size: number of processes (1: not distributed).
        local_rank: rank on this node (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """This process writes logs, checkpoints and TensorBoard, validates and tests."""
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (any picklable object)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of `value` over ranks."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value)
        return value

    def barrier(self) -> None:
        """Waits until every rank gets here."""
        if self.enabled:
            dist.barrier()


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Joins the process group when started by `torchrun`; returns this rank and its device.

    Under `torchrun` on GPUs each rank takes `cuda:LOCAL_RANK`; on CPUs all ranks use the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # Other ranks wait while rank 0 validates: allow an hour rather than the default minutes.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=1))
    return Distributed(rank, world_size, local_rank), device


def shutdown_distributed() -> None:
    """Leaves the process group (call once, at the end of a run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: list[int], rank: int, world_size: int) -> tuple[list[int], float]:
    """This rank's share of one global batch, and the weight of its loss.

    The batch is sorted by length, so striding gives every rank sentences of all lengths and
    about the same tokens. A rank left without a sentence (a batch smaller than the world)
    recomputes the first one with weight 0: every rank must run forward and backward for DDP's
    gradient all-reduce, and the zero weight keeps the sum equal to one process's.
    """
    share = indices[rank::world_size]
    return (share, 1.0) if share else (indices[:1], 0.0)
