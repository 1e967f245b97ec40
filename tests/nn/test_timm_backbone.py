"""TimmBackbone never touches the network."""

from __future__ import annotations

import socket

import pytest

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
