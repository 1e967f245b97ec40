"""AcousticWordEmbedding: CLAP-IPA's sigmoid loss and hard-negative term against the official code, its defaults,
cross-modal retrieval scores, and a command-line fit on tiny spoken words written here."""

from __future__ import annotations

import math
import re
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from datamodules.graphs import GraphDataModule
from jepa_lightning.callbacks.retrieval import retrieval_scores
from jepa_lightning.cli import build_cli
from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses import sigmoid_loss
from jepa_lightning.methods import AcousticWordEmbedding
from jepa_lightning.nn import PooledTokenBackbone, TextEncoder, TransformerEncoder
from jepa_lightning.tokenizers import LogMelPatchTokenizer
from tests.conftest import FAST_TRAINER_ARGS, fast_trainer
from tests.datamodules.test_spoken_words import RATE, datamodule, write_corpus

SPEC = InputSpec("audio", channels=1, sample_rate=float(RATE), length=RATE // 4, vocab_size=12)


# official: lingjzhu/clap-ipa@a6786fa63532a130ede92100438078ce34299412 clap/losses.py::ContrastiveSigmoid
def official_contrastive_sigmoid(s_emb, p_emb, t_prime, b, only_negatives=False):
    n = s_emb.size(0)
    n = torch.tensor(n).to(b.device)
    log_sigmoid = nn.LogSigmoid()
    t = torch.exp(t_prime)
    z_s = F.normalize(s_emb, dim=-1)
    z_p = F.normalize(p_emb, dim=-1)
    logits = torch.matmul(z_s, z_p.T) * t + b
    labels = torch.zeros(n, n) - torch.ones(n) if only_negatives else 2 * torch.eye(n) - torch.ones(n)
    return -torch.sum(log_sigmoid(labels * logits)) / n


def tiny_model(**kwargs) -> AcousticWordEmbedding:
    tokenizer = partial(LogMelPatchTokenizer, n_mels=16, n_fft=128, hop_length=40, patch_size=(16, 4))
    defaults = {
        "encoder": partial(
            PooledTokenBackbone, encoder=TransformerEncoder(16, depth=1, num_heads=2), tokenizer=tokenizer
        ),
        "pair_encoder": partial(TextEncoder, width=16, depth=1, heads=2, max_length=16, normalize=False),
        "embed_dim": 8,
        "input_spec": SPEC,
    }
    return AcousticWordEmbedding(**{**defaults, **kwargs})


def test_the_sigmoid_loss_is_the_official_contrastive_sigmoid():
    g = torch.Generator().manual_seed(0)
    s, p = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    t_prime, b = torch.tensor(math.log(1 / 0.07)), torch.tensor(-10.0)
    for only_negatives in (False, True):
        expected = official_contrastive_sigmoid(s, p, t_prime, b, only_negatives)
        positives = torch.zeros(6, 6, dtype=torch.bool) if only_negatives else None
        torch.testing.assert_close(sigmoid_loss(s, p, t_prime.exp(), b, positives), expected)
    with pytest.raises(ValueError, match=r"positives must be \(N, N_global\) = \(6, 6\)"):
        sigmoid_loss(s, p, 1.0, 0.0, torch.zeros(6, 5, dtype=torch.bool))


def test_defaults_are_clap_ipa_tiny():
    model = tiny_model()
    assert model.loss == "sigmoid" and model.hard_negatives and model.negative_fraction == 0.0
    assert model.log_scale.item() == pytest.approx(2.659260036932778) and model.bias.item() == -10.0
    assert not model.log_scale.requires_grad and not model.bias.requires_grad  # learnable_scale: false
    assert isinstance(model.projector.net[0], nn.Linear) and len(model.projector.net) == 1
    assert (model.lr, model.min_lr, model.weight_decay, model.gradient_clip) == (1e-4, 0.0, 0.01, 10.0)
    assert AcousticWordEmbedding(input_spec=SPEC).projector.net[0].out_features == 384
    assert tiny_model(learnable_scale=True).bias.requires_grad
    with pytest.raises(ValueError, match="set loss='sigmoid'"):
        tiny_model(loss="clip")


def batch_of_words(labels: list[int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "x": torch.randn(len(labels), 1, RATE // 4, generator=g),
        "y": torch.tensor(labels),
        "pair": torch.randint(2, 12, (len(labels), 5), generator=g),
        "negative": torch.randint(2, 12, (len(labels), 6), generator=g),
    }


def test_the_objective_averages_the_matching_and_hard_negative_terms_as_clap_ipa_does():
    torch.manual_seed(0)
    model = tiny_model().eval()
    batch = batch_of_words([0, 1, 2, 3, 4])
    z1, z2 = model.project(batch)
    loss, parts = model.objective(batch, z1, z2)
    speech = model.projector(model.encoder(batch["x"]))
    phones = model.pair_projector(model.pair_encoder(batch["pair"]))
    negatives = model.pair_projector(model.pair_encoder(batch["negative"]))
    # official: lingjzhu/clap-ipa@a6786fa63532a130ede92100438078ce34299412 clap/experiment.py::CLAPExp.training_step
    expected = official_contrastive_sigmoid(speech, phones, model.log_scale, model.bias)
    expected = expected + official_contrastive_sigmoid(speech, negatives, model.log_scale, model.bias, True)
    torch.testing.assert_close(loss, expected / 2)
    assert set(parts) == {"matching", "hard_negatives", "logit_scale"}
    no_negatives, _ = tiny_model(hard_negatives=False).eval().objective(batch, z1, z2)
    torch.testing.assert_close(no_negatives, parts["matching"])


def test_items_with_the_same_phoneme_string_are_positives_of_each_other():
    torch.manual_seed(0)
    model = tiny_model(hard_negatives=False).eval()
    batch = batch_of_words([3, 1, 3, 2])
    z1, z2 = model.project(batch)
    loss, _ = model.objective(batch, z1, z2)
    labels = torch.tensor([[1, -1, 1, -1], [-1, 1, -1, -1], [1, -1, 1, -1], [-1, -1, -1, 1]], dtype=torch.float32)
    logits = model.log_scale.exp() * z1 @ z2.T + model.bias
    torch.testing.assert_close(loss, -F.logsigmoid(labels * logits).sum() / 4)
    official, _ = tiny_model(hard_negatives=False, same_string_positives=False).eval().objective(batch, z1, z2)
    assert not torch.isclose(loss, official)


def test_hard_negatives_need_a_datamodule_that_perturbs_phoneme_strings(tmp_path):
    model = tiny_model()
    dm = GraphDataModule(edges=str(tmp_path / "edges.csv"))
    model.trainer = fast_trainer(tmp_path)
    model.trainer.datamodule = dm
    with pytest.raises(ValueError, match=r"datamodules\.SpokenWordDataModule"):
        model.setup("fit")


class Lookup(nn.Module):
    """A stand-in two-tower model: audio -> one-hot of its first sample, phoneme ids -> one-hot of their first id."""

    def __init__(self, shuffle: bool) -> None:
        super().__init__()
        self.shuffle = shuffle
        self.anchor = nn.Parameter(torch.zeros(()))
        self.projector = self.pair_projector = nn.Identity()

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        words = x[:, 0, 0].long()
        return F.one_hot((words + 1) % 4 if self.shuffle else words, 4).float()

    def embed_pair(self, ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot(ids[:, 0] - 2, 4).float()


def test_retrieval_scores_are_one_for_a_perfect_model_and_drop_when_the_matching_is_wrong():
    words = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    batch = {"x": words.float()[:, None, None].expand(8, 1, 4), "y": words, "pair": torch.stack([words + 2] * 3, 1)}
    assert retrieval_scores(Lookup(shuffle=False), [batch]) == {"retrieval_top1": 1.0, "word_ap": 1.0}
    wrong = retrieval_scores(Lookup(shuffle=True), [batch])
    assert wrong["retrieval_top1"] == 0.0 and wrong["word_ap"] == 1.0  # same words still cluster


def test_fit_from_the_command_line_prints_retrieval_on_held_out_voices(tmp_path, capsys):
    train = write_corpus(tmp_path / "train", (0.2, 0.4, 0.6))
    test = write_corpus(tmp_path / "test", (0.7, 0.9))
    args = [
        "fit",
        "--model=jepa_lightning.methods.AcousticWordEmbedding",
        "--model.embed_dim=8",
        "--model.encoder=jepa_lightning.nn.PooledTokenBackbone",
        "--model.encoder.encoder=jepa_lightning.nn.TransformerEncoder",
        "--model.encoder.encoder.embed_dim=16",
        "--model.encoder.encoder.depth=1",
        "--model.encoder.encoder.num_heads=2",
        "--model.encoder.tokenizer=jepa_lightning.tokenizers.LogMelPatchTokenizer",
        "--model.encoder.tokenizer.n_mels=16",
        "--model.encoder.tokenizer.n_fft=128",
        "--model.encoder.tokenizer.patch_size=[16, 4]",
        "--model.pair_encoder=jepa_lightning.nn.TextEncoder",
        "--model.pair_encoder.width=16",
        "--model.pair_encoder.depth=1",
        "--model.pair_encoder.heads=2",
        "--data=datamodules.SpokenWordDataModule",
        f"--data.path={train}",
        f"--data.test_path={test}",
        f"--data.sample_rate={RATE}",
        "--data.clip_seconds=0.25",
        "--data.batch_size=6",
        "--data.batching=nearest",
        "--trainer.max_steps=2",
        "--trainer.callbacks+=jepa_lightning.callbacks.CrossModalRetrievalReport",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--diagnostics=false",
        *FAST_TRAINER_ARGS,
    ]
    build_cli(args)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Cross-modal retrieval"))
    assert re.fullmatch(
        r"Cross-modal retrieval \(test\): retrieval_top1 [01]\.\d{4}, word_ap [01]\.\d{4} at initialisation -> "
        r"retrieval_top1 [01]\.\d{4}, word_ap [01]\.\d{4} trained",
        line,
    ), line


def test_the_datamodule_helper_is_shared(tmp_path):
    dm = datamodule(write_corpus(tmp_path))
    assert dm.input_spec.vocab_size == 12 == SPEC.vocab_size  # the tiny corpus's symbols, as SPEC assumes


class Given(nn.Module):
    """A stand-in model whose first modality carries its embedding and whose phoneme ids index a table."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)
        self.projector = self.pair_projector = nn.Identity()

    @property
    def device(self) -> torch.device:
        return self.table.device

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]

    def embed_pair(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids[:, 0] - 2]


# official: lingjzhu/clap-ipa@a6786fa63532a130ede92100438078ce34299412 clap/zeroshot.py::Google_Command_Eval (scoring)
def official_keyword_accuracy(sembs, pembs, labels, gt):
    sembs = F.normalize(sembs, dim=-1)
    pembs = F.normalize(pembs, dim=-1)
    outs = []
    for s, label in zip(sembs, labels, strict=True):
        scores = torch.matmul(pembs, s)
        sorted_indices = np.argsort(-scores)
        sorted_target_labels = np.array(gt)[sorted_indices]
        if scores[sorted_indices[0]] < 0.10:
            pred_rank = 0 if label == "silence" else 100
        else:
            pred_rank = np.where(sorted_target_labels == label)[0].item()
        outs.append(1 if pred_rank == 0 else 0)
    return np.mean(outs)


def test_retrieval_top1_is_clap_ipas_zero_shot_keyword_accuracy():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(5, 6, generator=g)
    words = torch.randint(0, 5, (40,), generator=g)
    speech = table[words] + 0.8 * torch.randn(40, 6, generator=g)
    batch = {"x": speech[:, None], "y": words, "pair": torch.stack([words + 2, words + 2], 1)}
    ours = retrieval_scores(Given(table), [batch])["retrieval_top1"]
    gt = [f"w{k}" for k in range(5)]
    official = official_keyword_accuracy(speech, table, [gt[w] for w in words], gt)
    scores = F.normalize(speech, dim=1) @ F.normalize(table, dim=1).T
    assert scores.max(1).values.min() >= 0.1  # the official silence threshold never applies here
    assert ours == pytest.approx(0.825)
    assert ours == pytest.approx(official)
