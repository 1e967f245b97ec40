"""GPU check: I-JEPA and SimCLR training steps in bf16 on a CUDA device, eager and compiled, in under 5 minutes.

    bash benchmarks/gpu_check.sh                       # what a GPU machine runs; prints one Markdown table
    python benchmarks/gpu_check.py --peak-tflops 989   # when the GPU's name is not in the peak table below

For each workload (I-JEPA with ViT-tiny and ViT-small at 224 px, patch 16; SimCLR with a ResNet-18 at 224 px):

1. **Loss check**: the first step's loss in fp32 and under bf16 autocast, from the same weights, inputs and masks;
   the check fails when they differ by more than ``--loss-rtol`` (relative).
2. **Throughput**: median step time over ``--steps`` steps after ``--warmup``, in bf16, with attention restricted to
   the flash and memory-efficient SDPA kernels (no math fallback), eager and with ``torch_compile`` (the
   library's regional compilation of the transformer blocks for I-JEPA, the whole backbone for SimCLR).
3. **Memory and MFU**: peak allocated memory, and model FLOP utilisation = FLOPs of one step (counted by
   ``torch.utils.flop_counter``) / step time / the GPU's dense bf16 peak.

Without a CUDA device it stops at once with exit status 2 and says so (CI runs it that far). ``--allow-cpu``
runs the same code on the CPU at whatever sizes are given (for testing the script, not for its numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from harness import machine_line, step_flops, time_steps
from torch.nn.attention import SDPBackend, sdpa_kernel

from jepa_lightning.masks import mask_generator
from jepa_lightning.methods import IJEPA, SimCLR
from jepa_lightning.nn import VIT_SIZES, TimmBackbone, TransformerEncoder
from jepa_lightning.tokenizers import InputSpec

#: Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) by a substring of ``torch.cuda.get_device_name``; the
#: first match wins, so the more specific names come first.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "A10G": 125.0,
    "A10": 125.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
}
#: The GPU runs flash / memory-efficient attention only; a silent fall back to the math kernel would hide a problem.
FAST_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]


@dataclass
class Workload:
    """One training step to check: ``build(device, torch_compile)`` returns ``(step, loss_of_first_batch)``."""

    name: str
    batch_size: int
    build: Callable[[torch.device, bool], tuple[Callable[[], None], Callable[[torch.dtype | None], float]]]


@dataclass
class Row:
    name: str
    batch_size: int
    fp32_loss: float
    bf16_loss: float
    eager_samples_per_s: float
    compiled_samples_per_s: float | None
    peak_gib: float
    tflop_per_step: float
    mfu: float | None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def ijepa(size: str, image_size: int, batch_size: int, device: torch.device, torch_compile: bool):
    """An I-JEPA step (student on the context, predictor, EMA teacher, smooth-L1, AdamW, EMA update)."""
    torch.manual_seed(0)
    width, _, heads = VIT_SIZES[size]
    model = IJEPA(
        encoder=TransformerEncoder.from_size(size),
        patch_size=16,
        predictor_dim=width // 2,
        predictor_heads=heads,
        input_spec=InputSpec("images", channels=3, image_size=(image_size, image_size)),
        torch_compile=torch_compile,
    ).to(device)
    model.configure_model()
    optimizer = model.build_optimizer()
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    counter = iter(range(10**9))

    def step() -> None:
        with autocast(device, torch.bfloat16):
            loss, _, *_ = model.masked_prediction(images, mask_generator(0, next(counter), 0, "cpu"))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.teacher.update(model.student, 0.996)

    def first_loss(dtype: torch.dtype | None) -> float:
        with torch.no_grad(), autocast(device, dtype):
            loss, _, *_ = model.masked_prediction(images, mask_generator(0, 0, 0, "cpu"))
        return loss.item()

    return step, first_loss


def simclr(image_size: int, batch_size: int, device: torch.device, torch_compile: bool):
    """A SimCLR step with a timm ResNet-18 (two views in one batched pass, NT-Xent, AdamW)."""
    torch.manual_seed(0)
    model = SimCLR(
        backbone=partial(TimmBackbone, model_name="resnet18", small_input_stem=image_size <= 64),
        projector_dims=(2048, 128),
        input_spec=InputSpec("images", channels=3, image_size=(image_size, image_size)),
        torch_compile=torch_compile,
    ).to(device)
    model.configure_model()
    optimizer = model.build_optimizer()
    views = [torch.randn(batch_size, 3, image_size, image_size, device=device) for _ in range(2)]

    def step() -> None:
        with autocast(device, torch.bfloat16):
            loss, _ = model.objective(model.each_view(model.network, views), views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def first_loss(dtype: torch.dtype | None) -> float:
        model.eval()  # batch norm from its running statistics, unchanged by this forward
        with torch.no_grad(), autocast(device, dtype):
            loss, _ = model.objective(model.each_view(model.network, views), views)
        model.train()
        return loss.item()

    return step, first_loss


def workloads(sizes: list[str], image_size: int, batch_size: int) -> list[Workload]:
    rows = [
        Workload(f"I-JEPA ViT-{size} {image_size}px", batch_size, partial(ijepa, size, image_size, batch_size))
        for size in sizes
    ]
    return [*rows, Workload(f"SimCLR ResNet-18 {image_size}px", batch_size, partial(simclr, image_size, batch_size))]


@contextlib.contextmanager
def fast_attention(device: torch.device) -> Iterator[None]:
    """Flash / memory-efficient SDPA only on CUDA; the CPU (``--allow-cpu``) keeps its default kernels."""
    if device.type != "cuda":
        yield
        return
    with sdpa_kernel(FAST_ATTENTION):
        yield


def peak_memory_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan


def bf16_peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops is not None:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in BF16_PEAK_TFLOPS.items() if key in name), None)


def check(workload: Workload, device: torch.device, args: argparse.Namespace, peak_flops: float | None) -> Row:
    step, first_loss = workload.build(device, False)
    fp32_loss, bf16_loss = first_loss(None), first_loss(torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with fast_attention(device):
        eager = time_steps(step, args.warmup, args.steps, device)
        peak = peak_memory_gib(device)
        flops = step_flops(step)
        compiled = None
        if args.compile:
            compiled_step, _ = workload.build(device, True)
            compiled = time_steps(compiled_step, args.warmup, args.steps, device)
    best = min(eager, compiled or math.inf)
    return Row(
        name=workload.name,
        batch_size=workload.batch_size,
        fp32_loss=fp32_loss,
        bf16_loss=bf16_loss,
        eager_samples_per_s=workload.batch_size / eager,
        compiled_samples_per_s=None if compiled is None else workload.batch_size / compiled,
        peak_gib=peak,
        tflop_per_step=flops / 1e12,
        mfu=None if peak_flops is None else flops / best / peak_flops,
    )


def loss_mismatches(rows: list[Row], rtol: float) -> list[str]:
    """The workloads whose bf16 loss is not within ``rtol`` (relative) of the fp32 one, or is not finite."""
    return [
        f"{row.name}: fp32 loss {row.fp32_loss:.6g}, bf16 loss {row.bf16_loss:.6g} (relative tolerance {rtol})"
        for row in rows
        if not math.isfinite(row.bf16_loss) or abs(row.bf16_loss - row.fp32_loss) > rtol * abs(row.fp32_loss)
    ]


def table(rows: list[Row]) -> str:
    def cell(value: float | None, spec: str) -> str:
        return "-" if value is None or math.isnan(value) else format(value, spec)

    lines = [
        "| workload | batch | loss fp32 / bf16 | samples/s eager | samples/s compiled | peak GiB | TFLOP/step | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row.name} | {row.batch_size} | {row.fp32_loss:.4f} / {row.bf16_loss:.4f} | "
        f"{cell(row.eager_samples_per_s, '.0f')} | {cell(row.compiled_samples_per_s, '.0f')} | "
        f"{cell(row.peak_gib, '.2f')} | {cell(row.tflop_per_step, '.3f')} | "
        f"{'-' if row.mfu is None else f'{100 * row.mfu:.1f}%'} |"
        for row in rows
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=sorted(VIT_SIZES))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled runs")
    parser.add_argument("--loss-rtol", type=float, default=0.02)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, if not listed")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when no GPU is present (tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(
            "gpu_check: no CUDA device (torch.cuda.is_available() is False); this check needs a GPU. "
            "Run it on a CUDA machine, or pass --allow-cpu to exercise the script on the CPU.",
            file=sys.stderr,
        )
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak_flops = bf16_peak_flops(device, args.peak_tflops)
    start = time.perf_counter()
    rows = []
    for workload in workloads(args.sizes, args.image_size, args.batch_size):
        rows.append(check(workload, device, args, peak_flops))
        print(f"  {workload.name}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"`python benchmarks/gpu_check.py {' '.join(argv if argv is not None else sys.argv[1:])}` on {machine_line()}\n"
    )
    print(table(rows))
    if peak_flops is None:
        print("\nMFU: the GPU's bf16 peak is unknown; pass --peak-tflops.")
    mismatches = loss_mismatches(rows, args.loss_rtol)
    for line in mismatches:
        print(f"gpu_check: bf16 loss does not match fp32: {line}", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
