"""Time-frequency masks on a (frequency, time) token grid (A-JEPA).

The grid is the layout of :class:`~jepa_lightning.tokenizers.audio.LogMelPatchTokenizer`: ``layout.shape``
is ``(F, T)`` with frequency as the first (row) axis and tokens in row-major order.
"""

from __future__ import annotations

from jepa_lightning.masks.series import AxisSpanMaskSampler, check_range


class TimeSpanMaskSampler(AxisSpanMaskSampler):
    """Targets are time spans: ``num_targets`` contiguous runs of time columns covering every frequency row, of
    width ratio ``U(width_ratio)`` (one draw per batch); the context is every other column. The
    :class:`~jepa_lightning.masks.series.AxisSpanMaskSampler` along time (axis 1)."""

    def __init__(self, num_targets: int = 2, width_ratio: tuple[float, float] = (0.1, 0.2)) -> None:
        check_range("width_ratio", width_ratio)
        super().__init__(axis=1, num_targets=num_targets, span_ratio=width_ratio)
        self.width_ratio = width_ratio


class FrequencyBandMaskSampler(AxisSpanMaskSampler):
    """Targets are frequency bands: ``num_targets`` contiguous runs of frequency rows covering every time column;
    the :class:`~jepa_lightning.masks.series.AxisSpanMaskSampler` along frequency (axis 0)."""

    def __init__(self, num_targets: int = 2, width_ratio: tuple[float, float] = (0.1, 0.2)) -> None:
        check_range("width_ratio", width_ratio)
        super().__init__(axis=0, num_targets=num_targets, span_ratio=width_ratio)
        self.width_ratio = width_ratio
