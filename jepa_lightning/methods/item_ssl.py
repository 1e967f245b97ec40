"""Self-supervised item representations from feature masking: Yao et al., "Self-supervised Learning for Large-scale
Item Recommendations", CIKM 2021 (arXiv 2007.12865; no official code was released)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, get_args

import torch.nn.functional as F
from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import clip_loss
from jepa_lightning.masks.features import FeatureMasking
from jepa_lightning.methods.joint_embedding import BackboneFactory, JointEmbedding
from jepa_lightning.nn.backbones import PooledTokenBackbone
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.tokenizers.tabular import FeatureTokenizer


def feature_tower(embed_dim: int = 64, depth: int = 2, num_heads: int = 4) -> BackboneFactory:
    """The default tower: per-feature tokens (:class:`~jepa_lightning.tokenizers.FeatureTokenizer`, whose learned
    "missing" / unknown embeddings stand for hidden features) through a small transformer, mean-pooled."""
    encoder = TransformerEncoder(embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    return partial(PooledTokenBackbone, encoder=encoder, tokenizer=FeatureTokenizer)


class ItemSSL(JointEmbedding):
    """Feature-masking contrastive learning of item (table row) representations (Yao et al., 2021).

    Each row gives two views that hide complementary halves of its features (the tabular datamodule's
    :class:`~datamodules.tabular.ComplementaryFeatureMasking`, which this method switches on): ``masking="correlated"``
    (the paper's CFM, its better variant) hides a random seed feature together with the features most informative
    about it (mutual information over the training split), ``"random"`` (RFM) a uniformly drawn half. Both views go
    through the same tower and projector; the loss is InfoNCE between the two views' L2-normalised projections over
    the global batch (cosine similarity / ``temperature``, the other rows' second views as negatives), gathered under
    DDP by :func:`~jepa_lightning.losses.clip_loss`, whose two-process test covers it.

    Defaults: temperature 0.1; tower :func:`feature_tower` (64 wide, 2 layers); projector 256 -> 128 without
    BatchNorm; AdamW lr 1e-3 (the joint-embedding base's schedule).

    Deviations, for lack of released code and of the paper's production features: the towers are a feature
    transformer, not the paper's MLP over concatenated feature embeddings (any tabular backbone can be passed);
    the loss averages the two directions (each view predicts the other, CLIP's symmetric form), where the paper
    writes it from the first view's side; hidden features take the tokenizer's missing-value / unknown-category
    embeddings, which are shared with genuinely missing values; a seed feature is drawn per row (the paper describes
    the draw without fixing its granularity); numeric features are binned into 10 quantile bins for the mutual
    information (the paper's features are categorical); there is no multi-task retrieval loss and no dropout of
    multi-valued features (plain tables have none).
    """

    def __init__(
        self,
        masking: FeatureMasking = "correlated",
        temperature: float = 0.1,
        backbone: BackboneFactory | None = None,
        projector_dims: Sequence[int] = (256, 128),
        projector_batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the arguments of :class:`JointEmbedding` (``lr``, ``ema_momentum`` ...)."""
        if masking not in get_args(FeatureMasking):
            raise ValueError(f"masking must be one of {get_args(FeatureMasking)}, got {masking!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(
            backbone=backbone or feature_tower(),
            projector_dims=projector_dims,
            projector_batch_norm=projector_batch_norm,
            **kwargs,
        )
        self.masking = masking
        self.temperature = temperature

    def setup(self, stage: str) -> None:
        """Switch the datamodule's views to complementary feature masking."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        if not hasattr(datamodule, "feature_masking"):
            raise ValueError(
                f"ItemSSL masks table features: it needs a datamodule with feature_masking "
                f"(datamodules.tabular.TabularDataModule), got {type(datamodule).__name__}"
            )
        datamodule.feature_masking = self.masking

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        z1, z2 = (F.normalize(z, dim=1) for z in projections[:2])
        return clip_loss(z1, z2, 1 / self.temperature, normalize=False), {}
