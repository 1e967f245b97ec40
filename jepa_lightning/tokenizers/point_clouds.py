"""Point clouds -> a sequence of local-patch tokens (Point-MAE / Point-JEPA).

Farthest point sampling picks centres, each centre's k nearest points form a group, a mini-PointNet turns every
group into one token, and Point-JEPA's sequencer orders the tokens so that neighbours in the sequence are close in
space (its masks are contiguous spans in that order). Grouping is written in plain vectorised torch because
torch-geometric's ``fps`` / ``knn`` need pyg-lib.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, check_finite
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens


def _gather_points(points: Tensor, idx: Tensor) -> Tensor:
    """``points (B, N, C)``, ``idx (B, ...)`` -> ``(B, ..., C)``."""
    batch = torch.arange(points.shape[0], device=points.device).view(-1, *([1] * (idx.ndim - 1)))
    return points[batch, idx]


def farthest_point_sampling(
    points: Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
    random_start: bool = True,
    start: Tensor | None = None,
) -> Tensor:
    """Indices ``(B, M)`` of ``M`` distinct points per cloud, each the farthest from those already picked.

    Vectorised over the batch (the loop runs over the ``M`` picks only). The first pick is a random point per cloud
    (from ``generator``, else the global RNG), or point 0 with ``random_start=False``, or ``start (B,)`` if given.
    """
    batch, num_points, _ = points.shape
    if num_samples > num_points:
        raise ValueError(f"cannot sample {num_samples} distinct points from clouds of {num_points}")
    device = points.device
    if start is not None:
        current = start.to(device=device, dtype=torch.long)
    elif random_start:
        rng_device = generator.device if generator is not None else device
        current = torch.randint(num_points, (batch,), generator=generator, device=rng_device).to(device)
    else:
        current = torch.zeros(batch, dtype=torch.long, device=device)
    xyz = points[..., :3].float()
    rows = torch.arange(batch, device=device)
    min_dist = torch.full((batch, num_points), float("inf"), device=device)
    selected = torch.empty(batch, num_samples, dtype=torch.long, device=device)
    for i in range(num_samples):
        selected[:, i] = current
        centre = xyz[rows, current].unsqueeze(1)  # (B, 1, 3)
        min_dist = torch.minimum(min_dist, (xyz - centre).square().sum(-1))
        # Picked points get -1 (not 0) so duplicates of a picked point still win over it: indices stay distinct.
        min_dist[rows, current] = -1.0
        current = min_dist.argmax(dim=1)
    return selected


def knn_group(points: Tensor, centres: Tensor, k: int, chunk_size: int = 256) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest points of each centre: ``(neighbour_idx (B, M, k), groups (B, M, k, C))``.

    Neighbours are sorted by distance; the xyz part of ``groups`` is relative to the centre, the extra features
    are copied as they are. Brute force (``torch.cdist`` + ``topk``), chunked over centres to bound memory.
    """
    xyz = points[..., :3]
    chunks = []
    for begin in range(0, centres.shape[1], chunk_size):
        # No matmul shortcut: exact distances keep the neighbour order independent of the point order.
        dist = torch.cdist(
            centres[:, begin : begin + chunk_size].float(), xyz.float(), compute_mode="donot_use_mm_for_euclid_dist"
        )
        chunks.append(dist.topk(k, dim=-1, largest=False, sorted=True).indices)
    idx = torch.cat(chunks, dim=1)
    groups = _gather_points(points, idx)  # (B, M, k, C)
    relative = groups[..., :3] - centres.unsqueeze(2).to(groups.dtype)
    return idx, torch.cat([relative, groups[..., 3:]], dim=-1)


def sequence_order(centres: Tensor) -> Tensor:
    """Point-JEPA's sequencer: a permutation ``(B, M)`` starting at the centre with the smallest coordinate sum,
    then repeatedly the nearest unvisited centre (greedy nearest-neighbour tour; loop over steps only)."""
    batch, num_centres, _ = centres.shape
    device = centres.device
    dist = torch.cdist(centres.float(), centres.float(), compute_mode="donot_use_mm_for_euclid_dist")
    rows = torch.arange(batch, device=device)
    visited = torch.zeros(batch, num_centres, dtype=torch.bool, device=device)
    order = torch.empty(batch, num_centres, dtype=torch.long, device=device)
    current = centres.sum(-1).argmin(dim=1)
    for i in range(num_centres):
        order[:, i] = current
        visited[rows, current] = True
        current = dist[rows, current].masked_fill(visited, float("inf")).argmin(dim=1)
    return order


