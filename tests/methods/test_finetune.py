"""FineTune: layer-wise learning-rate decay as MAE's, a frozen warm-up that leaves the encoder alone, and the encoder
it loads equal to the exported (or checkpointed) one."""

from __future__ import annotations

import copy
import sys
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import timm
import torch
import yaml

from datamodules.audio import AudioDataModule
from datamodules.ecg import ECGDataModule
from datamodules.graphs import GraphDataModule
from datamodules.images import ImageDataModule
from datamodules.point_clouds import PointCloudDataModule
from datamodules.tabular import TabularDataModule
from datamodules.video import VideoDataModule
from jepa_lightning.cli import main
from jepa_lightning.export import load_encoder, save_encoder
from jepa_lightning.inputs import GraphInput, InputSpec
from jepa_lightning.methods import AJEPA, ECGJEPA, EEGJEPA, TJEPA, TSJEPA, VJEPA, ConGraT, FineTune, SSLMethod
from jepa_lightning.nn import GATEncoder, TextEncoder, TransformerEncoder
from tests.conftest import DIGITS_16, fast_trainer, tiny_ijepa
from tests.datamodules.test_audio import RATE as AUDIO_RATE
from tests.datamodules.test_audio import labeled_folder
from tests.datamodules.test_graphs import write_graph
from tests.datamodules.test_point_clouds import make_classes
from tests.methods.test_pointjepa import tiny_point_jepa

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
TINY_IJEPA_SECTION = {
    "class_path": "jepa_lightning.methods.IJEPA",
    "init_args": {
        "encoder": {
            "class_path": "jepa_lightning.nn.TransformerEncoder",
            "init_args": {"embed_dim": 32, "depth": 2, "num_heads": 2},
        },
        "patch_size": 2,
        "predictor_dim": 16,
        "predictor_depth": 1,
        "predictor_heads": 2,
    },
}


@pytest.fixture
def exported(tmp_path):
    model = tiny_ijepa()
    with torch.no_grad():  # a teacher distinct from the student and from any fresh initialisation
        for parameter in model.teacher.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    save_encoder(model.export_network(), tmp_path / "encoder", DIGITS_16)
    return tmp_path / "encoder.safetensors"


# official: facebookresearch/mae@efb2a8062c206524e35e47d04501ed4f544c0ae8 util/lr_decay.py::param_groups_lrd
def official_param_groups_lrd(model, weight_decay=0.05, no_weight_decay_list=(), layer_decay=0.75):
    num_layers = len(model.blocks) + 1
    layer_scales = [layer_decay ** (num_layers - i) for i in range(num_layers + 1)]
    groups = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 1 or n in no_weight_decay_list:
            g_decay, this_decay = "no_decay", 0.0
        else:
            g_decay, this_decay = "decay", weight_decay
        layer_id = official_layer_id_for_vit(n, num_layers)
        group = groups.setdefault(
            f"layer_{layer_id}_{g_decay}",
            {"lr_scale": layer_scales[layer_id], "weight_decay": this_decay, "params": []},
        )
        group["params"].append(n)
    return list(groups.values())


# official: facebookresearch/mae@efb2a8062c206524e35e47d04501ed4f544c0ae8 util/lr_decay.py::get_layer_id_for_vit
def official_layer_id_for_vit(name, num_layers):
    if name in ["cls_token", "pos_embed"]:
        return 0
    if name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return num_layers


def timm_name(name: str) -> str:
    """Our FineTune parameter name in timm's ViT layout (what the timm export writes)."""
    for ours, theirs in (
        ("encoder.tokenizer.proj.", "patch_embed.proj."),
        ("encoder.encoder.", ""),
        ("head.2.", "head."),
    ):
        if name.startswith(ours):
            return theirs + name.removeprefix(ours)
    raise AssertionError(name)


