"""CNN-JEPA: Kalapos and Gyires-Tóth, "CNN-JEPA: Self-Supervised Pretraining Convolutional Neural Networks Using
Joint Embedding Predictive Architecture", arXiv:2408.07514, 2024 (official code: kaland313/CNN-JEPA)."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import TargetNorm
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.combinators import RandomChoiceMaskSampler
from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.masks.random import RandomMaskSampler
from jepa_lightning.methods.base import require_input_spec
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.dense import ConvPredictor, DenseEncoderFactory, SparseResNet
from jepa_lightning.tokenizers.images import ImageCellTokenizer


def cnnjepa_masks(
    multi_block_probability: float = 0.75, random_ratio: float = 0.6, min_context: int = 5
) -> RandomChoiceMaskSampler:
    """CNN-JEPA's mixed masks, one kind per batch: with ``multi_block_probability`` I-JEPA's multi-block masks (4
    target blocks of scale 0.15-0.2 and aspect 0.75-1.5, the context the whole grid minus the targets, more than
    ``min_context`` cells, padded rather than truncated), otherwise random masks of ``random_ratio`` targets."""
    multi_block = MultiBlockMaskSampler(
        num_targets=4,
        target_scale=(0.15, 0.2),
        target_aspect=(0.75, 1.5),
        context_scale=(1.0, 1.0),
        min_context=min_context,
        pad_context=True,
    )
    return RandomChoiceMaskSampler(
        [multi_block, RandomMaskSampler(random_ratio)], [multi_block_probability, 1 - multi_block_probability]
    )


class CNNJEPA(JEPA):
    """CNN-JEPA: I-JEPA for convolutional networks, with a sparse ResNet encoder and a convolutional predictor.

    The student, a :class:`~jepa_lightning.nn.SparseResNet` without global pooling, sees only the pixels of its
    context cells (cells of the final feature map: 32 x 32 pixels, a 7 x 7 grid at 224 pixels) through sparse
    convolutions (SparK's semantics: masked positions zeroed and kept empty through every stage, batch norms over the
    visible positions); the :class:`~jepa_lightning.nn.ConvPredictor` fills every other cell of its feature map with
    a learned mask token and runs 3 x (depthwise 3 x 3 + pointwise 1 x 1 convolution + BatchNorm + ReLU) at the
    encoder's width; no projector. The EMA teacher encodes the whole image densely; predictions and targets are
    L2-normalised per cell (``target_norm="l2"``; the predictor normalises its output) and compared with smooth-L1
    (beta 1) at the target cells. Masks (:func:`cnnjepa_masks`): per batch, 75% I-JEPA multi-block, 25% random with
    60% of the cells as targets.

    Defaults (the official ``pretrain/configs/ijepacnn_imagenet100.yaml``, ImageNet-100, batch 128): ResNet-50; AdamW,
    lr 0.01, weight decay 0.01 constant, linear warmup from 0 over 10 of 201 epochs, then a cosine to 1e-5 (lightly's
    ``CosineWarmupScheduler``, end value 0.001); EMA momentum 0.996 -> 1 along a half cosine, stepped once per epoch;
    the embeddings are the teacher's cells, averaged (the official online evaluation reads the momentum backbone).
    ``encoder`` is a factory of the data's spec (in configs: ``class_path: jepa_lightning.nn.SparseResNet`` and its
    arguments, e.g. a small ResNet with ``small_input_stem`` for small images); the tokenizer is the matching
    :class:`~jepa_lightning.tokenizers.ImageCellTokenizer`.

    Official code: kaland313/CNN-JEPA@f1b813548b56619b65311dbc1cd015c55cd0557b (``pretrain/train_ijepacnn.py``,
    ``models/sparse_encoder.py`` from keyu-tian/SparK, ``pretrain/ijepa_mask.py``). Matches: the sparse encoder's
    masking (``tests/nn/test_dense.py`` re-types ``sp_bn_forward``), the mask token and its initialisation, the
    predictor's layers, the loss on L2-normalised features at the target cells, the random masks (re-typed
    ``IJEPA_CNN.mask``: the same draw gives the same masks), the per-batch choice between the two kinds, the
    multi-block context (all non-target cells: ``context_scale`` (1, 1), ``min_context`` 5 as the official
    ``min_keep``, no truncation), the optimiser settings above.

    Deviations: (1) the loss is the mean over the cells of the four target blocks of the per-channel mean of
    smooth-L1 (a cell in two blocks counts twice; every sample weighs the same), the official one the sum over
    channels, averaged over the union of the blocks' cells in the batch: a constant factor (the width) that Adam's
    update does not see, and another weighting of overlapping blocks; (2) the multi-block sampler's upstream fixes
    (:class:`~jepa_lightning.masks.MultiBlockMaskSampler`: blocks may touch the last row and column, no overlap
    fallback); (3) the library's optimiser keeps weight decay off biases and norms (the official config decays every
    parameter); (4) the teacher's batch-norm running statistics follow the student's by EMA (the official teacher
    keeps its own), and its momentum schedule divides by the number of epochs, not that minus one (lightly's
    ``cosine_schedule``); (5) the official multi-block masks come from a generator seeded by the step count, ours
    from the library's (seed, step, rank) generator.

    Under DDP the batch norms see each rank's batch; ``--trainer.sync_batchnorm true`` gives them the global batch's
    statistics, the sparse ones of the student included (they stay sparse and all-reduce their masked sums and
    counts: :func:`~jepa_lightning.nn.dense.restore_sparse_batch_norms`).
    """

    def __init__(
        self,
        encoder: DenseEncoderFactory | None = None,
        predictor_depth: int = 3,
        predictor_kernel_size: int = 3,
        mask_sampler: MaskSampler | None = None,
        target_norm: TargetNorm = "l2",
        ema_schedule: Literal["linear", "cosine"] = "cosine",
        ema_interval: Literal["step", "epoch"] = "epoch",
        lr: float = 0.01,
        warmup_start_lr: float = 0.0,
        min_lr: float = 1e-5,
        warmup_fraction: float = 10 / 201,
        weight_decay: float = 0.01,
        final_weight_decay: float | None = None,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is a ResNet-50 (:class:`~jepa_lightning.nn.SparseResNet`); ``mask_sampler=None`` is
        :func:`cnnjepa_masks`; ``kwargs``: the arguments of :class:`JEPA`."""
        spec = require_input_spec(type(self).__name__, input_spec)
        built = (encoder or partial(SparseResNet, model_name="resnet50"))(spec)
        super().__init__(
            tokenizer=partial(ImageCellTokenizer, cell_size=built.reduction),
            encoder=built,
            predictor=partial(ConvPredictor, depth=predictor_depth, kernel_size=predictor_kernel_size),
            mask_sampler=mask_sampler or cnnjepa_masks(),
            target_norm=target_norm,
            ema_schedule=ema_schedule,
            ema_interval=ema_interval,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            warmup_fraction=warmup_fraction,
            weight_decay=weight_decay,
            final_weight_decay=final_weight_decay,
            input_spec=input_spec,
            **kwargs,
        )
