"""Shared measuring machinery of the benchmarks: timed steps in fresh processes, peak memory, FLOPs, tables.

Every measurement runs in its own spawned process (so peak memory is that implementation's alone and one
implementation's allocator state cannot slow the next), and implementations are measured in interleaved
rounds (A, B, A, B, ...) so drift of the machine (thermal, other load) hits all of them alike; the table
reports the median over rounds.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

import torch

#: A factory returning one training step (a no-argument callable); it runs in the worker process.
StepFactory = Callable[..., Callable[[], Any]]


def device_of_this_run() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], Any], warmup: int, steps: int, device: torch.device) -> float:
    """Median seconds per call of ``step`` over ``steps`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on the CPU, in MiB.

    On the CPU the peak includes the imported libraries and the model; the growth of the peak during the timed
    steps (``step_mib`` of a measurement) is what the training step itself adds on top.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def matmul_flops_per_second(device: torch.device, size: int = 1024, repeats: int = 20) -> float:
    """Measured dense fp32 matmul rate (FLOP/s) of this machine: the denominator of model FLOP utilisation."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    seconds = time_steps(lambda: a @ b, warmup=3, steps=repeats, device=device)
    return 2 * size**3 / seconds


def step_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one call of ``step`` (forward, backward and everything else torch counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def _worker(queue: mp.Queue, factory: StepFactory, kwargs: dict[str, Any], warmup: int, steps: int) -> None:
    torch.set_num_threads(kwargs.pop("threads", torch.get_num_threads()))
    device = device_of_this_run()
    step = factory(device=device, **kwargs)
    before_steps = peak_memory_mib(device)
    seconds = time_steps(step, warmup, steps, device)
    peak = peak_memory_mib(device)
    queue.put({"seconds": seconds, "peak_mib": peak, "step_mib": peak - before_steps})


def measure_in_fresh_process(factory: StepFactory, warmup: int, steps: int, **kwargs: Any) -> dict[str, float]:
    """Seconds per step and peak memory of ``factory(device=..., **kwargs)`` measured in a new process."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(queue, factory, kwargs, warmup, steps))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"benchmark worker for {factory.__name__} failed with exit code {process.exitcode}"
                ) from None
    process.join()
    return result


def compare(
    factories: dict[str, StepFactory], rounds: int, warmup: int, steps: int, **kwargs: Any
) -> dict[str, dict[str, float]]:
    """Interleaved rounds over the implementations; per implementation the median step time and peak memory."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in factories}
    for _ in range(rounds):
        for name, factory in factories.items():
            results[name].append(measure_in_fresh_process(factory, warmup, steps, **kwargs))
    return {
        name: {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mib": max(r["peak_mib"] for r in runs),
            "step_mib": max(r["step_mib"] for r in runs),
        }
        for name, runs in results.items()
    }


def machine_line() -> str:
    device = device_of_this_run()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return f"{name}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """A Markdown table, preceded by the command that produced it and the machine it ran on."""
    print(f"\n### {title}\n")
    print(f"`{shlex.join(['python', *sys.argv])}` on {machine_line()}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(_format(cell) for cell in row) + " |")
    sys.stdout.flush()


def _format(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.3g}" if abs(cell) < 1000 else f"{cell:.0f}"
    return str(cell)


def dump_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        with open(path, "w") as handle:
            json.dump(payload, handle, indent=2)
