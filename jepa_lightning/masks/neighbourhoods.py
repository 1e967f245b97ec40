"""Multi-block masks on tokens with continuous positions (point-group centres): every block is a kNN ball."""

from __future__ import annotations

import torch
from torch import Tensor

from jepa_lightning.masks.base import MaskSampler, check_context_counts, check_count, check_range, to_device
from jepa_lightning.tokens import TokenLayout


def nearest_order(coords: Tensor, seeds: Tensor) -> Tensor:
    """Every token's index ordered by its distance to a seed token, nearest first: ``(B, S, N)`` for token
    coordinates ``coords`` ``(B, N, d)`` and seed indices ``seeds`` ``(B, S)``. Exact distances and a stable sort, so
    ties (equidistant tokens, e.g. on a grid) go to the lower index and the order is reproducible."""
    seed_coords = torch.gather(coords, 1, seeds.unsqueeze(-1).expand(-1, -1, coords.shape[-1]))
    distance = (coords.unsqueeze(1) - seed_coords.unsqueeze(2)).square().sum(-1)  # (B, S, N)
    return distance.argsort(dim=-1, stable=True)


class NeighbourhoodBlockMaskSampler(MaskSampler):
    """3D-JEPA's multi-block masks on a set of tokens with positions: ``num_targets`` target blocks and one context
    block, each block the ``k`` nearest tokens (a kNN ball) of a seed token drawn uniformly.

    I-JEPA's multi-block recipe (:class:`~jepa_lightning.masks.MultiBlockMaskSampler`) where blocks are balls in the
    tokens' own coordinates instead of rectangles on a grid, so it works on any token set whose ``layout.coords``
    ``(1 or B, N, d)`` are positions (point-group centres of
    :class:`~jepa_lightning.tokenizers.PointPatchTokenizer`; also grid coordinates). Per batch one target size
    ``k_t = max(1, int(N * U(target_scale)))`` and one context size ``k_c = max(1, int(N * U(context_scale)))``
    (target draw first); per sample ``num_targets`` target seeds (independent: targets may overlap) and one context
    seed. Each target block is its seed's ``k_t`` nearest tokens (the seed included); the context is its seed's
    ``k_c`` nearest tokens minus every target token. Samples whose context keeps ``min_context`` tokens or fewer redraw
    their context seed (at most ``max_tries`` times; then a warning, or an error when a context is empty). Contexts
    are truncated to the batch's shortest, keeping the tokens nearest their seed, so a context stays a ball (minus the
    targets); indices are returned in ascending order (targets: nearest first).

    Distances are computed on the host where the generator lives (the coordinates, ``B x N x d`` values, are copied
    there once per step).
    """

    def __init__(
        self,
        num_targets: int = 4,
        target_scale: tuple[float, float] = (0.15, 0.2),
        context_scale: tuple[float, float] = (0.85, 1.0),
        min_context: int = 4,
        max_tries: int = 20,
    ) -> None:
        check_range("target_scale", target_scale)
        check_range("context_scale", context_scale)
        check_count("num_targets", num_targets)
        self.num_targets = num_targets
        self.target_scale = target_scale
        self.context_scale = context_scale
        self.min_context = min_context
        self.max_tries = max_tries

    def block_sizes(self, num_tokens: int, generator: torch.Generator) -> tuple[int, int]:
        """The batch's target and context block sizes (tokens), from two uniform draws (target first)."""
        r = torch.rand(2, generator=generator, device=generator.device).tolist()
        target = self.target_scale[0] + r[0] * (self.target_scale[1] - self.target_scale[0])
        context = self.context_scale[0] + r[1] * (self.context_scale[1] - self.context_scale[0])
        return max(1, int(num_tokens * target)), max(1, int(num_tokens * context))

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        host = generator.device
        coords = layout.coords.detach().to(host, torch.float64).expand(batch_size, -1, -1)
        num_tokens = coords.shape[1]
        target_size, context_size = self.block_sizes(num_tokens, generator)
        target_seeds = torch.randint(num_tokens, (batch_size, self.num_targets), generator=generator, device=host)
        target_idx = nearest_order(coords, target_seeds)[..., :target_size]  # (B, M, k_t)
        covered = torch.zeros(batch_size, num_tokens, dtype=torch.bool, device=host)
        covered.scatter_(1, target_idx.flatten(1), True)

        context_seeds = torch.randint(num_tokens, (batch_size, 1), generator=generator, device=host)
        order, counts = self._context(coords, context_seeds, covered, context_size)
        for _ in range(self.max_tries):
            small = counts <= self.min_context
            if not bool(small.any()):
                break
            redrawn = torch.randint(num_tokens, (batch_size, 1), generator=generator, device=host)
            context_seeds = torch.where(small.unsqueeze(1), redrawn, context_seeds)
            order, counts = self._context(coords, context_seeds, covered, context_size)
        else:
            check_context_counts(
                counts,
                self.min_context,
                empty=f"NeighbourhoodBlockMaskSampler found no context token outside {self.num_targets} targets of "
                f"{target_size} of {num_tokens} tokens: lower num_targets or target_scale.",
                small=f"NeighbourhoodBlockMaskSampler: some contexts keep min_context={self.min_context} tokens or "
                f"fewer after {self.max_tries} redraws; the targets cover most of the {num_tokens} tokens.",
            )
        context_idx = order[:, : int(counts.min())].sort(dim=1).values
        return to_device((context_idx, target_idx), device)

    @staticmethod
    def _context(coords: Tensor, seeds: Tensor, covered: Tensor, size: int) -> tuple[Tensor, Tensor]:
        """Each sample's context tokens nearest their seed first, ``(B, N)`` (the first ``counts`` entries: the
        ``size``-ball minus the targets), and their number ``(B,)``."""
        order = nearest_order(coords, seeds)[:, 0]  # (B, N)
        in_ball = torch.zeros_like(covered).scatter_(1, order[:, :size], True)
        keep = in_ball & ~covered
        kept_in_order = torch.gather(keep, 1, order)
        # the ball's free tokens first, in distance order (a stable sort on "not kept")
        order = torch.gather(order, 1, (~kept_in_order).to(torch.uint8).argsort(dim=1, stable=True))
        return order, keep.sum(dim=1)
