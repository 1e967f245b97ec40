"""Raw-input baseline for a linear probe: logistic regression on a datamodule's flattened evaluation inputs.

    python benchmarks/probe_baselines.py --config examples/configs/tsjepa_gunpoint.yaml --split test
    python benchmarks/probe_baselines.py --config examples/configs/ecgjepa_mitbih.yaml --data.path=...

The datamodule is built from a LightningCLI config (extra ``--data.*`` arguments override it) exactly as ``fit``
builds it; the baseline fits the same probe as :class:`~jepa_lightning.callbacks.LinearProbeReport` (standardised
features, logistic regression) on the inputs ``x`` of the ``train`` split after the evaluation transform (e.g. the
normalised series) instead of on embeddings, and scores it on ``--split``. A pretrained encoder is worth its
training when its probe beats this number. Inputs of different lengths are zero-padded to the longest; table rows
use their numeric fields (NaN -> 0) and their categorical codes one-hot encoded.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch_geometric.nn import global_mean_pool

from jepa_lightning.callbacks.linear_probe import linear_probe_accuracy
from jepa_lightning.cli import build_cli
from jepa_lightning.inputs import GraphInput, SeriesInput, TabularInput, model_input


def one_hot_columns(codes: torch.Tensor, categories: tuple[int, ...]) -> torch.Tensor:
    """Categorical codes (rows x columns) as concatenated one-hot blocks, one per column's cardinality."""
    blocks = [F.one_hot(column, size).float() for column, size in zip(codes.T, categories, strict=True)]
    return torch.cat(blocks, dim=1) if blocks else codes.new_zeros(len(codes), 0, dtype=torch.float)


def raw_features(loader: DataLoader, categories: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Every batch's model input flattened to one row per sample (zero-padded to the longest), and the labels."""
    rows, labels = [], []
    for batch in loader:
        x = model_input(batch)
        if isinstance(x, TabularInput):
            x = torch.cat([x.numeric.nan_to_num(0.0), one_hot_columns(x.categorical, categories)], dim=1)
        elif isinstance(x, SeriesInput):
            x = x.values  # zero-padded, as the model's tokenizer sees it
        elif isinstance(x, GraphInput):  # a node's own features; a graph's mean node features
            x = x.x[x.seeds] if x.batch is None else global_mean_pool(x.x, x.batch, size=x.seeds.shape[0])
        rows.extend(x.flatten(1).float())
        labels.append(batch["y"])
    width = max(row.numel() for row in rows)
    features = torch.stack([torch.nn.functional.pad(row, (0, width - row.numel())) for row in rows])
    return features.numpy(), torch.cat(labels).numpy()


def raw_probe_accuracy(datamodule, split: str) -> float:
    """Accuracy on ``split`` of the probe fitted on the raw inputs of the ``train`` split."""
    datamodule.setup("fit")
    categories = datamodule.input_spec.categories or ()
    return linear_probe_accuracy(
        raw_features(datamodule.eval_dataloader("train"), categories),
        raw_features(datamodule.eval_dataloader(split), categories),
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", help="held-out split to score: val or test")
    args, cli_args = parser.parse_known_args(argv)
    cli = build_cli([*cli_args, "--trainer.logger=false"], run=False)
    accuracy = raw_probe_accuracy(cli.datamodule, args.split)
    print(f"Logistic regression on raw inputs ({type(cli.datamodule).__name__}, {args.split} split): {accuracy:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
