"""Point-JEPA: Saito, Kudeshia and Poovvancheri, "Point-JEPA: A Joint Embedding Predictive Architecture for
Self-Supervised Learning on Point Cloud", WACV 2025 (official code: Ayumu-J-S/Point-JEPA)."""

from __future__ import annotations

from functools import partial
from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks.base import MaskSampler
from jepa_lightning.masks.spans import ContiguousSpanMaskSampler
from jepa_lightning.methods.jepa import JEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.predictor import PredictorPositions
from jepa_lightning.tokenizers.point_clouds import PointPatchTokenizer


class PointJEPA(JEPA):
    """Point-JEPA: point clouds as sequences of point groups, span masks, EMA teacher.

    Defaults: 1,024 points -> 64 farthest-point centres with kNN groups of 32, a mini-PointNet token per group,
    learned positions of the centres added at every encoder layer, the greedy nearest-neighbour sequencer
    (:class:`~jepa_lightning.tokenizers.PointPatchTokenizer`); encoder 384 wide, 12 layers, 6 heads; predictor 192
    wide, 6 layers, positions learned from the centres; 4 target spans of ratio U(0.15, 0.2) in sequence order and
    a contiguous context run of ratio U(0.4, 0.75) of the remaining tokens
    (:class:`~jepa_lightning.masks.ContiguousSpanMaskSampler`); smooth-L1 (beta 2) on layer-normed teacher outputs;
    EMA 0.9995 -> 0.99999.

    Deviations: farthest-point sampling starts deterministically (see
    :class:`~jepa_lightning.tokenizers.PointPatchTokenizer`), so student and teacher form identical groups. A custom
    ``encoder`` should keep ``positions_every_layer=True``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        num_groups: int = 64,
        group_size: int = 32,
        predictor_dim: int = 192,
        predictor_depth: int = 6,
        predictor_positions: PredictorPositions = "mlp",
        mask_sampler: MaskSampler | None = None,
        loss_beta: float = 2.0,
        ema_momentum: float = 0.9995,
        final_ema_momentum: float = 0.99999,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is the paper's 384 x 12 encoder; ``kwargs``: the arguments of :class:`JEPA`."""
        super().__init__(
            tokenizer=partial(PointPatchTokenizer, num_groups=num_groups, group_size=group_size),
            encoder=encoder or TransformerEncoder(embed_dim=384, depth=12, num_heads=6, positions_every_layer=True),
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_positions=predictor_positions,
            mask_sampler=mask_sampler or ContiguousSpanMaskSampler(),
            loss_beta=loss_beta,
            ema_momentum=ema_momentum,
            final_ema_momentum=final_ema_momentum,
            input_spec=input_spec,
            **kwargs,
        )
