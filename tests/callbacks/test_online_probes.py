from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from jepa_lightning.callbacks import (
    CollapseMonitor,
    OnlineKNNProbe,
    OnlineLinearProbe,
    RankMeMonitor,
    SpectrumPlot,
    embed_batch,
    knn_predict,
)
from jepa_lightning.callbacks.linear_probe import linear_probe_accuracy
from jepa_lightning.callbacks.online_probes import eval_mode, training_split_embeddings
from tests.conftest import fast_trainer

DIM, CLASSES = 8, 3


class Blobs(L.LightningDataModule):
    """Three well-separated Gaussian blobs in 8-D; train rows marked unlabeled (y = -1) get garbage features."""

    def __init__(self, n: int = 240, unlabeled: float = 0.25, labels: bool = True, num_classes: int | None = CLASSES):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, CLASSES, (n,), generator=g)
        x = torch.randn(n, DIM, generator=g) * 0.3 + F.one_hot(y, DIM) * 3.0
        hidden = (torch.rand(n, generator=g) < unlabeled) & (torch.arange(n) < n * 2 // 3)
        x[hidden] = torch.randn(int(hidden.sum()), DIM, generator=g) * 3
        y[hidden] = -1
        if not labels:
            y[:] = -1
        self.x, self.y, self.n_train = x, y, n * 2 // 3
        self.input_spec = SimpleNamespace(num_classes=num_classes)

    def split(self, split: str) -> slice:
        return slice(None, self.n_train) if split == "train" else slice(self.n_train, None)

    def eval_dataloader(self, split: str) -> DataLoader:
        rows = self.split(split)
        items = [{"x": x, "y": y} for x, y in zip(self.x[rows], self.y[rows])]
        return DataLoader(items, batch_size=32, shuffle=False)

    def train_dataloader(self) -> DataLoader:
        items = [{"x": x, "y": y} for x, y in zip(self.x[: self.n_train], self.y[: self.n_train])]
        return DataLoader(items, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")


class Stub(L.LightningModule):
    """Affine encoder + BatchNorm trained to reconstruct its input; ``embed`` is the encoder (or a constant)."""

    def __init__(self, collapsed: bool = False, prediction_std: float | None = None, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.encoder = nn.Sequential(nn.Linear(DIM, DIM), nn.BatchNorm1d(DIM))
        self.collapsed = collapsed
        self.prediction_std = prediction_std
        self.embed_calls = 0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.embed_calls += 1
        z = self.encoder(x)
        return torch.ones_like(z) if self.collapsed else z

    def training_step(self, batch, batch_idx):
        if self.prediction_std is not None:
            self.log("train/prediction_std", self.prediction_std, on_step=True)
        return (self.encoder(batch["x"]) - batch["x"]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(model: L.LightningModule, data: L.LightningDataModule, callbacks: list, tmp_path, **kwargs) -> L.Trainer:
    trainer = fast_trainer(tmp_path, callbacks=callbacks, **{"max_epochs": 3, **kwargs})
    trainer.fit(model, datamodule=data)
    return trainer


def test_knn_predict_matches_a_brute_force_reference():
    g = torch.Generator().manual_seed(0)
    bank, labels, query = torch.randn(50, 6, generator=g), torch.randint(0, 4, (50,), generator=g), torch.randn(23, 6)
    k, temperature = 7, 0.1
    expected = []
    for q in query:
        similarity = torch.stack([F.cosine_similarity(q, b, dim=0) for b in bank])
        votes = torch.zeros(4)
        for i in similarity.argsort(descending=True)[:k]:
            votes[labels[i]] += torch.exp(similarity[i] / temperature)
        expected.append(votes.argmax())
    for chunk_size in (1, 5, 1024):
        predicted = knn_predict(query, bank, labels, 4, k=k, temperature=temperature, chunk_size=chunk_size)
        torch.testing.assert_close(predicted, torch.stack(expected))
    assert knn_predict(query, bank[:3], labels[:3], 4, k=20).shape == (23,)  # k larger than the bank


def test_eval_mode_restores_each_submodule_mode_and_embeddings_are_detached():
    model = Stub()
    model.encoder[1].eval()  # e.g. a frozen teacher kept in eval mode
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model.encoder[0].training and not model.encoder[1].training
    embedded = embed_batch(model, torch.randn(4, DIM))
    assert not embedded.requires_grad and model.training and model.embed_calls == 1


class StepStub(Stub):
    """Returns its validation embeddings from the step, as every method of the package does."""

    def validation_step(self, batch, batch_idx):
        return {"embedding": self.embed(batch["x"])}


def test_validation_diagnostics_read_the_embeddings_the_step_returns(tmp_path):
    data = Blobs()
    diagnostics = [OnlineLinearProbe(), RankMeMonitor(), SpectrumPlot(), CollapseMonitor()]
    val_batches = len(data.val_dataloader())
    returning = StepStub()
    fit(returning, data, diagnostics, tmp_path, max_epochs=1, num_sanity_val_steps=0, limit_train_batches=1)
    # the linear probe's pass over the training split, then the step's own: the callbacks computed nothing more
    assert returning.embed_calls == len(data.eval_dataloader("train")) + val_batches
    silent = Stub()  # a LightningModule whose validation step returns nothing: each callback embeds for itself
    fit(
        silent,
        data,
        [RankMeMonitor(), CollapseMonitor()],
        tmp_path,
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_train_batches=1,
    )
    assert silent.embed_calls == 2 * val_batches


def test_probes_learn_separable_data_skip_unlabeled_and_leave_training_untouched(tmp_path):
    data = Blobs()
    model = Stub()
    linear, knn = OnlineLinearProbe(), OnlineKNNProbe(k=5)
    trainer = fit(model, data, [linear, knn], tmp_path)
    metrics = trainer.callback_metrics
    assert metrics["probe/acc"] > 0.95
    assert metrics["probe/knn_acc"] > 0.95
    # the logged numbers are the references computed from the final embeddings
    with torch.no_grad(), eval_mode(model):
        bank, query = model.embed(data.x[: data.n_train]), model.embed(data.x[data.n_train :])
    labelled = data.y[: data.n_train] >= 0
    predicted = knn_predict(query, bank[labelled], data.y[: data.n_train][labelled], CLASSES, k=5)
    assert metrics["probe/knn_acc"].item() == pytest.approx((predicted == data.y[data.n_train :]).float().mean())
    offline = linear_probe_accuracy(
        (bank.numpy(), data.y[: data.n_train].numpy()), (query.numpy(), data.y[data.n_train :].numpy())
    )
    assert metrics["probe/acc"].item() == pytest.approx(offline)  # the online probe agrees with the offline one
    # the same run without probes ends with the same weights and BatchNorm statistics
    reference = Stub()
    fit(reference, data, [], tmp_path)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)


def test_without_labels_the_probes_log_nothing(tmp_path):
    trainer = fit(Stub(), Blobs(labels=False), [OnlineLinearProbe(), OnlineKNNProbe()], tmp_path, max_epochs=1)
    assert not [key for key in trainer.callback_metrics if key.startswith("probe/")]


def test_the_linear_probe_fits_on_a_fixed_subset_of_the_training_split(tmp_path):
    data, model = Blobs(), Stub()
    trainer = fit(model, data, [OnlineLinearProbe(max_train_samples=50, every_n_epochs=2)], tmp_path, max_epochs=3)
    assert trainer.callback_metrics["probe/acc"] > 0.9  # epochs 0 and 2 measured
    first, labels = training_split_embeddings(trainer, model, max_samples=50)
    again, _ = training_split_embeddings(trainer, model, max_samples=50)
    assert first.shape == (50, DIM) and torch.equal(first, again)
    assert len(set(labels.tolist())) > 1  # a random subset, not the first 50 rows of one class
    with pytest.raises(ValueError, match="max_train_samples"):
        OnlineLinearProbe(max_train_samples=0)
