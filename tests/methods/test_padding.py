"""Series of different lengths: padding is never context, target, attended to or part of a readout."""

from __future__ import annotations

import pytest
import torch

from jepa_lightning.callbacks.attentive_probe import frozen_tokens
from jepa_lightning.inputs import InputSpec, SeriesInput
from jepa_lightning.masks import ForecastMaskSampler, RandomPatchMaskSampler, mask_generator
from jepa_lightning.methods import TSJEPA, SimCLR
from jepa_lightning.nn import AttentiveClassifier, PooledTokenBackbone, TransformerEncoder
from jepa_lightning.tokenizers import ChannelPatchTokenizer

SPEC = InputSpec("time_series", channels=2)
PATCH = 8
SHORT, LONG = 3 * PATCH + 5, 6 * PATCH  # the short series ends inside its fourth patch


def two_series(padding: float | None = 0.0, seed: int = 0) -> SeriesInput:
    """A short and a long series in one batch, the short one padded with ``padding`` (None: random garbage)."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(2, 2, LONG, generator=generator)
    garbage = torch.randn(2, LONG - SHORT, generator=torch.Generator().manual_seed(99)) * 100
    values[0, :, SHORT:] = garbage if padding is None else padding
    return SeriesInput(values, torch.tensor([SHORT, LONG]))


def tsjepa(**kwargs) -> TSJEPA:
    torch.manual_seed(0)
    options = {"encoder": TransformerEncoder(16, 2, 2, attention="same_channel"), "patch_length": PATCH}
    options |= {"channel_independent": True, "instance_norm": True, "embedding": "linear"}  # a (C, P) grid
    options |= {"predictor_dim": 8, "predictor_depth": 1, "predictor_heads": 2, "input_spec": SPEC}
    return TSJEPA(**{**options, **kwargs})


def test_tokenizer_marks_patches_without_a_real_sample_and_normalises_over_real_samples_only():
    tokenizer = ChannelPatchTokenizer(SPEC, 16, patch_length=PATCH)
    tokens = tokenizer(two_series())
    expected_row = [True] * 4 + [False] * 2  # 29 samples: 3 full patches and one partial one
    assert tokens.valid.tolist() == [expected_row * 2, [True] * 12]
    garbage = tokenizer(two_series(padding=None))
    torch.testing.assert_close(garbage.features, tokens.features)  # padding values never reach a token
    real = two_series().values[0, :, :SHORT]
    normalised = (real - real.mean(-1, keepdim=True)) / torch.sqrt(real.var(-1, keepdim=True, unbiased=False) + 1e-5)
    patch = torch.cat([normalised[0, 3 * PATCH :], torch.zeros(4 * PATCH - SHORT)])
    torch.testing.assert_close(tokens.features[0, 3], tokenizer.proj(patch))  # statistics of the 29 real samples


@pytest.mark.parametrize("readout", ["mean", "rows", "flatten"])
def test_padding_values_change_no_loss_and_no_embedding(readout):
    model = tsjepa(readout=readout, regularizer="vicreg", regularizer_input="tokens")
    zeros, garbage = two_series(), two_series(padding=None)
    for step in range(3):
        generator = mask_generator(0, step, 0, "cpu")
        reference = model.masked_prediction(zeros, generator)
        other = model.masked_prediction(garbage, mask_generator(0, step, 0, "cpu"))
        torch.testing.assert_close(other.loss, reference.loss)
    torch.testing.assert_close(model.embed(garbage), model.embed(zeros))


def test_a_series_embeds_the_same_alone_as_next_to_a_longer_one():
    model = tsjepa()
    batch = two_series()
    batch.values[0, :, 4 * PATCH :] = 0.0
    exact = SeriesInput(batch.values, torch.tensor([4 * PATCH, LONG]))  # a whole number of patches
    alone = exact.values[:1, :, : 4 * PATCH]
    torch.testing.assert_close(model.embed(exact)[:1], model.embed(alone))
    torch.testing.assert_close(model.embed(exact)[1:], model.embed(exact.values[1:]))


def test_padding_tokens_are_never_targets_in_the_loss():
    model = tsjepa(mask_sampler=RandomPatchMaskSampler(0.5, share_channels=False))
    batch = two_series()
    step = model.masked_prediction(batch, mask_generator(0, 0, 0, "cpu"))
    # the same loss by hand: only the valid target tokens, each averaged over features
    tokens = model.student.tokenizer(batch)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 2, mask_generator(0, 0, 0, "cpu"), "cpu")
    context = model.student.encoder(tokens, keep=context_idx)
    prediction = model.predictor(context, tokens.layout, context_idx, target_idx, valid=tokens.valid)
    target = torch.nn.functional.layer_norm(step.encoded, (16,)).gather(1, target_idx[:, 0, :, None].expand(-1, -1, 16))
    elementwise = torch.nn.functional.l1_loss(prediction, target, reduction="none").mean(-1)  # the preset's L1
    valid = tokens.valid.gather(1, target_idx[:, 0])
    assert not valid.all()  # some targets fell on padding ...
    torch.testing.assert_close(step.loss, elementwise[valid].mean())  # ... and were left out


def test_forecast_masks_are_refused_on_padded_batches_only():
    model = tsjepa(mask_sampler=ForecastMaskSampler(0.25))
    with pytest.raises(ValueError, match="places its targets at the end of the token grid"):
        model.masked_prediction(two_series(), mask_generator(0, 0, 0, "cpu"))
    equal = SeriesInput(two_series().values, torch.tensor([LONG, LONG]))
    assert torch.isfinite(model.masked_prediction(equal, mask_generator(0, 0, 0, "cpu")).loss)


def test_joint_embedding_pooling_ignores_padding():
    torch.manual_seed(0)
    backbone = PooledTokenBackbone(
        SPEC, TransformerEncoder(16, 1, 2), lambda spec, dim: ChannelPatchTokenizer(spec, dim, patch_length=PATCH)
    )
    torch.testing.assert_close(backbone(two_series(padding=None)), backbone(two_series()))
    model = SimCLR(backbone=lambda spec: backbone, projector_dims=(32, 8), input_spec=SPEC)
    assert model.embed(two_series()).shape == (2, 16)


def test_the_attentive_probe_reads_the_real_tokens_only():
    model = tsjepa()
    tokens, valid = frozen_tokens(model, two_series())
    assert valid.tolist() == [([True] * 4 + [False] * 2) * 2, [True] * 12]  # the tokenizer's padding marks
    torch.manual_seed(0)
    head = AttentiveClassifier(16, 2, num_classes=3)
    garbage_tokens, _ = frozen_tokens(model, two_series(padding=None))
    changed = tokens.clone()
    changed[~valid] = 1e3  # padding tokens carry anything: the head never attends to them
    torch.testing.assert_close(head(changed, valid), head(tokens, valid))
    torch.testing.assert_close(head(garbage_tokens, valid), head(tokens, valid))
    assert not torch.allclose(head(changed)[0], head(tokens)[0])
