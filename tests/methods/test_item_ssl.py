"""Item SSL (Yao et al. 2021): complementary feature-masking views, the mutual information that ranks features,
the InfoNCE objective, and a fit through the command line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import mutual_info_score

from datamodules.tabular import (
    ComplementaryFeatureMasking,
    PrepareRow,
    TabularDataModule,
    discretize_columns,
    feature_mutual_information,
)
from jepa_lightning.cli import build_cli
from jepa_lightning.inputs import TabularInput
from jepa_lightning.methods import ItemSSL
from tests.conftest import FAST_TRAINER_ARGS, fast_trainer


def identity_prepare(num_numeric: int, num_categorical: int) -> PrepareRow:
    return PrepareRow(
        torch.zeros(num_numeric),
        torch.ones(num_numeric),
        torch.full((num_numeric,), float("nan")),
        torch.zeros(num_categorical, dtype=torch.long),
    )


def test_mutual_information_matches_scikit_learn_on_the_binned_columns():
    torch.manual_seed(0)
    numeric = torch.randn(300, 2)
    numeric[:, 1] = numeric[:, 0] + 0.3 * torch.randn(300)
    numeric[::7, 0] = float("nan")
    codes = torch.randint(-1, 4, (300, 2))
    information = feature_mutual_information(numeric, codes, bins=5)
    values = discretize_columns(numeric, codes, bins=5).numpy()
    assert values[::7, 0].tolist() == [0] * len(values[::7, 0])  # missing is its own value
    assert set(np.unique(values[:, 1])) == {1, 2, 3, 4, 5}  # five quantile bins
    for i in range(4):
        for j in range(4):
            assert information[i, j].item() == pytest.approx(mutual_info_score(values[:, i], values[:, j]), abs=1e-9)
    assert information[0, 1] > 5 * information[2, 3]  # the correlated pair stands out


@pytest.mark.parametrize("masking", ["random", "correlated"])
def test_the_two_views_hide_complementary_halves(masking):
    torch.manual_seed(0)
    numeric, codes = torch.randn(5), torch.tensor([2, 3])
    information = torch.rand(7, 7)
    masker = ComplementaryFeatureMasking(identity_prepare(5, 2), masking, information + information.T)
    for _ in range(20):
        first, second = masker(TabularInput(numeric, codes), 2)["views"]
        hidden = [torch.cat([view.numeric.isnan(), view.categorical == 0]) for view in (first, second)]
        assert int(hidden[0].sum()) == 3 and int(hidden[1].sum()) == 4  # F // 2 and the rest
        assert torch.equal(hidden[0], ~hidden[1])
        for view, hide in zip((first, second), hidden):
            assert torch.equal(view.numeric[~hide[:5]], numeric[~hide[:5]])
            assert torch.equal(view.categorical[~hide[5:]], codes[~hide[5:]])
    with pytest.raises(ValueError, match="num_views: expected 2"):
        masker(TabularInput(numeric, codes), 3)


def test_correlated_masking_hides_a_seed_with_its_most_informative_partners():
    information = torch.zeros(6, 6)
    for group in ((0, 1, 2), (3, 4, 5)):
        for i in group:
            for j in group:
                information[i, j] = 1.0
    information[0, 3] = information[3, 0] = 0.5  # 0's third partner would be 3, but its group comes first
    masker = ComplementaryFeatureMasking(identity_prepare(6, 0), "correlated", information)
    torch.manual_seed(0)
    sets = {tuple(masker.hidden(6).nonzero().flatten().tolist()) for _ in range(50)}
    assert sets == {(0, 1, 2), (3, 4, 5)}
    random_sets = {tuple(ComplementaryFeatureMasking(masker.prepare, "random").hidden(6).nonzero().flatten().tolist())
                   for _ in range(50)}  # fmt: skip
    assert len(random_sets) > 5


def test_objective_is_symmetric_infonce_over_cosines():
    torch.manual_seed(0)
    model = ItemSSL(input_spec=TabularDataModule().input_spec, temperature=0.2)
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / 0.2
    expected = 0.5 * (
        -torch.log_softmax(logits, dim=1).diagonal().mean() - torch.log_softmax(logits.T, dim=1).diagonal().mean()
    )
    loss, _ = model.objective([z1, z2], [])
    torch.testing.assert_close(loss, expected)


def test_fit_switches_the_datamodule_to_masked_views_and_trains(tmp_path):
    dm = TabularDataModule(batch_size=32)
    model = ItemSSL(masking="random", input_spec=dm.input_spec)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = fast_trainer(tmp_path, max_steps=3, limit_val_batches=1)
    trainer.fit(model, dm)
    assert dm.feature_masking == "random"
    views = next(iter(dm.train_dataloader()))["views"]
    hidden = [torch.cat([view.numeric.isnan(), view.categorical == 0], dim=1) for view in views]
    assert torch.equal(hidden[0] | hidden[1], torch.ones_like(hidden[0]))  # penguins' own NaNs add to the hidden
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert any(not torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="masking must be one of"):
        ItemSSL(masking="blocks", input_spec=TabularDataModule().input_spec)
    with pytest.raises(ValueError, match="feature_masking: expected None"):
        TabularDataModule(feature_masking="all")
    with pytest.raises(ValueError, match="correlated feature masking needs"):
        ComplementaryFeatureMasking(identity_prepare(2, 0), "correlated")


def test_fit_from_the_command_line_on_a_table_written_here(tmp_path: Path, capsys):
    rows = 60
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, rows)
    pd.DataFrame(
        {
            "a": label + 0.1 * rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "c": np.where(label == 1, "x", "y"),
            "label": label,
        }
    ).to_csv(tmp_path / "items.csv", index=False)
    build_cli(
        [
            "fit",
            "--model=jepa_lightning.methods.ItemSSL",
            "--data=datamodules.tabular.TabularDataModule",
            f"--data.init_args.path={tmp_path / 'items.csv'}",
            "--data.init_args.label=label",
            "--data.init_args.batch_size=16",
            "--trainer.max_steps=3",
            "--trainer.callbacks+=jepa_lightning.callbacks.LinearProbeReport",
            "--trainer.callbacks.init_args.plot=false",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            "--diagnostics=false",
            *FAST_TRAINER_ARGS,
        ]
    )
    out = capsys.readouterr()
    assert "pretrained encoder:" in out.out + out.err


def test_the_letter_config_fits_on_a_headerless_table_written_here(tmp_path: Path, capsys):
    rng = np.random.default_rng(1)
    letters = rng.choice(list("ABC"), 90)
    features = rng.integers(0, 16, (90, 16)) + (letters[:, None] == "A") * 3
    pd.DataFrame(np.column_stack([letters, features])).to_csv(tmp_path / "letters.data", index=False, header=False)
    config = Path(__file__).resolve().parents[2] / "examples" / "configs" / "itemssl_letter.yaml"
    build_cli(
        [
            "fit",
            f"--config={config}",
            f"--data.init_args.path={tmp_path / 'letters.data'}",
            "--data.init_args.batch_size=16",
            "--trainer.max_steps=2",
            "--trainer.callbacks.init_args.plot=false",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            "--diagnostics=false",
            *FAST_TRAINER_ARGS,
        ]
    )
    out = capsys.readouterr()
    assert "pretrained encoder:" in out.out + out.err
