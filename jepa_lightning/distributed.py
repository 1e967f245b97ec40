"""The only module that talks to ``torch.distributed``: rank queries and autograd-aware collectives.

Every function is the identity when ``torch.distributed`` is unavailable, not initialised, or the world size
is 1, so objectives can call them unconditionally.

Gradient convention. Under DDP rank ``r`` back-propagates its own loss ``L_r`` and DDP averages the parameter
gradients over the ``W`` ranks, so training follows the gradient of ``mean_r L_r``. When ``L_r`` depends on the
inputs ``x_s`` of other ranks through a collective, the gradient that must reach ``x_s`` is
``sum_r dL_r/dx_s``: every rank's loss sends its share back. Each backward below therefore sums the incoming
gradients over ranks, which makes the DDP update equal to one process computing ``mean_r L_r`` on the global
batch:

- ``gather``: ``y = cat_s x_s``, so ``dx_s = (sum_r g_r)[slice s]`` (all-reduce SUM, keep this rank's slice);
- ``all_reduce_sum``: ``y = sum_s x_s``, so ``dx_s = sum_r g_r`` (all-reduce SUM);
- ``all_reduce_mean``: ``y = mean_s x_s``, so ``dx_s = mean_r g_r`` (all-reduce MEAN).

A loss that comes out identical on every rank (e.g. Barlow Twins) thus gives each rank ``W`` times its own
share of the gradient, and DDP's division by ``W`` brings it back to the gradient on the global batch.
Implemented with plain ``all_gather`` / ``all_reduce`` (not ``torch.distributed.nn``, deprecated in torch 2.14)
so it works with gloo and NCCL across torch >= 2.4. Gloo has no AVG reduction: means are SUM / W.

Every rank must call these functions in the same order (collectives), and ``gather`` requires equal local
batch sizes on all ranks (what ``DistributedSampler`` provides); it checks this and raises otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without an initialised process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _sum_over_ranks(x: Tensor) -> Tensor:
    """Out-of-place all-reduce SUM (leaves ``x`` untouched)."""
    out = x.contiguous().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


class _Gather(torch.autograd.Function):
    """Concatenate equal-sized tensors over ranks along dim 0; backward sums gradients and keeps our slice."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        local = grad.shape[0] // dist.get_world_size()
        start = dist.get_rank() * local
        return _sum_over_ranks(grad)[start : start + local]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the gradients over ranks."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return _sum_over_ranks(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _sum_over_ranks(grad)


class _AllReduceMean(torch.autograd.Function):
    """Mean over ranks; backward averages the gradients over ranks."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return _sum_over_ranks(x) / dist.get_world_size()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _sum_over_ranks(grad) / dist.get_world_size()


def _check_equal_shapes(x: Tensor) -> None:
    """Raise if ranks hold tensors of different shapes (all_gather would abort or hang otherwise).

    Costs one tiny all-gather and, on an accelerator, one host-device synchronisation.
    """
    shape = torch.tensor(x.shape, dtype=torch.long, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    found = [tuple(s.tolist()) for s in shapes]
    if len(set(found)) > 1:
        raise ValueError(
            f"gather needs equal local batch sizes on every rank, got shapes {found} (rank order); "
            "use a DistributedSampler (it pads ranks to equal length) or drop the last, uneven batch"
        )


def gather(x: Tensor) -> Tensor:
    """All-gather ``x`` (N, ...) from every rank into (W * N, ...), in rank order, keeping the autograd graph.

    Backward sums the incoming gradient over ranks and returns this rank's slice (see the module docstring).
    Local shapes must be equal on all ranks; this is checked first and raises ``ValueError`` otherwise.
    """
    if not is_distributed():
        return x
    if x.ndim == 0:
        raise ValueError("gather needs a tensor with a batch dim, got a 0-d tensor")
    _check_equal_shapes(x)
    return _Gather.apply(x)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over ranks (same shape everywhere); backward is the all-reduce SUM of the gradient."""
    return _AllReduceSum.apply(x) if is_distributed() else x


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over ranks (same shape everywhere); backward is the all-reduce MEAN of the gradient.

    Use it for per-rank means of equal-sized local batches: the result is the global-batch mean.
    """
    return _AllReduceMean.apply(x) if is_distributed() else x


@torch.no_grad()
def broadcast(x: Tensor, src: int = 0) -> Tensor:
    """A copy of rank ``src``'s ``x`` on every rank (no gradient), e.g. random directions drawn on one rank."""
    if not is_distributed():
        return x.detach()
    out = x.detach().contiguous().clone()
    dist.broadcast(out, src=src)
    return out
