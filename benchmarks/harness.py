"""Shared measuring machinery of the benchmarks: timed steps in fresh processes, peak memory, FLOPs, tables.

Peak memory is measured in a spawned process per implementation (so it is that implementation's alone). Step
time is measured in one spawned process that builds every implementation and then alternates them step by step
(A, B, C, A, B, C, ..., rotating who goes first): the speed of a shared machine drifts by tens of percent over
minutes (clocks, other tenants), and only steps taken seconds apart see the same machine. The table reports each
implementation's median step.
"""

from __future__ import annotations

import argparse
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


def _memory_worker(queue: mp.Queue, factory: StepFactory, kwargs: dict[str, Any], warmup: int, steps: int) -> None:
    device = device_of_this_run()
    step = factory(device=device, **kwargs)
    before_steps = peak_memory_mib(device)
    time_steps(step, warmup, steps, device)
    peak = peak_memory_mib(device)
    queue.put({"peak_mib": peak, "step_mib": peak - before_steps, "gflops": step_flops(step) / 1e9})


def _timing_worker(
    queue: mp.Queue, factories: dict[str, StepFactory], kwargs: dict[str, Any], warmup: int, steps: int
) -> None:
    device = device_of_this_run()
    named_steps = {name: factory(device=device, **kwargs) for name, factory in factories.items()}
    for step in named_steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    durations: dict[str, list[float]] = {name: [] for name in named_steps}
    order = list(named_steps)
    for index in range(steps):
        for name in order[index % len(order) :] + order[: index % len(order)]:  # rotate who goes first
            start = time.perf_counter()
            named_steps[name]()
            synchronize(device)
            durations[name].append(time.perf_counter() - start)
    queue.put({name: statistics.median(values) for name, values in durations.items()})


def run_in_fresh_process(worker: Callable[..., None], *args: Any) -> Any:
    """What ``worker(queue, *args)`` puts on its queue, run in a new (spawned) process."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=worker, args=(queue, *args))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"benchmark worker {worker.__name__} failed with exit code {process.exitcode}"
                ) from None
    process.join()
    return result


def compare(
    factories: dict[str, StepFactory], rounds: int, warmup: int, steps: int, **kwargs: Any
) -> dict[str, dict[str, float]]:
    """Per implementation: the median step time, measured in one process that alternates the implementations step
    by step (``rounds x steps`` timed steps each), and the peak memory and FLOPs of a step, measured in a process
    of its own."""
    memory = {
        name: run_in_fresh_process(_memory_worker, factory, kwargs, warmup, 2) for name, factory in factories.items()
    }
    seconds = run_in_fresh_process(_timing_worker, factories, kwargs, warmup, rounds * steps)
    return {name: {"seconds": seconds[name], **memory[name]} for name in factories}


def add_comparison_arguments(parser: argparse.ArgumentParser, warmup: int, steps: int) -> None:
    """The options of every :func:`compare` script: timed rounds, warm-up and timed steps, and a JSON output."""
    parser.add_argument("--rounds", type=int, default=3, help="timed passes: rounds x steps alternating steps each")
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--json", help="also write the results to this file")


def timm_vit(
    width: int, depth: int, heads: int, image_size: int, patch_size: int, channels: int = 3
) -> torch.nn.Module:
    """A timm ViT without class token, mean-pooled: the encoder the timm-based peers are given."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=image_size,
        patch_size=patch_size,
        in_chans=channels,
        embed_dim=width,
        depth=depth,
        num_heads=heads,
        class_token=False,
        global_pool="avg",
        num_classes=0,
    )


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
