"""DSeq-JEPA: saliency-ranked regions predicted in rank order (each from the regions before it), the teacher's
saliency, the mix with I-JEPA's masks, the options that stay off elsewhere, the preset and its config."""

import sys
from pathlib import Path

import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import (
    MultiBlockMaskSampler,
    SaliencyRankedMaskSampler,
    mask_generator,
    saliency_groups,
    sequential_masks,
)
from jepa_lightning.methods import DSeqJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.nn.functional import gather_tokens
from tests.conftest import DIGITS_16, FAST_TRAINER_ARGS, tiny_ijepa

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "configs" / "dseqjepa_digits.yaml"


# official: SkyShunsuke/DSeq-JEPA@6fdb97124cbbf612b80ee9f4cc735fee93c6a8b9
# src/frameworks/dseqjepa/pretrain.py::generate_dseq_masks (with logical_or_for_mask)
def official_generate_dseq_masks(regions):
    _, d, n = regions.shape  # (B, D, N) upstream
    masks = []
    prev_masks = []
    for i in range(d - 1):
        curr_region = regions[:, i, :]
        if prev_masks:
            masks.append(torch.stack(prev_masks).amax(dim=0))
        else:
            masks.append(curr_region)
        prev_masks.append(curr_region)
    masks = torch.stack(masks, dim=0)
    context_masks = (1 - masks).transpose(0, 1).reshape(-1, n)
    target_masks = regions[:, 1:, :].reshape(-1, n)
    return context_masks, target_masks


# official: SkyShunsuke/DSeq-JEPA@6fdb97124cbbf612b80ee9f4cc735fee93c6a8b9
# src/frameworks/dseqjepa/attention.py::SelfGuidedAttention.forward (strategy "similarity", the map before Otsu)
def official_normalised_saliency(z, query_z):
    d = z.shape[-1]  # B, N, D = z.shape upstream
    sim = torch.matmul(query_z, z.transpose(1, 2)) / (d**0.5)
    sim = sim.squeeze(1)
    sim_min = sim.amin(dim=1, keepdim=True)
    sim_max = sim.amax(dim=1, keepdim=True)
    return (sim - sim_min) / (sim_max - sim_min + 1e-6)


# official: SkyShunsuke/DSeq-JEPA@6fdb97124cbbf612b80ee9f4cc735fee93c6a8b9
# src/utils/opt/scheduler.py::LinearLambdaSchedule.get_lambda
def official_lambda(step, lambda_start, lambda_end, total_steps):
    increment = (lambda_end - lambda_start) / total_steps
    return lambda_start + increment * min(step, total_steps)


def tiny_dseqjepa(**kwargs) -> DSeqJEPA:
    """A three-layer DSeq-JEPA on 16 x 16 images with 2 x 2 patches (an 8 x 8 grid)."""
    torch.manual_seed(0)
    defaults = {
        "encoder": TransformerEncoder(embed_dim=32, depth=3, num_heads=2),
        "patch_size": 2,
        "predictor_dim": 16,
        "predictor_depth": 2,
        "predictor_heads": 2,
        "input_spec": DIGITS_16,
    }
    return DSeqJEPA(**{**defaults, **kwargs})


