"""The ``jepa-lightning`` command: LightningCLI with the data -> model links every method relies on."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import _load as load_file
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from datamodules.base import SSLDataModule
from jepa_lightning.bundled import configs_command, resolve_config_arguments
from jepa_lightning.callbacks.attentive_probe import (
    OFFICIAL_SETTINGS,
    AttentiveProbeSettings,
    datamodule_attentive_probe_accuracy,
    datamodule_few_label_attentive_probe_accuracies,
)
from jepa_lightning.callbacks.checkpoint import RunCheckpoint
from jepa_lightning.callbacks.collapse import CollapseMonitor, RankMeMonitor
from jepa_lightning.callbacks.embeddings import EmbeddingWriter
from jepa_lightning.callbacks.linear_probe import (
    LabelBudget,
    datamodule_few_label_probe_accuracies,
    datamodule_probe_accuracy,
    mean_std,
)
from jepa_lightning.callbacks.online_probes import OnlineLinearProbe
from jepa_lightning.callbacks.progress import LineProgressBar, is_terminal
from jepa_lightning.callbacks.spectrum import SpectrumPlot
from jepa_lightning.export import Layout, class_path, save_encoder
from jepa_lightning.methods.base import DivergenceError, ExportedNetwork, SSLMethod

#: ``scheme://`` at the start of a ``ckpt_path``: a file that Lightning would download (http, https, s3, gs, ...).
REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Where Lightning's default logger keeps the runs of a ``default_root_dir``; runs without a logger go there too.
RUNS = "lightning_logs"
#: Exit status after SIGTERM, as a shell reports a process ended by it (128 + 15), so schedulers can requeue.
SIGTERM_STATUS = 143


class ConfigurationError(ValueError):
    """A setting the command line refuses; printed as one line, exit status 1."""


class DropTips(logging.Filter):
    """Leaves out Lightning's "💡 Tip" advertisements for its cloud products."""

    def filter(self, record: logging.LogRecord) -> bool:
        return re.search(r"\bTip\b", record.getMessage()) is None


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """While the command runs: no advertising tips, no pytree deprecation warning from Lightning's own code."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tips = DropTips()
    logger.addFilter(tips)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        logger.removeFilter(tips)


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain (jsonargparse wraps a constructor's ValueError in its own)."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    return error


def run_folders(runs: Path) -> dict[int, Path]:
    """The ``version_<N>`` folders of ``runs`` by number."""
    if not runs.is_dir():
        return {}
    found = (re.fullmatch(r"version_(\d+)", path.name) for path in runs.iterdir() if path.is_dir())
    return {int(match.group(1)): runs / match.group(0) for match in found if match}


def newest_last_checkpoint(runs: Path) -> Path | None:
    """``checkpoints/last.ckpt`` of the newest run under ``runs`` that has one, or None."""
    folders = run_folders(runs)
    return next(
        (last for n in sorted(folders, reverse=True) if (last := folders[n] / "checkpoints" / "last.ckpt").is_file()),
        None,
    )


def default_diagnostics() -> list[L.Callback]:
    """What every ``fit`` from the command line shows: probe accuracy, RankMe, the spectrum, collapse warnings."""
    return [OnlineLinearProbe(), RankMeMonitor(), SpectrumPlot(), CollapseMonitor()]


class SSLTrainer(L.Trainer):
    """A Lightning Trainer with one more entry point, :meth:`probe`, for the ``jepa-lightning probe`` command."""

    def probe(
        self,
        model: SSLMethod,
        datamodule: SSLDataModule,
        ckpt_path: str | None = None,
        split: str = "val",
        head: Literal["linear", "attentive"] = "linear",
        attentive: AttentiveProbeSettings = OFFICIAL_SETTINGS,
        labels: float | None = None,
        labels_per_class: int | None = None,
        label_seeds: list[int] | None = None,
    ) -> float:
        """Probe frozen representations: fitted on the training split, accuracy on ``split``.

        Args:
            model: the method that is probed (its weights come from ``ckpt_path`` when given).
            datamodule: any jepa-lightning datamodule (labels -1 are left out).
            ckpt_path: a checkpoint written by ``fit``; without one the model is probed as initialised.
            split: held-out split to score on: "val" or "test".
            head: "linear": logistic regression on the pooled embeddings (``embed``); "attentive": V-JEPA's
                attentive probe, a cross-attention head trained on the encoder's tokens (``embed_tokens``).
            attentive: how the attentive head is trained (``--attentive.epochs``, ``.lr``, ...; the official recipe
                by default).
            labels: few-label probe: fit on this fraction (0 < labels <= 1, e.g. 0.01) of the labelled training
                samples, drawn stratified by class (every class kept; a budget that leaves a class empty is refused).
            labels_per_class: few-label probe: fit on exactly this many training samples of every class.
            label_seeds: the seeds that draw the few-label subsets (default: 0), e.g. ``--label_seeds 0 1 2``: one
                accuracy per seed, then their mean and sample standard deviation (the mean is returned).
        """
        if head not in ("linear", "attentive"):
            raise ConfigurationError(f"probe head must be 'linear' or 'attentive', got {head!r}")
        budget = self._label_budget(labels, labels_per_class, label_seeds)
        if ckpt_path is not None:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            model.load_state_dict(checkpoint["state_dict"])
        model.to(self.strategy.root_device)
        if budget is not None:
            return self._few_label_probe(model, datamodule, split, head, attentive, budget, label_seeds or [0])
        if head == "attentive":
            accuracy = datamodule_attentive_probe_accuracy(model, datamodule, split, attentive)
        else:
            accuracy = datamodule_probe_accuracy(model, datamodule, split)
        for logger in self.loggers:
            logger.log_metrics({f"probe/{head}_acc_{split}": accuracy})
        if self.is_global_zero:
            print(f"{head.capitalize()} probe accuracy on the {split} split: {accuracy:.4f}", flush=True)
        return accuracy

    @staticmethod
    def _label_budget(
        labels: float | None, labels_per_class: int | None, label_seeds: list[int] | None
    ) -> LabelBudget | None:
        """The probe's label budget (None: every training label), its options checked."""
        if labels is None and labels_per_class is None:
            if label_seeds is not None:
                raise ConfigurationError("--label_seeds draws few-label subsets: give --labels or --labels_per_class")
            return None
        if label_seeds is not None and (not label_seeds or len(set(label_seeds)) != len(label_seeds)):
            raise ConfigurationError(f"--label_seeds must be distinct seeds, at least one, got {label_seeds}")
        try:
            return LabelBudget(fraction=labels, per_class=labels_per_class)
        except ValueError as error:
            raise ConfigurationError(f"{error} (--labels, --labels_per_class)") from None

    def _few_label_probe(
        self,
        model: SSLMethod,
        datamodule: SSLDataModule,
        split: str,
        head: str,
        attentive: AttentiveProbeSettings,
        budget: LabelBudget,
        seeds: list[int],
    ) -> float:
        """The probe fitted on ``budget``'s subset of the training labels drawn with each seed: one line per seed and
        one with the mean ± sample standard deviation; the mean is returned and logged (with the std)."""
        try:
            if head == "attentive":
                args = (model, datamodule, budget, seeds, split, attentive)
                accuracies = datamodule_few_label_attentive_probe_accuracies(*args)
            else:
                accuracies = datamodule_few_label_probe_accuracies(model, datamodule, budget, seeds, split)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        mean, std = mean_std(accuracies)
        for logger in self.loggers:
            logger.log_metrics({f"probe/{head}_acc_{split}": mean, f"probe/{head}_acc_{split}_std": std})
        if self.is_global_zero:
            what = f"{head.capitalize()} probe accuracy on the {split} split, fitted on {budget}"
            pairs = zip(seeds, accuracies, strict=True)
            lines = [f"{what}, label seed {seed}: {accuracy:.4f}" for seed, accuracy in pairs]
            listed = " ".join(map(str, seeds))
            lines.append(f"{what}, mean ± std over label seeds {listed}: {mean:.4f} ± {std:.4f}")
            print("\n".join(lines), flush=True)
        return mean

    def export(
        self,
        model: SSLMethod,
        datamodule: SSLDataModule,
        ckpt_path: str,
        output: str,
        network: ExportedNetwork | None = None,
        format: Layout = "native",
        model_config: dict[str, Any] | None = None,
    ) -> tuple[Path, Path]:
        """Write the encoder of a checkpoint as ``<output>.safetensors`` (a plain state dict) and ``<output>.json``
        (what rebuilds it: :func:`jepa_lightning.load_encoder`).

        Args:
            model: the method of the fit config (its weights come from ``ckpt_path``).
            datamodule: the fit config's datamodule (it tells the model its input spec).
            ckpt_path: a checkpoint written by ``fit`` (loaded with ``weights_only=True``).
            output: where to write, ``encoder.safetensors`` (the JSON goes beside it, ``encoder.json``).
            network: ``target`` (the EMA teacher) or ``student`` (the trained network); default: the one ``embed``
                reads (the teacher of I-JEPA-style methods, the backbone of joint-embedding ones).
            format: ``native`` (the package's modules, any encoder) or ``timm`` (a ViT on image patches in the key
                layout of timm's VisionTransformer; the JSON names the ``timm.create_model`` arguments).
            model_config: the config's model section, kept in the JSON (the command line fills it in).
        """
        load_checkpoint_weights(model, ckpt_path)
        if model.input_spec is None:
            raise ConfigurationError("the model has no input_spec: export needs the fit config's data section")
        network = network or model.embed_network
        metadata = {
            "network": network,
            "method": json.loads(json.dumps(model_config or {"class_path": class_path(type(model))}, default=str)),
            "checkpoint": str(ckpt_path),
        }
        try:
            encoder = model.export_network(network)
            written = save_encoder(encoder, output, model.input_spec, format, metadata)
        except (ValueError, NotImplementedError) as error:
            raise ConfigurationError(str(error)) from None
        if self.is_global_zero:
            print(f"Encoder ({network} network of {type(model).__name__}) written to {written[0]} and {written[1]}")
        return written