class MiniPointNet(nn.Module):
    """One token per group (Point-MAE / Point-JEPA encoder): shared MLP ``C -> 128 -> 256``, max-pool, concat the
    group feature back onto every point (512), shared MLP ``512 -> 512 -> embed_dim``, max-pool."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.first = nn.Sequential(
            nn.Conv1d(in_channels, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Conv1d(128, 256, 1)
        )
        self.second = nn.Sequential(
            nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Conv1d(512, embed_dim, 1)
        )

    def forward(self, groups: Tensor) -> Tensor:
        """``groups (B, M, k, C)`` -> tokens ``(B, M, embed_dim)``."""
        batch, num_groups, k, channels = groups.shape
        x = groups.reshape(batch * num_groups, k, channels).transpose(1, 2)  # (BM, C, k)
        x = self.first(x)
        pooled = x.amax(dim=2, keepdim=True)
        x = self.second(torch.cat([pooled.expand(-1, -1, k), x], dim=1))
        return x.amax(dim=2).reshape(batch, num_groups, -1)


def check_random_start(random_start: bool, teacher_scope: str) -> None:
    """A random farthest-point start groups each pass around other centres, so only a teacher that encodes the
    student's tokens (``teacher_scope="encoder"``) sees the same groups as the student."""
    if random_start and teacher_scope != "encoder":
        raise ValueError(
            "random_start=True needs teacher_scope='encoder': a whole-backbone teacher tokenizes the cloud again "
            "and would group it around other centres; set random_start=False for teacher_scope='backbone'"
        )


class PointPatchTokenizer(Tokenizer):
    """Point clouds ``(B, N, 3 + F)`` (xyz first) -> ``num_groups`` tokens of ``group_size``-point neighbourhoods.

    Positions are a learned MLP ``3 -> 128 -> embed_dim`` of the centres, ``(B, M, D)``. FPS starts at the point with
    the smallest coordinate sum, so the grouping is deterministic and independent of the order of the input points:
    a JEPA's student and EMA teacher tokenize the same cloud separately and must form identical groups. Pass a
    ``generator`` for Point-JEPA's random start (then share it between the two tokenizations), or set
    ``random_start=True`` to start at a random point (global RNG) in training mode, as Point-JEPA's FPS does, when
    the cloud is tokenized once per step (a JEPA with ``teacher_scope="encoder"``); evaluation stays deterministic.
    """

    def __init__(
        self,
        spec: InputSpec,
        embed_dim: int,
        num_groups: int = 64,
        group_size: int = 32,
        sequence: bool = True,
        random_start: bool = False,
    ) -> None:
        super().__init__()
        spec.require("channels")
        if spec.channels < 3:
            raise ValueError(f"point clouds need channels >= 3 (xyz first, then features), got {spec.channels}")
        self.embed_dim = embed_dim
        self.in_channels = spec.channels
        self.num_groups = num_groups
        self.group_size = group_size
        self.sequence = sequence
        self.random_start = random_start
        self.embed = MiniPointNet(spec.channels, embed_dim)
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, embed_dim))

    def _check(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"PointPatchTokenizer expects point clouds of shape (B, N, {self.in_channels}) "
                f"(xyz first, then {self.in_channels - 3} features), got {tuple(x.shape)}"
            )
        check_finite(x[..., :3], "point cloud coordinates contain NaN or inf")
        needed = max(self.num_groups, self.group_size)
        if x.shape[1] < needed:
            raise ValueError(
                f"clouds have {x.shape[1]} points but num_groups={self.num_groups} and group_size={self.group_size} "
                f"need at least {needed}"
            )

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tokens:
        self._check(x)
        xyz = x[..., :3]
        random = generator is not None or (self.random_start and self.training)
        start = None if random else xyz.sum(-1).argmin(dim=1)
        centre_idx = farthest_point_sampling(xyz, self.num_groups, generator=generator, start=start)
        centres = _gather_points(xyz, centre_idx)  # (B, M, 3)
        if self.sequence:
            centres = _gather_points(centres, sequence_order(centres))
        _, groups = knn_group(x, centres, self.group_size)
        features = self.embed(groups)
        positions = self.pos_embed(centres.to(features.dtype))
        layout = TokenLayout(kind="sequence", shape=(self.num_groups,), coords=centres)
        return Tokens(features=features, positions=positions, layout=layout)
