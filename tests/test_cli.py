"""The command line: fit, predict, resume and the data -> model link, on the bundled digits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from jepa_lightning.cli import build_cli, main
from tests.conftest import TINY_IJEPA


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """LightningCLI warns when both ``args`` and pytest's own command line are present."""
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def test_fit_fast_dev_run_on_bundled_digits(tmp_path):
    main(["fit", *TINY_IJEPA, "--trainer.fast_dev_run=true", f"--trainer.default_root_dir={tmp_path}"])


def test_the_readme_config_parses_and_links_the_data_into_the_model():
    config = Path(__file__).parents[1] / "examples" / "configs" / "ijepa_digits.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "jepa_lightning", "fit", "--config", str(config), "--print_config"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "jepa_lightning.methods.IJEPA" in result.stdout
    assert "datamodules.images.ImageDataModule" in result.stdout


def test_build_cli_without_running_gives_the_configured_and_linked_objects(caplog):
    config = Path(__file__).parents[1] / "examples" / "configs" / "ijepa_digits.yaml"
    cli = build_cli(["--config", str(config), "--trainer.logger=false"], run=False)
    assert type(cli.model).__name__ == "IJEPA"
    assert cli.model.input_spec == cli.datamodule.input_spec
    assert cli.datamodule.batch_size == 32 and cli.trainer.max_epochs == 20
    messages = [record.getMessage() for record in caplog.records]
    assert any("GPU available" in message for message in messages)  # Lightning spoke,
    assert not any("Tip" in message for message in messages)  # without advertising


def fit_two_epochs(root: Path, resume: Path | None = None) -> list[Path]:
    """Fit for two epochs of three steps, keeping a checkpoint after every epoch; optionally resume."""
    args = [
        "fit",
        *TINY_IJEPA,
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=1",
        "--trainer.logger=false",
        "--trainer.callbacks=ModelCheckpoint",
        f"--trainer.callbacks.dirpath={root}",
        "--trainer.callbacks.save_top_k=-1",
        f"--trainer.default_root_dir={root}",
    ]
    if resume is not None:
        args.append(f"--ckpt_path={resume}")
    main(args)
    return sorted(root.glob("*.ckpt"))


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    after_first_epoch, after_second_epoch = fit_two_epochs(tmp_path / "straight")
    straight = torch.load(after_second_epoch, weights_only=False)
    (resumed_path,) = fit_two_epochs(tmp_path / "resumed", resume=after_first_epoch)
    resumed = torch.load(resumed_path, weights_only=False)
    assert straight["global_step"] == resumed["global_step"] == 6
    for name, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=0, atol=0, msg=name)
    assert any(name.startswith("teacher.") for name in straight["state_dict"])
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(
            straight["optimizer_states"][0]["state"][0][key], resumed["optimizer_states"][0]["state"][0][key]
        )
    assert straight["lr_schedulers"][0]["last_epoch"] == resumed["lr_schedulers"][0]["last_epoch"] == 6


def test_predict_writes_embeddings_for_every_sample(tmp_path, monkeypatch):
    checkpoint = fit_two_epochs(tmp_path / "fit")[-1]
    output = tmp_path / "embeddings.npz"
    monkeypatch.chdir(tmp_path)  # where a default logger would start a run folder
    main(["predict", *TINY_IJEPA, f"--ckpt_path={checkpoint}", f"--embeddings.output={output}"])
    assert not (tmp_path / "lightning_logs").exists()  # predict starts no run
    saved = np.load(output)
    assert saved["embedding"].shape == (1797, 32)
    assert saved["y"].shape == (1797,)
    assert set(np.unique(saved["y"])) == set(range(10))
    assert np.isfinite(saved["embedding"]).all()


def test_wrong_model_argument_is_reported(capsys):
    with pytest.raises(SystemExit):
        main(["fit", *TINY_IJEPA, "--model.patch_size=not-a-number"])
    assert "patch_size" in capsys.readouterr().err


def test_probe_scores_a_checkpoint_better_than_chance_and_starts_no_run(tmp_path, capsys, monkeypatch):
    checkpoint = fit_two_epochs(tmp_path / "fit")[-1]
    monkeypatch.chdir(tmp_path)
    main(["probe", *TINY_IJEPA, f"--ckpt_path={checkpoint}"])
    assert not (tmp_path / "lightning_logs").exists()  # the next fit is still version_0
    out = capsys.readouterr()
    line = next(text for text in (out.out + out.err).splitlines() if "Linear probe accuracy on the val split" in text)
    assert float(line.rsplit(":", 1)[1]) > 0.5  # ten balanced classes: chance is 0.1
    # V-JEPA's probe on the tokens, shortened to seconds: fewer epochs of more, larger steps than the official recipe
    attentive = ["--head=attentive", "--attentive.epochs=4", "--attentive.batch_size=8", "--attentive.lr=1e-2"]
    main(["probe", *TINY_IJEPA, f"--ckpt_path={checkpoint}", *attentive])
    out = capsys.readouterr()
    line = next(text for text in (out.out + out.err).splitlines() if "Attentive probe accuracy on the val" in text)
    assert float(line.rsplit(":", 1)[1]) > 0.3
    assert not (tmp_path / "lightning_logs").exists()
    with pytest.raises(SystemExit):
        main(["probe", *TINY_IJEPA, f"--ckpt_path={checkpoint}", "--head=nonlinear"])
    assert "head" in capsys.readouterr().err


