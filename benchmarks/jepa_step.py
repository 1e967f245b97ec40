"""Training-step throughput of I-JEPA on random images: samples/s, peak memory and the mask-sampling share.

    python benchmarks/jepa_step.py --size tiny --image-size 224 --patch-size 16 --batch-size 128 --precision bf16

Runs on CUDA when available (else CPU). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time

import torch

from jepa_lightning.masks import mask_generator
from jepa_lightning.methods import IJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import InputSpec

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = InputSpec("images", channels=3, image_size=(args.image_size, args.image_size))
    model = IJEPA(encoder=TransformerEncoder.from_size(args.size), patch_size=args.patch_size, input_spec=spec).to(
        device
    )
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    dtype = DTYPES[args.precision]
    layout = model.student.tokenizer.layout

    def step(index: int) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss, _, *_ = model.masked_prediction(images, mask_generator(0, index, 0, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.teacher.update(model.student, 0.996)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for index in range(args.warmup):
        step(index)
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for index in range(args.steps):
        step(args.warmup + index)
    synchronize()
    step_time = (time.perf_counter() - start) / args.steps

    start = time.perf_counter()
    for index in range(args.steps):
        model.mask_sampler(layout, args.batch_size, mask_generator(0, index, 0, device), device)
    synchronize()
    mask_time = (time.perf_counter() - start) / args.steps

    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    print(
        f"device={device.type} size={args.size} image={args.image_size} patch={args.patch_size} "
        f"batch={args.batch_size} precision={args.precision}\n"
        f"  step {step_time * 1e3:.1f} ms  |  {args.batch_size / step_time:.0f} samples/s  |  peak {peak:.2f} GiB"
        f"  |  mask sampling {mask_time * 1e3:.2f} ms ({100 * mask_time / step_time:.1f}% of a step)"
    )


if __name__ == "__main__":
    main()
