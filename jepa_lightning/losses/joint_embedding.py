"""Joint-embedding objectives: SimCLR, Barlow Twins, VICReg, TiCo, BYOL, LeJEPA (SIGReg), INTL (IterNorm whitening).

All functions take LOCAL tensors (this rank's batch) and do their own communication through
``jepa_lightning.distributed``, whose autograd-aware collectives make the DDP-averaged gradient equal to the
gradient of one process on the global batch. Each docstring says what is communicated and how the loss
reduces. Local batch sizes must be equal on every rank (``DistributedSampler`` guarantees it); ``gather``
checks this, the all-reduce based objectives take the global batch size as ``world_size * local``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_lightning.distributed import all_reduce_mean, all_reduce_sum, broadcast, gather, rank, world_size

T = TypeVar("T")
LOW_PRECISION = (torch.float16, torch.bfloat16)


class VICRegLoss(NamedTuple):
    """VICReg total and its unweighted terms (for logging)."""

    loss: Tensor
    invariance: Tensor
    variance: Tensor
    covariance: Tensor


class LeJEPALoss(NamedTuple):
    """LeJEPA total and its unweighted terms (for logging)."""

    loss: Tensor
    invariance: Tensor
    sigreg: Tensor


def full_precision(loss: Callable[..., T]) -> Callable[..., T]:
    """Run ``loss`` in at least float32, also inside autocast: batch statistics and cross-correlations of wide
    embeddings (an 8192 x 8192 matrix of sums over the batch) lose too much in bfloat16 / float16."""

    @functools.wraps(loss)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        upcast = [a.float() if isinstance(a, Tensor) and a.dtype in LOW_PRECISION else a for a in args]
        with torch.autocast(device_type=device, enabled=False):
            return loss(*upcast, **kwargs)

    return wrapper


def _check_pair(z1: Tensor, z2: Tensor, name: str) -> None:
    """Both views must be (N, D) with the same shape."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        shapes = f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        raise ValueError(f"{name} expects two (N, D) embeddings of equal shape, got {shapes}")


def _off_diagonal(m: Tensor) -> Tensor:
    """``m`` (..., D, D) with its diagonal set to zero."""
    eye = torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return m.masked_fill(eye, 0.0)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR's normalised-temperature cross-entropy between two views (N, D) of the same N samples.

    Each L2-normalised local embedding is scored against the gathered embeddings of both views (2 * N_global
    candidates, its own entry excluded); its positive is the other view of the same sample, at offset
    ``rank * N`` in the gathered batch. Distributed semantics: gathers both views (autograd-aware); the loss is
    the mean cross-entropy over this rank's 2 * N queries, so the mean over ranks (DDP) is the single-process
    loss on the global batch.
    """
    _check_pair(z1, z2, "nt_xent")
    n = z1.shape[0]
    q1, q2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    keys = gather(torch.stack([q1, q2], dim=1))
    n_global = keys.shape[0]
    logits = torch.cat([q1, q2]) @ torch.cat([keys[:, 0], keys[:, 1]]).T / temperature
    own = rank() * n + torch.arange(n, device=z1.device)
    self_idx = torch.cat([own, own + n_global])
    positive_idx = torch.cat([own + n_global, own])
    rows = torch.arange(2 * n, device=z1.device)
    logits = logits.index_put((rows, self_idx), logits.new_full((2 * n,), float("-inf")))
    return F.cross_entropy(logits, positive_idx)


SIMILARITY_WEIGHTS = ("identity", "exp", "exp_thick_tail")


def _cross_modal_logits(z1: Tensor, z2: Tensor, logit_scale: Tensor | float, normalize: bool) -> tuple[Tensor, Tensor]:
    """Logits ``(N, N_global)`` of this rank's items of each modality against the gathered items of the other."""
    if normalize:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    keys = gather(torch.stack([z1, z2], dim=1))
    return logit_scale * z1 @ keys[:, 1].T, logit_scale * z2 @ keys[:, 0].T


