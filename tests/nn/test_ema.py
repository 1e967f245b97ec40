import math

import pytest
import torch
from torch import nn

from jepa_lightning.nn import EMATeacher


def student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def test_one_update_equals_the_formula_for_parameters_and_buffers():
    net = student()
    teacher = EMATeacher(net)
    before = {k: v.clone() for k, v in teacher.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    net.train()
    net(torch.randn(16, 4))  # moves BatchNorm running statistics and num_batches_tracked
    teacher.update(net, momentum=0.9)
    after, current = teacher.module.state_dict(), net.state_dict()
    for name, value in after.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * current[name])
        else:
            assert torch.equal(value, current[name]), name
    assert after["1.num_batches_tracked"].item() == 1


def test_teacher_is_frozen_and_a_real_copy():
    net = student()
    teacher = EMATeacher(net)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(teacher.parameters(), net.parameters()))


def test_momentum_rises_linearly_to_final_over_the_horizon():
    teacher = EMATeacher(student(), momentum=0.996, final_momentum=1.0)
    assert teacher.momentum_at(0, 100) == pytest.approx(0.996)
    assert teacher.momentum_at(50, 100) == pytest.approx(0.998)
    assert teacher.momentum_at(100, 100) == pytest.approx(1.0)
    stretched = EMATeacher(student(), momentum=0.998, final_momentum=1.0, horizon=1.25)
    assert stretched.momentum_at(100, 100) == pytest.approx(0.998 + 0.002 / 1.25)


def test_cosine_schedule_follows_a_half_cosine():
    teacher = EMATeacher(student(), momentum=0.99, final_momentum=1.0, schedule="cosine")
    assert teacher.momentum_at(0, 100) == pytest.approx(0.99)
    assert teacher.momentum_at(25, 100) == pytest.approx(0.99 + 0.01 * (1 - math.cos(math.pi / 4)) / 2)
    assert teacher.momentum_at(50, 100) == pytest.approx(0.995)
    assert teacher.momentum_at(100, 100) == pytest.approx(1.0)


def test_momentum_one_freezes_the_teacher():
    net = student()
    teacher = EMATeacher(net)
    reference = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    teacher.update(net, momentum=1.0)
    assert all(torch.equal(a, b) for a, b in zip(reference, teacher.parameters()))


def test_bad_momentum_is_rejected():
    with pytest.raises(ValueError, match="momentum"):
        EMATeacher(student(), momentum=1.1)
