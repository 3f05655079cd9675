"""Data-parallel training of one run under `torchrun` (DDP).

    torchrun --nproc_per_node N -m lengthgen.cli train --task ... [--set train.batch_size=B ...]

starts N processes with WORLD_SIZE, RANK and LOCAL_RANK set; `train_run` then trains one run
with the same global batch B as a single process. Every rank builds the step's full batch (a pure
function of seed and step, so no data is exchanged) and keeps rows rank, rank+N, ...; each rank's
mean loss is scaled by N x (its scored tokens / the batch's scored tokens), so the gradient DDP
averages over ranks is the gradient of the single-process loss over the whole batch. Rank 0 alone
writes the results store, checkpoints and the model, runs the in-distribution checks and the final
evaluation, and broadcasts the early-stopping decision. Backend: NCCL on CUDA, gloo on CPU.
Without WORLD_SIZE (or with WORLD_SIZE=1) everything here is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data import IGNORE, Batch
from ..errors import InputError


class DataParallel:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        self.device = None

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device, batch_size: int) -> torch.device:
        """Join the process group (creating it unless the caller did); returns this rank's device."""
        if not self.active:
            return device
        if batch_size < self.world:
            raise InputError(f"train.batch_size={batch_size} is smaller than the {self.world} data-parallel "
                             "processes: every process needs at least one example per step")
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise InputError(f"data-parallel process {self.local_rank} (LOCAL_RANK) needs its own GPU, but "
                                 f"{torch.cuda.device_count()} are visible: start at most that many processes per "
                                 "node, or train on the CPU with device: cpu")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True
        self.device = device
        return device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.active:
            return model
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def shard(self, batch: Batch) -> tuple[Batch, torch.Tensor | float]:
        """This rank's rows of the step's batch, and the factor that turns their mean loss into
        this rank's share (times N) of the mean loss over the whole batch."""
        if not self.active:
            return batch, 1.0
        rows = slice(self.rank, None, self.world)
        scored = batch.targets != IGNORE
        mine = Batch(batch.inputs[rows], batch.targets[rows], batch.position_ids[rows], batch.examples[rows])
        return mine, self.world * scored[rows].sum() / scored.sum()

    def average(self, value: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a scalar (each rank's scaled loss: their mean is the global loss)."""
        if not self.active:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, on every rank."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def wait_for_main(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()
            self.owns_group = False