def clip_loss(
    z1: Tensor,
    z2: Tensor,
    logit_scale: Tensor | float,
    targets: Tensor | tuple[Tensor, Tensor] | None = None,
    normalize: bool = True,
) -> Tensor:
    """CLIP's symmetric InfoNCE between two modalities ``(N, D)`` of the same N items (row i of both is item i).

    Each local item of one modality is scored against the gathered items of the other (``N_global`` candidates,
    logits ``logit_scale * cos``) and must pick its own partner, at offset ``rank * N``; the loss is the mean of the
    two directions' mean cross-entropies. ``targets`` ``(N, N_global)`` replaces the one-hot partner by a
    distribution over the gathered items, for both directions, or a pair of them: the targets of ``z1``'s queries,
    then of ``z2``'s (e.g. ConGraT's :func:`similarity_targets`, whose columns belong to the nodes and rows to the
    texts). ``normalize=False`` takes embeddings that are already normalised (ConGraT drops out
    after normalising). Distributed semantics: gathers both modalities (autograd-aware); the mean over ranks (DDP)
    is the single-process loss on the global batch.
    """
    _check_pair(z1, z2, "clip_loss")
    logits12, logits21 = _cross_modal_logits(z1, z2, logit_scale, normalize)
    if targets is None:
        targets = rank() * z1.shape[0] + torch.arange(z1.shape[0], device=z1.device)
    targets12, targets21 = targets if isinstance(targets, tuple) else (targets, targets)
    for soft in (targets12, targets21):
        if soft.is_floating_point() and soft.shape != logits12.shape:
            raise ValueError(
                f"clip_loss targets must be (N, N_global) = {tuple(logits12.shape)}, got {tuple(soft.shape)}"
            )
    return 0.5 * (F.cross_entropy(logits12, targets12) + F.cross_entropy(logits21, targets21))


def supervised_clip_loss(
    z1: Tensor, z2: Tensor, labels: Tensor, logit_scale: Tensor | float, normalize: bool = True
) -> Tensor:
    """Cross-modal supervised contrastive term (SupCon's "L_out", Khosla et al. 2020, across two modalities): each
    labelled local item of one modality treats every gathered item of the other modality with its label as a
    positive, ``-mean_p log softmax(logits)_p``; items labelled -1 are no query and no positive. Returns 0 when no
    item of the global batch is labelled.

    Distributed semantics: gathers both modalities and the labels; the sum over this rank's queries is divided by
    the global query count (all-reduced) and multiplied by the world size, so the mean over ranks (DDP) is the mean
    over every labelled query of the global batch, whatever the share of labels on each rank.
    """
    _check_pair(z1, z2, "supervised_clip_loss")
    logits12, logits21 = _cross_modal_logits(z1, z2, logit_scale, normalize)
    keys = gather(labels)
    positive = (labels[:, None] == keys[None, :]) & (labels[:, None] >= 0)
    per_query = positive.sum(1)
    queries = per_query > 0
    total = torch.zeros((), dtype=logits12.dtype, device=z1.device)
    for logits in (logits12, logits21):
        log_p = logits.log_softmax(dim=1).masked_fill(~positive, 0.0)
        total = total + (log_p.sum(1)[queries] / per_query[queries]).sum()
    count = all_reduce_sum(queries.sum().to(logits12.dtype).detach()) * 2
    return -total * world_size() / count.clamp(min=1)


