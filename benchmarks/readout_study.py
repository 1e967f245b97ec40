"""Readouts off the quality panel: which vector of a frozen image network should the linear probe read?

    OMP_NUM_THREADS=1 python benchmarks/readout_study.py simclr_digits.yaml --raw
    OMP_NUM_THREADS=1 python benchmarks/readout_study.py simclr_digits.yaml \\
        --model.backbone=jepa_lightning.nn.TimmBackbone --model.backbone.model_name=resnet18

Pretrains an example config (``examples/configs``) for the panel's budget, built as
:func:`quality_panel.build` builds a panel run, on Fashion-MNIST images the panel never reads: training images
10,000-11,999 to pretrain and fit the probe on, 12,000-12,999 held out (the panel reads the first 2,000 training and
the first 1,000 test images). Before and after training it fits the panel's linear probe on several readouts of the
same frozen network: ``embed`` (what the panel probes), every :data:`~jepa_lightning.nn.functional.Readout` of a token
network's encoded tokens (a JEPA's readout network, a :class:`~jepa_lightning.nn.PooledTokenBackbone`'s encoder) and,
for a :class:`~jepa_lightning.nn.TimmBackbone`, the feature maps of every stage pooled and concatenated (mean;
max and mean). ``--raw`` adds the probe on the raw pixels. Extra arguments are appended to the config's command line.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import quality_panel as panel
import torch
from PIL import Image
from probe_baselines import raw_probe_accuracy
from torch import Tensor

from datamodules.images import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from jepa_lightning.callbacks.linear_probe import linear_probe_accuracy
from jepa_lightning.inputs import model_input
from jepa_lightning.nn import TimmBackbone
from jepa_lightning.nn.backbones import pool_stages
from jepa_lightning.nn.functional import read_out

#: Fashion-MNIST training images read by this study (half-open index ranges); the panel reads ``[0, 2000)``.
OFF_PANEL = {"train": (10_000, 12_000), "test": (12_000, 13_000)}
TOKEN_READOUTS = ("mean", "max_mean", "rows", "flatten")


def off_panel_fashion(source: Path = panel.FASHION, cache: Path = panel.CACHE / "fashion-mnist-off-panel") -> list[str]:
    """The :data:`OFF_PANEL` training images of Fashion-MNIST, written once as PNG class folders; the data overrides."""
    images = labels = None
    for split, (start, stop) in OFF_PANEL.items():
        folder = cache / split
        if folder.exists():
            continue
        if images is None:
            images = read_idx(source / "train-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC)
            labels = read_idx(source / "train-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC)
        partial = folder.with_name(split + ".partial")
        for index in range(start, stop):
            (partial / str(labels[index])).mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index]).save(partial / str(labels[index]) / f"{index:05d}.png")
        partial.rename(folder)
    return [f"--data.path={cache / 'train'}", f"--data.test_path={cache / 'test'}"]


def stage_features(backbone: TimmBackbone, x: Tensor) -> dict[str, Tensor]:
    """Every stage's feature map of a timm backbone, pooled and concatenated: means; maxima and means (the latter is
    ``TimmBackbone(readout="stages")``'s :func:`~jepa_lightning.nn.backbones.pool_stages`)."""
    pooled = pool_stages(backbone.model, x)
    return {"stages_mean": pooled[:, pooled.shape[1] // 2 :], "stages_max_mean": pooled}


def readouts(model: torch.nn.Module, x) -> dict[str, Tensor]:
    """Readout name -> ``(B, F)`` features of a batch: ``embed``, then whatever else the network offers."""
    features = {"embed": model.embed(x)}
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, TimmBackbone):
        features |= stage_features(backbone, x)
    if hasattr(model, "readout_tokens"):
        encoded, tokens = model.readout_tokens(x)
    elif backbone is not None and hasattr(backbone, "tokens"):
        encoded, tokens = backbone.tokens.encode(x)
    else:
        return features
    return features | {r: read_out(encoded, tokens.layout, r, tokens.valid) for r in TOKEN_READOUTS}


@torch.no_grad()
def probe_readouts(model: torch.nn.Module, datamodule, split: str = "test") -> dict[str, float]:
    """The panel's linear probe on each of :func:`readouts`, fitted on the training split, scored on ``split``."""
    model.eval()
    embedded = {}
    for part in ("train", split):
        batches, labels = [], []
        for batch in datamodule.eval_dataloader(part):
            batches.append({k: v.float() for k, v in readouts(model, model_input(batch)).items()})
            labels.append(batch["y"])
        y = torch.cat(labels).numpy()
        embedded[part] = {k: (torch.cat([b[k] for b in batches]).numpy(), y) for k in batches[0]}
    model.train()
    return {k: linear_probe_accuracy(embedded["train"][k], embedded[split][k]) for k in embedded["train"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="an example config's file name under examples/configs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=200, help="optimizer steps (the panel's default)")
    parser.add_argument("--raw", action="store_true", help="also the probe on the raw pixels")
    args, extra = parser.parse_known_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    method = panel.Method(args.config, args.config, extra)
    data_args = off_panel_fashion()
    with tempfile.TemporaryDirectory() as root, panel.quiet():
        cli = panel.build(method, data_args, args.seed, args.budget, root)
        cli.datamodule.setup("fit")
        raw = raw_probe_accuracy(cli.datamodule, "test") if args.raw else None
        init = probe_readouts(cli.model, cli.datamodule)
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
        trained = probe_readouts(cli.model, cli.datamodule)
    print(f"{args.config} {' '.join(extra)}, seed {args.seed}, {args.budget} steps ({seconds:.0f} s)")
    if raw is not None:
        print(f"  raw pixels {raw:.3f}")
    for name, accuracy in init.items():
        print(f"  {name:16s} init {accuracy:.3f} -> trained {trained[name]:.3f}")


if __name__ == "__main__":
    main()
