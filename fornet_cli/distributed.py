"""torch.distributed helpers. fornet never launches processes itself: start it with ``torchrun``.

When ``WORLD_SIZE`` > 1 (set by torchrun), :func:`setup` initialises the default process group (NCCL on
CUDA, gloo on CPU) from the environment (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, or a ConfigError when it does not exist or is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"Unknown device {str(device)!r}; use auto, cpu or cuda (cuda:N for one GPU).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"Device {str(device)!r} was asked for, but PyTorch sees no CUDA GPU here (torch {torch.__version__}). "
            "Use --device cpu, or auto to take a GPU only when there is one."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"Device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Pick the device and, under torchrun, join the process group."""
    if device != "auto":
        check_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if want_cuda:
        dev = torch.device("cuda", local if world > 1 else (torch.cuda.current_device() if device == "auto" else 0))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device if device not in ("auto", "cuda") else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank=rank, local_rank=local, world_size=world, device=dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (in place); a no-op when not distributed."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last training step each rank's
    running statistics differ by that step's update; this makes them equal again.
    """
    if dist.is_available() and dist.is_initialized():
        for buf in module.buffers():
            dist.broadcast(buf, src=src)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: object, src: int = 0) -> object:
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def all_gather_object(obj: object) -> list[object]:
    """Every process's ``obj`` in rank order; ``[obj]`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        out: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]
