import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from jepa_lightning.masks import mask_generator
from jepa_lightning.methods import JEPA
from jepa_lightning.methods.base import warmup_cosine
from jepa_lightning.nn import EMATeacher, JEPAPredictor, TransformerEncoder
from jepa_lightning.nn.functional import read_out
from jepa_lightning.tokens import TokenLayout
from tests.conftest import fast_trainer, tiny_ijepa


def test_loss_falls_when_overfitting_one_batch(digits_batch):
    torch.manual_seed(0)
    model = tiny_ijepa()
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=2e-3)
    losses = []
    for step in range(60):
        loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, step % 4, 0, "cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.teacher.update(model.student, 0.99)
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_teacher_is_outside_the_optimizer_and_in_the_checkpoint():
    model = tiny_ijepa()
    trainable = {id(p) for group in model.parameter_groups() for p in group["params"]}
    assert trainable.isdisjoint(id(p) for p in model.teacher.parameters())
    assert trainable == {id(p) for p in model.student.parameters()} | {id(p) for p in model.predictor.parameters()}
    assert any(key.startswith("teacher.module.encoder.blocks.0") for key in model.state_dict())


def test_encoder_scope_teacher_shares_the_students_tokenizer_and_averages_only_the_encoder(digits_batch):
    torch.manual_seed(0)
    model = tiny_ijepa(teacher_scope="encoder")
    assert model.ema_source is model.student.encoder and not hasattr(model.teacher.module, "tokenizer")
    trainable = {id(p) for group in model.parameter_groups() for p in group["params"]}
    assert trainable.isdisjoint(id(p) for p in model.teacher.parameters())
    assert {k for k in model.state_dict() if k.startswith("teacher.")} == {
        f"teacher.module.{k}" for k in model.student.encoder.state_dict()
    }
    tokens = model.student.tokenizer(digits_batch)
    encoded, _ = model.encode_targets(digits_batch)
    torch.testing.assert_close(encoded, model.teacher.module(tokens))  # the student's tokens, not a copy's
    torch.testing.assert_close(model.embed(digits_batch), encoded.mean(1))
    loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student.tokenizer.proj.weight.grad is not None
    before = {k: v.clone() for k, v in model.teacher.module.state_dict().items()}
    tokenizer_before = {k: v.clone() for k, v in model.student.tokenizer.state_dict().items()}
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    model.teacher.update(model.ema_source, 0.5)
    for name, value in model.teacher.module.state_dict().items():
        torch.testing.assert_close(value, 0.5 * before[name] + 0.5 * model.student.encoder.state_dict()[name])
    for name, value in model.student.tokenizer.state_dict().items():
        torch.testing.assert_close(value, tokenizer_before[name] + 1.0)  # the update left the shared tokenizer alone
    with pytest.raises(ValueError, match="teacher_scope"):
        tiny_ijepa(teacher_scope="tokenizer")


def test_the_teacher_runs_without_dropout(digits_batch):
    torch.manual_seed(0)
    model = tiny_ijepa(
        encoder=TransformerEncoder(embed_dim=32, depth=2, num_heads=2, dropout=0.5, attention_dropout=0.5),
        teacher_scope="encoder",
    )
    assert model.training
    first, _ = model.encode_targets(digits_batch)
    second, _ = model.encode_targets(digits_batch)
    torch.testing.assert_close(first, second)


def test_embed_is_the_pooled_teacher_representation(digits_batch):
    model = tiny_ijepa()
    torch.testing.assert_close(model.embed(digits_batch), model.teacher(digits_batch).mean(1))
    assert model.embed(digits_batch).shape == (32, 32)


def test_predictor_is_sized_by_the_predictor_arguments_or_replaced_by_a_factory():
    model = tiny_ijepa(predictor_dim=24, predictor_depth=3, predictor_heads=None, predictor_attention="full")
    predictor = model.predictor
    heads = predictor.blocks[0].attn.num_heads  # predictor_heads=None: the encoder's
    assert (predictor.predictor_dim, len(predictor.blocks), heads) == (24, 3, 2)
    built = []

    def factory(embed_dim: int) -> torch.nn.Module:
        built.append(embed_dim)
        return JEPAPredictor(embed_dim, predictor_dim=8, depth=1, num_heads=2)

    custom = tiny_ijepa(predictor=factory)
    assert built == [32] and custom.predictor.predictor_dim == 8


@pytest.mark.parametrize("readout", ["mean", "rows", "flatten"])
def test_readouts_of_the_teacher_tokens(digits_batch, readout):
    model = tiny_ijepa(readout=readout)
    tokens = model.teacher(digits_batch)  # (32, 8 * 8, 32) on an 8 x 8 grid
    expected = {
        "mean": tokens.mean(1),
        "rows": tokens.unflatten(1, (8, 8)).mean(2).flatten(1),
        "flatten": tokens.flatten(1),
    }[readout]
    torch.testing.assert_close(model.embed(digits_batch), expected)


def test_unknown_readout_and_rows_without_a_grid_are_refused():
    with pytest.raises(ValueError, match="readout must be one of"):
        tiny_ijepa(readout="max")
    layout = TokenLayout("features", (5,), torch.zeros(1, 6, 1))
    with pytest.raises(ValueError, match="readout='rows' needs every token of a 2-D token grid"):
        read_out(torch.zeros(2, 6, 4), layout, "rows")


def test_validation_step_returns_the_embeddings_embed_gives(digits_batch):
    model = tiny_ijepa().eval()
    model.log = lambda *args, **kwargs: None
    with torch.no_grad():
        outputs = model.validation_step({"x": digits_batch, "y": torch.zeros(32, dtype=torch.long)}, 0)
    torch.testing.assert_close(outputs["embedding"], model.embed(digits_batch))


