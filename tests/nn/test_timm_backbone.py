"""TimmBackbone never touches the network."""

from __future__ import annotations

import socket

import pytest
import torch

from jepa_lightning.nn import TimmBackbone
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
