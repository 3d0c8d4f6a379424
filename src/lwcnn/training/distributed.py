"""Distributed data-parallel training on PyTorch's own engine: ``torchrun`` sets the environment,
this module joins the process group (gloo on CPU, nccl on GPU) and gives the training loop what
it needs to stay correct: which rank it is, a check that every rank has the same config and data,
and sums of metrics over ranks. Without ``torchrun`` everything here is a no-op for one process.

Semantics: ``train.batch_size`` is the *global* batch, split evenly over the ranks; gradients are
averaged by DistributedDataParallel, so N processes take the same steps as one process that
accumulates N micro-batches of the same size (``train.accumulate=N``), batch norm included (each
micro-batch or rank normalises over its own images) - unless ``train.sync_bn`` makes batch norm
use the whole global batch (GPU only, PyTorch's SyncBatchNorm).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lwcnn.data.classification import DataError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"  # "cpu" or "cuda:N"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0


def init_distributed() -> DistContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): nccl with one GPU
    per local rank where CUDA is available, else gloo on the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        device, backend = "cpu", "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world_size, local_rank, device)


def close_distributed(context: DistContext, finished: bool = True) -> None:
    """Leave the process group. A run that finished waits at a barrier first, so that all ranks
    tear down gloo together: after the last epoch rank 0 still evaluates and writes, and a rank
    that leaves while its peer is connected can abort in gloo's teardown (seen once in CI as a
    SIGABRT of rank 1). A rank that failed leaves at once and must not wait for the others."""
    if context.distributed and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def fingerprint(value: Any) -> str:
    """A short digest of a JSON-able value (config, split, file list)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_agreement(context: DistContext, what: Mapping[str, Any]) -> None:
    """Raise ``DataError`` on every rank when the ranks disagree on any of ``what`` (name -> value):
    a different config or a different view of the data would silently train on a mixture."""
    if not context.distributed:
        return
    mine = {name: fingerprint(value) for name, value in what.items()}
    everyone: list[dict[str, str] | None] = [None] * context.world_size
    dist.all_gather_object(everyone, mine)
    for rank, theirs in enumerate(everyone):
        assert theirs is not None
        differing = sorted(name for name in mine if theirs.get(name) != everyone[0].get(name))  # type: ignore[union-attr]
        if differing:
            raise DataError(
                f"rank {rank} disagrees with rank 0 on the {' and the '.join(differing)}: every process of a "
                "distributed run needs the same config and the same data (same files, same split)"
            )


def sum_over_ranks(context: DistContext, *values: float) -> list[float]:
    """Each value summed over all ranks (the values of this rank when not distributed)."""
    if not context.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_flag(context: DistContext, flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([int(flag)])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
