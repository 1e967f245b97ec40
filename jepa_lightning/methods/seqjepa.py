"""seq-JEPA: Ghaemi, Muller and Bakhtiari, "seq-JEPA: Autoregressive Predictive Learning of Invariant-Equivariant World
Models", NeurIPS 2025 (official code: hafezgh/seq-jepa)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput, concat_inputs, input_batch_size, model_condition
from jepa_lightning.methods.base import ExportedNetwork, SSLMethod, require_input_spec
from jepa_lightning.methods.joint_embedding import BackboneFactory
from jepa_lightning.nn.backbones import TimmBackbone, backbone_embedding, exported_backbone
from jepa_lightning.nn.ema import EMATeacher


class SeqJEPA(SSLMethod):
    """seq-JEPA: a sequence of views and the actions between them predicts the next view's embedding.

    Each of ``seq_len`` observed views is encoded by the pooled ``backbone`` (``(B, D)``); each embedding is
    concatenated with the projected *relative* action to the next view (the last one gets zeros) and a transformer
    aggregator with a learnable aggregate token summarises the sequence; an MLP predictor, given the aggregate and
    the projected action from the last observed view to the held-out one, predicts the EMA teacher's embedding of
    that view; the loss is one minus their cosine similarity. Actions come from the datamodule as each view's
    absolute action latent, ``batch["cond"]`` ``(B, seq_len + 1, A)`` (``ImageDataModule(view_rotations=...)``: the
    rotation angle), differenced here as the official code does; ``A`` is ``input_spec.condition_dim``.

    Defaults (the official ``scripts/script_transformed_views.sh``): sequence length 3, action projection 128
    (Linear without bias, affine-free BatchNorm), aggregator of 3 post-norm layers with 4 heads (feed-forward 4x,
    dropout 0.1, PyTorch's ``TransformerEncoderLayer``) and a final LayerNorm, predictor ``Linear -> BatchNorm ->
    ReLU -> Linear`` with 1024 hidden units, EMA 0.996 (constant), Adam without weight decay (the script's
    ``--weight-decay 0.001`` only reaches the evaluation probes' optimiser), lr 4e-4 after a linear warmup from 1e-5
    over 20 of 1000 epochs, then a cosine to 1e-5 (``--scheduler``); ResNet-18 backbone (``TimmBackbone``). ``embed``
    is the online backbone's pooled output (the official equivariance probes read it; its classification probe
    reads the aggregate of a sequence, which needs several views and their actions).

    Official code: hafezgh/seq-jepa@73e0550601725de59d2205c5bb192c7f86b04018
    (``seq-jepa/src/models.py::SeqJEPA_Transforms`` with ``learn_act_emb=1``, ``act_cond=1``). Deviations: the
    official ResNet zero-initialises its residual branches' last BatchNorm, timm's backbone here does not; schedules
    per optimizer step (official: per epoch). The cosine after the warmup is kept although the official training
    loop never applies it: it resets every parameter group to ``--lr`` at the start of each epoch after the warmup,
    undoing ``CosineAnnealingLR``'s step, so the official run trains at a constant 4e-4 (``min_lr=4e-4`` gives that
    schedule). The EMA also averages BatchNorm buffers (official: parameters only).
    """

    def __init__(
        self,
        backbone: BackboneFactory | None = None,
        seq_len: int = 3,
        action_dim: int | None = None,
        action_proj_dim: int = 128,
        aggregator_layers: int = 3,
        aggregator_heads: int = 4,
        aggregator_dropout: float = 0.1,
        predictor_hidden: int = 1024,
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 0.996,
        input_spec: InputSpec | None = None,
        lr: float = 4e-4,
        warmup_start_lr: float = 1e-5,
        min_lr: float = 1e-5,
        warmup_fraction: float = 20 / 1000,
        weight_decay: float = 0.0,
        final_weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``backbone=None`` is timm's ResNet-18; ``action_dim=None`` is ``input_spec.condition_dim``; ``kwargs``: the
        remaining optimiser settings of :class:`SSLMethod`."""
        super().__init__(
            input_spec=input_spec,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            **kwargs,
        )
        require_input_spec(type(self).__name__, input_spec)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if action_dim is None:
            input_spec.require("condition_dim")
            action_dim = input_spec.condition_dim
        self.save_hyperparameters(ignore=["backbone"])
        self.seq_len = seq_len
        self.num_views = seq_len + 1
        self.encoder = (backbone or TimmBackbone)(input_spec)
        width = self.encoder.embed_dim
        token_dim = width + action_proj_dim
        if token_dim % aggregator_heads:
            raise ValueError(f"embed_dim + action_proj_dim = {token_dim} must be divisible by {aggregator_heads} heads")
        self.action_proj = nn.Sequential(
            nn.Linear(action_dim, action_proj_dim, bias=False), nn.BatchNorm1d(action_proj_dim, affine=False)
        )
        self.agg_token = nn.Parameter(torch.zeros(1, 1, token_dim))
        layer = nn.TransformerEncoderLayer(
            token_dim, aggregator_heads, 4 * token_dim, dropout=aggregator_dropout, batch_first=True
        )
        self.aggregator = nn.TransformerEncoder(layer, aggregator_layers, enable_nested_tensor=False)
        self.aggregator_norm = nn.LayerNorm(token_dim)
        self.predictor = nn.Sequential(
            nn.Linear(token_dim + action_proj_dim, predictor_hidden, bias=False),
            nn.BatchNorm1d(predictor_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(predictor_hidden, width),
        )
        self.teacher = EMATeacher(self.encoder, ema_momentum, final_ema_momentum)

    def aggregate(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        """The aggregate token ``(B, D + P)`` of observed embeddings ``(B, L, D)`` and their absolute action latents
        ``(B, L, A)``: each token carries the projected action to the next view, the last one zeros."""
        batch, length = embeddings.shape[:2]
        relative = torch.zeros_like(actions)
        relative[:, :-1] = actions[:, 1:] - actions[:, :-1]
        projected = self.action_proj(relative.flatten(0, 1)).unflatten(0, (batch, length))
        projected = torch.cat([projected[:, :-1], torch.zeros_like(projected[:, -1:])], dim=1)
        tokens = torch.cat([self.agg_token.expand(batch, -1, -1), torch.cat([embeddings, projected], -1)], dim=1)
        return self.aggregator_norm(self.aggregator(tokens))[:, 0]

    def sequence_loss(self, views: list[ModelInput], actions: Tensor) -> tuple[Tensor, Tensor]:
        """One minus the cosine similarity between the predicted and the EMA teacher's embedding of the last view,
        from the others and ``actions`` ``(B, L + 1, A)``; also the aggregate."""
        observed = views[:-1]
        embeddings = torch.stack(self.encoder(concat_inputs(observed)).chunk(len(observed)), dim=1)
        with torch.no_grad(), self.teacher.frozen() as teacher:
            target = teacher(views[-1])
        aggregate = self.aggregate(embeddings, actions[:, :-1])
        next_action = self.action_proj(actions[:, -1] - actions[:, -2])
        prediction = self.predictor(torch.cat([aggregate, next_action], dim=-1))
        return 1 - F.cosine_similarity(prediction, target, dim=-1).mean(), aggregate

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        views, actions = batch.get("views"), model_condition(batch)
        if not views or len(views) < self.num_views or actions is None:
            raise ValueError(
                f"SeqJEPA needs batch['views'] with {self.num_views} views and their actions batch['cond'] (B, V, A): "
                "e.g. ImageDataModule(view_rotations=...), num_views left unset"
            )
        loss, _ = self.sequence_loss(views[: self.num_views], actions[:, : self.num_views])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=input_batch_size(views[0]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """The embeddings of the (single) validation images, for the diagnostic callbacks."""
        embeddings = self.embed(batch["x"]).float().flatten(1)
        self.log("val/embedding_std", embeddings.std(dim=0).mean(), batch_size=embeddings.shape[0], sync_dist=True)
        return {"embedding": embeddings}

    def after_optimizer_step(self, step: int) -> None:
        momentum = self.teacher.momentum_at(step, self.total_steps)
        self.teacher.update(self.encoder, momentum)

    @torch.no_grad()
    def embed(self, x: ModelInput) -> Tensor:
        """The online backbone's pooled representation ``(B, D)`` (a :class:`~jepa_lightning.nn.TimmBackbone`'s
        ``readout``)."""
        return backbone_embedding(self.encoder, x)

    def export_network(self, network: ExportedNetwork | None = None) -> nn.Module:
        """The online backbone (``"student"``, default: what :meth:`embed` reads) or the EMA teacher's
        (``"target"``), as :func:`~jepa_lightning.nn.backbones.exported_backbone` writes it."""
        network = self.resolve_network(network)
        return exported_backbone(self.teacher.module if network == "target" else self.encoder)