def test_layer_wise_decay_gives_maes_learning_rate_per_parameter(exported):
    model = FineTune(encoder=str(exported), input_spec=DIGITS_16, layer_decay=0.6, lr=2e-3, weight_decay=0.05)
    vit = timm.create_model(
        "vit_base_patch16_224", img_size=16, patch_size=2, in_chans=1, embed_dim=32, depth=2, num_heads=2,
        class_token=False, global_pool="avg", fc_norm=False, num_classes=10,
    )  # fmt: skip
    expected = {}
    for group in official_param_groups_lrd(vit, 0.05, ("pos_embed",), 0.6):
        for name in group["params"]:
            expected[name] = (group["lr_scale"], group["weight_decay"])
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    found = {}
    for group in model.build_optimizer().param_groups:
        assert group["lr"] == pytest.approx(2e-3 * group["lr_scale"])
        for parameter in group["params"]:
            found[timm_name(names[id(parameter)])] = (pytest.approx(group["lr_scale"]), group["weight_decay"])
    expected.pop("pos_embed")  # timm learns it; our sin-cos positions are a fixed buffer
    assert found == expected
    assert found["patch_embed.proj.weight"][0] == pytest.approx(0.6**3)  # 2 blocks + 1
    assert found["blocks.0.attn.qkv.weight"][0] == pytest.approx(0.6**2)
    assert found["head.weight"][0] == found["norm.weight"][0] == pytest.approx(1.0)


class Snapshots(L.Callback):
    """The encoder's and the head's weights at the end of every training epoch."""

    def __init__(self) -> None:
        self.encoder: list[dict[str, torch.Tensor]] = []
        self.head: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.encoder.append(copy.deepcopy(pl_module.encoder.state_dict()))
        self.head.append(copy.deepcopy(pl_module.head.state_dict()))


def test_frozen_warm_up_leaves_the_encoder_unchanged_then_trains_it(exported, tmp_path):
    model = FineTune(encoder=str(exported), input_spec=DIGITS_16, freeze_epochs=1, lr=1e-2, warmup_fraction=0.0)
    start = copy.deepcopy(model.encoder.state_dict())
    head = copy.deepcopy(model.head.state_dict())
    snapshots = Snapshots()
    trainer = fast_trainer(tmp_path, max_epochs=2, limit_train_batches=3, limit_val_batches=0, callbacks=[snapshots])
    trainer.fit(model, ImageDataModule(image_size=16, batch_size=32))
    for key, value in start.items():
        assert torch.equal(snapshots.encoder[0][key], value), key  # warm-up: the encoder did not move
    assert not torch.equal(snapshots.head[0]["2.weight"], head["2.weight"])  # but the head did
    moved = [key for key, value in start.items() if not torch.equal(snapshots.encoder[1][key], value)]
    assert "encoder.blocks.0.attn.qkv.weight" in moved and "tokenizer.proj.weight" in moved


def test_the_encoder_loaded_equals_the_exported_one(exported, digits_batch):
    model = FineTune(encoder=str(exported), input_spec=DIGITS_16).eval()
    reference = load_encoder(exported)
    assert model.encoder.state_dict().keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value)
    assert torch.equal(model.embed(digits_batch), reference(digits_batch))
    assert model(digits_batch).shape == (32, 10)
    assert model.export_network() is model.encoder  # a fine-tuned encoder exports like a pretrained one


def test_the_encoder_of_a_fit_checkpoint_is_its_exported_teacher(tmp_path, digits_batch):
    method = tiny_ijepa()  # the model TINY_IJEPA_SECTION describes (its mask sampler holds no weights)
    with torch.no_grad():
        for parameter in method.teacher.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    torch.save({"state_dict": method.state_dict()}, tmp_path / "fit.ckpt")
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump({"model": TINY_IJEPA_SECTION}))
    model = FineTune(
        pretrained_config=str(tmp_path / "fit.yaml"), ckpt_path=str(tmp_path / "fit.ckpt"), input_spec=DIGITS_16
    ).eval()
    assert torch.equal(model.embed(digits_batch), method.eval().embed(digits_batch))


