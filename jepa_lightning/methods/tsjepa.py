"""TS-JEPA: Ennadir, Golkar and Sarra, "Joint Embeddings Go Temporal", 2025 (official code: Sennadir/TS_JEPA)."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss, TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.series import RandomPatchMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import AttentionRule, TransformerEncoder
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer, PatchEmbedding


class TSJEPA(JEPA):
    """TS-JEPA: patches of a series as tokens, random patch masks, EMA teacher; ``x`` is ``(B, C, T)`` from the
    time-series datamodule.

    Defaults, the official recipe (Sennadir/TS_JEPA@830ee5c3a7d4e85623bd5a07992732be7fda9bc2: ``pretrain.py``,
    ``config/config_pretrain.py``, ``src/models/{tokenizer,encoder,predictor}.py``,
    ``src/data_loaders/data_class.py``): non-overlapping patches of ``patch_length`` = 32 samples, each tokenised by
    ``Conv1d(1, D, kernel 3, stride 3)``, its ``(D, 10)`` output flattened channel-major, then ``Linear(10 D, D)``
    (:class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer` with ``embedding="conv"``; the conv keeps PyTorch's
    init, the linear layers are truncated-normal 0.02 as in the official ``init_weights``), 1-D sin-cos positions,
    no instance normalisation; a random 70% of the patches per sample are the targets
    (:class:`~jepa_lightning.masks.RandomPatchMaskSampler`); an L1 loss on the layer-normed (no affine) outputs of
    the EMA teacher, whose momentum rises linearly 0.998 -> 1 over 1.25 times the run and is stepped once per
    epoch (``ema_interval="epoch"``; the teacher moves after every step); encoder 384 wide, 3 layers, 6 heads;
    predictor 128 wide, 1 layer, 2 heads; AdamW at lr 6e-5 with weight decay 0.01 on every weight, no warmup.

    Data, set on the datamodule (:class:`~datamodules.time_series.TimeSeriesDataModule`): the official code reads
    one variable (the weather set's ``OT``), z-scores it with the data set's mean and standard deviation
    (``normalize="dataset"``), cuts it into windows of 320 samples (``window=320``: 10 patches) and trains on
    batches of 32 (``batch_size=32``). Multivariate input: by default a token is one time patch of every channel,
    ``Conv1d(C, D, 3, stride 3)`` over the patch's ``C`` channels (for ``C = 1`` the official tokenizer), and all
    tokens attend to each other. ``channel_independent=True`` instead makes every channel's patches tokens of a
    ``(C, P)`` grid with 2-D sin-cos positions (PatchTST style; the encoder and predictor then attend within a
    channel, ``attention="same_channel"``, with weights shared by all channels), and ``instance_norm=True`` adds
    RevIN-style normalisation of each (sample, channel) (not inverted: targets are latent); ``embedding="linear"``
    embeds a patch by one linear map. ``crop=True`` lets series whose length is not a multiple of ``patch_length``
    drop their trailing samples instead of failing. ``min_patches`` (off by default; the official code has one
    series length) shortens the patches of short series to ``length // min_patches`` samples (at least
    ``conv_kernel``), the length read from the datamodule's batch width (its ``length`` or ``window``), so that a
    24-sample series still gives context and target tokens; longer series keep ``patch_length``.

    The example config (``tsjepa_gunpoint.yaml``) draws 50% of the patches as targets
    (``mask_sampler=RandomPatchMaskSampler(0.5)``) where the recipe draws 70%: at 200 steps on small UCR sets outside
    the quality panel (OSULeaf, ACSF1, PickupGestureWiimoteZ) the trained probe gained more over its random
    initialisation with the smaller target share.

    Evaluation: the official code sums the student's tokens of a frozen, unmasked pass into a trained linear
    decoder (``eval_forecast_last_pred.py``); this library's probes read the target network's ``readout`` (the
    mean of the tokens by default, which a standardised linear probe sees as the sum up to a constant factor).

    Deviations from the official code, kept as this library's choices: the learning rate follows the base warmup
    + cosine schedule (no warmup here, cosine from 6e-5 to 3e-5) where the official ``LinearLR`` falls linearly to
    half of it, stepped once per epoch; biases and norm scales are not decayed; the official target count is
    ``int(0.7 P)``, ours ``round(0.7 P)`` (equal at the official 10 patches); the dataset statistics are those of
    the training file (population standard deviation), where the official code takes those of its whole CSV,
    validation and test rows included; the encoder's default init (``init="ijepa"``) also divides the blocks'
    residual output projections by ``sqrt(2 * layer)`` and its LayerNorms use eps 1e-6, where the official
    ``init_weights`` leaves them and its LayerNorms use 1e-5.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 32,
        embedding: PatchEmbedding = "conv",
        conv_kernel: int = 3,
        channel_independent: bool = False,
        instance_norm: bool = False,
        crop: bool = False,
        min_patches: int | None = None,
        predictor_dim: int = 128,
        predictor_depth: int = 1,
        predictor_heads: int = 2,
        predictor_attention: AttentionRule | None = None,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "layer_norm",
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.998,
        ema_horizon: float = 1.25,
        ema_interval: Literal["step", "epoch"] = "epoch",
        lr: float = 6e-5,
        min_lr: float = 3e-5,
        warmup_fraction: float = 0.0,
        weight_decay: float = 0.01,
        final_weight_decay: float | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is 384 x 3 with 6 heads (attention within a channel when ``channel_independent``);
        ``predictor_attention=None`` is the encoder's rule; ``mask_sampler=None`` the random 70% per sample (per
        (sample, channel) when ``channel_independent``); ``kwargs``: the arguments of :class:`JEPA`."""
        attention: AttentionRule = "same_channel" if channel_independent else "full"
        encoder = encoder or TransformerEncoder(384, 3, 6, attention=attention)
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer,
                patch_length=patch_length,
                channel_independent=channel_independent,
                instance_norm=instance_norm,
                crop=crop,
                min_patches=min_patches,
                embedding=embedding,
                conv_kernel=conv_kernel,
            ),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_heads=predictor_heads,
            predictor_attention=predictor_attention or encoder.attention,
            mask_sampler=mask_sampler or RandomPatchMaskSampler(0.7, share_channels=not channel_independent),
            target_norm=target_norm,
            loss=loss,
            ema_momentum=ema_momentum,
            ema_horizon=ema_horizon,
            ema_interval=ema_interval,
            lr=lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            input_spec=input_spec,
            **kwargs,
        )
