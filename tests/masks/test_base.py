import pytest
import torch

from jepa_lightning.inputs import check_finite
from jepa_lightning.masks import to_device


def test_to_device_leaves_host_masks_where_they_are():
    masks = (torch.arange(6).view(2, 3), torch.arange(8).view(2, 1, 4))
    moved = to_device(masks, "cpu")
    assert all(a is b for a, b in zip(moved, masks))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_the_problem_on_the_cpu(bad):
    x = torch.zeros(2, 3)
    check_finite(x, "fine")
    x[1, 2] = bad
    with pytest.raises(ValueError, match="series of sample 1 is not finite"):
        check_finite(x, "series of sample 1 is not finite")