def test_input_spec_is_required():
    with pytest.raises(ValueError, match="needs input_spec"):
        tiny_ijepa(input_spec=None)


class Batches(L.LightningDataModule):
    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def train_dataloader(self) -> DataLoader:
        samples = [{"x": x, "y": torch.tensor(0)} for x in self.images]
        return DataLoader(samples, batch_size=4)


def test_one_ema_update_per_optimizer_step_under_gradient_accumulation(digits_batch, monkeypatch, tmp_path):
    calls = []
    original = EMATeacher.update

    def spy(self, student, momentum):
        calls.append(momentum)
        original(self, student, momentum)

    monkeypatch.setattr(EMATeacher, "update", spy)
    model = tiny_ijepa(ema_momentum=0.9, final_ema_momentum=1.0, warmup_fraction=0.25)
    trainer = fast_trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2)
    trainer.fit(model, datamodule=Batches(digits_batch))  # 8 micro-batches -> 4 optimizer steps
    assert trainer.global_step == 4
    assert calls == pytest.approx([0.9 + 0.1 * step / 4 for step in range(4)])
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(warmup_cosine(4, 4, 1, 2e-4, 1e-3, 1e-6))
    assert trainer.optimizers[0].param_groups[0]["weight_decay"] == pytest.approx(
        warmup_cosine(3, 4, 0, 0.0, 0.04, 0.4)
    )


def test_generic_jepa_accepts_any_factories():
    from functools import partial

    from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
    from jepa_lightning.tokenizers import PatchTokenizer2d
    from tests.conftest import DIGITS_16

    model = JEPA(
        tokenizer=partial(PatchTokenizer2d, patch_size=4),
        encoder=TransformerEncoder(embed_dim=16, depth=1, num_heads=2),
        predictor=partial(JEPAPredictor, predictor_dim=8, depth=1, num_heads=2),
        input_spec=DIGITS_16,
        target_norm="l2",
        loss="mse",
    )
    assert model.student.tokenizer.grid_shape == (4, 4)
    assert model.predictor.embed_dim == 16


def test_point_jepa_learns_on_a_fixed_batch_of_clouds():
    from jepa_lightning.methods import PointJEPA
    from jepa_lightning.nn import TransformerEncoder
    from jepa_lightning.tokenizers import InputSpec

    torch.manual_seed(0)
    spec = InputSpec("point_clouds", channels=3)
    model = PointJEPA(
        encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2, positions_every_layer=True),
        num_groups=16,
        group_size=8,
        predictor_dim=16,
        predictor_depth=1,
        ema_momentum=0.99,
        final_ema_momentum=1.0,
        input_spec=spec,
    )
    clouds = torch.randn(8, 128, 3)
    clouds[:4, :, 1] *= 0.1  # two kinds of shapes: flat and round
    _, target_idx = model.mask_sampler(model.student.tokenizer(clouds).layout, 8, mask_generator(0, 0, 0, "cpu"), "cpu")
    assert target_idx.shape[:2] == (8, 4)
    assert torch.all(target_idx.diff(dim=-1) == 1), "targets are contiguous spans of the sequence"
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=2e-3)
    losses = []
    for step in range(40):
        loss, *_ = model.masked_prediction(clouds, mask_generator(0, step % 4, 0, "cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.teacher.update(model.ema_source, 0.99)
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert model.teacher.module is not model.student.encoder and not hasattr(model.teacher.module, "tokenizer")


def test_cosine_latent_loss_is_selectable_and_trains(digits_batch):
    torch.manual_seed(0)
    model = tiny_ijepa(loss="cosine")
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=2e-3)
    losses = []
    for step in range(30):
        loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, step % 4, 0, "cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.teacher.update(model.student, 0.99)
        losses.append(loss.item())
    assert all(0 <= value <= 2 for value in losses)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_targets_first_gives_the_loss_and_gradients_of_the_student_first_order(digits_batch):
    """masked_prediction encodes the targets (no gradient, no random draws) before the student, so the teacher's
    temporaries are freed before the student's activations pile up: the loss and every gradient are bit-identical
    to the paper's order (student, predictor, then teacher), dropout draws included."""
    from jepa_lightning.losses.latent import latent_regression, normalize_targets
    from jepa_lightning.nn.functional import gather_mask_major

    model = tiny_ijepa(
        encoder=TransformerEncoder(embed_dim=32, depth=2, num_heads=2, dropout=0.2, drop_path_rate=0.2),
        predictor_dropout=0.2,
    )
    model.teacher.update(model.student, 0.5)  # a teacher that differs from the student
    torch.manual_seed(0)
    loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, 3, 0, "cpu"))
    loss.backward()
    ours = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    torch.manual_seed(0)  # the student-first order, written out
    tokens = model.student.tokenizer(digits_batch)
    ((context_idx, target_idx),) = model.mask_sampler.configurations(
        tokens.layout, digits_batch.shape[0], mask_generator(0, 3, 0, "cpu"), "cpu"
    )
    context = model.student.encoder(tokens, keep=context_idx)
    prediction = model.predictor(context, tokens.layout, context_idx, target_idx)
    with torch.no_grad():
        encoded, _ = model.encode_targets(digits_batch)
        target = gather_mask_major(normalize_targets(encoded, model.target_norm), target_idx)
    reference = latent_regression(prediction, target, model.loss_kind, model.loss_beta)
    reference.backward()
    assert torch.equal(loss, reference)
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.equal(ours[name], p.grad), name
    assert len(ours) == sum(p.grad is not None for p in model.parameters()) > 0