class RecordMetrics(L.Callback):
    """Writes the trainer's final callback metrics and callback types to a JSON file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_fit_end(self, trainer, pl_module) -> None:
        record = {
            "metrics": {key: float(value) for key, value in trainer.callback_metrics.items()},
            "callbacks": sorted(type(callback).__name__ for callback in trainer.callbacks),
        }
        self.path.write_text(json.dumps(record))


@pytest.mark.parametrize("diagnostics", [True, False])
def test_fit_shows_probe_rankme_spectrum_and_collapse_checks_by_default(tmp_path, diagnostics):
    record = tmp_path / "record.json"
    main(
        [
            "fit",
            *TINY_IJEPA,
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=2",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.callbacks=tests.test_cli.RecordMetrics",
            f"--trainer.callbacks.path={record}",
            f"--diagnostics={str(diagnostics).lower()}",
        ]
    )
    saved = json.loads(record.read_text())
    expected = {"OnlineLinearProbe", "RankMeMonitor", "SpectrumPlot", "CollapseMonitor"}
    assert expected <= set(saved["callbacks"]) if diagnostics else expected.isdisjoint(saved["callbacks"])
    assert ("probe/acc" in saved["metrics"]) == diagnostics
    assert ("val/rankme" in saved["metrics"]) == diagnostics
    assert bool(list(tmp_path.rglob("spectrum.png"))) == diagnostics


def cloud_folder(root: Path) -> Path:
    """Sixteen random NPY clouds of 256 points in two classes (flat and round)."""
    generator = np.random.default_rng(0)
    folder = root / "clouds"
    for label in ("flat", "round"):
        (folder / label).mkdir(parents=True)
        for index in range(8):
            points = generator.normal(size=(256, 3)).astype(np.float32)
            points[:, 1] *= 0.1 if label == "flat" else 1.0
            np.save(folder / label / f"{index}.npy", points)
    return folder


def test_point_jepa_fits_through_the_cli_on_a_folder_of_clouds(tmp_path):
    folder = cloud_folder(tmp_path)
    config = Path(__file__).parents[1] / "examples" / "configs" / "pointjepa_cgal.yaml"
    main(
        [
            "fit",
            "--config",
            str(config),
            f"--data.path={folder}",
            "--data.num_points=128",
            "--data.batch_size=4",
            "--model.num_groups=16",
            "--model.group_size=8",
            "--model.encoder.embed_dim=24",
            "--model.encoder.depth=1",
            "--model.predictor_dim=12",
            "--model.predictor_depth=1",
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_a_joint_embedding_method_runs_on_point_clouds_with_the_point_tokenizer(tmp_path):
    main(
        [
            "fit",
            "--model=jepa_lightning.methods.VICReg",
            "--model.backbone=jepa_lightning.nn.PooledTokenBackbone",
            "--model.backbone.encoder=jepa_lightning.nn.TransformerEncoder",
            "--model.backbone.encoder.embed_dim=24",
            "--model.backbone.encoder.depth=1",
            "--model.backbone.encoder.num_heads=2",
            "--model.backbone.tokenizer=jepa_lightning.tokenizers.PointPatchTokenizer",
            "--model.backbone.tokenizer.num_groups=16",
            "--model.backbone.tokenizer.group_size=8",
            "--model.projector_dims=[32, 32]",
            "--data=datamodules.point_clouds.PointCloudDataModule",
            f"--data.path={cloud_folder(tmp_path)}",
            "--data.num_points=128",
            "--data.batch_size=4",
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


def test_fit_into_a_log_file_writes_one_plain_line_per_epoch(tmp_path, capsys):
    """stderr is not a terminal here (pytest captures it), as in ``jepa-lightning fit ... 2> run.log``."""
    args = [arg for arg in TINY_IJEPA if "enable_progress_bar" not in arg]
    main(["fit", *args, "--diagnostics=false", "--trainer.max_epochs=2", "--trainer.limit_train_batches=2",
          "--trainer.limit_val_batches=1", f"--trainer.default_root_dir={tmp_path}"])  # fmt: skip
    err = capsys.readouterr().err
    epochs = [line.split(" | ")[:2] for line in err.splitlines() if line.startswith("epoch ")]
    assert epochs == [["epoch 1/2", "step 2"], ["epoch 2/2", "step 4"]]
    assert "\r" not in err
