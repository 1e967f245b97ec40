"""The ``jepa-lightning`` command: LightningCLI with the data -> model links every method relies on."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.base import SSLDataModule
from jepa_lightning.callbacks.collapse import CollapseMonitor, RankMeMonitor
from jepa_lightning.callbacks.embeddings import EmbeddingWriter
from jepa_lightning.callbacks.linear_probe import datamodule_probe_accuracy
from jepa_lightning.callbacks.online_probes import OnlineLinearProbe
from jepa_lightning.callbacks.spectrum import SpectrumPlot
from jepa_lightning.methods.base import SSLMethod


def default_diagnostics() -> list[L.Callback]:
    """What every ``fit`` from the command line shows: probe accuracy, RankMe, the spectrum, collapse warnings."""
    return [OnlineLinearProbe(), RankMeMonitor(), SpectrumPlot(), CollapseMonitor()]


class SSLTrainer(L.Trainer):
    """A Lightning Trainer with one more entry point, :meth:`probe`, for the ``jepa-lightning probe`` command."""

    def probe(
        self, model: SSLMethod, datamodule: SSLDataModule, ckpt_path: str | None = None, split: str = "val"
    ) -> float:
        """Linear probe: logistic regression on frozen embeddings of the training split, accuracy on ``split``.

        Args:
            model: the method whose ``embed`` is probed (its weights come from ``ckpt_path`` when given).
            datamodule: any jepa-lightning datamodule (labels -1 are left out).
            ckpt_path: a checkpoint written by ``fit``; without one the model is probed as initialised.
            split: held-out split to score on: "val" or "test".
        """
        if ckpt_path is not None:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            model.load_state_dict(checkpoint["state_dict"])
        model.to(self.strategy.root_device)
        accuracy = datamodule_probe_accuracy(model, datamodule, split)
        for logger in self.loggers:
            logger.log_metrics({f"probe/linear_acc_{split}": accuracy})
        if self.is_global_zero:
            print(f"Linear probe accuracy on the {split} split: {accuracy:.4f}", flush=True)
        return accuracy


class JEPALightningCLI(LightningCLI):
    """LightningCLI in subclass mode for any :class:`SSLMethod` on any :class:`SSLDataModule`.

    The datamodule's ``input_spec`` (channels, image size, sample rate, classes, ...) is linked into the
    model, so changing ``--model`` on the same ``--data`` needs no other edit; the number of views flows the
    other way in :meth:`SSLMethod.setup`. ``predict`` writes embeddings through ``--embeddings.output``;
    ``probe`` scores a linear probe on frozen embeddings of a checkpoint.
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "probe": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_spec", "model.init_args.input_spec", apply_on="instantiate")
        parser.add_lightning_class_args(EmbeddingWriter, "embeddings")
        parser.add_argument(
            "--diagnostics",
            type=bool,
            default=True,
            help="fit with the online linear probe, RankMe, the spectrum plot and the collapse monitor "
            "(those not already among the trainer's callbacks); false leaves them out",
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "fit" and self._get(self.config_init, "diagnostics"):
            present = {type(callback) for callback in trainer.callbacks}
            # before the checkpoint callbacks, which Lightning keeps last
            trainer.callbacks[:0] = [callback for callback in default_diagnostics() if type(callback) not in present]
        return trainer


def build_cli(args: list[str] | None = None, run: bool = True) -> JEPALightningCLI:
    """The command line as ``jepa-lightning`` builds it; ``run=False`` only instantiates model, data and trainer
    (no subcommand in ``args``), e.g. to use an example config from Python."""
    return JEPALightningCLI(
        SSLMethod,
        SSLDataModule,
        trainer_class=SSLTrainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``jepa-lightning`` and ``python -m jepa_lightning``."""
    build_cli(args)


if __name__ == "__main__":
    main()
