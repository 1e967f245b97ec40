"""``benchmarks/roofline.py``'s kernel recorder: it records the step's matrix multiplications (forward and backward)
with their layouts, and the replay runs the same kernels on tensors of those layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import roofline


def test_a_linear_layer_records_its_three_matmuls_and_replays_them() -> None:
    layer = torch.nn.Linear(8, 4)
    inputs = torch.randn(5, 8, requires_grad=True)
    recorder = roofline.KernelRecorder()
    with recorder:
        layer(inputs).square().sum().backward()
    ops = [call.op.overloadpacket for call in recorder.calls]
    assert ops == [torch.ops.aten.addmm, torch.ops.aten.mm, torch.ops.aten.mm]  # forward; grad input, grad weight
    forward = recorder.calls[0]
    assert [arg.shape for arg in forward.args[:3]] == [(4,), (5, 8), (8, 4)]
    assert forward.args[2].stride == (1, 8)  # the weight's transpose, as the step saw it
    kernels = roofline.materialise(recorder.calls, torch.device("cpu"))
    assert [kernel().shape for kernel in kernels] == [(5, 4), (5, 8), (4, 8)]
    assert sum(roofline.family_seconds(recorder.calls, kernels, torch.device("cpu")).values()) > 0


def test_attention_and_convolution_are_recorded_by_family() -> None:
    conv = torch.nn.Conv2d(3, 32, 2, stride=2)
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    recorder = roofline.KernelRecorder()
    with recorder:
        tokens = conv(images).flatten(2).transpose(1, 2).unflatten(-1, (2, 16)).transpose(1, 2).contiguous()
        torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens).sum().backward()
    families = {call.family for call in recorder.calls}
    assert families == {"convolution", "attention"}
    assert all(kernel() is not None for kernel in roofline.materialise(recorder.calls, torch.device("cpu")))
