"""T-JEPA feature-subset masks: sizes (both size rules), disjointness, registers in the context, seeding, layout
checks."""

from __future__ import annotations

import pytest
import torch

from jepa_lightning.masks import FeatureSubsetMaskSampler
from jepa_lightning.tokenizers import TokenLayout
from jepa_lightning.tokenizers.tabular import FEATURES_LAYOUT


def layout(num_features: int, registers: int) -> TokenLayout:
    coords = torch.arange(-registers, num_features, dtype=torch.float32).view(1, -1, 1)
    return TokenLayout(FEATURES_LAYOUT, (num_features,), coords)


@pytest.mark.parametrize("seed", range(5))
def test_context_and_targets_are_disjoint_sized_features_with_registers_in_context(seed: int) -> None:
    sampler = FeatureSubsetMaskSampler(num_targets=4)
    context, targets = sampler(layout(20, 2), 16, torch.Generator().manual_seed(seed), "cpu")
    assert context.shape[0] == 16 and targets.shape[:2] == (16, 4)
    num_context, num_target = context.shape[1] - 2, targets.shape[2]
    assert 4 <= num_context <= 8 and 4 <= num_target <= 8  # round(20 * U(0.2, 0.4))
    assert (context[:, :2] == torch.tensor([0, 1])).all()  # registers always seen
    for b in range(16):
        features = context[b, 2:]
        assert len(set(features.tolist())) == num_context and features.min() >= 2 and features.max() < 22
        for group in targets[b]:
            assert len(set(group.tolist())) == num_target and group.min() >= 2 and group.max() < 22
            assert not set(group.tolist()) & set(features.tolist())


def test_sizes_follow_the_configured_ratios_and_the_generator() -> None:
    sampler = FeatureSubsetMaskSampler(num_targets=2, context_ratio=(0.5, 0.5), target_ratio=(0.3, 0.3))
    context, targets = sampler(layout(10, 1), 3, torch.Generator().manual_seed(0), "cpu")
    assert context.shape == (3, 1 + 5) and targets.shape == (3, 2, 3)
    again = sampler(layout(10, 1), 3, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(context, again[0]) and torch.equal(targets, again[1])
    # two features: one context feature, one target, whatever the ratios
    context, targets = FeatureSubsetMaskSampler()(layout(2, 0), 4, torch.Generator().manual_seed(1), "cpu")
    assert context.shape == (4, 1) and targets.shape == (4, 4, 1) and (context[:, :1] != targets[:, 0]).all()


def test_wrong_layouts_and_settings_are_rejected() -> None:
    sampler = FeatureSubsetMaskSampler()
    grid = TokenLayout("grid", (2, 2), torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="'features' layout"):
        sampler(grid, 2, torch.Generator(), "cpu")
    with pytest.raises(ValueError, match="at least 2 features"):
        sampler(layout(1, 1), 2, torch.Generator(), "cpu")
    with pytest.raises(ValueError, match="context_ratio"):
        FeatureSubsetMaskSampler(context_ratio=(0.5, 1.0))
    with pytest.raises(ValueError, match="size_rule"):
        FeatureSubsetMaskSampler(size_rule="fraction")
    counts = FeatureSubsetMaskSampler(context_ratio=(0.6, 0.6), target_ratio=(0.6, 0.6), size_rule="count")
    with pytest.raises(ValueError, match="smallest context and target sizes exceed"):
        counts(layout(5, 1), 2, torch.Generator(), "cpu")


def test_count_rule_draws_whole_counts_between_the_rounded_bounds_and_redraws_oversized_pairs() -> None:
    """``size_rule="count"`` (the official T-JEPA sampler; its statistics are compared in tests/methods/test_tjepa.py):
    with 10 features and shares (0.2, 0.6) both sizes lie in 2..6 and never sum to more than 10."""
    sampler = FeatureSubsetMaskSampler(context_ratio=(0.2, 0.6), target_ratio=(0.2, 0.6), size_rule="count")
    generator = torch.Generator().manual_seed(0)
    sizes = {sampler.sizes(10, generator) for _ in range(2000)}
    assert {c for c, _ in sizes} == set(range(2, 7)) and {t for _, t in sizes} == set(range(2, 7))
    assert max(c + t for c, t in sizes) == 10
    context, targets = sampler(layout(10, 1), 4, torch.Generator().manual_seed(3), "cpu")
    assert context.shape[1] - 1 + targets.shape[2] <= 10
