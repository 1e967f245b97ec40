"""Local-window masks (SAR-JEPA): targets inside the windows, contexts the windows' other tokens."""

import pytest
import torch

from jepa_lightning.masks import LocalWindowMaskSampler, mask_generator
from jepa_lightning.tokenizers import TokenLayout, grid_coords


def _layout(rows: int = 14, cols: int = 14) -> TokenLayout:
    return TokenLayout("grid", (rows, cols), grid_coords((rows, cols)))


def test_official_defaults_give_four_groups_of_39_masked_patches_inside_7x7_windows():
    sampler = LocalWindowMaskSampler()
    context, targets = sampler(_layout(), 8, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert targets.shape == (8, 4, 39)  # int(49 * 0.8), as the official in_window_mask_number
    rows, cols = targets // 14, targets % 14
    # every group lies in one 7 x 7 window, the same window in every sample
    assert bool(((rows.amax(-1) - rows.amin(-1)) < 7).all() and ((cols.amax(-1) - cols.amin(-1)) < 7).all())
    for group in range(4):
        top = rows[:, group].amin(-1)
        assert bool((top >= top.min()).all() and (rows[:, group] < top.min() + 7).all())
    # the context: inside some window, never a target, at most the 4 x 10 visible patches
    assert context.shape[0] == 8 and 1 <= context.shape[1] <= 40
    for b in range(8):
        assert not set(context[b].tolist()) & set(targets[b].flatten().tolist())
    assert torch.equal(context, context.sort(dim=-1).values)


def test_windows_have_distinct_rows_and_columns_and_sampling_is_reproducible():
    sampler = LocalWindowMaskSampler(window_size=4, num_windows=5, target_ratio=0.5)
    a = sampler(_layout(8, 8), 4, mask_generator(3, 1, 0, "cpu"), "cpu")
    b = sampler(_layout(8, 8), 4, mask_generator(3, 1, 0, "cpu"), "cpu")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    tops = (a[1] // 8).amin(-1)[0]
    lefts = (a[1] % 8).amin(-1)[0]
    assert a[1].shape == (4, 5, 8)
    assert len(set(tops.tolist())) <= 5 and tops.max() <= 4 and lefts.max() <= 4


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        LocalWindowMaskSampler(window_size=7, num_windows=3)(_layout(8, 8), 1, mask_generator(0, 0, 0, "cpu"), "cpu")
    with pytest.raises(ValueError, match="at least one"):
        LocalWindowMaskSampler(window_size=2, target_ratio=0.2)
    layout = TokenLayout("sequence", (10,), torch.zeros(1, 10, 1))
    with pytest.raises(ValueError, match="2-D token grid"):
        LocalWindowMaskSampler(2, 1)(layout, 1, mask_generator(0, 0, 0, "cpu"), "cpu")
