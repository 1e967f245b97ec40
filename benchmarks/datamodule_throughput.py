"""Is data ever the bottleneck? Each example config's datamodule against what its model consumes.

    python benchmarks/datamodule_throughput.py                       # every examples/configs/*.yaml
    python benchmarks/datamodule_throughput.py --configs examples/configs/ijepa_digits.yaml --batches 20

For each config (built exactly as ``jepa-lightning fit --config ...`` builds it, with the config's own number of
DataLoader workers): samples/s of its training loader alone (decoding, cropping, resampling, augmented views),
and samples/s of the model's training step (Lightning ``fit`` on the same batches held in memory, so no data
work at all). A ratio above 1 means the loader outpaces the model: data is not the bottleneck. Configs whose data
set is not installed are listed with the reason.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from harness import print_table
from torch.utils.data import DataLoader

from jepa_lightning.cli import build_cli

CONFIGS = Path(__file__).parents[1] / "examples" / "configs"


def batch_size_of(batch: dict[str, Any]) -> int:
    return len(batch["y"])


class StepTimer(L.Callback):
    """Wall time of the training steps after the first ``skip`` (warm-up)."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.seconds = 0.0
        self.samples = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx >= self.skip:
            self.seconds += time.perf_counter() - self.start
            self.samples += batch_size_of(batch)


def measure(config: Path, batches: int) -> list[Any]:
    cli = build_cli(["--config", str(config), "--trainer.logger=false"], run=False)
    model, data = cli.model, cli.datamodule
    if data.num_views is None:
        data.num_views = model.num_views
    loader = data.train_dataloader()
    start = time.perf_counter()
    cached, samples = [], 0
    for batch in loader:
        cached.append(batch)
        samples += batch_size_of(batch)
        if len(cached) == batches:
            break
    loader_rate = samples / (time.perf_counter() - start)

    timer = StepTimer(skip=2)
    trainer = L.Trainer(
        max_steps=len(cached),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
        precision=cli.trainer.precision,
    )
    trainer.fit(model, train_dataloaders=DataLoader(cached, batch_size=None))
    model_rate = timer.samples / timer.seconds
    return [
        config.stem,
        type(data).__name__,
        data.num_workers,
        loader_rate,
        model_rate,
        loader_rate / model_rate,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", type=Path, default=sorted(CONFIGS.glob("*.yaml")))
    parser.add_argument("--batches", type=int, default=10, help="batches per measurement (2 more warm the model)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows, missing = [], []
    for config in args.configs:
        try:
            rows.append(measure(config, args.batches + 2))
        except (FileNotFoundError, ImportError) as error:
            missing.append(f"{config.stem}: {error}")
    print_table(
        "Training loader vs training step (samples/s)",
        ["config", "datamodule", "workers", "loader samples/s", "model samples/s", "loader / model"],
        rows,
    )
    for line in missing:
        print(f"- skipped {line}")


if __name__ == "__main__":
    main()
