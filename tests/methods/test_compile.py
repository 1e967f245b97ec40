"""The opt-in ``torch_compile`` flag: compiled blocks, same training as eager, same checkpoint keys."""

from __future__ import annotations

import lightning as L
import torch
from timm.models.vision_transformer import Block

from datamodules import ImageDataModule
from tests.conftest import fast_trainer, tiny_ijepa


def fit_three_steps(root, **kwargs) -> L.LightningModule:
    L.seed_everything(0)
    model = tiny_ijepa(**kwargs)
    trainer = fast_trainer(root, max_steps=3, limit_val_batches=0)
    trainer.fit(model, ImageDataModule(image_size=16, batch_size=32))
    return model


def test_compiled_blocks_train_like_eager_and_keep_the_state_dict_keys(tmp_path):
    eager = fit_three_steps(tmp_path)
    compiled = fit_three_steps(tmp_path, torch_compile=True, compile_backend="aot_eager")
    blocks = [module for module in compiled.modules() if isinstance(module, Block)]
    assert len(blocks) == 2 + 2 + 1  # student encoder, teacher encoder, predictor
    assert all(block._compiled_call_impl is not None for block in blocks)
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_without_transformer_blocks_each_child_network_is_compiled():
    from jepa_lightning.methods import SimCLR

    model = SimCLR(input_spec=tiny_ijepa().input_spec, torch_compile=True, compile_backend="aot_eager")
    assert model.compile_targets() == list(model.children())