def test_ranking_puts_the_highest_scores_first_in_order_and_is_deterministic():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2], [1.0, 1.0, 0.0, 2.0, 3.0, 0.5, 1.0]])
    groups = saliency_groups(scores, 3)
    # row 0: ranks 1 (0.9), 5 (0.8), 3 (0.7), 2 (0.5), 4 (0.3), 6 (0.2); the least salient (0) belongs to no group
    # row 1: ties (1.0 at 0, 1, 6) in index order
    assert groups.tolist() == [[[1, 5], [3, 2], [4, 6]], [[4, 3], [0, 1], [6, 5]]]
    sampler = SaliencyRankedMaskSampler(3)
    layout = tiny_dseqjepa().student.tokenizer(torch.zeros(1, 1, 16, 16)).layout
    scores = torch.randn(4, layout.num_tokens, generator=torch.Generator().manual_seed(0))
    first = sampler.configurations(layout, 4, mask_generator(0, 0, 0, "cpu"), "cpu", scores=scores)
    second = sampler.configurations(layout, 4, mask_generator(5, 7, 1, "cpu"), "cpu", scores=scores)
    assert all(a.equal(c) and b.equal(d) for (a, b), (c, d) in zip(first, second))  # scores alone decide
    top = scores.topk(2 * (64 // 3), dim=1).indices
    assert first[1][0].equal(top.sort(dim=1).values)  # rank 2's context: the 2 s most salient tokens
    with pytest.raises(ValueError, match="scores"):
        sampler.configurations(layout, 4, mask_generator(0, 0, 0, "cpu"), "cpu")


def test_rank_k_sees_the_ranks_before_it_and_is_predicted_from_them_alone():
    """Context k: groups 0 .. k - 1; target: group k. Matches the official masks where their comment says it should
    ("Top-{1,2,...,Nd-1} regions"); the official code's contexts lag one rank behind from rank 2 on (not copied)."""
    scores = torch.randn(3, 20, generator=torch.Generator().manual_seed(1))
    groups = saliency_groups(scores, 5)  # (3, 5, 4)
    configurations = sequential_masks(groups)
    regions = torch.zeros(3, 5, 20).scatter_(2, groups, 1.0)
    official_context, official_target = official_generate_dseq_masks(regions)
    official_context = official_context.reshape(3, 4, 20)
    official_target = official_target.reshape(3, 4, 20)
    for k, (context_idx, target_idx) in enumerate(configurations, start=1):
        ours_target = torch.zeros(3, 20).scatter_(1, target_idx[:, 0], 1.0)
        ours_hidden = torch.ones(3, 20).scatter_(1, context_idx, 0.0)  # official convention: 1 = not in context
        assert ours_target.equal(official_target[:, k - 1])
        assert ours_hidden.equal(1 - regions[:, :k].amax(dim=1))
        lagged = 1 - regions[:, : max(k - 1, 1)].amax(dim=1)  # the official code's context of rank k
        assert official_context[:, k - 1].equal(lagged)
        assert ours_hidden.equal(official_context[:, k - 1]) == (k <= 1)


def test_perturbing_a_rank_leaves_the_predictions_of_it_and_earlier_ranks_bit_identical(digits_batch):
    """Masks fixed from the clean images; the pixels of group j changed: the predictions of ranks 1 .. j (which
    see groups < j at most) are unchanged bit for bit, rank j + 1 (whose context holds group j) changes."""
    model = tiny_dseqjepa().eval()
    images = digits_batch[:6]
    tokens = model.student.tokenizer(images)
    configurations = sequential_masks(saliency_groups(model.token_scores(images, tokens), 5))

    def predictions(x):
        tokens = model.student.tokenizer(x)
        return [
            model.predictor(model.student.encoder(tokens, keep=context), tokens.layout, context, target, mask_index=i)
            for i, (context, target) in enumerate(configurations)
        ]

    clean = predictions(images)
    j = 2
    group = configurations[j - 1][1][:, 0]  # (B, s): the tokens of group j, rank j's target
    patches = torch.zeros(6, 64).scatter_(1, group, 1.0).reshape(6, 1, 8, 8)
    pixels = patches.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).bool()
    perturbed = predictions(torch.where(pixels, images + torch.randn_like(images), images))
    for k in range(j):  # ranks 1 .. j
        assert perturbed[k].equal(clean[k]), k + 1
    assert not torch.allclose(perturbed[j], clean[j])  # rank j + 1 sees group j


def test_saliency_is_the_teachers_intermediate_tokens_against_their_mean(digits_batch):
    """Min-max normalised, our scores are the official saliency map with the mean of the same tokens as query."""
    model = tiny_dseqjepa()
    tokens = model.student.tokenizer(digits_batch)
    scores = model.token_scores(digits_batch, tokens)
    with torch.no_grad():
        teacher = model.teacher.module
        teacher_tokens = teacher.tokenizer(digits_batch)
        x = teacher_tokens.features + teacher_tokens.positions
        for block in teacher.encoder.blocks[:2]:  # saliency_depth=-1: all but the last of 3 blocks
            x = block(x)
        z = teacher.encoder.norm(x)
    expected = official_normalised_saliency(z, z.mean(dim=1, keepdim=True))
    normalised = (scores - scores.amin(1, keepdim=True)) / (scores.amax(1, keepdim=True) - scores.amin(1, keepdim=True))
    torch.testing.assert_close(normalised, expected, atol=1e-5, rtol=0)
    model.saliency_depth = None  # every block: other scores
    assert not torch.allclose(model.token_scores(digits_batch, tokens), scores)


def test_steps_mix_in_ijepa_masks_with_the_official_linear_lambda():
    sampler = SaliencyRankedMaskSampler(5, fallback=MultiBlockMaskSampler(min_context=4))
    assert sampler.num_configurations == 4
    for step in (0, 37, 100, 150):
        ours = sampler.ranked_probability_at(min(1.0, step / 100))
        assert ours == pytest.approx(official_lambda(step, 0.0, 1.0, 100))
    layout = tiny_dseqjepa().student.tokenizer(torch.zeros(1, 1, 16, 16)).layout
    scores = torch.randn(2, 64)

    def counts(progress):
        return [
            len(sampler.configurations(layout, 2, mask_generator(0, i, 0, "cpu"), "cpu", progress, scores))
            for i in range(200)
        ]

    assert set(counts(0.0)) == {1} and set(counts(1.0)) == {4}  # I-JEPA only, then ranked only
    halfway = counts(0.5)
    assert 70 < halfway.count(4) < 130 and halfway == counts(0.5)  # about half, reproducibly
    always = SaliencyRankedMaskSampler(5)  # no fallback: every step ranked
    assert len(always.configurations(layout, 2, mask_generator(0, 0, 0, "cpu"), "cpu", 0.0, scores)) == 4


def test_the_new_options_are_off_by_default(digits_batch, monkeypatch):
    """``num_blocks=None`` runs every block (the encoder's output unchanged); a sampler without ``needs_scores``
    never asks for scores, so every other method draws and trains exactly as before."""
    encoder = TransformerEncoder(embed_dim=32, depth=3, num_heads=2)
    tokens = tiny_ijepa().student.tokenizer(digits_batch)
    keep = torch.arange(10).expand(32, 10)
    assert encoder(tokens).equal(encoder(tokens, num_blocks=None))
    assert encoder(tokens, keep=keep).equal(encoder(tokens, keep=keep, num_blocks=3))
    x = gather_tokens(tokens.features + tokens.positions, keep)
    x = encoder.blocks[1](encoder.blocks[0](x))
    assert encoder(tokens, keep=keep, num_blocks=-1).equal(encoder.norm(x))
    model = tiny_ijepa()
    assert not model.mask_sampler.needs_scores and model.saliency_depth is None
    monkeypatch.setattr(type(model), "token_scores", lambda *args: pytest.fail("scores asked for"))
    loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    assert torch.isfinite(loss)


def test_preset_trains_on_ranked_steps_with_one_mask_token_per_rank(digits_batch, monkeypatch):
    model = tiny_dseqjepa(ranked_probability=(1.0, 1.0))
    assert model.predictor.mask_token.shape[0] == 4 and model.saliency_depth == -1
    seen = []
    draw = model.mask_sampler.configurations
    monkeypatch.setattr(model.mask_sampler, "configurations", lambda *a, **k: seen.append(k["scores"]) or draw(*a, **k))
    loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    loss.backward()
    assert torch.isfinite(loss) and model.predictor.mask_token.grad[:4].abs().sum(dim=(1, 2)).gt(0).all()
    assert seen[0].equal(model.token_scores(digits_batch, model.student.tokenizer(digits_batch)))  # the teacher's
    with pytest.raises(ValueError, match="num_groups"):
        tiny_dseqjepa(num_regions=1)


def test_one_encoder_pass_gives_the_output_and_an_intermediate_blocks_tokens(digits_batch):
    """``forward_with_intermediate`` equals the two separate passes bit for bit, for every depth it reads and with
    positions before every block, an output head and no final norm."""
    tokens = tiny_ijepa().student.tokenizer(digits_batch)
    for options in ({}, {"positions_every_layer": True, "output_head": True}):
        encoder = TransformerEncoder(embed_dim=32, depth=3, num_heads=2, **options)
        for num_blocks in (None, -1, 1, 0):
            for final_norm in (True, False):
                output, intermediate = encoder.forward_with_intermediate(tokens, num_blocks, final_norm=final_norm)
                assert output.equal(encoder(tokens, final_norm=final_norm))
                assert intermediate.equal(encoder(tokens, num_blocks=num_blocks))


def test_a_ranked_step_runs_the_teacher_once_with_the_values_of_two_passes(digits_batch, monkeypatch):
    """The saliency's blocks are the first of the targets' pass: the teacher's blocks run once per step (3 block
    calls, not 2 + 3), and the loss, diagnostics and scores are those of the separate passes."""
    model = tiny_dseqjepa(ranked_probability=(1.0, 1.0))
    calls = []
    for block in model.teacher.module.encoder.blocks:
        block.register_forward_hook(lambda *_: calls.append(1))
    seen = []
    draw = model.mask_sampler.configurations
    monkeypatch.setattr(model.mask_sampler, "configurations", lambda *a, **k: seen.append(k["scores"]) or draw(*a, **k))
    shared = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    assert len(calls) == 3
    monkeypatch.setattr(type(model), "shares_saliency_pass", lambda *_: False)
    calls.clear()
    separate = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    assert len(calls) == 2 + 3
    assert seen[0].equal(seen[1]) and shared.loss.equal(separate.loss) and shared.encoded.equal(separate.encoded)
    assert all(shared.stats[name].equal(separate.stats[name]) for name in separate.stats)


def test_the_config_fits_through_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])
    main(
        [
            "fit",
            f"--config={CONFIG}",
            "--trainer.max_steps=2",
            "--trainer.max_epochs=-1",
            "--trainer.limit_val_batches=1",
            "--trainer.callbacks=[]",
            "--diagnostics=false",
            *FAST_TRAINER_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