def load_checkpoint_weights(model: SSLMethod, ckpt_path: str) -> None:
    """Load the weights of a checkpoint written by ``fit`` into ``model``, with ``weights_only=True`` (a crafted
    pickle runs no code); a missing file, a file that is not such a checkpoint, or one of another model is a
    :class:`ConfigurationError`."""
    if not REMOTE.match(ckpt_path) and not Path(ckpt_path).is_file():
        raise ConfigurationError(f"ckpt_path {ckpt_path!r}: no such file")
    try:
        checkpoint = load_file(ckpt_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise ConfigurationError(
            f"ckpt_path {ckpt_path!r} is not a checkpoint that loads with weights_only=True (what fit writes): "
            f"{str(error).splitlines()[0]}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigurationError(f"ckpt_path {ckpt_path!r} holds no state_dict: it is not a checkpoint of fit")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ConfigurationError(
            f"the checkpoint {ckpt_path!r} does not fit the config's model (pass the config it was trained with): "
            f"{str(error).splitlines()[0]}"
        ) from None


class RunConfig(SaveConfigCallback):
    """Writes ``config.yaml`` into the run's folder on ``fit`` (other commands start no run)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            super().setup(trainer, pl_module, stage)


class JEPALightningCLI(LightningCLI):
    """LightningCLI in subclass mode for any :class:`SSLMethod` on any :class:`SSLDataModule`.

    The datamodule's ``input_spec`` (channels, image size, sample rate, classes, ...) is linked into the
    model, so changing ``--model`` on the same ``--data`` needs no other edit; the number of views flows the
    other way in :meth:`SSLMethod.setup`. ``predict`` writes embeddings through ``--embeddings.output``;
    ``probe`` scores a linear (or, with ``--head attentive``, an attentive) probe on a checkpoint's frozen
    representations; ``export`` writes its encoder as safetensors + JSON (:meth:`SSLTrainer.export`).

    Every ``fit`` gets its own run folder, ``<default_root_dir>/lightning_logs/version_<N>`` (the logger's, or
    the same layout without one), holding its ``config.yaml``, checkpoints and reports, and keeps a
    ``checkpoints/last.ckpt`` (:class:`RunCheckpoint`); ``--ckpt_path last`` continues the newest run in its own
    folder. Checkpoints load with ``weights_only=True``; remote ones only with ``--allow_remote_checkpoint``.
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {
            **LightningCLI.subcommands(),
            "probe": {"model", "datamodule"},
            "export": {"model", "datamodule", "model_config"},
        }

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        """LightningCLI's keyword arguments, plus the config's model section for ``export`` (kept in its JSON)."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand == "export":
            kwargs["model_config"] = self.config[subcommand]["model"].as_dict()
        return kwargs

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
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=500,
            help="write the run's checkpoints/last.ckpt every this many training steps (and at every epoch end), "
            "so a killed run resumed with --ckpt_path last loses at most that many; 0: at epoch ends only. "
            "Applies to the default checkpoint (no ModelCheckpoint among --trainer.callbacks)",
        )
        parser.add_argument(
            "--allow_remote_checkpoint",
            type=bool,
            default=False,
            help="let --ckpt_path be a URL (http://, https://, s3://, ...): downloads and loads a remote file",
        )

    def instantiate_classes(self) -> None:
        """Instantiate as LightningCLI does; a constructor's ValueError (or missing data: FileNotFoundError) becomes
        one :class:`ConfigurationError`."""
        try:
            super().instantiate_classes()
        except (ValueError, FileNotFoundError) as error:
            raise ConfigurationError(str(root_cause(error))) from None

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        config = self._get(self.config_init, "trainer", default={})
        logger = config.get("logger")
        if self.subcommand in ("predict", "probe", "export") and logger in (None, True):
            kwargs["logger"] = False  # they log no metrics: no run folder for them
        resumed = self._checked_ckpt_path()
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]  # one callback or a list
        own_checkpoint = any(isinstance(callback, ModelCheckpoint) for callback in configured)
        runs = self._runs_folder(config)
        run = None
        if self.subcommand == "fit" and runs is not None:
            folders = run_folders(runs)
            run = resumed.parent.parent if resumed is not None else runs / f"version_{max(folders, default=-1) + 1}"
            if logger is False:
                kwargs["default_root_dir"] = str(run)  # log_dir, checkpoints, config.yaml, reports: all in it
        trainer = super().instantiate_trainer(**kwargs)
        if resumed is not None and run is not None and isinstance(trainer.logger, (TensorBoardLogger, CSVLogger)):
            trainer.logger._version = int(run.name.removeprefix("version_"))  # continue in the run's own folder
        if self.subcommand == "fit":
            self._add_fit_callbacks(trainer, own_checkpoint)
        if not is_terminal():  # a log file or a pipe: one line per epoch instead of a redrawn bar
            trainer.callbacks[:] = [
                LineProgressBar() if type(callback) is TQDMProgressBar else callback for callback in trainer.callbacks
            ]
        return trainer

    def _runs_folder(self, config: dict[str, Any]) -> Path | None:
        """Where the runs of this configuration live (None for loggers whose layout is their own)."""
        logger = config.get("logger")
        if logger in (None, True, False):
            return Path(config.get("default_root_dir") or os.getcwd()) / RUNS
        if isinstance(logger, (TensorBoardLogger, CSVLogger)):
            return Path(logger.root_dir)
        return None

    def _checked_ckpt_path(self) -> Path | None:
        """Refuse remote checkpoints unless allowed, load with ``weights_only=True``, and resolve ``last`` to the
        newest run's ``last.ckpt`` (returned; None when not resuming that way)."""
        command = self.config_init.get(str(self.subcommand), self.config_init)
        ckpt_path = command.get("ckpt_path")
        if "weights_only" in command and command.get("weights_only") is None:
            command["weights_only"] = True
        if isinstance(ckpt_path, str) and REMOTE.match(ckpt_path) and not command.get("allow_remote_checkpoint"):
            raise ConfigurationError(
                f"ckpt_path {ckpt_path!r} is remote: loading it downloads a file from the network. Download it "
                "yourself and pass the local path, or add --allow_remote_checkpoint true if you trust its source."
            )
        if self.subcommand != "fit" or ckpt_path != "last":
            return None
        runs = self._runs_folder(self._get(self.config_init, "trainer", default={}))
        if runs is None:
            return None  # Lightning's own "last" lookup
        last = newest_last_checkpoint(runs)
        if last is None:
            rank_zero_info(f"--ckpt_path last: no run with checkpoints/last.ckpt under {runs}; starting a new run")
        else:
            rank_zero_info(f"--ckpt_path last: resuming {last}")
        command["ckpt_path"] = None if last is None else str(last)
        return last

    def _add_fit_callbacks(self, trainer: L.Trainer, own_checkpoint: bool) -> None:
        """The diagnostics (unless ``--diagnostics false``) and, unless the configuration has a checkpoint callback
        of its own, :class:`RunCheckpoint` in place of Lightning's default one."""
        if self._get(self.config_init, "diagnostics"):
            present = {type(callback) for callback in trainer.callbacks}
            # before the checkpoint callbacks, which Lightning keeps last
            trainer.callbacks[:0] = [callback for callback in default_diagnostics() if type(callback) not in present]
        if not own_checkpoint:
            every = self._get(self.config_init, "checkpoint_every_n_steps")
            trainer.callbacks[:] = [
                RunCheckpoint(every) if type(callback) is ModelCheckpoint else callback
                for callback in trainer.callbacks
            ]


def build_cli(args: list[str] | None = None, run: bool = True) -> JEPALightningCLI:
    """The command line as ``jepa-lightning`` builds it; ``run=False`` only instantiates model, data and trainer
    (no subcommand in ``args``), e.g. to use an example config from Python; quiet as :func:`quiet_lightning`."""
    with quiet_lightning():
        return JEPALightningCLI(
            SSLMethod,
            SSLDataModule,
            trainer_class=SSLTrainer,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_callback=RunConfig,
            save_config_kwargs={"overwrite": True},  # only a resumed run writes into a folder that has a config.yaml
            args=args,
            run=run,
        )


def label_seed_list(args: list[str]) -> list[str]:
    """``probe ... --label_seeds 0 1 2`` as jsonargparse reads a list (``--label_seeds=[0, 1, 2]``); other forms and
    other commands pass unchanged."""
    if args[:1] != ["probe"] or "--label_seeds" not in args:
        return args
    start = args.index("--label_seeds") + 1
    end = start
    while end < len(args) and re.fullmatch(r"-?\d+", args[end]):
        end += 1
    if end == start:
        return args
    return [*args[: start - 1], f"--label_seeds=[{', '.join(args[start:end])}]", *args[end:]]


def main(args: list[str] | None = None) -> None:
    """Entry point of ``jepa-lightning`` and ``python -m jepa_lightning``: a refused setting or a diverged run is
    one line on stderr and exit status 1; SIGTERM stops after the step in progress (last.ckpt written), status 143.
    ``configs`` lists or copies the bundled configs, and ``--config NAME`` runs the bundled config of that name."""
    from_command_line = args is None
    args = label_seed_list(resolve_config_arguments(sys.argv[1:] if from_command_line else list(args)))
    if args[:1] == ["configs"]:
        sys.exit(configs_command(args[1:]))
    if from_command_line:  # LightningCLI reads sys.argv (and DDP's launcher re-runs it), so the bare names go there
        sys.argv[1:] = args
    with quiet_lightning():
        try:
            build_cli(None if from_command_line else args)
        except (ConfigurationError, DivergenceError) as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
            sys.exit(1)
        except SIGTERMException:
            sys.exit(SIGTERM_STATUS)


if __name__ == "__main__":
    main()
