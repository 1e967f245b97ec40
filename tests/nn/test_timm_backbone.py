"""TimmBackbone never touches the network; its stage readout pools every stage for probes and export, and leaves
training unchanged."""

from __future__ import annotations

import json
import socket
from functools import partial

import pytest
import torch

from jepa_lightning import load_encoder
from jepa_lightning.export import save_encoder
from jepa_lightning.methods import BYOL, SimCLR
from jepa_lightning.nn import TimmBackbone, TimmEncoder, backbones
from tests.conftest import DIGITS_16


def test_a_timm_architecture_is_built_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("TimmBackbone opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert TimmBackbone(DIGITS_16, "resnet18").embed_dim == 512


@pytest.mark.parametrize("name", ["hf-hub:timm/resnet18.a1_in1k", "hf_hub:timm/resnet18.a1_in1k"])
def test_hugging_face_hub_names_are_refused(name):
    with pytest.raises(ValueError, match="Hugging Face Hub are not loaded"):
        TimmBackbone(DIGITS_16, name)


def test_channels_last_computes_the_same_network():
    """The NHWC layout (the default) is a speed choice: same weights give the same features and gradients as NCHW (up
    to rounding)."""
    torch.manual_seed(0)
    plain = TimmBackbone(DIGITS_16, "resnet18", small_input_stem=True, channels_last=False)
    fast = TimmBackbone(DIGITS_16, "resnet18", small_input_stem=True)
    fast.load_state_dict(plain.state_dict())
    assert fast.model.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(6, DIGITS_16.channels, 16, 16)
    out_plain, out_fast = plain(x), fast(x)  # training mode: BatchNorm on batch statistics
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-4, atol=1e-5)
    out_plain.square().mean().backward()
    out_fast.square().mean().backward()
    for (name, p_plain), p_fast in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-3, atol=1e-6, msg=name)
    assert not plain.model.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)


def stages_by_hand(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A timm ResNet's stem and four stages, each max- and mean-pooled over space (maxima first), computed here."""
    maps = [model.act1(model.bn1(model.conv1(x)))]
    y = model.maxpool(maps[0])
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        y = layer(y)
        maps.append(y)
    return torch.cat([m.amax(dim=(2, 3)) for m in maps] + [m.mean(dim=(2, 3)) for m in maps], dim=-1)


@pytest.mark.parametrize("small_input_stem", [False, True])
def test_the_stage_readout_pools_every_stage(small_input_stem):
    torch.manual_seed(0)
    backbone = TimmBackbone(DIGITS_16, "resnet18", small_input_stem=small_input_stem, readout="stages").eval()
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        embedded, pooled = backbone.embed(x), backbone(x)
        expected = stages_by_hand(backbone.model, x)
    assert backbone.readout_dim == 2 * (64 + 64 + 128 + 256 + 512) and embedded.shape == (3, 2048)
    assert backbone.embed_dim == 512 and pooled.shape == (3, 512)  # forward (the projector's input) is unchanged
    torch.testing.assert_close(embedded, expected, rtol=0, atol=0)
    torch.testing.assert_close(embedded[:, -512:], pooled, rtol=1e-5, atol=1e-6)  # the last stage's mean
    last = TimmBackbone(DIGITS_16, "resnet18").eval()
    assert last.readout == "last" and last.readout_dim == 512
    with torch.no_grad():
        assert torch.equal(last.embed(x), last(x))


@pytest.mark.parametrize("name", ["resnet10t", "mobilenetv3_small_050", "efficientnet_b0"])
def test_the_stage_readout_width_of_other_timm_cnns(name):
    backbone = TimmBackbone(DIGITS_16, name, readout="stages").eval()
    with torch.no_grad():
        assert backbone.embed(torch.randn(2, 1, 32, 32)).shape == (2, backbone.readout_dim)
    assert backbone.readout_dim == 2 * sum(stage["num_chs"] for stage in backbone.model.feature_info)


def test_the_stage_readout_refuses_a_model_without_stages(monkeypatch):
    class Flat(torch.nn.Module):  # a network timm could return with no intermediate feature maps
        num_features = 8

        def forward(self, x):
            return x.flatten(1)[:, :8]

    monkeypatch.setattr(backbones.timm, "create_model", lambda *args, **kwargs: Flat())
    assert TimmBackbone(DIGITS_16, "flat").readout_dim == 8  # the default readout needs no stages
    with pytest.raises(ValueError, match=r"TimmBackbone\('flat', readout='stages'\): this timm model has no stages"):
        TimmBackbone(DIGITS_16, "flat", readout="stages")


def test_an_unknown_readout_is_refused():
    with pytest.raises(ValueError, match="readout must be 'last' or 'stages'"):
        TimmBackbone(DIGITS_16, "resnet10t", readout="mean")


def simclr_steps(readout: str, steps: int = 2) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """The losses of ``steps`` SGD steps of SimCLR on a ResNet whose backbone has ``readout``, and its final weights."""
    torch.manual_seed(0)
    backbone = partial(TimmBackbone, model_name="resnet10t", readout=readout)
    model = SimCLR(backbone=backbone, projector_dims=(16, 8), input_spec=DIGITS_16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        views = [torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)]
        loss = model.training_step({"views": views}, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses, model.state_dict()


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_the_stage_readout_leaves_training_unchanged():
    """Same initial weights, losses and updated weights: the option only changes what ``embed`` reads."""
    (last_losses, last_state), (stage_losses, stage_state) = simclr_steps("last"), simclr_steps("stages")
    assert all(torch.equal(a, b) for a, b in zip(last_losses, stage_losses, strict=True))
    assert last_state.keys() == stage_state.keys()
    assert all(torch.equal(last_state[key], stage_state[key]) for key in last_state)


def test_embed_and_export_read_the_stages(tmp_path):
    torch.manual_seed(0)
    backbone = partial(TimmBackbone, model_name="resnet10t", readout="stages")
    model = BYOL(backbone=backbone, projector_dims=(16, 8), predictor_hidden_dims=(16,), input_spec=DIGITS_16).eval()
    x = torch.randn(2, 1, 16, 16)
    embedded = model.embed(x)
    assert torch.equal(embedded, model.backbone.embed(x)) and embedded.shape == (2, model.backbone.readout_dim)
    state = torch.random.get_rng_state()
    encoder = model.export_network()
    assert torch.equal(torch.random.get_rng_state(), state)  # building the encoder draws no weights
    assert isinstance(encoder, TimmEncoder) and encoder.model is model.backbone.model  # shares the weights
    with torch.no_grad():
        assert torch.equal(encoder(x), embedded)
    save_encoder(encoder, tmp_path / "encoder", DIGITS_16)
    assert json.loads((tmp_path / "encoder.json").read_text())["architecture"]["backbone"]["init_args"]["readout"] == (
        "stages"
    )
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "encoder.json")(x), embedded)
    teacher = model.export_network("target")  # the EMA teacher's backbone keeps the readout
    assert isinstance(teacher, TimmEncoder) and teacher.model is model.teacher.module[0].model
    plain = SimCLR(backbone=partial(TimmBackbone, model_name="resnet10t"), projector_dims=(16, 8), input_spec=DIGITS_16)
    assert plain.export_network() is plain.backbone  # the default exports the backbone as before
