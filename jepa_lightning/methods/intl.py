"""INTL: Weng, Ni, Huang, Lu, Zhao and Huang, "Modulate Your Spectrum in Self-Supervised Learning", ICLR 2024."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import WhiteningAxis, intl_loss
from jepa_lightning.methods.joint_embedding import JointEmbedding


class INTL(JointEmbedding):
    """INTL (Weng et al., 2024): IterNorm-whitened projections, normalised MSE between views plus a trace loss.

    Each view's projections are whitened over the global batch by 4 Newton iterations of IterNorm
    (:func:`~jepa_lightning.losses.iternorm`, ``axis="channel"`` as the official default: the (N, N) Gram of
    per-sample-centred projections), then ``2 - 2 cos`` between the views plus ``trade_off`` times the trace loss
    ``sum (var - 1)^2`` of each whitened view (:func:`~jepa_lightning.losses.intl_loss`); ``trade_off=None`` is the
    official ``0.01 * (log2(global batch) - 3)`` (channel axis) or ``0.01 * (log2(width) - 3)`` (batch axis). With
    more than two views every view is compared with the first and the terms are averaged, as the official forward
    does with its crops.

    Official code: winci-ai/INTL@0aa69af20a263d1d714e45bc835925a84dc11956 (``methods/intl.py``,
    ``methods/whitening.py``, ``methods/base.py``, ``src/model.py``). Matches: whitening after a gather of the global
    batch, 4 iterations, both axes, the trace loss, the normalised MSE, the trade-off rule, projector 3 x 8192 with
    BatchNorm + ReLU between and a biased output layer (``tests/losses/test_official_parity.py``).

    Deviations: AdamW with the library's schedule instead of SGD (lr 0.3 x batch / 256, momentum 0.9, weight decay
    1e-5, cosine); no multi-crop (the library's views have one size) and no momentum variant (the official
    ``intl_m.py``, used with multi-crop): ``num_views > 2`` compares same-size views.
    """

    def __init__(
        self,
        trade_off: float | None = None,
        axis: WhiteningAxis = "channel",
        iterations: int = 4,
        projector_dims: Sequence[int] = (8192, 8192, 8192),
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the arguments of :class:`JointEmbedding`."""
        if axis not in ("channel", "batch"):
            raise ValueError(f"axis must be 'channel' or 'batch', got {axis!r}")
        super().__init__(projector_dims=projector_dims, **kwargs)
        self.trade_off = trade_off
        self.axis = axis
        self.iterations = iterations

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        parts = [intl_loss(projections[0], z, self.trade_off, self.axis, self.iterations) for z in projections[1:]]
        count = len(parts)
        loss = sum(p.loss for p in parts) / count
        return loss, {
            "invariance": sum(p.invariance for p in parts) / count,
            "trace": sum(p.trace for p in parts) / count,
        }
