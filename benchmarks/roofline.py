"""How far is an I-JEPA training step from the kernels it cannot avoid? The step's time as a multiple of the time of
its own matrix multiplications, convolutions and attention calls run back to back.

    OMP_NUM_THREADS=2 python benchmarks/roofline.py --sizes tiny small --image-size 64 --patch-size 8 --batch-size 64

One step is the step of ``ijepa_vs_peers.py`` (student on the context, 4-block predictor pass, EMA teacher,
smooth-L1, backward, AdamW, EMA update). It is traced once under a dispatch mode that records every call to the
compute kernels (``mm``, ``addmm``, ``bmm``, ``baddbmm``, convolutions and the scaled-dot-product attention kernels,
forward and backward) with the shapes, strides and dtypes of their inputs. The replay calls the same kernels on
random tensors of those layouts, back to back, with nothing between them: no gathers, copies, norms, activations,
optimiser or EMA, no Python or autograd bookkeeping. ``step / kernels`` is then the overhead factor of everything
else; 1.0 would be a step made only of its kernels. Step and replay are timed alternately, one after the other,
so that both see the same machine. ``--compile`` adds the same step with ``torch_compile=True`` (the transformer
blocks compiled by inductor), timed in the same alternation against the eager step's kernels.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from harness import device_of_this_run, print_table, synchronize
from ijepa_vs_peers import add_step_arguments, ours, step_settings
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

aten = torch.ops.aten
#: The kernels a step cannot do without, by family (the overloads' packets; every overload is recorded).
KERNELS = {
    "matmul": (aten.mm, aten.addmm, aten.bmm, aten.baddbmm),
    "convolution": (aten.convolution, aten.convolution_backward),
    "attention": tuple(
        getattr(aten, name)
        for name in (
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_flash_attention_backward",
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_flash_attention_for_cpu_backward",
            "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_efficient_attention_backward",
            "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_cudnn_attention_backward",
        )
        if hasattr(aten, name)
    ),
}
FAMILY = {packet: family for family, packets in KERNELS.items() for packet in packets}


@dataclass(frozen=True)
class TensorLayout:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype


@dataclass
class KernelCall:
    op: torch._ops.OpOverload
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def family(self) -> str:
        return FAMILY[self.op.overloadpacket]


class KernelRecorder(TorchDispatchMode):
    """Records every call to a :data:`KERNELS` operator, its tensors replaced by their layouts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[KernelCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket in FAMILY:
            layout = lambda value: (  # noqa: E731
                TensorLayout(tuple(value.shape), tuple(value.stride()), value.dtype)
                if isinstance(value, torch.Tensor)
                else value
            )
            self.calls.append(KernelCall(func, tree_map(layout, args), tree_map(layout, kwargs)))
        return func(*args, **kwargs)


def materialise(calls: list[KernelCall], device: torch.device) -> list[Callable[[], Any]]:
    """Each recorded call bound to random tensors of its layouts (one tensor per distinct layout, shared)."""
    tensors: dict[TensorLayout, torch.Tensor] = {}

    def tensor(value: Any) -> Any:
        if not isinstance(value, TensorLayout):
            return value
        if value not in tensors:  # a buffer as long as the layout reaches (expanded layouts have stride 0)
            length = 1 + sum((size - 1) * stride for size, stride in zip(value.shape, value.stride) if size > 0)
            buffer = torch.zeros(length, dtype=value.dtype, device=device)
            if value.dtype.is_floating_point:
                buffer.normal_()
            tensors[value] = buffer.as_strided(value.shape, value.stride)
        return tensors[value]

    bound = []
    for call in calls:
        args, kwargs = tree_map(tensor, call.args), tree_map(tensor, call.kwargs)
        bound.append(lambda op=call.op, args=args, kwargs=kwargs: op(*args, **kwargs))
    return bound


def replay(kernels: list[Callable[[], Any]]) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            for kernel in kernels:
                kernel()

    return run


def family_seconds(calls: list[KernelCall], kernels: list[Callable[[], Any]], device: torch.device) -> Counter:
    """Seconds per kernel family in one replay (each call timed alone, so the sum is a little above the replay)."""
    seconds: Counter = Counter()
    with torch.no_grad():
        for call, kernel in zip(calls, kernels):
            synchronize(device)
            start = time.perf_counter()
            kernel()
            synchronize(device)
            seconds[call.family] += time.perf_counter() - start
    return seconds


def alternate(runs: dict[str, Callable[[], None]], device: torch.device, steps: int) -> dict[str, float]:
    """Median seconds of each of ``runs``, timed one after the other ``steps`` times (who goes first rotates)."""
    durations: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for index in range(steps):
        for name in order[index % len(order) :] + order[: index % len(order)]:
            synchronize(device)
            start = time.perf_counter()
            runs[name]()
            synchronize(device)
            durations[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in durations.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the step with torch_compile=True (the blocks compiled) against the eager step's kernels",
    )
    args = parser.parse_args()
    device = device_of_this_run()

    rows = []
    for size in args.sizes:
        settings = step_settings(args, size)
        step = ours(device, **settings)
        for _ in range(args.warmup):
            step()
        recorder = KernelRecorder()
        with recorder:
            step()
        kernels = materialise(recorder.calls, device)
        runs = {"step": step, "kernels": replay(kernels)}
        if args.compile:
            runs["compiled"] = ours(device, torch_compile=True, **settings)
        for run in runs.values():  # the compiled step compiles in its first calls
            for _ in range(args.warmup):
                run()
        seconds = alternate(runs, device, args.steps)
        shares = family_seconds(recorder.calls, kernels, device)
        total = sum(shares.values())
        compiled = [seconds["compiled"] * 1000, seconds["compiled"] / seconds["kernels"]] if args.compile else []
        rows.append(
            [
                f"ViT-{size}",
                len(recorder.calls),
                seconds["step"] * 1000,
                seconds["kernels"] * 1000,
                seconds["step"] / seconds["kernels"],
                *compiled,
                ", ".join(f"{family} {100 * share / total:.0f}%" for family, share in shares.most_common()),
            ]
        )
    print_table(
        f"I-JEPA step vs its kernels alone, {args.image_size} px, patch {args.patch_size}, batch {args.batch_size}, "
        f"{args.precision}",
        [
            "model",
            "kernel calls",
            "step ms",
            "kernels ms",
            "step / kernels",
            *(["compiled step ms", "compiled / kernels"] if args.compile else []),
            "kernel time by family",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
