"""FPS + kNN grouping time: the batch-vectorised version vs a plain per-sample loop.

    python benchmarks/point_grouping.py --batch-size 32 --num-points 1024 --num-groups 64 --group-size 32

Runs on CUDA when available (else CPU). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import torch
from torch import Tensor

from jepa_lightning.tokenizers.point_clouds import farthest_point_sampling, knn_group


def loop_fps(xyz: Tensor, num_groups: int) -> list[int]:
    """FPS of one cloud ``(N, 3)`` starting at point 0."""
    min_dist = torch.full((xyz.shape[0],), float("inf"), device=xyz.device)
    current = 0
    chosen = []
    for _ in range(num_groups):
        chosen.append(current)
        min_dist = torch.minimum(min_dist, (xyz - xyz[current]).square().sum(-1))
        min_dist[current] = -1.0
        current = int(min_dist.argmax())
    return chosen


def loop_grouping(points: Tensor, num_groups: int, group_size: int) -> Tensor:
    """The per-sample baseline: FPS then kNN for one cloud at a time (what a naive port does)."""
    groups = []
    for cloud in points:
        xyz = cloud[:, :3]
        centres = xyz[loop_fps(xyz, num_groups)]
        dist = torch.cdist(centres, xyz, compute_mode="donot_use_mm_for_euclid_dist")
        idx = dist.topk(group_size, dim=-1, largest=False).indices
        group = cloud[idx]
        groups.append(torch.cat([group[..., :3] - centres.unsqueeze(1), group[..., 3:]], dim=-1))
    return torch.stack(groups)


def vectorised_grouping(points: Tensor, num_groups: int, group_size: int) -> Tensor:
    idx = farthest_point_sampling(points[..., :3], num_groups, random_start=False)
    centres = torch.gather(points[..., :3], 1, idx.unsqueeze(-1).expand(-1, -1, 3))
    return knn_group(points, centres, group_size)[1]


def timeit(fn: Callable[[], Tensor], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in seconds after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-points", type=int, default=1024)
    parser.add_argument("--num-groups", type=int, default=64)
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    points = torch.randn(args.batch_size, args.num_points, 3, generator=torch.Generator().manual_seed(0)).to(device)
    vectorised = vectorised_grouping(points, args.num_groups, args.group_size)
    looped = loop_grouping(points, args.num_groups, args.group_size)
    torch.testing.assert_close(vectorised, looped)  # same groups, so the timings compare like with like

    fast = timeit(lambda: vectorised_grouping(points, args.num_groups, args.group_size), args.repeats, device)
    slow = timeit(lambda: loop_grouping(points, args.num_groups, args.group_size), args.repeats, device)
    fps_fast = timeit(
        lambda: farthest_point_sampling(points, args.num_groups, random_start=False), args.repeats, device
    )
    fps_slow = timeit(lambda: [loop_fps(cloud, args.num_groups) for cloud in points], args.repeats, device)
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{args.batch_size} clouds x {args.num_points} points -> {args.num_groups} groups x {args.group_size}")
    print(f"vectorised: {fast * 1e3:.2f} ms")
    print(f"per-sample loop: {slow * 1e3:.2f} ms")
    print(f"speed-up: {slow / fast:.1f}x")
    print(f"FPS alone: vectorised {fps_fast * 1e3:.2f} ms, loop {fps_slow * 1e3:.2f} ms, {fps_slow / fps_fast:.1f}x")


if __name__ == "__main__":
    main()
