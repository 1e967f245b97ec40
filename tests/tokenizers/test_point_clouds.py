import pytest
import torch

from jepa_lightning.tokenizers import InputSpec
from jepa_lightning.tokenizers.point_clouds import (
    MiniPointNet,
    PointPatchTokenizer,
    farthest_point_sampling,
    knn_group,
    sequence_order,
)


def reference_fps(points: torch.Tensor, num_samples: int, start: int) -> list[int]:
    """Farthest point sampling of one cloud, written out plainly."""
    pts = points.tolist()
    chosen = [start]
    min_dist = [float("inf")] * len(pts)
    for _ in range(num_samples - 1):
        last = pts[chosen[-1]]
        for j, p in enumerate(pts):
            min_dist[j] = min(min_dist[j], sum((a - b) ** 2 for a, b in zip(p, last)))
        best = max((j for j in range(len(pts)) if j not in chosen), key=lambda j: min_dist[j])
        chosen.append(best)
    return chosen


def reference_sequence(centres: torch.Tensor) -> list[int]:
    """Greedy nearest-unvisited tour of one set of centres, starting at the smallest coordinate sum."""
    pts = centres.tolist()
    current = min(range(len(pts)), key=lambda j: sum(pts[j]))
    order = [current]
    while len(order) < len(pts):
        last = pts[current]
        current = min(
            (j for j in range(len(pts)) if j not in order),
            key=lambda j: sum((a - b) ** 2 for a, b in zip(pts[j], last)),
        )
        order.append(current)
    return order