def sigmoid_loss(
    z1: Tensor,
    z2: Tensor,
    logit_scale: Tensor | float,
    bias: Tensor | float,
    positives: Tensor | None = None,
    normalize: bool = True,
) -> Tensor:
    """SigLIP's pairwise sigmoid loss between two modalities ``(N, D)`` of the same N items (Zhai et al., 2023; the
    loss CLAP-IPA trains speech against phoneme strings with).

    Every local item of ``z1`` is scored against every gathered item of ``z2`` (logits ``logit_scale * cos + bias``,
    ``(N, N_global)``); a pair labelled positive (+1) adds ``-log sigmoid(logit)``, a negative one (-1)
    ``-log sigmoid(-logit)``; the sum over the pairs is divided by ``N``. Positives: by default each item's own
    partner (offset ``rank * N``); ``positives`` (bool ``(N, N_global)``) replaces them (all False: a term of
    negatives only, CLAP-IPA's hard negatives; or several True per row for items that share their partner's
    content). Distributed semantics: gathers ``z2`` (autograd-aware); the mean over ranks (DDP) is the
    single-process loss on the global batch (the sum over all ``N_global^2`` pairs divided by ``N_global``).
    """
    _check_pair(z1, z2, "sigmoid_loss")
    if normalize:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = logit_scale * z1 @ gather(z2).T + bias
    if positives is None:
        own = rank() * z1.shape[0] + torch.arange(z1.shape[0], device=z1.device)
        positives = torch.zeros_like(logits, dtype=torch.bool)
        positives[torch.arange(z1.shape[0], device=z1.device), own] = True
    if positives.shape != logits.shape:
        raise ValueError(f"sigmoid_loss positives must be (N, N_global) = {tuple(logits.shape)}, got {positives.shape}")
    signs = positives.to(logits.dtype) * 2 - 1
    return -F.logsigmoid(signs * logits).sum() / z1.shape[0]


def similarity_targets(sims: Tensor, own: Tensor, alpha: float, weights: str = "identity") -> tuple[Tensor, Tensor]:
    """ConGraT's graph-similarity label smoothing: soft targets ``alpha * s + (1 - alpha) * onehot`` for both
    directions, each ``(N, N_global)``.

    ``sims`` ``(N, N_global)`` holds the similarity of each local item to every gathered item (ConGraT: the cosine of
    their rows of ``A A^T``, mutual neighbours), ``own`` ``(N,)`` each item's own column. The own entries are
    zeroed and each row's k-th largest similarity weighted by ``weights`` ("identity": 1, "exp": ``exp(-k)``,
    "exp_thick_tail": ``exp(-k / sqrt(N_global))``), giving the weighted matrix ``W``. Returns ``(rows, columns)``:
    ``s`` from this rank's rows of ``W`` (ConGraT's row targets, for the queries of the modality whose ranking it
    is: the texts) and from its columns (ConGraT's column targets, ``W^T``: the nodes), each with its minimum
    subtracted and L1-normalised. With weights other than "identity" ``W`` is not symmetric and the two differ.
    Distributed semantics: gathers the weighted rows (no gradient) to read the columns. Computed without gradient.
    """
    if weights not in SIMILARITY_WEIGHTS:
        raise ValueError(f"similarity weights must be one of {SIMILARITY_WEIGHTS}, got {weights!r}")
    with torch.no_grad():
        n, n_global = sims.shape
        rows = torch.arange(n, device=sims.device)
        onehot = torch.zeros_like(sims).index_put_((rows, own), torch.ones_like(rows, dtype=sims.dtype))
        sims = sims.masked_fill(onehot.bool(), 0.0)
        k = torch.arange(n_global, device=sims.device, dtype=sims.dtype)
        scale = {"identity": torch.ones_like(k), "exp": (-k).exp(), "exp_thick_tail": (-k / n_global**0.5).exp()}
        order = torch.argsort(sims, dim=1, descending=True)
        weighted = (sims.gather(1, order) * scale[weights]).gather(1, order.argsort(1))
        columns = gather(weighted)[:, own].T

        def smoothed(w: Tensor) -> Tensor:
            spread = F.normalize(w - w.min(dim=1, keepdim=True).values, p=1, dim=1)
            return alpha * spread + (1 - alpha) * onehot

        return smoothed(weighted), smoothed(columns)


@full_precision
def barlow_twins(z1: Tensor, z2: Tensor, lambda_offdiag: float = 0.0051, eps: float = 1e-5) -> Tensor:
    """Barlow Twins: ``sum_i (1 - c_ii)^2 + lambda * sum_{i != j} c_ij^2`` for the cross-correlation ``c`` (D, D).

    Each view is batch-normalised without affine parameters over the GLOBAL batch (biased variance, ``eps``
    as in ``BatchNorm1d``, i.e. the official code's SyncBatchNorm), then ``c = z1n^T z2n / N_global``.
    Distributed semantics: all-reduces the per-view means and variances (mean) and the local products
    ``z1n^T z2n`` (sum); the loss is identical on every rank and equals the single-process loss.
    """
    _check_pair(z1, z2, "barlow_twins")
    z = torch.stack([z1, z2])
    n_global = z.shape[1] * world_size()
    centred = z - all_reduce_mean(z.mean(dim=1, keepdim=True))
    var = all_reduce_mean(centred.square().mean(dim=1, keepdim=True))
    zn = centred / torch.sqrt(var + eps)
    c = all_reduce_sum(zn[0].T @ zn[1]) / n_global
    on_diag = (torch.diagonal(c) - 1).square().sum()
    return on_diag + lambda_offdiag * _off_diagonal(c).square().sum()


