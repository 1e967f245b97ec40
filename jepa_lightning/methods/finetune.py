"""Supervised fine-tuning of a pretrained encoder: a head on its embeddings, layer-wise learning-rate decay, an
optional frozen warm-up, label smoothing and mixup (MAE / BEiT's fine-tuning recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from jsonargparse import ArgumentParser
from torch import Tensor, nn

from jepa_lightning.bundled import resolve_config
from jepa_lightning.export import REMOTE, load_encoder
from jepa_lightning.inputs import GraphInput, InputSpec, ModelInput, TabularInput, input_batch_size, model_input
from jepa_lightning.methods.base import ExportedNetwork, SSLMethod, no_weight_decay, require_input_spec
from jepa_lightning.nn.backbones import TokenEncoder

#: Modalities whose inputs mixup may interpolate (dense tensors whose convex combinations are inputs of the same
#: kind); tables (categorical codes), point clouds (unordered points) and padded series are left out.
MIXUP_MODALITIES = ("images", "video", "audio", "time_series", "ecg", "eeg")

Task = Literal["auto", "classification", "regression"]


def layer_id(name: str, num_layers: int) -> int:
    """The depth of encoder parameter ``name`` (a :class:`TokenEncoder`'s) for layer-wise decay, BEiT / MAE's rule:
    the tokenizer (patch embedding, positions) 0, transformer block ``i`` ``i + 1``, the rest (final norm, output
    head) ``num_layers`` (= blocks + 1)."""
    if name.startswith("tokenizer."):
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    return num_layers


def pretrained_encoder(config: str, ckpt_path: str, spec: InputSpec, network: ExportedNetwork | None) -> nn.Module:
    """The encoder (:meth:`SSLMethod.export_network`) of the method of a fit ``config`` with the weights of its
    checkpoint ``ckpt_path`` (loaded with ``weights_only=True``); ``config`` may name a bundled config."""
    config = resolve_config(config)
    for path in (config, ckpt_path):
        if REMOTE.match(path):
            raise ValueError(f"{path!r} is remote: download it and pass the local path")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such file: {path}")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(SSLMethod, "model", required=True)
    section = (yaml.safe_load(Path(config).read_text()) or {}).get("model")
    if section is None:
        raise ValueError(f"{config} has no model section: pass the config the checkpoint was trained with")
    parsed = parser.parse_object({"model": section})
    parsed.model.init_args.input_spec = spec
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    method = instantiate(parsed).model
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    method.load_state_dict(checkpoint["state_dict"])
    return method.export_network(network)


class FineTune(SSLMethod):
    """Fine-tunes a pretrained encoder with a head on its embeddings, on any labelled datamodule.

    The encoder comes from an exported file (``encoder``: the ``.safetensors`` of ``jepa-lightning export``, rebuilt by
    :func:`~jepa_lightning.load_encoder`) or from a fit checkpoint (``pretrained_config``, the fit config, and
    ``ckpt_path``; ``network`` as for export). The head is a linear layer on the encoder's embedding, standardised
    first by a BatchNorm without affine parameters (``head_norm``, MAE's linear-probing head; the package's linear
    probe standardises its features too) and passed through ``head_dropout``: a classifier over
    ``input_spec.num_classes`` classes trained with cross-entropy (``label_smoothing``), or, with
    ``task="regression"`` (``"auto"``: when the data has no classes), ``num_outputs`` values trained with the mean
    squared error. Samples without a label (``y = -1``; NaN for regression) are left out of the loss; graph items
    (:class:`~jepa_lightning.inputs.GraphInput`: nodes or whole graphs) keep the (sub)graph message passing sees.

    Optimisation is :class:`SSLMethod`'s (AdamW, warmup + cosine, no decay on biases and norms) with layer-wise
    learning-rate decay (``layer_decay`` < 1, BEiT / MAE: block ``i`` of an ``L``-block transformer trains at
    ``layer_decay ** (L - i)`` times the rate, the tokenizer at ``layer_decay ** (L + 1)``, the final norm and the head
    at the full rate; other encoders, a GAT or a CNN, need ``layer_decay=1``) and ``freeze_epochs`` epochs of a frozen
    encoder first (eval mode: no dropout, no statistics updated; only the head trains), then everything.
    ``mixup_alpha`` > 0 mixes pairs of samples and their one-hot labels (weights from Beta(alpha, alpha), one per
    batch, as MAE's ``--mixup``) for the modalities in :data:`MIXUP_MODALITIES`; off by default.

    Defaults follow MAE's fine-tuning (facebookresearch/mae ``main_finetune.py``: layer decay 0.75, label smoothing
    0.1, weight decay 0.05, warmup then cosine) at this package's small scale (lr 1e-3, no mixup); MAE's head is
    initialised with a trunc-normal of std 2e-5, kept here (a near-zero head leaves the encoder's first gradients to
    the labels, not to a random projection).
    """

    def __init__(
        self,
        encoder: str | None = None,
        pretrained_config: str | None = None,
        ckpt_path: str | None = None,
        network: ExportedNetwork | None = None,
        task: Task = "auto",
        num_outputs: int | None = None,
        layer_decay: float = 0.75,
        freeze_epochs: int = 0,
        label_smoothing: float = 0.1,
        mixup_alpha: float = 0.0,
        head_dropout: float = 0.0,
        head_norm: bool = True,
        input_spec: InputSpec | None = None,
        lr: float = 1e-3,
        warmup_start_lr: float = 0.0,
        warmup_fraction: float = 0.1,
        weight_decay: float = 0.05,
        final_weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the remaining optimiser settings of :class:`SSLMethod` (``min_lr``, ``betas``, ...)."""
        super().__init__(
            input_spec=input_spec,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            **kwargs,
        )
        require_input_spec(type(self).__name__, input_spec)
        if (encoder is None) == (pretrained_config is None):
            raise ValueError(
                "FineTune takes the encoder from one place: encoder (an exported file) or "
                "pretrained_config with ckpt_path (a fit config and its checkpoint)"
            )
        if not 0.0 < layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        if freeze_epochs < 0 or not 0.0 <= label_smoothing < 1.0 or mixup_alpha < 0:
            raise ValueError(
                f"need freeze_epochs >= 0, 0 <= label_smoothing < 1, mixup_alpha >= 0; got {freeze_epochs}, "
                f"{label_smoothing}, {mixup_alpha}"
            )
        if task == "auto":
            task = "classification" if input_spec.num_classes else "regression"
        if task == "classification":
            input_spec.require("num_classes")
        if mixup_alpha > 0 and (task != "classification" or input_spec.modality not in MIXUP_MODALITIES):
            raise ValueError(
                f"mixup mixes inputs and one-hot labels: it needs classification on one of {MIXUP_MODALITIES}, "
                f"not {task} on {input_spec.modality!r}"
            )
        self.save_hyperparameters()
        if encoder is not None:
            self.encoder = load_encoder(encoder).train()
        else:
            if ckpt_path is None:
                raise ValueError("pretrained_config needs ckpt_path, the checkpoint of that fit")
            self.encoder = pretrained_encoder(pretrained_config, ckpt_path, input_spec, network)
        if layer_decay < 1.0 and not isinstance(self.encoder, TokenEncoder):
            raise ValueError(
                f"layer_decay < 1 needs a transformer encoder (a TokenEncoder), not {type(self.encoder).__name__}"
            )
        self.task = task
        outputs = input_spec.num_classes if task == "classification" else (num_outputs or 1)
        width = self.embedding_dim()
        norm = nn.BatchNorm1d(width, affine=False, eps=1e-6) if head_norm else nn.Identity()
        self.head = nn.Sequential(norm, nn.Dropout(head_dropout), nn.Linear(width, outputs))
        nn.init.trunc_normal_(self.head[2].weight, std=2e-5)
        nn.init.zeros_(self.head[2].bias)
        self.layer_decay = layer_decay
        self.freeze_epochs = freeze_epochs
        self.label_smoothing = label_smoothing
        self.mixup_alpha = mixup_alpha

    def embedding_dim(self) -> int:
        """Width of the encoder's embeddings: from one example input when the spec fixes the input's shape, else
        the encoder's ``embed_dim`` (readouts that keep the width: mean, sum; twice it for max_mean)."""
        spec = self.input_spec
        example: ModelInput | None = None
        if spec.image_size is not None and spec.channels is not None:
            frames = () if spec.frames is None else (spec.frames,)  # video clips: (B, C, T, H, W)
            example = torch.zeros(2, spec.channels, *frames, *spec.image_size)
        elif spec.num_numeric is not None and spec.categories is not None:
            example = TabularInput(torch.zeros(2, spec.num_numeric), torch.zeros(2, len(spec.categories)).long())
        elif spec.length is not None and spec.channels is not None:
            example = torch.zeros(2, spec.channels, spec.length)
        if example is not None:
            mode = self.encoder.training
            with torch.no_grad():
                width = self.encoder.eval()(example).shape[-1]
            self.encoder.train(mode)
            return width
        readout = self.encoder.readout if isinstance(self.encoder, TokenEncoder) else "mean"
        if readout == "max_mean":  # the maximum and the mean of the tokens, concatenated
            return 2 * self.encoder.embed_dim
        if readout not in ("mean", "sum"):
            raise ValueError(
                f"the width of readout {readout!r} depends on the input's shape, which the data's spec does not fix; "
                "fine-tune an encoder with readout 'mean', 'sum' or 'max_mean'"
            )
        return self.encoder.embed_dim

    # -- optimisation -------------------------------------------------------------------------------------
    def lr_scale(self, name: str) -> float:
        """Learning-rate multiplier of parameter ``name`` (of this module) under layer-wise decay."""
        if self.layer_decay == 1.0 or not name.startswith("encoder."):
            return 1.0
        num_layers = len(self.encoder.encoder.blocks) + 1
        return self.layer_decay ** (num_layers - layer_id(name.removeprefix("encoder."), num_layers))

    def parameter_groups(self) -> list[dict[str, Any]]:
        """One group per (learning-rate scale, decayed or not), each with its own ``lr`` (``lr`` x scale), which the
        warmup + cosine schedule then multiplies."""
        groups: dict[tuple[float, bool], dict[str, Any]] = {}
        for name, parameter in self.named_parameters():
            if not parameter.requires_grad:
                continue
            scale, decayed = self.lr_scale(name), not no_weight_decay(name, parameter)
            group = groups.setdefault(
                (scale, decayed),
                {
                    "params": [],
                    "lr": self.lr * scale,
                    "lr_scale": scale,
                    "weight_decay": self.weight_decay if decayed else 0.0,
                    "decayed": decayed,
                },
            )
            group["params"].append(parameter)
        return list(groups.values())

    # -- frozen warm-up ------------------------------------------------------------------------------------
    @property
    def encoder_frozen(self) -> bool:
        return self._trainer is not None and self.trainer.current_epoch < self.freeze_epochs

    def on_train_epoch_start(self) -> None:
        """During the first ``freeze_epochs`` epochs the encoder gets no gradient and runs in eval mode."""
        frozen = self.encoder_frozen
        self.encoder.requires_grad_(not frozen)
        self.encoder.train(not frozen)

    # -- steps ----------------------------------------------------------------------------------------------
    def forward(self, x: ModelInput) -> Tensor:
        """Head outputs ``(B, classes or outputs)``."""
        if self.encoder_frozen and self.training:
            with torch.no_grad():
                embedding = self.encoder(x)
        else:
            embedding = self.encoder(x)
        return self.head(embedding)

    def labelled(self, y: Tensor) -> Tensor:
        """Which samples have a label (classes >= 0; finite regression targets)."""
        return y >= 0 if self.task == "classification" else torch.isfinite(y).reshape(y.shape[0], -1).all(1)

    def mixup(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mixed inputs and soft targets (label-smoothed one-hot labels mixed with the same weight)."""
        classes = self.input_spec.num_classes
        targets = F.one_hot(y, classes).float() * (1 - self.label_smoothing) + self.label_smoothing / classes
        weight = float(np.random.beta(self.mixup_alpha, self.mixup_alpha))
        order = torch.randperm(x.shape[0], device=x.device)
        return weight * x + (1 - weight) * x[order], weight * targets + (1 - weight) * targets[order]

    def loss(self, outputs: Tensor, y: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(outputs, y, label_smoothing=self.label_smoothing)
        return F.mse_loss(outputs, y.reshape(outputs.shape).to(outputs.dtype))

    def select(self, x: ModelInput, keep: Tensor) -> ModelInput:
        """The items of ``x`` where ``keep``; graph items keep the (sub)graph that message passing sees around the
        kept nodes (node level), or only the kept graphs' nodes and edges, renumbered (graph level)."""
        if isinstance(x, GraphInput):
            if x.batch is None:
                return x._replace(seeds=x.seeds[keep])
            nodes = keep[x.batch]
            position = torch.cumsum(nodes, 0) - 1  # new index of each kept node
            graph = torch.cumsum(keep, 0) - 1  # new index of each kept graph
            edges = x.edge_index[:, nodes[x.edge_index[0]]]
            return GraphInput(x.x[nodes], position[edges], graph[keep], graph[x.batch[nodes]])
        return type(x)(*(part[keep] for part in x)) if isinstance(x, tuple) else x[keep]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x, y = model_input(batch), batch["y"]
        keep = self.labelled(y)
        x, y = self.select(x, keep), y[keep]
        if self.mixup_alpha > 0 and isinstance(x, Tensor):
            x, targets = self.mixup(x, y)
            loss = torch.sum(-targets * F.log_softmax(self(x), dim=-1), dim=-1).mean()
        else:
            loss = self.loss(self(x), y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=input_batch_size(x))
        return loss

    def evaluate(self, batch: dict[str, Any], stage: str) -> dict[str, Tensor]:
        x, y = model_input(batch), batch["y"]
        keep = self.labelled(y)
        embedding = self.encoder(x)
        outputs, y = self.head(embedding)[keep], y[keep]
        size = int(keep.sum())
        if size:
            self.log(f"{stage}/loss", self.loss(outputs, y), prog_bar=True, batch_size=size, sync_dist=True)
            if self.task == "classification":
                accuracy = (outputs.argmax(-1) == y).float().mean()
                self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=size, sync_dist=True)
            else:
                error = (outputs - y.reshape(outputs.shape)).abs().mean()
                self.log(f"{stage}/mae", error, prog_bar=True, batch_size=size, sync_dist=True)
        return {"embedding": embedding.detach().float().flatten(1)}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate(batch, "test")

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The encoder's embedding (what probes read), ``(B, D)``."""
        return self.encoder(x)

    def export_network(self, network: ExportedNetwork | None = None) -> nn.Module:
        """The fine-tuned encoder (without the head): ``jepa-lightning export`` writes it like a pretrained one."""
        if network not in (None, "student"):
            raise ValueError(f"FineTune has one encoder, the one it trains (network 'student'), not {network!r}")
        return self.encoder
