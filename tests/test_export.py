"""``jepa-lightning export`` and ``load_encoder``: a checkpoint's encoder as safetensors + JSON, rebuilt without
Lightning with the same embeddings; timm's ViT loads the timm layout; nothing is unpickled or fetched."""

from __future__ import annotations

import ast
import json
import pickle
import sys
from functools import partial
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

from jepa_lightning import load_encoder
from jepa_lightning.cli import build_cli, main
from jepa_lightning.export import ExportError, save_encoder
from jepa_lightning.inputs import InputSpec, model_input
from jepa_lightning.methods import BYOL, VJEPA, ConGraT, FineTune, SeqJEPA, SimCLR
from jepa_lightning.nn import GATEncoder, PooledTokenBackbone, TextEncoder, TimmBackbone, TransformerEncoder
from jepa_lightning.tokenizers import PatchTokenizer2d
from tests.conftest import DIGITS_16, TINY_IJEPA, tiny_ijepa
from tests.methods.test_two_tower import karate_with_texts
from tests.test_cli_safety import CreatesAFile

REPO = Path(__file__).resolve().parents[1]
TINY_SIMCLR = [
    "--model=jepa_lightning.methods.SimCLR",
    "--model.backbone=jepa_lightning.nn.PooledTokenBackbone",
    "--model.backbone.encoder=jepa_lightning.nn.TransformerEncoder",
    "--model.backbone.encoder.embed_dim=32",
    "--model.backbone.encoder.depth=1",
    "--model.backbone.encoder.num_heads=2",
    "--model.backbone.tokenizer=jepa_lightning.tokenizers.PatchTokenizer2d",
    "--model.backbone.tokenizer.patch_size=4",
    "--model.projector_dims=[32, 16]",
    *TINY_IJEPA[TINY_IJEPA.index("--data=datamodules.images.ImageDataModule") :],
]
QUICK = ["--diagnostics=false", "--trainer.max_steps=3", "--trainer.limit_val_batches=0", "--trainer.logger=false"]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A three-step fit of the tiny I-JEPA and of the tiny SimCLR, through the command line."""
    found = {}
    for name, args in (("ijepa", TINY_IJEPA), ("simclr", TINY_SIMCLR)):
        root = tmp_path_factory.mktemp(name)
        old_argv, sys.argv = sys.argv, ["jepa-lightning"]
        try:
            main(["fit", *args, *QUICK, f"--trainer.default_root_dir={root}"])
        finally:
            sys.argv = old_argv
        found[name] = root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    return found


def trained(args: list[str], checkpoint: Path) -> torch.nn.Module:
    """The config's model with the checkpoint's weights, in eval mode."""
    model = build_cli(args, run=False).model
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    return model.eval()


def export(args: list[str], checkpoint: Path, output: Path, *extra: str) -> None:
    main(["export", *args, f"--ckpt_path={checkpoint}", f"--output={output}", *extra])


@pytest.mark.parametrize(
    ("name", "args", "network"), [("ijepa", TINY_IJEPA, "target"), ("simclr", TINY_SIMCLR, "student")]
)
def test_export_then_load_encoder_gives_the_checkpoints_embeddings(
    checkpoints, tmp_path, digits_batch, name, args, network
):
    export(args, checkpoints[name], tmp_path / "encoder.safetensors")
    info = json.loads((tmp_path / "encoder.json").read_text())
    assert info["network"] == network  # I-JEPA: the EMA teacher; SimCLR: its backbone
    assert info["method"]["class_path"].endswith(".IJEPA" if name == "ijepa" else ".SimCLR")
    assert info["input_spec"]["image_size"] == [16, 16]
    encoder = load_encoder(tmp_path / "encoder.safetensors")
    assert not encoder.training
    with torch.no_grad():
        assert torch.equal(encoder(digits_batch), trained(args, checkpoints[name]).embed(digits_batch))
    weights = safetensors.torch.load_file(str(tmp_path / "encoder.safetensors"))  # a plain state dict
    assert weights.keys() == encoder.state_dict().keys()


def test_network_selects_the_teacher_or_the_student(checkpoints, tmp_path, digits_batch):
    export(TINY_IJEPA, checkpoints["ijepa"], tmp_path / "student", "--network=student")
    model = trained(TINY_IJEPA, checkpoints["ijepa"])
    student = load_encoder(tmp_path / "student.json")
    with torch.no_grad():
        expected = model.student.pooled(digits_batch)
        assert torch.equal(student(digits_batch), expected)
        assert not torch.equal(expected, model.embed(digits_batch))  # the teacher moved away from the student


def test_timm_layout_loads_into_timms_vit_with_the_same_outputs(checkpoints, tmp_path, digits_batch):
    export(TINY_IJEPA, checkpoints["ijepa"], tmp_path / "vit.safetensors", "--format=timm")
    info = json.loads((tmp_path / "vit.json").read_text())
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in info["timm"]["kwargs"].items()}
    assert kwargs["class_token"] is False and kwargs["global_pool"] == "avg" and kwargs["fc_norm"] is False
    vit = timm.create_model(
        info["timm"]["model_name"],
        pretrained=True,
        pretrained_cfg_overlay={"file": str(tmp_path / "vit.safetensors"), **info["timm"]["pretrained_cfg_overlay"]},
        **kwargs,
    ).eval()
    with torch.no_grad():
        expected = trained(TINY_IJEPA, checkpoints["ijepa"]).embed(digits_batch)
        torch.testing.assert_close(vit(digits_batch), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(load_encoder(tmp_path / "vit.safetensors")(digits_batch), expected)


def test_timm_layout_is_refused_for_what_timms_vit_does_not_compute(tmp_path):
    model = tiny_ijepa(encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2, norm_eps=1e-5), readout="rows")
    with pytest.raises(ExportError, match=r"norm_eps=1e-05 .*readout='rows'"):
        save_encoder(model.export_network(), tmp_path / "vit", DIGITS_16, layout="timm")
    assert not (tmp_path / "vit.safetensors").exists()


def test_load_encoder_needs_no_lightning():
    """Every module of the package that ``jepa_lightning.export`` imports, directly or not, imports no Lightning."""
    seen, todo = set(), ["jepa_lightning.export"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = REPO / (module.replace(".", "/") + ".py")
        path = path if path.is_file() else path.with_suffix("") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert name.split(".")[0] not in ("lightning", "pytorch_lightning"), f"{module} imports {name}"
                if name.startswith("jepa_lightning"):
                    todo.append(name)
    assert "jepa_lightning.tokenizers.images" in seen


def test_a_crafted_checkpoint_is_never_unpickled_by_export(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": {}, "payload": CreatesAFile(marker)}, tmp_path / "evil.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # as fit, predict and probe
        export(TINY_IJEPA, tmp_path / "evil.ckpt", tmp_path / "encoder")
    assert not marker.exists()
    assert not (tmp_path / "encoder.safetensors").exists()


def test_load_encoder_never_unpickles_and_calls_only_trusted_networks(tmp_path):
    save_encoder(tiny_ijepa().export_network(), tmp_path / "encoder", DIGITS_16)
    weights, description = tmp_path / "encoder.safetensors", tmp_path / "encoder.json"
    info = json.loads(description.read_text())
    marker = tmp_path / "code_ran"
    weights.write_bytes(pickle.dumps(CreatesAFile(marker)))  # a pickle where the weights should be
    with pytest.raises(ExportError, match="not a safetensors file"):
        load_encoder(weights)
    assert not marker.exists()
    save_encoder(tiny_ijepa().export_network(), tmp_path / "encoder", DIGITS_16)
    for target, message in (
        ("os.system", "outside the trusted modules"),
        ("jepa_lightning.export.paths", "not a network"),
    ):
        info["architecture"]["tokenizer"] = {"class_path": target, "init_args": {"command": "touch x"}}
        description.write_text(json.dumps(info))
        with pytest.raises(ExportError, match=message):
            load_encoder(description)


def test_bad_paths_give_one_clear_line(checkpoints, tmp_path, capsys):
    cases = [
        ([f"--ckpt_path={tmp_path / 'missing.ckpt'}", f"--output={tmp_path / 'e'}"], "no such file"),
        ([f"--ckpt_path={checkpoints['ijepa']}", f"--output={tmp_path / 'no' / 'e'}"], "does not exist"),
        (["--ckpt_path=https://example.com/model.ckpt", f"--output={tmp_path / 'e'}"], "is remote"),
        ([f"--ckpt_path={checkpoints['simclr']}", f"--output={tmp_path / 'e'}"], "does not fit the config's model"),
        ([f"--ckpt_path={checkpoints['simclr']}", f"--output={tmp_path / 'e'}", "--network=target"], None),
    ]
    for args, message in cases:
        command = TINY_SIMCLR if message is None else TINY_IJEPA
        with pytest.raises(SystemExit) as exit_:
            main(["export", *command, *args])
        assert exit_.value.code == 1
        assert (message or "no EMA teacher") in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no encoder file"):
        load_encoder(tmp_path / "missing.safetensors")
    with pytest.raises(ExportError, match="is remote"):
        load_encoder("https://example.com/encoder.safetensors")


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every weight moved a little (an EMA teacher distinct from its student), in eval mode."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model.eval()


def tiny_pooled_backbone(spec):
    encoder = TransformerEncoder(embed_dim=16, depth=1, num_heads=2)
    return PooledTokenBackbone(spec, encoder, partial(PatchTokenizer2d, patch_size=4))


def jepa_with_an_encoder_teacher():
    """A JEPA whose teacher averages the encoder only: exported with the student's tokenizer (Point-JEPA's)."""
    return tiny_ijepa(teacher_scope="encoder")


def byol():
    return BYOL(
        backbone=tiny_pooled_backbone, projector_dims=(16, 8), predictor_hidden_dims=(16,), input_spec=DIGITS_16
    )


def seqjepa():
    spec = InputSpec("images", channels=1, image_size=(16, 16), condition_dim=1)
    return SeqJEPA(backbone=tiny_pooled_backbone, action_proj_dim=8, predictor_hidden=16, input_spec=spec)


def simclr_on_a_resnet():
    backbone = partial(TimmBackbone, model_name="resnet10t")
    return SimCLR(backbone=backbone, projector_dims=(16, 8), input_spec=DIGITS_16)


@pytest.mark.parametrize(
    ("build", "network", "expected"),
    [
        (jepa_with_an_encoder_teacher, "target", lambda model, x: model.embed(x)),
        (byol, "target", lambda model, x: model.teacher.module[0](x)),  # the EMA teacher's backbone
        (simclr_on_a_resnet, None, lambda model, x: model.embed(x)),
        (seqjepa, None, lambda model, x: model.embed(x)),
        (seqjepa, "target", lambda model, x: model.teacher.module(x)),  # the EMA teacher's backbone
    ],
)
def test_every_kind_of_network_exports(tmp_path, digits_batch, build, network, expected):
    torch.manual_seed(0)
    model = perturbed(build())
    save_encoder(model.export_network(network), tmp_path / "encoder", DIGITS_16)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "encoder.json")(digits_batch), expected(model, digits_batch))


@pytest.mark.parametrize("build", [tiny_ijepa, byol, seqjepa])
def test_an_unknown_network_is_refused_by_name(build):
    with pytest.raises(ValueError, match="network must be 'target' or 'student', got 'teacher'"):
        build().export_network("teacher")


def test_a_video_jepa_exports_and_fine_tunes(tmp_path):
    spec = InputSpec("video", channels=1, image_size=(16, 16), frames=4, num_classes=3)
    encoder = TransformerEncoder(embed_dim=24, depth=1, num_heads=2)
    model = perturbed(VJEPA(encoder=encoder, patch_size=8, predictor_dim=12, predictor_depth=1, input_spec=spec))
    save_encoder(model.export_network(), tmp_path / "encoder", spec)
    clips = torch.randn(2, 1, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "encoder.json")(clips), model.embed(clips))
    fine_tune = FineTune(encoder=str(tmp_path / "encoder.safetensors"), input_spec=spec).eval()
    assert fine_tune(clips).shape == (2, 3)


def test_a_graph_node_encoder_exports_and_fine_tunes(tmp_path):
    """ConGraT's exported network is its graph tower (what ``embed`` and the probes read), rebuilt with the same node
    embeddings; FineTune puts a node classifier on it."""
    dm = karate_with_texts()
    torch.manual_seed(0)
    model = ConGraT(
        encoder=partial(GATEncoder, hidden=16, num_layers=2, heads=2),
        pair_encoder=partial(TextEncoder, width=16, depth=1, heads=2),
        embed_dim=16,
        input_spec=dm.input_spec,
    )
    model = perturbed(model)
    with pytest.raises(ValueError, match="no EMA teacher"):
        model.export_network("target")
    save_encoder(model.export_network(), tmp_path / "encoder", dm.input_spec)
    nodes = model_input(next(iter(dm.val_dataloader())))
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "encoder.json")(nodes), model.embed(nodes))
    fine_tune = FineTune(encoder=str(tmp_path / "encoder.safetensors"), input_spec=dm.input_spec, layer_decay=1.0)
    assert fine_tune.eval()(nodes).shape == (nodes.seeds.shape[0], 4)
