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


def test_teacher_never_applies_dropout_or_drop_path_whatever_the_mode():
    from timm.layers import DropPath

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), DropPath(0.5), nn.Linear(16, 2))
    teacher = EMATeacher(net)
    wrapper = nn.ModuleDict({"student": net, "teacher": teacher}).train()
    x = torch.randn(32, 4)
    assert not torch.equal(net(x), net(x))  # the student drops
    assert torch.equal(teacher(x), teacher(x))  # the teacher does not
    torch.testing.assert_close(teacher(x), net.eval()(x))
    assert all(layer.training for layer in teacher.module.modules())  # its modes follow train() between passes
    with teacher.frozen() as network:
        assert not any(layer.training for layer in network.modules())
    wrapper.eval()
    assert not any(layer.training for layer in teacher.modules())


def test_batchnorm_teacher_uses_batch_statistics_in_training_and_only_update_moves_its_running_statistics():
    net = student()
    teacher = EMATeacher(net).train()
    running = teacher.module[1].running_mean.clone()
    x = torch.randn(64, 4) * 3 + 1
    hidden = teacher.module[0](x)
    expected = nn.functional.batch_norm(hidden, None, None, teacher.module[1].weight, teacher.module[1].bias, True)
    with teacher.frozen() as network:
        torch.testing.assert_close(network[1](hidden), expected)  # the batch's statistics
    teacher(x)
    assert torch.equal(teacher.module[1].running_mean, running)  # its own forward moved nothing
    net.train()(x)  # the student's running statistics move
    teacher.update(net, momentum=0.5)
    torch.testing.assert_close(teacher.module[1].running_mean, 0.5 * running + 0.5 * net[1].running_mean)
    teacher.eval()
    eval_expected = nn.functional.batch_norm(
        hidden,
        teacher.module[1].running_mean,
        teacher.module[1].running_var,
        teacher.module[1].weight,
        teacher.module[1].bias,
        False,
    )
    torch.testing.assert_close(teacher.module[1](hidden), eval_expected)  # running statistics in evaluation
