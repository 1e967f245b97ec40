"""Memory per clip of a V-JEPA training step at a few clip sizes, with and without activation checkpointing.

    OMP_NUM_THREADS=1 python benchmarks/vjepa_memory.py [--sizes 8x112 16x112 16x224] [--batch 1]

The :class:`~jepa_lightning.methods.VJEPA` preset with a ViT-S encoder (384 wide, 12 deep, 6 heads) and its default
predictor (384 wide, 12 deep), tubelets of 2 x 16 x 16, both mask configurations on every clip, runs one
``masked_prediction`` forward and backward on random RGB clips of ``frames x size x size``. Reported per clip (the
batch's figures divided by ``--batch``): the MiB of the storages autograd keeps for the backward pass, each counted
once and the weights left out (``torch.autograd.graph.saved_tensors_hooks``: the activation memory that
checkpointing trades for a second forward of the blocks); on CUDA also the peak allocated MiB above what the model
holds before the step; the loss (the same with and without checkpointing) and the seconds of the step. Float32.

Measured (x86_64, 2 CPU cores shared with other jobs, torch 2.14.1, OMP_NUM_THREADS=1, batch 1), saved MiB per clip
without -> with checkpointing: 8 x 112 x 112 (196 tokens) 147 -> 12.2; 16 x 112 x 112 (392 tokens) 295 -> 24.3;
16 x 224 x 224 (1,568 tokens, V-JEPA's clip) 1,116 -> 93.4: a twelfth, and about 0.7 MiB per token at every size;
the loss is identical with and without. Step times on the shared machine (10-80 s) are too noisy to compare.
"""

from __future__ import annotations

import argparse
import time

import torch
from harness import device_of_this_run, print_table, synchronize
from torch import Tensor

from jepa_lightning.inputs import InputSpec
from jepa_lightning.methods import VJEPA
from jepa_lightning.nn import TransformerEncoder


def measure(frames: int, size: int, batch: int, checkpointed: bool, device: torch.device) -> list[float]:
    """Saved MiB per clip, peak MiB per clip (CUDA; NaN on the CPU), loss and seconds of one step."""
    torch.manual_seed(0)
    spec = InputSpec("video", channels=3, image_size=(size, size), frames=frames)
    model = VJEPA(
        encoder=TransformerEncoder.from_size("small"), input_spec=spec, activation_checkpointing=checkpointed
    ).to(device)
    clips = torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    kept: dict[int, int] = {}  # storage -> bytes: a tensor saved by several operations is held once

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:  # the weights are held anyway, with or without a step
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model.masked_prediction(clips, torch.Generator().manual_seed(0)).loss
    loss.backward()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20 if device.type == "cuda" else float("nan")
    return [sum(kept.values()) / 2**20 / batch, peak / batch, loss.item(), seconds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["8x112", "16x112", "16x224"], help="FRAMESxSIZE clips")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    device = device_of_this_run()
    rows = []
    for text in args.sizes:
        frames, size = (int(part) for part in text.split("x"))
        tokens = (frames // 2) * (size // 16) ** 2
        for checkpointed in (False, True):
            saved, peak, loss, seconds = measure(frames, size, args.batch, checkpointed, device)
            rows.append([f"{frames} x {size} x {size}", tokens, checkpointed, saved, peak, f"{loss:.6f}", seconds])
    header = ["clip", "tokens", "checkpointing", "saved MiB / clip", "peak MiB / clip (CUDA)", "loss", "s / step"]
    print_table("V-JEPA memory per clip (ViT-S, predictor 384 x 12)", header, rows)


if __name__ == "__main__":
    main()
