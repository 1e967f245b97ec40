"""The T-JEPA preset: paper defaults, the flattened probe embedding, and training through the CLI on tables."""

from __future__ import annotations

import sys

import pytest
import torch

from jepa_lightning.cli import main
from jepa_lightning.masks import FeatureSubsetMaskSampler
from jepa_lightning.methods import TJEPA
from jepa_lightning.nn import TransformerEncoder
from jepa_lightning.tokenizers import FeatureTokenizer, InputSpec, TabularInput
from tests.conftest import FAST_TRAINER_ARGS

SPEC = InputSpec("tabular", num_numeric=3, categories=(4, 2), feature_names=("a", "b", "c", "d", "e"))
RUN = [
    "--trainer.max_steps=3",
    "--trainer.limit_val_batches=1",
    *FAST_TRAINER_ARGS,
    "--seed_everything=0",
    "--data=datamodules.tabular.TabularDataModule",
    "--data.batch_size=16",
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def rows(batch_size: int = 6) -> TabularInput:
    numeric = torch.randn(batch_size, 3)
    numeric[0, 1] = float("nan")
    return TabularInput(
        numeric, torch.stack([torch.randint(0, 4, (batch_size,)), torch.randint(0, 2, (batch_size,))], 1)
    )


def test_paper_defaults() -> None:
    model = TJEPA(input_spec=SPEC)
    encoder = model.student.encoder
    assert (encoder.embed_dim, len(encoder.blocks), encoder.num_heads) == (64, 4, 8)
    assert model.predictor.predictor_dim == 64 and len(model.predictor.blocks) == 2
    assert isinstance(model.student.tokenizer, FeatureTokenizer)
    assert model.student.tokenizer.num_register_tokens == 1
    assert isinstance(model.mask_sampler, FeatureSubsetMaskSampler) and model.mask_sampler.num_targets == 4
    assert (model.loss_kind, model.target_norm) == ("mse", "none")
    assert (model.teacher.momentum, model.teacher.final_momentum) == (0.996, 1.0)


def test_embedding_flattens_register_and_feature_tokens_of_the_teacher() -> None:
    model = TJEPA(input_spec=SPEC, encoder=TransformerEncoder(16, 1, 2), predictor_dim=8, predictor_depth=1)
    x = rows()
    expected = model.target_network(x).flatten(1)
    embedding = model.embed(x)
    assert embedding.shape == (6, (1 + 5) * 16)
    torch.testing.assert_close(embedding, expected)


def test_loss_is_the_mse_between_predictions_and_teacher_features_of_the_targets() -> None:
    """The objective equals MSE computed by hand from the same masks (teacher features without a target norm)."""
    model = TJEPA(input_spec=SPEC, encoder=TransformerEncoder(16, 1, 2), predictor_dim=8, predictor_depth=1)
    x = rows()
    loss, *_ = model.masked_prediction(x, torch.Generator().manual_seed(3))
    tokens = model.student.tokenizer(x)
    context_idx, target_idx = model.mask_sampler(tokens.layout, 6, torch.Generator().manual_seed(3), "cpu")
    prediction = model.predictor(
        model.student.encoder(tokens, keep=context_idx), tokens.layout, context_idx, target_idx
    )
    with torch.no_grad():
        teacher = model.target_network(x)
    targets = torch.cat([torch.gather(teacher, 1, target_idx[:, m, :, None].expand(-1, -1, 16)) for m in range(4)])
    torch.testing.assert_close(loss, ((prediction - targets) ** 2).mean())


def test_tjepa_trains_on_the_bundled_penguins_through_the_cli(tmp_path) -> None:
    main(
        [
            "fit",
            *RUN,
            "--model=jepa_lightning.methods.TJEPA",
            "--model.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.encoder.embed_dim=16",
            "--model.encoder.depth=1",
            "--model.encoder.num_heads=2",
            "--model.predictor_dim=8",
            "--model.predictor_depth=1",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
