"""VJ-VCR: Drozdov, Shwartz-Ziv and LeCun, "Video Representation Learning with Joint-Embedding Predictive
Architectures", 2024 (arXiv:2412.10925)."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.frames import FutureFrameMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.functional import gather_mask_major
from jepa_lightning.tokenizers.video import TubeletTokenizer
from jepa_lightning.tokens import Tokens


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """``KL(N(mean, exp(log_var)) || N(0, I))`` summed over the last dim, averaged over the rest."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(-1).mean()


class VJVCR(JEPA):
    """VJ-VCR: a video JEPA without a teacher; the encoder reads the past frames of a clip ``(B, C, T, H, W)``, the
    predictor outputs the representations of the future frames, and VICReg's variance and covariance terms on the
    representations keep them from collapsing; for :class:`~datamodules.video.VideoDataModule`.

    No official code has been released with the paper; the preset follows its description. The nearest released
    code is Meta's EB-JEPA library (facebookresearch/eb_jepa@966e61e9285b3a876f49b9774e9720d9a99a7925,
    ``examples/video_jepa/``, ``eb_jepa/jepa.py::JEPA.unroll``, ``eb_jepa/losses.py``; arXiv 2602.03604, LeCun the
    only shared author): a video JEPA with VICReg-style variance-covariance terms and no teacher on moving MNIST,
    which cites neither the paper nor VJ-VCR and has no latent variable, so it is a reference, not the recipe; where
    it differs is listed below.

    One encoder for past and future, no EMA teacher: the targets are the same encoder's output under
    stop-gradient (the library's ``target_encoder="student"``). Context: the tubelets of the first half of the clip;
    target: every tubelet of the second half, one group (:class:`~jepa_lightning.masks.FutureFrameMaskSampler`);
    loss: mean squared error to the raw (not normalised) representations plus ``regularizer_weight`` x (VICReg's
    variance hinge + 0.04 x its covariance penalty, VICReg's 25 : 1) on every context token (``regularizer="vicreg"``,
    ``regularizer_input="tokens"``). Tokens: tubelets of ``tubelet_size`` frames x ``patch_size`` pixels
    (:class:`~jepa_lightning.tokenizers.TubeletTokenizer`, 3-D sin-cos positions), V-JEPA's by default.

    Latent variable (``latent_dim > 0``; off by default): the paper's way to let the predictor represent an uncertain
    future. Here ``z`` (``latent_dim`` values per target group) is inferred from the target tubelets' embeddings (the
    tokenizer's output, detached, averaged over the group) by one linear layer giving a Gaussian's mean and
    log-variance; the predictor takes a sample of it (its mean in eval mode) concatenated to every mask token
    (``predictor_conditioning="concat"``), and ``latent_weight`` x ``KL(q(z) || N(0, I))`` is added to the loss, the
    bottleneck that keeps ``z`` from carrying the whole future. The embeddings never use ``z``.

    Deviations:

    - the encoder is the library's ViT over tubelets; the paper's encoders are the authors' own networks for each
      data set (EB-JEPA's: a per-frame ``ResNet5``, predictor a ``ResUNet`` on two concatenated past frames), and the
      paper's loss weights and latent-variable settings are not given in released code, so ``regularizer_weight``
      (1), ``latent_weight`` (0.01) and the latent encoder are the library's choices.
    - targets: the whole clip is encoded and the future tokens read out (as in every library JEPA), so a target
      token has attended to the past frames; the paper encodes the future frames on their own.
    - the variance-covariance terms act on the context tokens (the shared encoder's output on the past); targets
      are taken under stop-gradient.
    - against EB-JEPA's video JEPA (kept because it is not VJ-VCR's code and each choice needs a core mechanism the
      library lacks): its VC terms act on an MLP projector's output (``dstc-4dstc-4dstc`` with BatchNorm) at every
      spatial location of every frame, past and future, with the covariance term the mean of the squared
      off-diagonals (ours VICReg's sum / D) and weights 10 (variance) and 100 (covariance), so ours equals its loss
      with ``std_coeff=1, cov_coeff=0.04 (D - 1)``; its prediction MSE is taken on the projected representations,
      with gradient into the targets (no stop-gradient), rolled out 4 steps (the context frames re-fed) and
      averaged over the whole clip; Adam at a constant 1e-3, batch 64, 50 epochs.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_size: int = 16,
        tubelet_size: int = 2,
        predictor_dim: int = 384,
        predictor_depth: int = 6,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "none",
        loss: RegressionLoss = "mse",
        target_encoder: Literal["ema", "student", "fixed"] = "student",
        regularizer: Literal["none", "sigreg", "vicreg"] = "vicreg",
        regularizer_weight: float = 1.0,
        regularizer_input: Literal["pooled", "tokens"] = "tokens",
        latent_dim: int = 0,
        latent_weight: float = 0.01,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is ViT-S; ``mask_sampler=None`` the first half of the clip as context, the second half as
        target; ``latent_dim`` > 0 adds the latent variable; ``kwargs``: the other arguments of :class:`JEPA`."""
        if latent_dim < 0:
            raise ValueError(f"latent_dim must be >= 0 (0: no latent variable), got {latent_dim}")
        if latent_weight < 0:
            raise ValueError(f"latent_weight must be >= 0, got {latent_weight}")
        if latent_dim and kwargs.get("predictor_conditioning", "none") != "none":
            raise ValueError("latent_dim > 0 conditions the predictor on z: leave predictor_conditioning 'none'")
        if latent_dim:
            kwargs.update(predictor_conditioning="concat", predictor_condition_dim=latent_dim)
        encoder = encoder or TransformerEncoder.from_size("small")
        super().__init__(
            tokenizer=partial(TubeletTokenizer, patch_size=patch_size, tubelet_size=tubelet_size, init=encoder.init),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            mask_sampler=mask_sampler or FutureFrameMaskSampler(),
            target_norm=target_norm,
            loss=loss,
            target_encoder=target_encoder,
            regularizer=regularizer,
            regularizer_weight=regularizer_weight,
            regularizer_input=regularizer_input,
            input_spec=input_spec,
            **kwargs,
        )
        self.latent_dim = latent_dim
        self.latent_weight = latent_weight
        self.latent_encoder = nn.Linear(encoder.embed_dim, 2 * latent_dim) if latent_dim else None

    def prediction_condition(
        self, tokens: Tokens, target_idx: Tensor, cond: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Without a latent variable, the batch's ``cond``; with one, ``z`` ``(B, M, latent_dim)`` per target group
        and its weighted KL penalty."""
        if self.latent_encoder is None:
            return cond, None
        if cond is not None:
            raise ValueError("VJVCR with a latent variable conditions the predictor on z: the batch's cond would clash")
        batch, groups, _ = target_idx.shape
        pooled = gather_mask_major(tokens.features.detach(), target_idx).mean(dim=1)  # (M * B, D)
        mean, log_var = self.latent_encoder(pooled).view(groups, batch, 2, self.latent_dim).unbind(2)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp() if self.training else mean
        return z.transpose(0, 1), self.latent_weight * gaussian_kl(mean, log_var)