def test_bad_settings_are_refused(exported):
    tables = InputSpec("tabular", num_numeric=3, categories=(2,), num_classes=2)
    with pytest.raises(ValueError, match="mixup"):
        FineTune(encoder=str(exported), input_spec=tables, mixup_alpha=0.2)
    with pytest.raises(ValueError, match="from one place"):
        FineTune(input_spec=DIGITS_16)
    with pytest.raises(FileNotFoundError, match="no encoder file"):
        FineTune(encoder="missing.safetensors", input_spec=DIGITS_16)


def digits_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    return DIGITS_16, tiny_ijepa(), ["--data.image_size=16"]


def blink_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    spec = InputSpec("eeg", channels=4, sample_rate=128.0, num_classes=2, length=256)
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    options = {"patch_length": 32, "predictor_dim": 8, "predictor_depth": 1, "predictor_heads": 2}
    return spec, EEGJEPA(encoder=encoder, input_spec=spec, **options), []


def gunpoint_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    spec = InputSpec("time_series", channels=1, num_classes=2, length=150)
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    return spec, TSJEPA(encoder=encoder, patch_length=10, predictor_dim=16, input_spec=spec), []


def klettres_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    """Tones in two class folders written here (klettres-data is a Debian package), 0.5 s at 8 kHz."""
    folder = labeled_folder(tmp_path / "audio", per_class=5, seconds=0.5)
    options = {"path": str(folder), "sample_rate": AUDIO_RATE, "clip_seconds": 0.5, "batch_size": 2}
    spec = AudioDataModule(**options).input_spec
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    method = AJEPA(
        encoder=encoder, n_mels=32, patch_size=(4, 8), predictor_dim=8, predictor_depth=1, predictor_heads=2,
        readout="rows", input_spec=spec,
    )  # fmt: skip
    return spec, method, [f"--data.{key}={value}" for key, value in options.items()]


def penguins_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    spec = TabularDataModule(missing="keep").input_spec
    encoder = TransformerEncoder(
        16, 1, 2, 1.0, norm_placement="post", activation="relu", norm_eps=1e-5, output_head=True
    )
    method = TJEPA(encoder=encoder, predictor_dim=8, predictor_depth=1, predictor_heads=2, input_spec=spec)
    return spec, method, []


def moving_digits_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    """Clips of noise in two class folders (NPY, 8 frames of 16 x 16) instead of the generated moving digits."""
    generator = np.random.default_rng(0)
    for name in ("one", "two"):
        (tmp_path / "video" / name).mkdir(parents=True)
        for k in range(5):
            np.save(tmp_path / "video" / name / f"{k}.npy", generator.integers(0, 255, (8, 16, 16), np.uint8))
    options = {"path": str(tmp_path / "video"), "image_size": 16, "frames_per_clip": 4, "batch_size": 2}
    spec = VideoDataModule(**options, frame_step=2).input_spec
    encoder = TransformerEncoder(embed_dim=24, depth=1, num_heads=2)
    method = VJEPA(encoder=encoder, patch_size=8, predictor_dim=12, predictor_depth=1, input_spec=spec)
    return spec, method, [f"--data.{key}={value}" for key, value in options.items()]


def wordnet_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    """A ring of 24 labelled nodes with texts written here (WordNet is a Debian package)."""
    nodes, edges = write_graph(tmp_path, nodes=24)
    options = {"nodes": str(nodes), "edges": str(edges), "label_column": "kind", "text_column": "text"}
    spec = GraphDataModule(**options, link_fraction=0.1).input_spec
    method = ConGraT(
        encoder=partial(GATEncoder, hidden=16, num_layers=2, heads=2),
        pair_encoder=partial(TextEncoder, width=16, depth=1, heads=2, max_length=16),
        embed_dim=16,
        input_spec=spec,
    )
    data = ["--data.wordnet=null", "--data.batch_size=6", *(f"--data.{key}={value}" for key, value in options.items())]
    return spec, method, data


