"""The readouts (:data:`~jepa_lightning.nn.functional.Readout`) and the network they read (``readout_network``)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from jepa_lightning.inputs import InputSpec, SeriesInput
from jepa_lightning.masks import RandomPatchMaskSampler
from jepa_lightning.methods import JEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.nn.functional import READOUTS, read_out
from jepa_lightning.tokenizers import ChannelPatchTokenizer, TokenLayout, grid_coords

SPEC = InputSpec("time_series", channels=2)
LAYOUT = TokenLayout("grid", (1, 3), grid_coords((1, 3)))
# two samples of three 2-d tokens; the second sample's last token is padding with huge values
TOKENS = torch.tensor(
    [
        [[1.0, -2.0], [3.0, 0.0], [-1.0, 4.0]],
        [[2.0, 2.0], [0.0, -6.0], [100.0, 100.0]],
    ]
)
VALID = torch.tensor([[True, True, True], [True, True, False]])


def close(actual: torch.Tensor, expected: list) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected))


def test_max_mean_and_sum_by_hand():
    close(read_out(TOKENS, LAYOUT, "max_mean"), [[3.0, 4.0, 1.0, 2 / 3], [100.0, 100.0, 34.0, 32.0]])
    close(read_out(TOKENS, LAYOUT, "sum"), [[3.0, 2.0], [102.0, 96.0]])


def test_max_mean_and_sum_leave_padding_out():
    close(read_out(TOKENS, LAYOUT, "max_mean", VALID), [[3.0, 4.0, 1.0, 2 / 3], [2.0, 2.0, 1.0, -2.0]])
    close(read_out(TOKENS, LAYOUT, "sum", VALID), [[3.0, 2.0], [2.0, -4.0]])
    # the maximum of negative valid values is not lifted to 0 by the padding
    assert read_out(-TOKENS.abs() - 1, LAYOUT, "max_mean", VALID)[1, :2].tolist() == [-1.0, -3.0]
    # a sample without a valid token reads 0, not -inf
    nothing = torch.tensor([[True, True, True], [False, False, False]])
    assert read_out(TOKENS, LAYOUT, "max_mean", nothing)[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_row_quarters_by_hand():
    # a (2, 5) grid of 1-d tokens: each row's stretches are columns [0, 1], [2], [3], [4] (tensor_split's sizes)
    tokens = torch.arange(10.0).reshape(1, 10, 1)
    layout = TokenLayout("grid", (2, 5), grid_coords((2, 5)))
    close(read_out(tokens, layout, "row_quarters"), [[0.5, 2.0, 3.0, 4.0, 5.5, 7.0, 8.0, 9.0]])
    # padding counts in no stretch: row 0 loses its column 1, row 1 its column 4 (a stretch left empty reads 0)
    valid = torch.ones(1, 10, dtype=torch.bool)
    valid[0, [1, 9]] = False
    close(read_out(tokens, layout, "row_quarters", valid), [[0.0, 2.0, 3.0, 4.0, 5.5, 7.0, 8.0, 0.0]])
    # with one stretch per row ``rows`` is the mean of its quarters when they are equal in size
    even = torch.randn(3, 8, 2)
    layout = TokenLayout("grid", (2, 4), grid_coords((2, 4)))
    quarters = read_out(even, layout, "row_quarters").view(3, 2, 4, 2)
    torch.testing.assert_close(quarters.mean(dim=2).flatten(1), read_out(even, layout, "rows"))


def test_row_quarters_needs_four_tokens_per_row():
    with pytest.raises(ValueError, match="at least 4 tokens per row"):
        read_out(TOKENS, LAYOUT, "row_quarters")


def test_unknown_readouts_are_refused():
    with pytest.raises(ValueError, match="readout must be one of"):
        read_out(TOKENS, LAYOUT, "max")
    with pytest.raises(ValueError, match="readout must be one of"):
        model(readout="concat")
    with pytest.raises(ValueError, match="readout_network must be 'target' or 'student'"):
        model(readout_network="teacher")


def model(**kwargs) -> JEPA:
    torch.manual_seed(0)
    options = {"predictor_dim": 8, "predictor_depth": 1, "predictor_heads": 2, "input_spec": SPEC}
    options["mask_sampler"] = RandomPatchMaskSampler(0.5)
    tokenizer = partial(ChannelPatchTokenizer, patch_length=8)
    return JEPA(tokenizer=tokenizer, encoder=TransformerEncoder(16, 1, 2), **{**options, **kwargs})


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("network", ["target", "student"])
def test_embed_reads_the_chosen_network(readout, network):
    jepa = model(readout=readout, readout_network=network).eval()
    with torch.no_grad():
        for parameter in jepa.teacher.parameters():
            parameter.add_(0.5)  # the teacher is no longer the student
    x = torch.randn(3, 2, 32)
    backbone = jepa.student if network == "student" else jepa.teacher.module
    encoded, tokens = backbone.encode(x)
    expected = read_out(encoded, tokens.layout, readout)
    torch.testing.assert_close(jepa.embed(x), expected)
    other = jepa.teacher.module if network == "student" else jepa.student
    assert not torch.allclose(jepa.embed(x), read_out(other.encode(x)[0], tokens.layout, readout))
    jepa.log = lambda *args, **kwargs: None
    with torch.no_grad():
        outputs = jepa.validation_step({"x": x}, 0)
    torch.testing.assert_close(outputs["embedding"], expected.flatten(1))


@pytest.mark.parametrize("readout", ["max_mean", "sum"])
@pytest.mark.parametrize("network", ["target", "student"])
def test_padding_values_change_no_embedding(readout, network):
    jepa = model(readout=readout, readout_network=network).eval()
    values = torch.randn(2, 2, 48)
    values[0, :, 29:] = 0.0
    garbage = values.clone()
    garbage[0, :, 29:] = 1e3 * torch.randn(2, 19)
    lengths = torch.tensor([29, 48])
    padded, noisy = jepa.embed(SeriesInput(values, lengths)), jepa.embed(SeriesInput(garbage, lengths))
    torch.testing.assert_close(noisy, padded)
    # the short series embeds as it does alone when it fills whole patches (32 samples = 4 patches)
    values[0, :, 32:] = 0.0
    exact = jepa.embed(SeriesInput(values, torch.tensor([32, 48])))
    torch.testing.assert_close(exact[:1], jepa.embed(values[:1, :, :32]))
