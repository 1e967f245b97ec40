"""The ``jepa-lightning`` command: LightningCLI with the data -> model links every method relies on."""

from __future__ import annotations

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.base import SSLDataModule
from jepa_lightning.callbacks.embeddings import EmbeddingWriter
from jepa_lightning.methods.base import SSLMethod


class JEPALightningCLI(LightningCLI):
    """LightningCLI in subclass mode for any :class:`SSLMethod` on any :class:`SSLDataModule`.

    The datamodule's ``input_spec`` (channels, image size, sample rate, classes, ...) is linked into the
    model, so changing ``--model`` on the same ``--data`` needs no other edit; the number of views flows the
    other way in :meth:`SSLMethod.setup`. ``predict`` writes embeddings through ``--embeddings.output``.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.input_spec", "model.init_args.input_spec", apply_on="instantiate")
        parser.add_lightning_class_args(EmbeddingWriter, "embeddings")


def main(args: list[str] | None = None) -> None:
    """Entry point of ``jepa-lightning`` and ``python -m jepa_lightning``."""
    JEPALightningCLI(
        SSLMethod,
        SSLDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
