"""RankMe tracks downstream accuracy without labels: a small-scale check of the RankMe paper's claim.

Trains I-JEPA on the bundled digits under a few hyperparameter settings (EMA momentum, learning rate) that
range from collapsing to healthy, then compares the RankMe of each encoder's validation embeddings with its
linear-probe accuracy and reports their Spearman rank correlation. As in the paper, the comparison is within
one method.

    python examples/rankme_sweep.py --epochs 10

Takes a few minutes on 2 CPU cores. Not part of the test suite.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import lightning as L
import torch
from scipy.stats import spearmanr

from datamodules import ImageDataModule
from jepa_lightning.callbacks import datamodule_probe_accuracy, embed_loader
from jepa_lightning.methods import IJEPA
from jepa_lightning.metrics import RankMe
from jepa_lightning.nn import TransformerEncoder


@dataclass(frozen=True)
class Setting:
    """One point of the sweep: the I-JEPA arguments that differ from examples/configs/ijepa_digits.yaml."""

    name: str
    ema_momentum: float
    lr: float


SETTINGS = (
    Setting("EMA 0.99, lr 5e-4", 0.99, 5e-4),
    Setting("EMA 0.996, lr 5e-4", 0.996, 5e-4),
    Setting("EMA 0.998, lr 5e-4", 0.998, 5e-4),
    Setting("EMA 0.999, lr 5e-4", 0.999, 5e-4),
    Setting("EMA 0.998, lr 2e-4", 0.998, 2e-4),
    Setting("EMA 0.998, lr 1e-3", 0.998, 1e-3),
)


def train(setting: Setting, epochs: int, seed: int) -> tuple[float, float]:
    """Pretrain one setting; return (RankMe of validation embeddings, linear-probe accuracy)."""
    L.seed_everything(seed, verbose=False)
    data = ImageDataModule(image_size=32, batch_size=32, seed=seed)
    model = IJEPA(
        encoder=TransformerEncoder(embed_dim=64, depth=4, num_heads=2),
        patch_size=4,
        predictor_dim=32,
        predictor_depth=2,
        predictor_heads=2,
        ema_momentum=setting.ema_momentum,
        lr=setting.lr,
        warmup_start_lr=setting.lr / 4,
        final_weight_decay=None,
        input_spec=data.input_spec,
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=data)
    embeddings, _ = embed_loader(model, data.eval_dataloader("val"))
    rankme = RankMe()
    rankme.update(torch.from_numpy(embeddings))
    return float(rankme.compute()), datamodule_probe_accuracy(model, data, "val")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = []
    for setting in SETTINGS:
        rankme, accuracy = train(setting, args.epochs, args.seed)
        rows.append((setting.name, rankme, accuracy))
        print(f"{setting.name:<28} RankMe {rankme:6.2f}   linear probe {accuracy:.4f}", flush=True)
    correlation = spearmanr([row[1] for row in rows], [row[2] for row in rows]).statistic
    print(f"\nSpearman correlation of RankMe and linear-probe accuracy ({len(rows)} settings): {correlation:.3f}")


if __name__ == "__main__":
    main()