@pytest.mark.parametrize(
    ("config", "case"),
    [
        ("finetune_digits.yaml", digits_case),
        ("finetune_gunpoint.yaml", gunpoint_case),
        ("finetune_blink.yaml", blink_case),
        ("finetune_klettres.yaml", klettres_case),
        ("finetune_penguins.yaml", penguins_case),
        ("finetune_moving_digits.yaml", moving_digits_case),
        ("finetune_wordnet.yaml", wordnet_case),
    ],
)
def test_the_fine_tune_configs_fit_through_the_command_line(tmp_path, monkeypatch, config, case):
    """Each modality family's fine-tune config, with a tiny pretrained encoder exported here and data small enough
    for a few seconds (files written here where the config's data set is a Debian package)."""
    fit_through_the_command_line(tmp_path, monkeypatch, case, [f"--config={CONFIGS / config}"])


def ecg_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    """Two class folders of one-lead NPZ records (20 s at 100 Hz, 2 s windows) written here."""
    generator = np.random.default_rng(0)
    for name in ("normal", "other"):
        (tmp_path / "ecg" / name).mkdir(parents=True)
        for k in range(2):
            signal = generator.normal(size=(1, 2000)).astype(np.float32)
            np.savez(tmp_path / "ecg" / name / f"{k}.npz", signal=signal, sample_rate=100.0, lead_names=["II"])
    options = {"path": str(tmp_path / "ecg"), "window_seconds": 2.0, "batch_size": 4}
    spec = ECGDataModule(**options).input_spec
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    method = ECGJEPA(encoder=encoder, predictor_dim=8, predictor_depth=1, predictor_heads=2, input_spec=spec)
    return spec, method, ["--data=datamodules.ecg.ECGDataModule", *(f"--data.{k}={v}" for k, v in options.items())]


def point_cloud_case(tmp_path: Path) -> tuple[InputSpec, SSLMethod, list[str]]:
    """Meshes in two class folders written here (CGAL's models carry names, not classes)."""
    options = {"path": str(make_classes(tmp_path / "clouds")), "num_points": 64, "batch_size": 2}
    spec = PointCloudDataModule(**options).input_spec
    method = tiny_point_jepa(input_spec=spec)
    data = ["--data=datamodules.point_clouds.PointCloudDataModule", *(f"--data.{k}={v}" for k, v in options.items())]
    return spec, method, data


@pytest.mark.parametrize("case", [ecg_case, point_cloud_case])
def test_fine_tuning_fits_the_modalities_without_labelled_data_offline_on_labelled_folders(tmp_path, monkeypatch, case):
    """ECG and point clouds have no labelled data set here (the bundled ECG record and CGAL's models are unlabelled),
    so no config: the command line names FineTune and the datamodule, on class folders written here."""
    model = ["--model=jepa_lightning.methods.FineTune", "--model.freeze_epochs=1", "--diagnostics=false"]
    fit_through_the_command_line(tmp_path, monkeypatch, case, model)


