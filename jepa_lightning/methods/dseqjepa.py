"""DSeq-JEPA: He, Sakai, Chandhok, Beery, Yuan, Padoy, Hasegawa and Sigal, "DSeq-JEPA: Discriminative Sequential
Joint-Embedding Predictive Architecture", arXiv:2511.17354, 2025 (official code: SkyShunsuke/DSeq-JEPA)."""

from __future__ import annotations

from typing import Any

from jepa_lightning.masks.multiblock import MultiBlockMaskSampler
from jepa_lightning.masks.saliency import SaliencyRankedMaskSampler
from jepa_lightning.methods.ijepa import IJEPA


class DSeqJEPA(IJEPA):
    """DSeq-JEPA: I-JEPA whose targets are the teacher's most salient regions, predicted one after another in rank
    order, each from the regions ranked before it.

    Every step the EMA teacher scores each patch (:meth:`~jepa_lightning.methods.JEPA.token_scores`: the teacher's
    tokens after all but its last ``-saliency_depth`` blocks, through its final norm, against their mean); the patches
    are ranked into ``num_regions`` regions (:class:`~jepa_lightning.masks.SaliencyRankedMaskSampler`), and region ``k =
    1 .. num_regions - 1`` is predicted from the student's encoding of regions ``0 .. k - 1`` alone: one context and one
    target group per rank, the loss averaged over the ranks. With probability rising linearly from
    ``ranked_probability[0]`` to ``[1]`` over training a step uses these regions, otherwise I-JEPA's multi-block masks
    (:class:`~jepa_lightning.masks.MultiBlockMaskSampler`'s defaults), so early steps, whose teacher's saliency means
    little, are plain I-JEPA (another mix: :class:`~jepa_lightning.methods.IJEPA` with a
    :class:`~jepa_lightning.masks.SaliencyRankedMaskSampler` as ``mask_sampler`` and ``saliency_depth``). Everything
    else is :class:`~jepa_lightning.methods.IJEPA` (ViT-B encoder, smooth-L1 on layer-normed EMA targets, EMA 0.996 ->
    1, mean of the teacher's tokens as the representation), except the predictor's width, 192 as in the official ViT-B
    config (6 blocks, the encoder's head count). The saliency's blocks are the first blocks of the targets' teacher
    pass, so one teacher forward gives both (:meth:`~jepa_lightning.methods.JEPA.targets_and_saliency`; the official
    code runs the teacher twice), with the same values.

    Official code: SkyShunsuke/DSeq-JEPA@6fdb97124cbbf612b80ee9f4cc735fee93c6a8b9
    (``src/frameworks/dseqjepa/pretrain.py``, ``src/frameworks/dseqjepa/attention.py``,
    ``configs/dseqjepa/vitb16_in1k.yaml``). Matches: 5 regions (``region_num``); the teacher's tokens at block index
    10 of 12 (``attention.depth``: all but the last block, ``saliency_depth=-1``) through its final norm; saliency
    as the scaled dot product ``q z / sqrt(D)`` of a query with those tokens; region ``k`` predicted from the regions
    ranked before it, the student seeing only them; the most salient region never a target; targets the teacher's
    layer-normed last block; lambda 0 -> 1 linear per step, one Bernoulli draw per step between the sequential and
    I-JEPA's multi-block objectives (``lambda_start``, ``lambda_end``); predictor 192 wide and 6 deep. The optimiser
    settings are the library's I-JEPA defaults; the official ViT-B config warms up from 2e-4 to 8e-4 in 15 epochs and
    decays to 1e-4 over 600, weight decay 0.04 -> 0.4 (set ``lr``, ``warmup_start_lr``, ... to match).

    Deviations: (1) regions are equal groups of patches by saliency rank (region ``g``: ranks ``g s .. (g + 1) s - 1``
    with ``s = N // num_regions``), not the official Otsu threshold of the min-max-normalised map, 8-connected
    components of at least ``alpha`` = 15% of the patches ranked by mean saliency, the top 4 plus the rest as the last
    region: those regions differ in size per image (and can be empty), which the official code handles with attention
    masks over all patches and the library's samplers do not (index tensors of one size per batch). (2) The query is the
    mean of the teacher's tokens: the official query is the input embedding of the teacher's learned [CLS] token
    (``cls_token``), which the library's encoders do not have (the official encoders' tokens also attend to that token).
    (3) The context of rank ``k`` is regions ``0 .. k - 1``, as the code's comment says ("context extraction for
    Top-{1,2,...,Nd-1} regions"); the code's ``generate_dseq_masks`` gives ranks 1 and 2 the same context (region 0) and
    rank ``k >= 2`` regions ``0 .. k - 2``, an off-by-one not copied. (4) The predictor's attention: the official
    predictor passes ``1 - (context or target)`` as its "masked" keys, so its mask tokens attend to the tokens outside
    the context (the encoder's outputs at the hidden patches) rather than to the context; ours attend to the context and
    the targets, as I-JEPA's predictor does (that reading keeps region ``k``'s own and later patches out of its
    prediction). (5) The predictor adds a learned mask token to the targets' positions, one per rank (the library's
    per-configuration mask tokens, V-JEPA's); the official predictor builds a mask token but adds only the positions.
    """

    def __init__(
        self,
        num_regions: int = 5,
        saliency_depth: int | None = -1,
        ranked_probability: tuple[float, float] = (0.0, 1.0),
        predictor_dim: int = 192,
        **kwargs: Any,
    ) -> None:
        """``num_regions``: regions ranked per image (the first only ever context); ``saliency_depth``: the teacher
        blocks the saliency reads (see :meth:`~jepa_lightning.methods.JEPA.token_scores`); ``ranked_probability``: the
        chance of a ranked step at the start and at the end of training; ``predictor_dim``: the predictor's width;
        ``kwargs``: the arguments of :class:`~jepa_lightning.methods.IJEPA` except ``mask_sampler``."""
        sampler = SaliencyRankedMaskSampler(
            num_regions, fallback=MultiBlockMaskSampler(), ranked_probability=ranked_probability
        )
        super().__init__(mask_sampler=sampler, saliency_depth=saliency_depth, predictor_dim=predictor_dim, **kwargs)
