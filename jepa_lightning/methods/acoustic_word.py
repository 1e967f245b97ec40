"""Acoustic-phonetic word embeddings: Zhu et al., "The taste of IPA: Towards open-vocabulary keyword spotting and
forced alignment in any language", NAACL 2024 (arXiv 2311.08323; CLAP-IPA)."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.distributed import gather, rank, world_size
from jepa_lightning.losses.joint_embedding import sigmoid_loss
from jepa_lightning.methods.two_tower import EncoderFactory, TwoTower
from jepa_lightning.nn.backbones import PooledTokenBackbone
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.text import TextEncoder
from jepa_lightning.tokenizers.audio import LogMelPatchTokenizer

WordLoss = Literal["sigmoid", "clip"]


def speech_tower(
    width: int = 384, depth: int = 4, heads: int = 6, n_mels: int = 80, n_fft: int = 400, frames_per_token: int = 2
) -> EncoderFactory:
    """The default audio tower, Whisper-tiny's shape trained from scratch: an 80-bin log-mel spectrogram (25 ms
    windows, 10 ms hop) cut into tokens of all mel bins x ``frames_per_token`` frames (20 ms, Whisper's stride-2
    frame rate), a pre-norm transformer, mean-pooled."""
    encoder = TransformerEncoder(embed_dim=width, depth=depth, num_heads=heads)
    tokenizer = partial(LogMelPatchTokenizer, n_mels=n_mels, n_fft=n_fft, patch_size=(n_mels, frames_per_token))
    return partial(PooledTokenBackbone, encoder=encoder, tokenizer=tokenizer)


class AcousticWordEmbedding(TwoTower):
    """Acoustic-phonetic word embeddings in the manner of CLAP-IPA (Zhu et al., 2024): a speech tower over each
    spoken word's waveform and a phoneme tower over its phoneme string (IPA symbols), projected into one space where
    a word's audio and its phonemes match, trained with SigLIP's pairwise sigmoid loss and hard negatives. The data
    is :class:`~datamodules.spoken_words.SpokenWordDataModule` (spoken words with their phoneme strings; its espeak-ng
    source renders them offline); ``embed`` is the speech tower's pooled output, :meth:`embed_pair` the phoneme
    tower's, and cross-modal retrieval (:class:`~jepa_lightning.callbacks.CrossModalRetrievalReport`) scores
    audio -> phoneme string matching on held-out voices.

    Official code: lingjzhu/clap-ipa@a6786fa63532a130ede92100438078ce34299412 (``clap/losses.py``
    ``ContrastiveSigmoid``, ``clap/experiment.py`` ``CLAPExp.training_step``, ``clap/data.py``
    ``DataCollatorWithHardNegatives`` / ``generate_hard_negative`` / ``augment``, ``clap/encoders.py``,
    ``configs/clap_ipa/tiny.yaml``). Matches: the loss ``-sum log sigmoid(label * (t * cos + b)) / n`` over every
    (speech, phoneme) pair of the batch, ``t = exp(t')`` with ``t' = 2.659`` (ln 1/0.07) and ``b = -10``, both fixed
    (``learnable_scale: false``); hard negatives on (``hard_negatives: true``): each word's phoneme string edited
    (replace, insert or delete; ``negative_prob`` 0 for words: one edit) and scored as a negative against every
    speech item (``only_negatives=True``), the two terms averaged; linear projections to 384 of the mean-pooled
    token states (the official projects each token, then mean-pools: the same map); AdamW lr 1e-4, weight decay
    0.01, cosine to 0, gradient clipping at norm 10.

    ``loss="clip"`` trains with the library's CLIP loss instead (learned, bounded logit scale; no extra negative term:
    ``batching="nearest"`` of the datamodule gives in-batch hard negatives with either loss).

    Deviations: both towers are trained from scratch on the corpus (official: Whisper's pretrained encoder and a
    pretrained PhoneBERT with a BPE IPA tokenizer; nothing is downloaded here): the default speech tower is
    :func:`speech_tower` (Whisper-tiny's width, depth and 20 ms frames over our log-mel front end), the phoneme tower
    a 4-layer transformer over the symbols of :class:`~datamodules.spoken_words.PhonemeTokenizer`. Items whose
    phoneme strings are identical count as positives of each other (``same_string_positives``; officially only the
    diagonal: with a few voices per word, several renditions of one word share a batch). Two fixes of
    ``generate_hard_negative``: the edited position is drawn from the string's positions (officially
    ``round(u * n)`` may be ``n``, past the end, and the "negative" is the positive itself), and a replacement is
    another symbol (officially it may draw the same one). Under DDP the phoneme embeddings are gathered, so every
    rank scores against the global batch (officially per device). The warmup is a fraction of the run
    (``warmup_fraction``; officially 500 steps of 100,000), and biases and norms are not weight-decayed (library
    convention). The official zero-shot keyword spotting (``clap/zeroshot.py``) is
    :class:`~jepa_lightning.callbacks.CrossModalRetrievalReport`'s ``retrieval_top1`` without its silence threshold;
    its data sets (Speech Commands, the UCLA phonetic corpus) are not downloaded.
    """

    def __init__(
        self,
        encoder: EncoderFactory | None = None,
        pair_encoder: EncoderFactory | None = None,
        embed_dim: int = 384,
        loss: WordLoss = "sigmoid",
        log_scale_init: float = math.log(1 / 0.07),
        bias_init: float = -10.0,
        learnable_scale: bool = False,
        hard_negatives: bool = True,
        negative_fraction: float = 0.0,
        same_string_positives: bool = True,
        lr: float = 1e-4,
        min_lr: float = 0.0,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.005,
        gradient_clip: float | None = 10.0,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the remaining settings of :class:`TwoTower` (``max_log_scale``, ``input_spec``, ...)."""
        if loss not in get_args(WordLoss):
            raise ValueError(f"loss must be one of {get_args(WordLoss)}, got {loss!r}")
        if hard_negatives and loss != "sigmoid":
            raise ValueError(
                "hard_negatives scores perturbed phoneme strings with the sigmoid loss: set loss='sigmoid'"
            )
        super().__init__(
            encoder=encoder or speech_tower(),
            pair_encoder=pair_encoder
            or partial(TextEncoder, width=384, depth=4, heads=6, max_length=128, normalize=False),
            embed_dim=embed_dim,
            projector="linear",
            log_scale_init=log_scale_init,
            lr=lr,
            min_lr=min_lr,
            weight_decay=weight_decay,
            warmup_fraction=warmup_fraction,
            gradient_clip=gradient_clip,
            **kwargs,
        )
        self.loss = loss
        self.bias = nn.Parameter(torch.tensor(float(bias_init)), requires_grad=learnable_scale)
        self.log_scale.requires_grad_(learnable_scale)
        self.hard_negatives = hard_negatives
        self.negative_fraction = negative_fraction
        self.same_string_positives = same_string_positives

    def setup(self, stage: str) -> None:
        """Ask the datamodule for a perturbed phoneme string per training item when hard negatives are on."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if not self.hard_negatives or datamodule is None:
            return
        if not hasattr(datamodule, "hard_negatives"):
            raise ValueError(
                f"hard_negatives needs a datamodule that perturbs phoneme strings "
                f"(datamodules.SpokenWordDataModule), got {type(datamodule).__name__}; or set hard_negatives=False"
            )
        datamodule.hard_negatives = True
        datamodule.negative_fraction = self.negative_fraction

    def positives(self, batch: dict[str, Any], n: int, device: torch.device) -> Tensor | None:
        """Which (local item, gathered item) pairs are positives: the item's own partner and, with
        ``same_string_positives``, every item with the same phoneme string (``batch["y"]``, the string ids)."""
        if not self.same_string_positives or "y" not in batch:
            return None
        labels = batch["y"]
        own = torch.zeros(n, n * world_size(), dtype=torch.bool, device=device)
        own[torch.arange(n, device=device), rank() * n + torch.arange(n, device=device)] = True
        return own | ((labels[:, None] == gather(labels)[None, :]) & (labels[:, None] >= 0))

    def objective(self, batch: dict[str, Any], z1: Tensor, z2: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The sigmoid loss of the speech projections against the phoneme projections, averaged with the term of
        their hard negatives when the batch has them (CLAP-IPA); or, with ``loss="clip"``, the CLIP objective."""
        if self.loss == "clip":
            return super().objective(batch, z1, z2)
        scale = self.logit_scale
        loss = sigmoid_loss(z1, z2, scale, self.bias, self.positives(batch, z1.shape[0], z1.device), normalize=False)
        parts = {"matching": loss.detach(), "logit_scale": scale.detach()}
        if self.hard_negatives and "negative" in batch:
            negatives = self.dropout(F.normalize(self.pair_projector(self.pair_encoder(batch["negative"])), dim=1))
            none = torch.zeros(z1.shape[0], z1.shape[0] * world_size(), dtype=torch.bool, device=z1.device)
            negative = sigmoid_loss(z1, negatives, scale, self.bias, none, normalize=False)
            parts["hard_negatives"] = negative.detach()
            loss = (loss + negative) / 2
        return loss, parts
