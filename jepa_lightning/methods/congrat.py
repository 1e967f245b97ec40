"""ConGraT: Brannon et al., "ConGraT: Self-Supervised Contrastive Pretraining for Joint Graph and Text Embeddings",
TextGraphs workshop 2024 (arXiv 2305.14321)."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from jepa_lightning.methods.two_tower import EncoderFactory, TwoTower
from jepa_lightning.nn.graph import GATEncoder
from jepa_lightning.nn.text import TextEncoder


class ConGraT(TwoTower):
    """ConGraT (Brannon et al., 2023): a graph attention network over the nodes and a language model over their texts,
    trained with CLIP's loss so that each node's graph embedding picks out its own text in the batch and vice versa.

    Official code: wwbrannon/congrat@029844dcdfbd19315fc38cc8a161886745205e0d (``src/clip_graph/models.py``
    ``GATMod``, ``GATLayer``, ``ProjectHead``, ``ClipGraph.forward``; ``src/clip_graph/losses.py``
    ``square_contrastive_loss``; ``configs/clip-graph/inductive-causal/pubmed/base.yaml`` and
    ``sim-smoothed-exp.yaml``). Matches: the GAT (input dropout, linear embedding times ``sqrt(64)``, 3 residual
    ``GATConv`` blocks of 2 concatenated heads with a 128-wide GELU feed-forward and LayerNorm, dropout 0.3), the
    projection heads (Linear -> GELU -> Linear -> LayerNorm to 768), the text embedding (mean-pooled over the
    non-padding tokens, normalised), dropout 0.3 on the normalised embeddings, the logit scale ``exp(tau)`` with
    ``tau`` learned from 3.5 and clamped at 100 (``max_tau`` ln 100), the symmetric cross-entropy with optional
    mutual-neighbour similarity smoothing of the targets (``similarity_smoothing`` = ``sim_smoothing``, 0.1 with
    "exp" weights in the smoothed configs; ``tests/losses/test_congrat_parity.py``), AdamW at a constant lr 1e-4 with
    eps 1e-4 and no weight decay, gradient clipping at norm 1 (``gradient_clip``, used when the trainer sets none),
    the inductive node split (``GraphDataModule(graph_split="inductive")``: training batches see only the training
    nodes' subgraph).

    Deviations: the text tower is a small transformer trained from scratch on the corpus with a word vocabulary built
    from the training split (``jepa_lightning.nn.TextEncoder``), not the pretrained distilgpt2 / MPNet the paper
    fine-tunes: nothing is downloaded (pass ``pair_encoder`` for another tower). The batches are the datamodule's
    shuffled node batches (any size; the paper uses 36), not the official dataset's de-duplicated batches of texts
    (one text per node here). The loss is computed over the gathered global batch under DDP (the official one per
    device). Under DDP the similarity rows are dense ``(B, N)`` per batch. No mixed precision by default.
    """

    def __init__(
        self,
        encoder: EncoderFactory | None = None,
        pair_encoder: EncoderFactory | None = None,
        embed_dim: int = 768,
        log_scale_init: float = 3.5,
        max_log_scale: float | None = math.log(100.0),
        embedding_dropout: float = 0.3,
        similarity_smoothing: float = 0.0,
        similarity_weights: str = "exp",
        lr: float = 1e-4,
        min_lr: float = 1e-4,
        adam_eps: float = 1e-4,
        gradient_clip: float | None = 1.0,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the remaining settings of :class:`TwoTower` (``supervised_weight``, ``input_spec``, ...)."""
        super().__init__(
            encoder=encoder or partial(GATEncoder, hidden=64, num_layers=3, heads=2, dropout=0.3, feedforward=128),
            pair_encoder=pair_encoder or TextEncoder,
            embed_dim=embed_dim,
            projector="mlp",
            log_scale_init=log_scale_init,
            max_log_scale=max_log_scale,
            embedding_dropout=embedding_dropout,
            similarity_smoothing=similarity_smoothing,
            similarity_weights=similarity_weights,
            lr=lr,
            min_lr=min_lr,
            adam_eps=adam_eps,
            gradient_clip=gradient_clip,
            **kwargs,
        )
