"""RankMe (Garrido et al., 2023): the effective rank of an embedding matrix, a label-free quality signal."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import rank_zero_warn
from torchmetrics.utilities.data import dim_zero_cat

EPSILON = 1e-7


def rankme(embeddings: Tensor) -> Tensor:
    """RankMe of ``embeddings`` (N, K): ``exp(entropy(p))`` with ``p_k = s_k / sum(s) + 1e-7`` over the
    singular values ``s`` of the uncentred matrix, in float32 without gradient; a value in [1, min(N, K)]. NaN when
    the embeddings hold a NaN or an infinity (they have no rank to measure; the SVD would fail)."""
    with torch.no_grad():
        if not torch.isfinite(embeddings).all():
            return embeddings.new_tensor(float("nan"), dtype=torch.float32)
        singular_values = torch.linalg.svdvals(embeddings.detach().float())
        p = singular_values / singular_values.sum() + EPSILON
        return torch.exp(-(p * p.log()).sum())


class RankMe(Metric):
    """RankMe of all embeddings passed to :meth:`update`, gathered over processes under DDP.

    The paper estimates it on ~25,600 samples: with fewer samples N than dimensions K it can only reach N and
    underestimates the rank, which is warned about once (``warn_few_samples=False``: never, for a second copy of the
    metric in the same run). ``max_samples`` keeps only the first ``max_samples`` embeddings seen by each process (a
    memory cap; under DDP the total is up to ``world_size * max_samples``).
    Non-finite embeddings give NaN, with a warning, instead of an error.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, max_samples: int | None = None, warn_few_samples: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples must be None or >= 1, got {max_samples}")
        self.max_samples = max_samples
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self._num_local = 0
        self._warned = not warn_few_samples

    def update(self, embeddings: Tensor) -> None:
        """Add a batch of embeddings (B, K); extra dimensions after the first are flattened."""
        embeddings = embeddings.detach().float().flatten(1)
        if self.max_samples is not None:
            embeddings = embeddings[: max(self.max_samples - self._num_local, 0)]
        if embeddings.shape[0]:
            self.embeddings.append(embeddings)
            self._num_local += embeddings.shape[0]

    def compute(self) -> Tensor:
        embeddings = dim_zero_cat(self.embeddings)
        num_samples, dim = embeddings.shape
        if num_samples < dim and not self._warned:
            rank_zero_warn(
                f"RankMe with fewer samples than dimensions underestimates the rank: {num_samples} samples for "
                f"{dim} dimensions caps it at {num_samples}; use at least a few times {dim} samples."
            )
            self._warned = True
        value = rankme(embeddings)
        if value.isnan():
            rank_zero_warn(
                f"RankMe: {int((~torch.isfinite(embeddings)).any(1).sum())} of {num_samples} embeddings hold "
                "NaN or inf values; RankMe is NaN"
            )
        return value

    def reset(self) -> None:
        super().reset()
        self._num_local = 0
