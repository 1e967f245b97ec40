"""Multi-process tests: real process groups (gloo) on CPU."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_worker(rank: int, world: int, port: int, folder: str, job: Callable[[int], Any]) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(job(rank), Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_on_ranks(job: Callable[[int], Any], folder: Path, world: int = 2) -> list[Any]:
    """Run the module-level function ``job(rank)`` in ``world`` gloo processes; return each rank's result."""
    mp.spawn(_gloo_worker, args=(world, _free_port(), str(folder), job), nprocs=world, join=True)
    return [torch.load(folder / f"rank{rank}.pt", weights_only=False) for rank in range(world)]
