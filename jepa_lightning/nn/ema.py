"""The one EMA teacher mechanism shared by every method that needs a slowly moving target network."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

try:
    from torch.distributed.fsdp import FSDPModule
except ImportError:  # torch < 2.6 keeps FSDP2 under its private name
    from torch.distributed._composable.fsdp import FSDPModule


def reshard(network: nn.Module) -> None:
    """Put every FSDP2 unit of ``network`` back into its sharded state (a no-op without FSDP2). FSDP2 keeps a root
    unit's parameters gathered after a forward pass until the backward pass, which a teacher never runs: its
    ``parameters()`` would then be temporary gathered copies, and an update written into them would be lost when
    they are freed. Resharded, every parameter is the DTensor shard that FSDP2 gathers from."""
    for layer in network.modules():
        if isinstance(layer, FSDPModule):
            layer.reshard()


class EMATeacher(nn.Module):
    """A frozen copy of a student network, moved towards it after every optimizer step.

    ``teacher = m * teacher + (1 - m) * student`` for parameters and floating-point buffers (other buffers
    are copied). Its parameters never require gradients, so optimizers built from trainable parameters
    skip them and DDP does not synchronise them; being a submodule, it is saved in the checkpoint.
    The momentum rises from ``momentum`` to ``final_momentum`` over ``horizon`` times the run (V-JEPA stretches
    it over 1.25 runs), linearly (I-JEPA family) or along a half cosine (BYOL). The teacher moves after every
    optimizer step; ``interval`` says what its schedule counts: optimizer steps (default) or epochs (TS-JEPA's
    official code steps the momentum once per epoch and uses it for every step of that epoch).
    """

    def __init__(
        self,
        student: nn.Module,
        momentum: float = 0.996,
        final_momentum: float = 1.0,
        horizon: float = 1.0,
        schedule: Literal["linear", "cosine"] = "linear",
        interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum <= final_momentum <= 1.0:
            raise ValueError(
                f"EMA momentum must satisfy 0 <= momentum <= final_momentum <= 1, got {momentum}, {final_momentum}"
            )
        if horizon <= 0:
            raise ValueError(f"EMA horizon must be positive, got {horizon}")
        if schedule not in ("linear", "cosine"):
            raise ValueError(f"EMA schedule must be 'linear' or 'cosine', got {schedule!r}")
        if interval not in ("step", "epoch"):
            raise ValueError(f"EMA interval must be 'step' or 'epoch', got {interval!r}")
        self.module = copy.deepcopy(student).requires_grad_(False)
        for layer in self.module.modules():
            if isinstance(layer, _BatchNorm):
                layer.track_running_stats = False  # batch statistics in training; running ones set by update()
        self.momentum = momentum
        self.final_momentum = final_momentum
        self.horizon = horizon
        self.schedule = schedule
        self.interval = interval

    @contextmanager
    def frozen(self) -> Iterator[nn.Module]:
        """The teacher's network with every submodule but BatchNorm in eval mode (no dropout, no drop-path), the
        modes restored afterwards. Modes are switched only around the teacher's forward passes, so the module tree
        keeps following ``train()`` / ``eval()`` like any other (Lightning checks that nothing is in eval mode when
        training starts)."""
        modes = [(layer, layer.training) for layer in self.module.modules()]
        for layer, training in modes:
            layer.training = training and isinstance(layer, _BatchNorm)
        try:
            yield self.module
        finally:
            for layer, training in modes:
                layer.training = training

    def momentum_at(self, step: int, total_steps: int) -> float:
        """Momentum of the update that follows optimizer step ``step`` (0-based) of ``total_steps``; with
        ``interval="epoch"`` the caller passes the epoch (0-based) and the number of epochs instead."""
        fraction = min(1.0, step / max(total_steps * self.horizon, 1.0))
        if self.schedule == "cosine":
            fraction = 0.5 * (1.0 - math.cos(math.pi * fraction))
        return self.momentum + (self.final_momentum - self.momentum) * fraction

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """Move every parameter and floating-point buffer ``1 - momentum`` of the way to the student's. Works on FSDP2
        shards (``fully_shard`` on the student and the teacher alike): both are resharded first (:func:`reshard`), so
        each rank moves its own shard of the teacher towards its shard of the student."""
        reshard(self.module)
        reshard(student)
        teacher_params = list(self.module.parameters())
        student_params = [p.detach() for p in student.parameters()]
        if len(teacher_params) != len(student_params):
            raise RuntimeError("EMA teacher and student have different parameter lists")
        torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
        for teacher_buffer, student_buffer in zip(self.module.buffers(), student.buffers()):
            if teacher_buffer.is_floating_point():
                teacher_buffer.lerp_(student_buffer, 1.0 - momentum)
            else:
                teacher_buffer.copy_(student_buffer)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The teacher's network applied :meth:`frozen`."""
        with self.frozen() as network:
            return network(*args, **kwargs)
