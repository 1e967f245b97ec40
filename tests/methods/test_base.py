import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from datamodules import ImageDataModule
from jepa_lightning.methods.base import SSLMethod, no_weight_decay, warmup_cosine
from jepa_lightning.nn import EMATeacher


def test_warmup_cosine_hand_values():
    args = {"total_steps": 100, "warmup_steps": 10, "start": 0.2, "peak": 1.0, "end": 0.0}
    assert warmup_cosine(0, **args) == pytest.approx(0.2)
    assert warmup_cosine(5, **args) == pytest.approx(0.6)
    assert warmup_cosine(10, **args) == pytest.approx(1.0)
    assert warmup_cosine(55, **args) == pytest.approx(0.5)
    assert warmup_cosine(100, **args) == pytest.approx(0.0)
    assert warmup_cosine(32, **args) == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))


def test_increasing_cosine_weight_decay():
    assert warmup_cosine(0, 10, 0, 0.0, 0.04, 0.4) == pytest.approx(0.04)
    assert warmup_cosine(5, 10, 0, 0.0, 0.04, 0.4) == pytest.approx(0.22)
    assert warmup_cosine(10, 10, 0, 0.0, 0.04, 0.4) == pytest.approx(0.4)


class Tiny(SSLMethod):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.teacher = EMATeacher(self.net)
        self.query_token = nn.Parameter(torch.zeros(1, 1, 4))


def test_parameter_groups_skip_decay_on_biases_norms_tokens_and_leave_out_the_teacher():
    model = Tiny()
    decay, no_decay = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in decay["params"]] == ["net.0.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "net.0.bias",
        "net.1.bias",
        "net.1.weight",
        "query_token",
    ]
    assert decay["weight_decay"] == 0.04 and no_decay["weight_decay"] == 0.0
    assert no_weight_decay("x.bias", nn.Parameter(torch.zeros(3, 3)))


def test_optimizer_is_fused_on_the_cpu_and_steps_like_plain_adamw():
    fused_model, plain_model = Tiny(), Tiny()
    plain_model.load_state_dict(fused_model.state_dict())
    fused = fused_model.build_optimizer()
    plain = torch.optim.AdamW(plain_model.parameter_groups(), lr=fused_model.lr, betas=fused_model.betas)
    assert fused.defaults["fused"] is True
    x = torch.randn(8, 4)
    for model, optimizer in ((fused_model, fused), (plain_model, plain)):
        for _ in range(3):
            optimizer.zero_grad()
            model.net(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_warmup_fraction_and_learning_rates():
    with pytest.raises(ValueError, match="warmup_fraction"):
        SSLMethod(warmup_fraction=1.0)
    with pytest.raises(ValueError, match=r"lr > 0.*got lr=0"):
        SSLMethod(lr=0.0)
    with pytest.raises(ValueError, match="min_lr=-1"):
        SSLMethod(min_lr=-1)


class TwoViews(Tiny):
    num_views = 2


def attach(model: SSLMethod, datamodule) -> None:
    model._trainer = SimpleNamespace(datamodule=datamodule)


def test_method_tells_the_datamodule_how_many_views_it_needs():
    data = ImageDataModule()
    attach(model := TwoViews(), data)
    model.setup("fit")
    assert data.num_views == 2
    more = ImageDataModule(num_views=3)
    attach(model, more)
    model.setup("fit")
    assert more.num_views == 3


def test_too_few_views_configured_by_hand_is_an_error():
    attach(model := TwoViews(), ImageDataModule(num_views=1))
    with pytest.raises(ValueError, match="needs 2 views per sample but the datamodule was configured with num_views=1"):
        model.setup("fit")
