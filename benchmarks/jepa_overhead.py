"""Where the time of one I-JEPA training step goes, and its model FLOP utilisation (MFU).

    python benchmarks/jepa_overhead.py --size tiny --image-size 64 --patch-size 8 --batch-size 64

Parts are timed with forward hooks on the model's own modules (so the step is the library's code, not a
re-implementation): mask sampling, the student's tokenizer, the student encoder on the context, the
predictor, the teacher's forward (tokenizer + encoder on every token), the rest of the forward (target
normalisation, gathering, loss), backward, the optimiser step and the EMA update. MFU = FLOPs of one step
(counted by ``torch.utils.flop_counter``) / step time / the fp32 matmul rate measured in the same run.
Runs on CUDA when available, else on the CPU.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import torch
from harness import device_of_this_run, matmul_flops_per_second, print_table, step_flops, synchronize, time_steps

from jepa_lightning.masks import mask_generator
from jepa_lightning.methods import IJEPA
from jepa_lightning.nn import VIT_SIZES, TransformerEncoder
from jepa_lightning.tokenizers import InputSpec

MOMENTUM = 0.996
MFU_ROUNDS = 3


class PartTimer:
    """Accumulates synchronised wall time per named part of a step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.enabled = True

    def time_module(self, module: torch.nn.Module, name: str) -> None:
        starts: list[float] = []

        def before(*_: Any) -> None:
            if self.enabled:
                synchronize(self.device)
                starts.append(time.perf_counter())

        def after(*_: Any) -> None:
            if self.enabled:
                synchronize(self.device)
                self.seconds[name] += time.perf_counter() - starts.pop()

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    def time_call(self, name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        synchronize(self.device)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        synchronize(self.device)
        self.seconds[name] += time.perf_counter() - start
        return result


class TimedSampler:
    """A mask sampler proxy that books its calls under "mask sampling"."""

    def __init__(self, sampler: Any, timer: PartTimer) -> None:
        self.sampler = sampler
        self.timer = timer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.timer.time_call("mask sampling", self.sampler, *args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", choices=sorted(VIT_SIZES))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--predictor-dim", type=int, default=None, help="default: a quarter of the encoder width")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch_compile=True (compiled transformer blocks)")
    args = parser.parse_args()

    device = device_of_this_run()
    width, _, heads = VIT_SIZES[args.size]
    model = IJEPA(
        encoder=TransformerEncoder.from_size(args.size),
        patch_size=args.patch_size,
        predictor_dim=args.predictor_dim or width // 4,
        predictor_depth=6,
        predictor_heads=heads,
        input_spec=InputSpec("images", channels=3, image_size=(args.image_size, args.image_size)),
        torch_compile=args.compile,
    ).to(device)
    model.configure_model()  # what the Trainer calls: compiles the blocks when asked
    optimizer = model.build_optimizer()
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    timer = PartTimer(device)
    model.mask_sampler = TimedSampler(model.mask_sampler, timer)
    timer.time_module(model.student.tokenizer, "tokenizer (student)")
    timer.time_module(model.student.encoder, "student encoder (context)")
    timer.time_module(model.predictor, "predictor")
    timer.time_module(model.teacher, "teacher forward")
    step_index = [0]

    def step() -> None:
        generator = mask_generator(0, step_index[0], 0, "cpu")
        step_index[0] += 1
        loss, _, *_ = timer.time_call("forward (all)", model.masked_prediction, images, generator)
        optimizer.zero_grad(set_to_none=True)
        timer.time_call("backward", loss.backward)
        timer.time_call("optimizer step", optimizer.step)
        timer.time_call("EMA update", model.teacher.update, model.student, MOMENTUM)

    for _ in range(args.warmup):
        step()
    timer.seconds.clear()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    total = (time.perf_counter() - start) / args.steps
    parts = {name: seconds / args.steps for name, seconds in timer.seconds.items()}
    named_forward = (
        "mask sampling",
        "tokenizer (student)",
        "student encoder (context)",
        "predictor",
        "teacher forward",
    )
    parts["rest of forward (targets, gather, loss)"] = parts.pop("forward (all)") - sum(
        parts[name] for name in named_forward
    )
    rows = [[name, seconds * 1000, 100 * seconds / total] for name, seconds in parts.items()]
    rows.append(["step (total)", total * 1000, 100.0])

    timer.enabled = False
    flops = step_flops(step)
    # The machine's speed drifts (shared hosts, clocks): each MFU reading divides a step time by a matmul rate
    # measured right next to it, without the part timers' synchronisation.
    readings = []
    for _ in range(MFU_ROUNDS):
        rate = matmul_flops_per_second(device)
        seconds = time_steps(step, warmup=1, steps=args.steps, device=device)
        readings.append((flops / seconds / rate, flops / seconds, rate))
    mfu, achieved, rate = sorted(readings)[len(readings) // 2]
    print_table(
        f"I-JEPA step breakdown, ViT-{args.size}, {(args.image_size // args.patch_size) ** 2} tokens, "
        f"batch {args.batch_size}{', compiled' if args.compile else ''}",
        ["part", "ms/step", "% of step"],
        rows,
    )
    low, high = min(readings)[0], max(readings)[0]
    print(
        f"\nFLOPs per step {flops / 1e9:.1f} G; achieved {achieved / 1e9:.1f} GFLOP/s against a measured fp32 matmul "
        f"rate of {rate / 1e9:.1f} GFLOP/s: MFU {100 * mfu:.0f}% (median of {MFU_ROUNDS} back-to-back readings, "
        f"range {100 * low:.0f}-{100 * high:.0f}%)"
    )


if __name__ == "__main__":
    main()