def fit_through_the_command_line(tmp_path: Path, monkeypatch, case, config: list[str]) -> None:
    """Export the case's tiny encoder, fit FineTune on it through ``jepa-lightning fit`` for 2 x 2 steps, and check
    the checkpoint: 4 steps, a head."""
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])
    spec, method, data = case(tmp_path)
    save_encoder(method.export_network(), tmp_path / "encoder", spec)
    main(
        [
            "fit",
            *config,
            f"--model.encoder={tmp_path / 'encoder.safetensors'}",
            *data,
            "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    checkpoint = torch.load(tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4
    assert any(key.startswith("head.") for key in checkpoint["state_dict"])


def test_without_classes_it_regresses_and_leaves_out_missing_targets(exported, digits_batch):
    spec = InputSpec("images", channels=1, image_size=(16, 16))
    model = FineTune(encoder=str(exported), input_spec=spec, num_outputs=1)
    assert model.task == "regression" and model.head[-1].out_features == 1
    y = torch.linspace(0, 1, 32)
    y[::4] = float("nan")  # no target: left out
    assert model.labelled(y).equal(~torch.isnan(y))
    loss = model.loss(model(digits_batch[model.labelled(y)]), y[model.labelled(y)])
    assert torch.isfinite(loss) and loss > 0


def test_mixup_mixes_inputs_and_smoothed_one_hot_labels_with_one_weight(exported, digits_batch):
    model = FineTune(encoder=str(exported), input_spec=DIGITS_16, mixup_alpha=0.4, label_smoothing=0.1)
    y = torch.arange(32) % 10
    torch.manual_seed(0)
    np.random.seed(0)
    mixed, targets = model.mixup(digits_batch, y)
    torch.manual_seed(0)
    np.random.seed(0)
    weight = float(np.random.beta(0.4, 0.4))
    order = torch.randperm(32)
    torch.testing.assert_close(mixed, weight * digits_batch + (1 - weight) * digits_batch[order])
    smoothed = torch.nn.functional.one_hot(y, 10) * 0.9 + 0.01
    torch.testing.assert_close(targets, weight * smoothed + (1 - weight) * smoothed[order])
    torch.testing.assert_close(targets.sum(1), torch.ones(32))


@pytest.mark.parametrize(("readout", "width"), [("mean", 16), ("sum", 16), ("max_mean", 32)])
def test_series_of_any_length_get_a_head_as_wide_as_the_readout(tmp_path, readout, width):
    """Without a fixed length (the spec gives none) the width comes from the readout; rows or flatten refuse."""
    spec = InputSpec("time_series", channels=1, num_classes=2)
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    method = TSJEPA(encoder=encoder, patch_length=10, predictor_dim=16, input_spec=spec, readout=readout)
    save_encoder(method.export_network(), tmp_path / "encoder", spec)
    model = FineTune(encoder=str(tmp_path / "encoder.safetensors"), input_spec=spec)
    assert model.head[-1].in_features == width
    series = torch.randn(3, 1, 40)
    assert model.head(model.encoder(series)).shape == (3, 2)


def test_graph_items_without_a_label_leave_the_seeds_or_the_graphs_and_nothing_else(tmp_path):
    """Node level: the kept seeds in the same graph; graph level: the kept graphs' nodes and edges, renumbered. The
    outputs of what is kept do not change (eval mode: every item is computed on its own)."""
    spec = InputSpec("graphs", channels=3, num_classes=2)
    torch.manual_seed(0)
    save_encoder(GATEncoder(spec, hidden=8, num_layers=2, heads=2), tmp_path / "encoder", spec)
    model = FineTune(encoder=str(tmp_path / "encoder.safetensors"), input_spec=spec, layer_decay=1.0).eval()
    edges = torch.tensor([[0, 1, 2, 3, 5], [1, 2, 0, 4, 6]])
    keep = torch.tensor([True, False, True])
    nodes = GraphInput(torch.randn(7, 3), edges, torch.tensor([0, 3, 5]))
    kept = model.select(nodes, keep)
    assert kept.seeds.tolist() == [0, 5] and kept.x is nodes.x and kept.edge_index is nodes.edge_index
    graphs = GraphInput(torch.randn(7, 3), edges, torch.arange(3), torch.tensor([0, 0, 0, 1, 1, 2, 2]))
    kept = model.select(graphs, keep)
    assert torch.equal(kept.x, graphs.x[[0, 1, 2, 5, 6]]) and kept.batch.tolist() == [0, 0, 0, 1, 1]
    assert kept.edge_index.tolist() == [[0, 1, 2, 3], [1, 2, 0, 4]] and kept.seeds.tolist() == [0, 1]
    with torch.no_grad():
        for inputs in (nodes, graphs):
            torch.testing.assert_close(model(model.select(inputs, keep)), model(inputs)[keep])
