# ruff: noqa: N806  (the official function is re-typed with its own names)
"""ConGraT's loss against its official code, re-typed below, compared numerically on fixed inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from jepa_lightning.losses import clip_loss, similarity_targets


# official: wwbrannon/congrat@029844dcdfbd19315fc38cc8a161886745205e0d src/clip_graph/losses.py::square_contrastive_loss
def official_square_contrastive_loss(logits, sims=None, sim_weights="identity", alpha=0.1):
    N, device = logits.shape[0], logits.device
    if sims is None:
        row_targets = torch.arange(N, device=device)
        col_targets = row_targets
    else:
        if sim_weights == "identity":
            weights = torch.ones((N,), device=device)
        elif sim_weights == "exp":
            weights = (-1 * torch.arange(N, device=device)).exp()
        else:  # sim_weights == 'exp_thick_tail'
            weights = (-1 * 1 / (N**0.5) * torch.arange(N, device=device)).exp()
        weights = weights.unsqueeze(0).expand(N, -1)
        sort_inds = torch.argsort(sims, dim=1, descending=True)
        sims = sims.gather(1, sort_inds) * weights
        sims = sims.gather(1, sort_inds.argsort(1))
        row_reg_dist = sims - sims.min(dim=1).values.unsqueeze(1).expand(-1, N)
        row_reg_dist = F.normalize(row_reg_dist, p=1, dim=1)
        col_reg_dist = sims.T - sims.T.min(dim=1).values.unsqueeze(1).expand(-1, N)
        col_reg_dist = F.normalize(col_reg_dist, p=1, dim=1)
        row_targets = alpha * row_reg_dist + (1 - alpha) * torch.eye(N, device=device)
        col_targets = alpha * col_reg_dist + (1 - alpha) * torch.eye(N, device=device)
    return 0.5 * (F.cross_entropy(logits, row_targets) + F.cross_entropy(logits.T, col_targets))


# official: wwbrannon/congrat@029844dcdfbd19315fc38cc8a161886745205e0d src/clip_graph/models.py::ClipGraph.forward
# (the logits from the normalised, dropped-out embeddings; dropout left out: both sides get the same embeddings)
def official_logits(lm_embeds, gnn_embeds, tau, max_tau):
    temperature = tau.exp()
    max_temp = torch.tensor(max_tau).exp().item()
    temperature = temperature.clamp(-max_temp, max_temp)
    return lm_embeds @ gnn_embeds.T * temperature


def embeddings(n: int = 12, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    text = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    graph = F.normalize(text + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return text, graph


def mutual_similarity(n: int, seed: int = 1) -> torch.Tensor:
    """ConGraT's mutual-neighbour cosine on a random graph, with its diagonal zeroed as the official step does."""
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, n, generator=g) < 0.3).double()
    a = ((a + a.T) > 0).double()
    mutual = F.normalize(a @ a.T, p=2, dim=1)
    sims = mutual @ mutual.T
    return sims - torch.diagflat(torch.diagonal(sims))


@pytest.mark.parametrize("tau", [3.5, 5.0])  # 5.0: beyond ln 100, the clamp is active
def test_clip_loss_matches_square_contrastive_loss(tau):
    text, graph = embeddings()
    official = official_square_contrastive_loss(
        official_logits(text, graph, torch.tensor(tau, dtype=torch.float64), math.log(100))
    )
    # the official bound exp(ln 100) is computed in float32: 100.00000762939453
    scale = min(math.exp(tau), torch.tensor(math.log(100)).exp().item())
    ours = clip_loss(graph, text, torch.tensor(scale, dtype=torch.float64), normalize=False)
    torch.testing.assert_close(ours, official, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weights", ["identity", "exp", "exp_thick_tail"])
def test_similarity_smoothed_targets_match(weights):
    text, graph = embeddings()
    n = text.shape[0]
    sims = mutual_similarity(n)
    logits = official_logits(text, graph, torch.tensor(3.5, dtype=torch.float64), math.log(100))
    official = official_square_contrastive_loss(logits, sims, weights, alpha=0.1)
    rows, columns = similarity_targets(sims, torch.arange(n), alpha=0.1, weights=weights)
    # the official's logits have the texts as rows: our z1 is the graph (its targets the columns), z2 the text
    ours = clip_loss(graph, text, math.exp(3.5), (columns, rows), normalize=False)
    # the official builds its identity and rank weights in torch's default float32 (0.9 becomes 0.89999998): 1e-7
    torch.testing.assert_close(ours, official, rtol=1e-6, atol=1e-9)
    # the smoothing moves the loss: the test can tell smoothed from plain targets
    assert not torch.isclose(ours, official_square_contrastive_loss(logits))


def test_similarity_targets_zero_the_own_entry_and_sum_to_one():
    sims = mutual_similarity(10) + torch.eye(10)  # an own similarity of 1 that must not count
    rows, columns = similarity_targets(sims, torch.arange(10), alpha=0.2, weights="identity")
    for targets in (rows, columns):
        torch.testing.assert_close(targets.sum(1), torch.ones(10, dtype=torch.float64))
        torch.testing.assert_close(targets.diagonal(), torch.full((10,), 0.8, dtype=torch.float64))
    torch.testing.assert_close(rows, columns)  # identity weights keep the symmetric similarity symmetric
    rows, columns = similarity_targets(sims, torch.arange(10), alpha=0.2, weights="exp")
    assert not torch.allclose(rows, columns)
    with pytest.raises(ValueError, match="similarity weights"):
        similarity_targets(sims, torch.arange(10), alpha=0.2, weights="linear")
