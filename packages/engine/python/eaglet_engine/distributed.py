"""Ranks, devices and data parallelism, applied from outside the model.

One process per GPU under torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), or a single
process. ``wrap`` applies DDP or FSDP2 to the training module; the draft model itself never knows
how many ranks exist. Only torch.distributed's own collectives are used.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if preference == "cuda":
        raise ConfigError("device is 'cuda' but torch sees no CUDA device", hint="use device: 'cpu' or 'auto', or check `eaglet doctor`")
    return torch.device("cpu")


def init(preference: str, timeout_seconds: float) -> DistEnv:
    """Joins the process group torchrun set up (one process: nothing to join). ``timeout_seconds``
    bounds every collective: a rank whose peer died (a lost node) fails instead of waiting forever."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_seconds), **kwargs)
    return DistEnv(rank, world, local_rank, device)


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, env: DistEnv, mode: str) -> nn.Module:
    """DDP or FSDP2 around the training module; unchanged on one process."""
    if not env.distributed:
        return module
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        # broadcast_buffers=False: the (frozen, shared) embedding table is a buffer; every rank
        # already holds the same one, broadcasting it each step would move gigabytes.
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        with warnings.catch_warnings():
            # Newer torch renames the flag; the old one keeps the semantics we need on 2.11..2.15.
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
            return DDP(module, device_ids=device_ids, broadcast_buffers=False)
    if mode == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # An explicit mesh on the run's device: fully_shard's default picks CUDA whenever the
        # machine has a GPU, which breaks a CPU (gloo) run there.
        mesh = init_device_mesh(env.device.type, (env.world_size,))
        draft = module.draft  # type: ignore[attr-defined]
        fully_shard(draft.midlayer, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    raise ConfigError(f"unknown parallel mode {mode!r} (ddp or fsdp)")


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "module") and isinstance(getattr(module, "module"), nn.Module) else module


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True if any rank's flag is set (all ranks then agree, e.g. on stopping after this step)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


# What a collective raises when another rank is gone (gloo: the peer's socket closed; NCCL: the
# watchdog's timeout or a remote error).
_PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Socket Timeout", "timed out", "NCCL communicator was aborted", "remote process exited")


def peer_lost(error: BaseException) -> bool:
    """True when ``error`` comes from a collective whose peer rank died or stopped answering."""
    return dist.is_initialized() and dist.get_world_size() > 1 and any(s in str(error) for s in _PEER_LOST)
