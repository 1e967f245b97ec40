"""The leaf contract modules: checkpoints written before the batch contract moved still load safely."""

from __future__ import annotations

import sys
import types

import torch

from jepa_lightning.inputs import InputSpec


def test_checkpoints_naming_the_old_inputspec_path_load_with_weights_only(tmp_path, monkeypatch):
    old_path = "jepa_lightning.tokenizers.base"
    old_module = types.ModuleType(old_path)
    old_module.InputSpec = InputSpec
    monkeypatch.setitem(sys.modules, old_path, old_module)
    monkeypatch.setattr(InputSpec, "__module__", old_path)
    spec = InputSpec("images", channels=1, image_size=(8, 8))
    torch.save({"hyper_parameters": {"input_spec": spec}}, tmp_path / "old.ckpt")
    monkeypatch.undo()  # the old module is gone again, as in a current installation

    assert old_path not in sys.modules
    loaded = torch.load(tmp_path / "old.ckpt", weights_only=True)
    assert loaded["hyper_parameters"]["input_spec"] == spec
