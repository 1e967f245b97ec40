"""CNN-JEPA: its mixed masks (statistics and parity with the official random masks), its loss against the official
formula, its wiring (sparse student, dense EMA teacher, no projector) and a fit through the command line."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.cli import main
from jepa_lightning.export import load_encoder, save_encoder
from jepa_lightning.inputs import InputSpec
from jepa_lightning.masks import MultiBlockMaskSampler, RandomMaskSampler, mask_generator
from jepa_lightning.methods import CNNJEPA, JEPA
from jepa_lightning.methods.cnnjepa import cnnjepa_masks
from jepa_lightning.nn import ConvPredictor, SparseResNet, TransformerEncoder
from jepa_lightning.tokenizers import ImageCellTokenizer, PatchTokenizer2d
from jepa_lightning.tokens import TokenLayout, grid_coords
from tests.conftest import FAST_TRAINER_ARGS

SPEC = InputSpec("images", channels=1, image_size=(32, 32), num_classes=10)
ENCODER = partial(
    SparseResNet,
    model_name="resnet18",
    layers=(1, 1, 1, 1),
    channels=(8, 8, 16, 16),
    stem_width=8,
    small_input_stem=True,
    output_stride=16,
)
GRID = TokenLayout("grid", (8, 8), grid_coords((8, 8)))


def tiny_cnnjepa(**kwargs) -> CNNJEPA:
    torch.manual_seed(0)
    return CNNJEPA(**{"encoder": ENCODER, "input_spec": SPEC, **kwargs})


def test_defaults_follow_the_official_recipe():
    model = tiny_cnnjepa()
    assert isinstance(model.student.encoder, SparseResNet) and isinstance(model.predictor, ConvPredictor)
    assert isinstance(model.student.tokenizer, ImageCellTokenizer) and model.student.tokenizer.cell_size == 4
    assert len(model.predictor.layers) == 12 and model.predictor.normalize
    assert (model.target_norm, model.loss_kind, model.loss_beta) == ("l2", "smooth_l1", 1.0)
    assert (model.teacher.momentum, model.teacher.schedule, model.teacher.interval) == (0.996, "cosine", "epoch")
    assert (model.lr, model.weight_decay, model.final_weight_decay, model.min_lr) == (0.01, 0.01, None, 1e-5)
    assert not any("projector" in name for name, _ in model.named_modules())
    assert (model.readout, model.readout_network) == ("mean", "target")


def test_mask_mixture_per_batch_and_the_geometry_of_each_kind():
    sampler = cnnjepa_masks()
    kinds = []
    for step in range(400):
        context, targets = sampler(GRID, 8, mask_generator(0, step, 0, "cpu"), "cpu")
        kinds.append(targets.shape[1])
        for sample_context, sample_targets in zip(context, targets):
            seen, predicted = set(sample_context.tolist()), set(sample_targets.flatten().tolist())
            assert not seen & predicted
            if targets.shape[1] == 1:  # random: 60% targets, the rest context, nothing truncated
                assert (len(sample_context), len(predicted)) == (26, 38)
            else:  # multi-block: every non-target cell is context (padded with repeats, not truncated)
                assert seen | predicted == set(range(64)) and len(seen) > 5
    assert set(kinds) == {1, 4}
    share = kinds.count(4) / len(kinds)
    assert abs(share - 0.75) < 0.06  # 400 draws: 3 standard deviations of 0.022


# official: kaland313/CNN-JEPA@f1b813548b56619b65311dbc1cd015c55cd0557b pretrain/train_ijepacnn.py::IJEPA_CNN.mask
# (strategy "random"; len_keep from IJEPA_CNN.setup)
def official_random_mask(batch, h, w, mask_ratio, generator):
    len_keep = round(h * w * (1 - mask_ratio))
    idx = torch.rand(batch, h * w, generator=generator).argsort(dim=1)
    idx = idx[:, :len_keep]
    context_mask = (
        torch.zeros(batch, h * w, dtype=torch.bool).scatter_(dim=1, index=idx, value=True).view(batch, 1, h, w)
    )
    return context_mask, context_mask.logical_not()


@pytest.mark.parametrize(("grid", "ratio"), [((8, 8), 0.6), ((7, 7), 0.6), ((4, 6), 0.3)])
def test_random_masks_match_the_official_draw(grid, ratio):
    layout = TokenLayout("grid", grid, grid_coords(grid))
    context, targets = RandomMaskSampler(ratio)(layout, 5, torch.Generator().manual_seed(3), "cpu")
    official_context, official_target = official_random_mask(5, *grid, ratio, torch.Generator().manual_seed(3))
    ours = torch.zeros(5, grid[0] * grid[1], dtype=torch.bool).scatter_(1, context, True)
    assert torch.equal(ours, official_context.flatten(1))
    ours_target = torch.zeros_like(ours).scatter_(1, targets[:, 0], True)
    assert torch.equal(ours_target, official_target.flatten(1))


def test_padded_multi_block_contexts_keep_every_non_target_cell_and_truncation_stays_the_default():
    generator = partial(mask_generator, 0, 5, 0, "cpu")
    padded = MultiBlockMaskSampler(context_scale=(1.0, 1.0), min_context=5, pad_context=True)(
        GRID, 16, generator(), "cpu"
    )
    truncated = MultiBlockMaskSampler(context_scale=(1.0, 1.0), min_context=5)(GRID, 16, generator(), "cpu")
    assert torch.equal(padded[1], truncated[1])  # the same targets
    counts = [len(set(row.tolist())) for row in padded[0]]
    assert padded[0].shape[1] == max(counts) > truncated[0].shape[1] == min(counts)
    for row, targets in zip(padded[0], padded[1]):
        assert set(row.tolist()) == set(range(64)) - set(targets.flatten().tolist())


# official: kaland313/CNN-JEPA@f1b813548b56619b65311dbc1cd015c55cd0557b pretrain/train_ijepacnn.py
# ::IJEPA_CNN.train_val_step (p, h: (B, C, h, w) maps; neg_mask_b1ff: the target cells)
def official_loss(p, h, target_mask):
    p = F.normalize(p, dim=1)
    h = F.normalize(h, dim=1)
    loss = F.smooth_l1_loss(p, h, reduction="none").sum(axis=1, keepdim=True)
    return loss.mul_(target_mask).sum() / (target_mask.sum() + 1e-8)


def test_loss_is_the_official_one_over_the_width(digits_batch):
    model = tiny_cnnjepa(mask_sampler=RandomMaskSampler(0.6))
    images = F.interpolate(digits_batch[:8], size=(32, 32))
    loss = model.masked_prediction(images, mask_generator(0, 0, 0, "cpu")).loss
    context_idx, target_idx = RandomMaskSampler(0.6)(GRID, 8, mask_generator(0, 0, 0, "cpu"), "cpu")
    with torch.no_grad():
        tokens = model.student.tokenizer(images)
        context = model.student.encoder(tokens, keep=context_idx)
        predicted = model.predictor.layers(model.predictor.feature_map(context, tokens.layout, context_idx))
        with model.teacher.frozen() as teacher:
            target = teacher.encoder(teacher.tokenizer(images)).transpose(1, 2).unflatten(2, (8, 8))
    target_mask = torch.zeros(8, 64).scatter_(1, target_idx[:, 0], 1.0).view(8, 1, 8, 8)
    width = model.student.encoder.embed_dim
    torch.testing.assert_close(loss * width, official_loss(predicted, target, target_mask), rtol=1e-5, atol=1e-6)


def test_generic_jepa_takes_a_dense_encoder_factory_and_refuses_what_it_cannot_do():
    model = JEPA(
        tokenizer=partial(ImageCellTokenizer, cell_size=4),
        encoder=ENCODER,
        predictor=ConvPredictor,
        mask_sampler=RandomMaskSampler(0.5),
        input_spec=SPEC,
    )
    assert isinstance(model.student.encoder, SparseResNet)
    assert model.embed(torch.randn(3, 1, 32, 32)).shape == (3, 16)
    with pytest.raises(ValueError, match="predictor factory"):
        JEPA(tokenizer=partial(ImageCellTokenizer, cell_size=4), encoder=ENCODER, input_spec=SPEC)
    wider = partial(ENCODER, channels=(8, 8, 16, 24))  # patch tokens of the encoder's width 24, not 1 x 4 x 4
    with pytest.raises(ValueError, match="width"):
        JEPA(tokenizer=partial(PatchTokenizer2d, patch_size=4), encoder=wider, predictor=ConvPredictor, input_spec=SPEC)
    vit = JEPA(tokenizer=partial(PatchTokenizer2d, patch_size=4), encoder=TransformerEncoder(32, 1, 2), input_spec=SPEC)
    assert vit.teacher.schedule == "linear"  # the transformer path's defaults are unchanged


def test_fit_through_the_command_line(tmp_path):
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.CNNJEPA",
            "--model.encoder=jepa_lightning.nn.SparseResNet",
            "--model.encoder.model_name=resnet18",
            "--model.encoder.layers=[1, 1, 1, 1]",
            "--model.encoder.channels=[8, 8, 16, 16]",
            "--model.encoder.stem_width=8",
            "--model.encoder.small_input_stem=true",
            "--model.encoder.output_stride=16",
            "--data=datamodules.images.ImageDataModule",
            "--data.image_size=32",
            "--data.batch_size=16",
            "--seed_everything=0",
            "--trainer.max_steps=3",
            "--trainer.limit_val_batches=1",
            "--diagnostics=false",
            *FAST_TRAINER_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_the_teacher_exports_and_reloads_to_the_same_embeddings(tmp_path, digits_batch):
    model = tiny_cnnjepa().eval()
    images = F.interpolate(digits_batch[:4], size=(32, 32))
    save_encoder(model.export_network(), tmp_path / "encoder", SPEC)
    torch.testing.assert_close(load_encoder(tmp_path / "encoder")(images), model.embed(images))