def coverage(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per cloud: the largest distance from any point to its nearest sampled point."""
    samples = torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, 3))
    return torch.cdist(points, samples).amin(dim=2).amax(dim=1)


def test_fps_distinct_in_range_and_better_coverage_than_random():
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(16, 512, 3, generator=gen)
    idx = farthest_point_sampling(points, 32, generator=gen)
    assert idx.shape == (16, 32)
    assert idx.dtype == torch.long
    assert int(idx.min()) >= 0
    assert int(idx.max()) < 512
    assert all(len(set(row.tolist())) == 32 for row in idx)
    random_idx = torch.stack([torch.randperm(512, generator=gen)[:32] for _ in range(16)])
    assert (coverage(points, idx) < coverage(points, random_idx)).all()


def test_fps_matches_reference_with_fixed_start():
    points = torch.randn(3, 100, 3, generator=torch.Generator().manual_seed(1))
    idx = farthest_point_sampling(points, 12, random_start=False)
    for b in range(3):
        assert idx[b].tolist() == reference_fps(points[b], 12, start=0)


def test_fps_random_start_follows_generator():
    points = torch.randn(4, 64, 3)
    first = farthest_point_sampling(points, 8, generator=torch.Generator().manual_seed(5))
    second = farthest_point_sampling(points, 8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_fps_indices_distinct_with_duplicate_points():
    points = torch.zeros(2, 10, 3)
    points[:, :3] = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    idx = farthest_point_sampling(points, 10, random_start=False)
    assert all(sorted(row.tolist()) == list(range(10)) for row in idx)


def test_knn_matches_brute_force():
    gen = torch.Generator().manual_seed(2)
    points = torch.randn(2, 80, 5, generator=gen)
    centres = points[:, :7, :3].clone()
    idx, groups = knn_group(points, centres, k=6, chunk_size=3)
    assert idx.shape == (2, 7, 6)
    assert groups.shape == (2, 7, 6, 5)
    for b in range(2):
        for m in range(7):
            dists = [((points[b, j, :3] - centres[b, m]) ** 2).sum().item() for j in range(80)]
            expected = sorted(range(80), key=lambda j: dists[j])[:6]
            assert idx[b, m].tolist() == expected
            torch.testing.assert_close(groups[b, m, :, :3], points[b, expected, :3] - centres[b, m])
            torch.testing.assert_close(groups[b, m, :, 3:], points[b, expected, 3:])
    # Each centre is a point of the cloud, so its own group starts with itself at the origin.
    torch.testing.assert_close(groups[:, :, 0, :3], torch.zeros(2, 7, 3))


def test_sequence_order_is_greedy_nearest_tour():
    centres = torch.randn(4, 20, 3, generator=torch.Generator().manual_seed(3))
    order = sequence_order(centres)
    for b in range(4):
        assert sorted(order[b].tolist()) == list(range(20))
        assert order[b, 0].item() == centres[b].sum(-1).argmin().item()
        assert order[b].tolist() == reference_sequence(centres[b])


def test_mini_pointnet_shape_and_point_order_invariance():
    net = MiniPointNet(4, 32).eval()
    groups = torch.randn(2, 5, 16, 4)
    out = net(groups)
    assert out.shape == (2, 5, 32)
    torch.testing.assert_close(net(groups[:, :, torch.randperm(16)]), out)


def make_tokenizer(channels: int = 3, **kwargs) -> PointPatchTokenizer:
    torch.manual_seed(0)
    kwargs = {"num_groups": 16, "group_size": 8, **kwargs}
    return PointPatchTokenizer(InputSpec("point_clouds", channels=channels), 32, **kwargs)


@pytest.mark.parametrize("sequence", [True, False])
def test_tokenizer_shapes(sequence):
    tokenizer = make_tokenizer(channels=4, sequence=sequence)
    tokens = tokenizer(torch.randn(3, 128, 4), generator=torch.Generator().manual_seed(0))
    assert tokens.features.shape == (3, 16, 32)
    assert tokens.positions.shape == (3, 16, 32)
    assert tokens.layout.kind == "sequence"
    assert tokens.layout.shape == (16,)
    assert tokens.layout.coords.shape == (3, 16, 3)
    assert tokens.layout.num_tokens == 16
    assert tokenizer.embed_dim == 32


def test_tokenizer_sequence_orders_centres():
    tokenizer = make_tokenizer().eval()
    centres = tokenizer(torch.randn(2, 128, 3)).layout.coords
    assert torch.equal(sequence_order(centres), torch.arange(16).expand(2, -1))


def test_tokenizer_eval_invariant_to_point_order():
    tokenizer = make_tokenizer(channels=4).eval()
    clouds = torch.randn(2, 200, 4)
    permuted = clouds[:, torch.randperm(200)]
    with torch.no_grad():
        first, second = tokenizer(clouds), tokenizer(permuted)
    torch.testing.assert_close(first.features, second.features)
    torch.testing.assert_close(first.positions, second.positions)
    torch.testing.assert_close(first.layout.coords, second.layout.coords)


def test_tokenizer_training_start_is_seeded():
    tokenizer = make_tokenizer()
    clouds = torch.randn(2, 128, 3)
    first = tokenizer(clouds, generator=torch.Generator().manual_seed(7)).layout.coords
    second = tokenizer(clouds, generator=torch.Generator().manual_seed(7)).layout.coords
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    ("cloud", "match"),
    [
        (torch.randn(2, 128), "shape"),
        (torch.randn(2, 128, 4), "shape"),
        (torch.randn(2, 128, 3).index_put_((torch.tensor([0]), torch.tensor([5])), torch.tensor(float("nan"))), "NaN"),
        (torch.full((2, 128, 3), float("inf")), "NaN or inf"),
        (torch.randn(2, 10, 3), "at least 16"),
    ],
)
def test_tokenizer_rejects_bad_input(cloud, match):
    with pytest.raises(ValueError, match=match):
        make_tokenizer()(cloud)


def test_tokenizer_rejects_group_size_above_points():
    with pytest.raises(ValueError, match="at least 64"):
        make_tokenizer(group_size=64)(torch.randn(1, 40, 3))


def test_tokenizer_requires_channels():
    with pytest.raises(ValueError, match="lacks channels"):
        PointPatchTokenizer(InputSpec("point_clouds"), 32)
    with pytest.raises(ValueError, match="channels >= 3"):
        PointPatchTokenizer(InputSpec("point_clouds", channels=2), 32)
