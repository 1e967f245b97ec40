"""The generic JEPA LightningModule and its presets."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from jepa_lightning.losses.latent import RegressionLoss, TargetNorm, latent_regression, normalize_targets
from jepa_lightning.masks.base import MaskSampler, mask_generator
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.methods.base import SSLMethod
from jepa_lightning.nn.backbones import TokenBackbone
from jepa_lightning.nn.ema import EMATeacher
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major
from jepa_lightning.nn.predictor import JEPAPredictor
from jepa_lightning.tokenizers.base import InputSpec, TokenizerFactory
from jepa_lightning.tokenizers.images import PatchTokenizer2d

#: Builds a predictor for the encoder width (first constructor argument ``embed_dim``).
PredictorFactory = Callable[[int], nn.Module]

#: Random-stream ids, so training and validation masks never coincide.
TRAIN_STREAM, VAL_STREAM = 0, 1


class JEPA(SSLMethod):
    """Joint-Embedding Predictive Architecture, modality-agnostic.

    The student (tokenizer + encoder) sees only the context tokens chosen by ``mask_sampler``; the
    predictor predicts the representations of the target tokens; the targets come from an EMA teacher that
    sees every token, normalised by ``target_norm``, and are regressed with ``loss``. Every part is a
    constructor argument, so a LightningCLI config can swap it. Defaults follow I-JEPA.

    Masks are drawn from a generator seeded by ``(mask_seed, optimizer step, micro-batch, rank)``: a resumed
    run draws the same masks, ranks draw different ones.
    """

    def __init__(
        self,
        tokenizer: TokenizerFactory,
        encoder: TransformerEncoder,
        predictor: PredictorFactory,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "smooth_l1",
        loss_beta: float = 1.0,
        ema_momentum: float = 0.996,
        final_ema_momentum: float = 1.0,
        ema_horizon: float = 1.0,
        mask_seed: int = 0,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` are the optimiser settings of :class:`SSLMethod` (``lr``, ``weight_decay``, ...)."""
        super().__init__(input_spec=input_spec, **kwargs)
        if input_spec is None:
            raise ValueError(
                f"{type(self).__name__} needs input_spec (what the data looks like): the CLI links it from the "
                "datamodule; in Python pass input_spec=datamodule.input_spec."
            )
        self.save_hyperparameters(ignore=["encoder", "tokenizer", "predictor", "mask_sampler"])
        self.student = TokenBackbone(tokenizer(input_spec, encoder.embed_dim), encoder)
        self.predictor = predictor(encoder.embed_dim)
        self.teacher = EMATeacher(self.student, ema_momentum, final_ema_momentum, ema_horizon)
        self.mask_sampler = mask_sampler or MultiBlockMaskSampler()
        self.target_norm = target_norm
        self.loss_kind = loss
        self.loss_beta = loss_beta
        self.mask_seed = mask_seed

    # -- the objective ------------------------------------------------------------------------------------
    def masked_prediction(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of predicting teacher representations of masked targets from the context, plus diagnostics."""
        tokens = self.student.tokenizer(x)
        context_idx, target_idx = self.mask_sampler(
            tokens.layout, x.shape[0], generator, x.device, progress=self.progress
        )
        context = self.student.encoder(tokens, keep=context_idx)
        prediction = self.predictor(context, tokens.layout, context_idx, target_idx)
        with torch.no_grad():
            target = normalize_targets(self.teacher(x), self.target_norm)
            target = gather_mask_major(target, target_idx)
        loss = latent_regression(prediction, target, self.loss_kind, self.loss_beta)
        stats = {
            "prediction_std": prediction.detach().float().std(dim=(0, 1)).mean(),
            "target_std": target.float().std(dim=(0, 1)).mean(),
        }
        return loss, stats

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        micro_batch = self.trainer.global_step * accumulation + batch_idx % accumulation
        x = batch["x"]
        generator = mask_generator(self.mask_seed, micro_batch, self.global_rank, x.device, TRAIN_STREAM)
        loss, stats = self.masked_prediction(x, generator)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=x.shape[0])
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, on_step=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["x"]
        generator = mask_generator(self.mask_seed, batch_idx, self.global_rank, x.device, VAL_STREAM)
        loss, _ = self.masked_prediction(x, generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=x.shape[0], sync_dist=True)
        return loss

    def after_optimizer_step(self, step: int) -> None:
        momentum = self.teacher.momentum_at(step, self.total_steps)
        self.teacher.update(self.student, momentum)
        self.log("train/ema_momentum", momentum, on_step=True, on_epoch=False)

    # -- embeddings ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """Average-pooled representation of all tokens from the EMA teacher (I-JEPA evaluates the target encoder)."""
        return self.teacher(x).mean(dim=1)


class IJEPA(JEPA):
    """I-JEPA (Assran et al., 2023): images as 2-D patch grids, multi-block masks, EMA target encoder.

    Paper defaults: ViT-B/16 encoder here (the paper's headline model is ViT-H/14; pass a larger
    ``encoder``), predictor 384 wide and 6 deep with the encoder's head count (unconfirmed for ViT-B),
    4 targets of scale 0.15-0.2 and aspect 0.75-1.5, context 0.85-1.0, smooth-L1 (beta 1; the paper writes
    L2, the official code uses smooth-L1) on layer-normed teacher outputs, EMA 0.996 -> 1, AdamW with the
    warmup + cosine schedule and weight decay rising 0.04 -> 0.4. Augmentation (random resized crop,
    scale 0.3-1) is the datamodule's default. Small images: see ``examples/configs/ijepa_digits.yaml``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        predictor_heads: int | None = None,
        mask_sampler: MaskSampler | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        encoder = encoder or TransformerEncoder.from_size("base")
        super().__init__(
            tokenizer=partial(PatchTokenizer2d, patch_size=patch_size),
            encoder=encoder,
            predictor=partial(
                JEPAPredictor,
                predictor_dim=predictor_dim,
                depth=predictor_depth,
                num_heads=predictor_heads or encoder.num_heads,
            ),
            mask_sampler=mask_sampler,
            input_spec=input_spec,
            **kwargs,
        )
