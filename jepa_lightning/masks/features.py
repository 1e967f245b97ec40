"""Feature-subset masking for tables (T-JEPA): context and target sets of features, vectorised over the batch."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_count, check_range, to_device
from jepa_lightning.tokens import FEATURES_LAYOUT, TokenLayout

#: How two views split a row's features between them (item SSL; the tabular datamodule's
#: ``ComplementaryFeatureMasking``): uniformly at random, or a seed feature with its most correlated partners.
FeatureMasking = Literal["random", "correlated"]


class FeatureSubsetMaskSampler(MaskSampler):
    """T-JEPA's masks on a set of ``F`` feature tokens (layout ``kind="features"``, see
    :class:`~jepa_lightning.tokenizers.tabular.FeatureTokenizer`).

    Per batch one context size ``k_c`` and one target size ``k_t``. ``size_rule="ratio"`` (default): each
    ``round(F * U(ratio))`` (at least 1, and ``k_t <= F - k_c``). ``size_rule="count"`` (T-JEPA's official
    ``src/mask.py::MaskCollator``): each uniform over whole counts, ``lo + round((hi - lo) * U(0, 1))`` with
    ``lo, hi = round(F * ratio)`` (at least 1), both drawn again while ``k_c + k_t > F``. Per sample the features are
    shuffled: the context is the first ``k_c``, and each of the ``num_targets`` target groups is ``k_t`` features
    drawn without replacement from the other ``F - k_c`` (groups may overlap each other, never the context). The
    regularisation tokens that precede the features in the layout are always in the context and never targets: they
    carry no data, so there is nothing to predict for them, and the student always sees them (as the teacher does).

    Returns ``context_idx (B, R + k_c)`` (regularisation tokens first) and ``target_idx (B, num_targets, k_t)``.
    """

    def __init__(
        self,
        num_targets: int = 4,
        context_ratio: tuple[float, float] = (0.2, 0.4),
        target_ratio: tuple[float, float] = (0.2, 0.4),
        *,
        size_rule: Literal["ratio", "count"] = "ratio",
    ) -> None:
        for name, bounds in {"context_ratio": context_ratio, "target_ratio": target_ratio}.items():
            check_range(name, bounds, limit="< 1")
        check_count("num_targets", num_targets)
        if size_rule not in ("ratio", "count"):
            raise ValueError(f"size_rule must be 'ratio' or 'count', got {size_rule!r}")
        self.size_rule = size_rule
        self.num_targets = num_targets
        self.context_ratio = context_ratio
        self.target_ratio = target_ratio

    @staticmethod
    def subset_size(num_features: int, ratio: tuple[float, float], u: float) -> int:
        """``round(F * r)`` for ``r = low + u * (high - low)``, at least 1."""
        return max(1, round(num_features * (ratio[0] + u * (ratio[1] - ratio[0]))))

    @staticmethod
    def count_size(num_features: int, ratio: tuple[float, float], u: float) -> int:
        """``lo + round((hi - lo) * u)`` for ``lo, hi = round(F * ratio)`` (at least 1): uniform over whole counts."""
        low, high = (max(1, round(num_features * r)) for r in ratio)
        return low + round((high - low) * u)

    def sizes(self, num_features: int, generator: torch.Generator) -> tuple[int, int]:
        """The batch's context and target sizes ``(k_c, k_t)`` by :attr:`size_rule`."""
        if self.size_rule == "ratio":
            u_context, u_target = torch.rand(2, generator=generator, device=generator.device).tolist()
            context_size = min(self.subset_size(num_features, self.context_ratio, u_context), num_features - 1)
            return context_size, min(
                self.subset_size(num_features, self.target_ratio, u_target), num_features - context_size
            )
        if (
            self.count_size(num_features, self.context_ratio, 0.0)
            + self.count_size(num_features, self.target_ratio, 0.0)
            > num_features
        ):
            raise ValueError(
                f"size_rule='count': the smallest context and target sizes exceed the {num_features} features "
                f"(context_ratio={self.context_ratio}, target_ratio={self.target_ratio})"
            )
        while True:
            u_context, u_target = torch.rand(2, generator=generator, device=generator.device).tolist()
            context_size = self.count_size(num_features, self.context_ratio, u_context)
            target_size = self.count_size(num_features, self.target_ratio, u_target)
            if context_size + target_size <= num_features:
                return context_size, target_size

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        if layout.kind != FEATURES_LAYOUT or len(layout.shape) != 1:
            raise ValueError(
                f"FeatureSubsetMaskSampler needs a '{FEATURES_LAYOUT}' layout (a FeatureTokenizer), got kind "
                f"{layout.kind!r} with shape {layout.shape}"
            )
        num_features = layout.shape[0]
        num_registers = layout.num_tokens - num_features
        if num_features < 2:
            raise ValueError(
                f"FeatureSubsetMaskSampler needs at least 2 features (context + target), got {num_features}"
            )
        sample_device = generator.device
        context_size, target_size = self.sizes(num_features, generator)

        order = torch.rand(batch_size, num_features, generator=generator, device=sample_device).argsort(dim=1)
        order = order + num_registers  # feature index -> token index
        registers = torch.arange(num_registers, device=sample_device).expand(batch_size, -1)
        context_idx = torch.cat([registers, order[:, :context_size]], dim=1)
        rest = order[:, context_size:]  # (B, F - k_c)
        draws = torch.rand(batch_size, self.num_targets, rest.shape[1], generator=generator, device=sample_device)
        picks = draws.argsort(dim=2)[..., :target_size]  # (B, M, k_t) positions into ``rest``
        target_idx = torch.gather(rest.unsqueeze(1).expand(-1, self.num_targets, -1), 2, picks)
        return to_device((context_idx, target_idx), device)