def _variance_term(zg: Tensor, eps: float) -> Tensor:
    """``mean_d relu(1 - sqrt(var_d + eps))`` over dim 0 of a gathered (N, ..., D) tensor -> (...)."""
    if zg.shape[0] < 2:
        raise ValueError(f"the VICReg variance needs at least 2 samples in the global batch, got {zg.shape[0]}")
    return F.relu(1 - torch.sqrt(zg.var(dim=0) + eps)).mean(dim=-1)


def _covariance_term(zg: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances / D over dim 0 of a gathered (N, ..., D) tensor -> (...)."""
    n, d = zg.shape[0], zg.shape[-1]
    if n < 2:
        raise ValueError(f"the VICReg covariance needs at least 2 samples in the global batch, got {n}")
    zc = zg - zg.mean(dim=0)
    cov = torch.einsum("n...i,n...j->...ij", zc, zc) / (n - 1)
    return _off_diagonal(cov).square().sum(dim=(-2, -1)) / d


@full_precision
def vicreg_variance(z: Tensor, eps: float = 1e-4) -> Tensor:
    """VICReg's variance hinge for one view (N, D): ``mean_d relu(1 - sqrt(var_d + eps))``, unbiased variance.

    Distributed semantics: gathers ``z`` (autograd-aware); the value is identical on every rank.
    """
    return _variance_term(gather(z), eps)


@full_precision
def vicreg_token_terms(tokens: Tensor, valid: Tensor | None = None, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """VICReg's variance hinge and covariance penalty over every token ``(..., D)`` of every rank, as if all the
    tokens were one batch: JEPA contexts, whose token counts differ between ranks, can be regularised token by token.
    ``valid`` ``(...)`` bool leaves padding tokens out.

    Same definitions as :func:`vicreg_variance` / :func:`vicreg_covariance` (unbiased covariance). Distributed
    semantics: all-reduces the token count, the feature sums and then the centred outer products (autograd-aware)
    instead of gathering, so unequal counts are exact; the values are identical on every rank.
    """
    z = tokens.reshape(-1, tokens.shape[-1])
    if z.shape[0] == 0:
        raise ValueError("the token-level VICReg terms need at least one token on every rank, got none")
    weight = z.new_ones(z.shape[0], 1) if valid is None else valid.reshape(-1, 1).to(z.dtype)
    count = all_reduce_sum(weight.sum())
    centred = (z - all_reduce_sum((z * weight).sum(dim=0)) / count) * weight
    cov = all_reduce_sum(centred.T @ centred) / (count - 1)
    variance = F.relu(1 - torch.sqrt(torch.diagonal(cov) + eps)).mean()
    return variance, _off_diagonal(cov).square().sum() / z.shape[-1]


@full_precision
def vicreg_covariance(z: Tensor) -> Tensor:
    """VICReg's covariance penalty for one view (N, D): squared off-diagonals of the covariance, summed, / D.

    Covariance of the centred batch with ``N - 1``. Distributed semantics: gathers ``z`` (autograd-aware); the
    value is identical on every rank.
    """
    return _covariance_term(gather(z))


@full_precision
def vicreg(
    z1: Tensor,
    z2: Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> VICRegLoss:
    """VICReg: ``sim_weight * MSE(z1, z2) + var_weight * variance + cov_weight * covariance``.

    As in the official code, ``variance`` is the MEAN of the two views' hinge terms and ``covariance`` the SUM
    of the two views' penalties. Distributed semantics: the invariance is a local mean (an average of equal
    local batches, so DDP's averaging gives the global mean); both views are gathered once (autograd-aware) for
    the variance and covariance terms, which are identical on every rank.
    """
    _check_pair(z1, z2, "vicreg")
    invariance = F.mse_loss(z1, z2)
    zg = gather(torch.stack([z1, z2], dim=1))
    variance = _variance_term(zg, eps).mean()
    covariance = _covariance_term(zg).sum()
    loss = sim_weight * invariance + var_weight * variance + cov_weight * covariance
    return VICRegLoss(loss, invariance, variance, covariance)


def tico(
    z_a: Tensor,
    z_b: Tensor,
    covariance: Tensor | None,
    beta: float = 0.9,
    rho: float = 8.0,
    detach_batch_covariance: bool = False,
) -> tuple[Tensor, Tensor]:
    """TiCo: ``1 - mean_n <z_a, z_b> + rho * mean_n z_a C z_a^T`` on L2-normalised embeddings (N, D).

    ``C = beta * covariance + (1 - beta) * B`` with ``B = z_a^T z_a / N_global`` is the UPDATED running covariance.
    By default the gradient flows through ``B`` (the covariance term is then cubic in ``z_a``): the paper's
    pseudo-code leaves ``B`` attached and detaches only the stored ``C``, and so did Lightly's ``TiCoLoss`` before
    v1.5.0. ``detach_batch_covariance=True`` detaches ``B`` (the term is then quadratic in ``z_a``), as Lightly does
    since its pull request #1484, which reads the paper's figure that way. The paper publishes no official code.
    Both give the same value. ``covariance`` is the running state (D, D), ``None`` at the first step (zeros); the
    second return value is ``C`` detached, to store.
    ``z_b`` comes from the momentum branch (the caller gives it without gradient). Evaluated in at least
    float32 (``C`` too, whatever the embeddings' precision). Distributed semantics:
    all-reduces (sum) the local ``z_a^T z_a``, so ``C`` is the global-batch covariance and identical on every
    rank; the two means are local (equal local batches, so DDP's averaging gives the global mean).
    """
    _check_pair(z_a, z_b, "tico")
    dtype = torch.promote_types(z_a.dtype, torch.float32)
    z_a, z_b = F.normalize(z_a.to(dtype), dim=1), F.normalize(z_b.to(dtype), dim=1)
    batch_cov = all_reduce_sum(z_a.T @ z_a).to(dtype) / (z_a.shape[0] * world_size())
    if detach_batch_covariance:
        batch_cov = batch_cov.detach()
    if covariance is None:
        covariance = torch.zeros_like(batch_cov)
    c = beta * covariance.to(dtype) + (1 - beta) * batch_cov
    loss = 1 - (z_a * z_b).sum(dim=1).mean() + rho * ((z_a @ c) * z_a).sum(dim=1).mean()
    return loss, c.detach()


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL: ``2 - 2 * mean_n cos(p_n, z_n)`` with the target ``z`` detached; symmetrise in the caller.

    Distributed semantics: purely local; the mean over equal local batches, averaged by DDP, is the global mean.
    """
    _check_pair(p, z, "byol_loss")
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


def slice_directions(
    dim: int, num_slices: int, seed: int | None = None, device: torch.device | str | None = None
) -> Tensor:
    """``num_slices`` random unit directions in R^dim as the columns of a float32 (dim, num_slices) tensor.

    Identical on every rank: drawn from a generator seeded with ``seed`` (e.g. the global step), or, without a
    seed, drawn from the global RNG and broadcast from rank 0 (one collective).
    """
    if seed is None:
        a = broadcast(torch.randn(dim, num_slices, device=device))
    else:
        generator = torch.Generator(device=device if device is not None else "cpu").manual_seed(seed)
        a = torch.randn(dim, num_slices, generator=generator, device=device)
    return a / a.norm(dim=0, keepdim=True)


def sigreg(
    z: Tensor, num_slices: int = 256, seed: int | None = None, num_knots: int = 17, t_max: float = 3.0
) -> Tensor:
    """LeJEPA's SIGReg: the sliced Epps-Pulley statistic of ``z`` (..., N, K) against N(0, I), mean over slices.

    ``x = z A`` for ``num_slices`` unit directions ``A`` from ``slice_directions(K, num_slices, seed)``; on knots
    ``t_j = linspace(0, t_max, num_knots)`` the empirical characteristic function ``c_j = mean_n cos(t_j x_n)``,
    ``s_j = mean_n sin(t_j x_n)`` gives ``err_j = (c_j - exp(-t_j^2 / 2))^2 + s_j^2``; with trapezoid weights on
    [0, t_max] doubled for symmetry and multiplied by ``exp(-t_j^2 / 2)``, each slice's statistic is
    ``N_global * sum_j w_j err_j``. Leading dims (e.g. views) are independent samples sharing ``A``; the result
    is the mean over them and the slices. Evaluated in at least float32. Distributed semantics: ``c`` and ``s``
    are all-reduced (mean, autograd-aware) and ``N_global = world_size * N``; identical on every rank. Pass a
    ``seed`` (e.g. the global step) so every rank draws the same ``A`` without a broadcast.
    """
    if z.ndim < 2:
        raise ValueError(f"sigreg expects embeddings (..., N, K), got shape {tuple(z.shape)}")
    if num_knots < 2:
        raise ValueError(f"sigreg needs at least 2 knots, got {num_knots}")
    n, k = z.shape[-2:]
    dtype = torch.promote_types(z.dtype, torch.float32)
    a = slice_directions(k, num_slices, seed, device=z.device).to(z.dtype)
    t = torch.linspace(0, t_max, num_knots, dtype=dtype, device=z.device)
    phi = torch.exp(-t.square() / 2)
    dt = t_max / (num_knots - 1)
    weights = torch.full_like(t, 2 * dt)
    weights[0] = weights[-1] = dt
    xt = (z @ a).to(dtype).unsqueeze(-1) * t
    ecf = all_reduce_mean(torch.stack([xt.cos().mean(dim=-3), xt.sin().mean(dim=-3)]))
    err = (ecf[0] - phi).square() + ecf[1].square()
    return ((err * weights * phi).sum(dim=-1) * (n * world_size())).mean()


def lejepa_loss(
    views: Sequence[Tensor],
    lambda_: float = 0.05,
    num_slices: int = 256,
    seed: int | None = None,
    num_global_views: int | None = None,
    num_knots: int = 17,
    t_max: float = 3.0,
) -> LeJEPALoss:
    """LeJEPA: ``lambda_ * SIGReg + (1 - lambda_) * invariance`` over V views, each (N, K) projector outputs.

    ``invariance = mean_{v, n, k} (mu_{n,k} - z_{v,n,k})^2`` where ``mu`` is the per-sample mean of the first
    ``num_global_views`` views (all views by default). Like the official code (``(centers - emb).square().mean()``)
    it averages over the K dims too, i.e. it is ``mean_{v,n} ||mu_n - z_{v,n}||^2 / K``; ``lambda_`` ~ 0.05 is
    calibrated on that scale. SIGReg is the mean over views of ``sigreg`` with the same directions for every
    view. Distributed semantics: the invariance is local (per-sample centres; DDP's averaging gives the global
    mean); SIGReg all-reduces its characteristic functions as in ``sigreg``. Pass ``seed`` (the global step).
    """
    if len(views) < 1:
        raise ValueError("lejepa_loss needs at least one view")
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"lejepa_loss expects views of one shape (N, K), got shapes {sorted(shapes)}")
    z = torch.stack(list(views))
    centres = z[:num_global_views].mean(dim=0)
    invariance = (centres - z).square().mean()
    reg = sigreg(z, num_slices, seed, num_knots, t_max)
    return LeJEPALoss(lambda_ * reg + (1 - lambda_) * invariance, invariance, reg)


class INTLLoss(NamedTuple):
    """INTL total and its unweighted terms (for logging)."""

    loss: Tensor
    invariance: Tensor
    trace: Tensor


#: The axis IterNorm whitens, named as INTL's official code names it: ``"channel"`` (its ``axis=0``, the default)
#: centres each sample over its channels and whitens the (N, N) Gram matrix of the batch; ``"batch"`` (``axis=1``)
#: centres each channel over the batch and whitens the (D, D) covariance.
WhiteningAxis = Literal["channel", "batch"]


def iternorm(z: Tensor, axis: WhiteningAxis = "channel", iterations: int = 4) -> Tensor:
    """IterNorm whitening of (N, D) embeddings by Newton iterations (Huang et al., 2019), as INTL applies it.

    With ``S`` the covariance along ``axis`` (see :data:`WhiteningAxis`; unbiased) and ``S_n = S / tr(S)``,
    ``P_0 = I`` and ``P_{k+1} = 1.5 P_k - 0.5 P_k^3 S_n``; after ``iterations`` steps ``P / sqrt(tr(S))``
    approximates ``S^{-1/2}``, which multiplies the centred embeddings. A few iterations only partly whiten:
    INTL's trace loss does the rest. Purely local: the caller passes the global batch.
    """
    if axis not in ("channel", "batch"):
        raise ValueError(f"axis must be 'channel' or 'batch', got {axis!r}")
    if z.ndim != 2:
        raise ValueError(f"iternorm expects (N, D) embeddings, got shape {tuple(z.shape)}")
    x = z - z.mean(dim=1 if axis == "channel" else 0, keepdim=True)
    if axis == "channel":
        x = x.T
    if x.shape[0] < 2:
        raise ValueError(f"IterNorm needs at least 2 entries along the centred axis, got {x.shape[0]}")
    sigma = x.T @ x / (x.shape[0] - 1)
    trace = torch.diagonal(sigma).sum()
    sigma_norm = sigma / trace
    projection = torch.eye(sigma.shape[0], dtype=sigma.dtype, device=sigma.device)
    for _ in range(iterations):
        projection = 1.5 * projection - 0.5 * torch.linalg.matrix_power(projection, 3) @ sigma_norm
    whitened = x @ (projection / trace.sqrt())
    return whitened.T if axis == "channel" else whitened


def trace_loss(w: Tensor, axis: WhiteningAxis = "channel") -> Tensor:
    """INTL's trace loss ``sum_d (var_d - 1)^2`` of whitened (N, D) embeddings along ``axis``: the unbiased variance
    of each channel over the batch (``"batch"``), or of each sample over its channels (``"channel"``). Purely local."""
    x = w.T if axis == "channel" else w
    variance = (x - x.mean(dim=0)).square().sum(dim=0) / (x.shape[0] - 1)
    return (variance - 1).square().sum()


def intl_trade_off(batch_size: int, dim: int, axis: WhiteningAxis = "channel") -> float:
    """INTL's default trace-loss weight: ``0.01 * (log2(n) - 3)`` with ``n`` the global batch size (channel
    whitening) or the embedding width (batch whitening), as in the official ``cal_trade_off``."""
    return 0.01 * (math.log2(batch_size if axis == "channel" else dim) - 3)


@full_precision
def intl_loss(
    z1: Tensor,
    z2: Tensor,
    trade_off: float | None = None,
    axis: WhiteningAxis = "channel",
    iterations: int = 4,
) -> INTLLoss:
    """INTL (Weng et al., "Modulate Your Spectrum in Self-Supervised Learning", ICLR 2024) for two views (N, D).

    Each view is whitened over the global batch by :func:`iternorm`; the loss is the normalised MSE
    ``2 - 2 * mean_n cos(w1_n, w2_n)`` plus ``trade_off * (trace_loss(w1) + trace_loss(w2))``, with ``trade_off``
    from :func:`intl_trade_off` when None. Distributed semantics: gathers both views once (autograd-aware), as the
    official code gathers before whitening; every term is computed on the global batch and is identical on every
    rank.
    """
    _check_pair(z1, z2, "intl_loss")
    zg = gather(torch.stack([z1, z2]).transpose(0, 1))
    w1, w2 = (iternorm(zg[:, v], axis, iterations) for v in range(2))
    if trade_off is None:
        trade_off = intl_trade_off(zg.shape[0], zg.shape[-1], axis)
    invariance = 2 - 2 * F.cosine_similarity(w1, w2, dim=1).mean()
    trace = trace_loss(w1, axis) + trace_loss(w2, axis)
    return INTLLoss(invariance + trade_off * trace, invariance, trace)
