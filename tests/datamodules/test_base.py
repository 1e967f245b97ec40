"""The modality-agnostic base: splits, loaders, views, per-sample seeding and its use by Lightning."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor, nn

from datamodules.base import (
    EpochSeededSampler,
    SampleSource,
    SeededTrainDataset,
    SSLDataModule,
    Transform,
    check_files,
    invalid,
    require_path,
)
from jepa_lightning.inputs import InputSpec
from tests.conftest import fast_trainer


class CountingSource(SampleSource):
    """Sample i is a (1, 2, 2) tensor filled with i; labels alternate 0/1 except the last few (-1)."""

    def __init__(self, size: int) -> None:
        self.labels = torch.arange(size) % 2
        self.labels[-3:] = -1

    def load(self, index: int) -> Tensor:
        return torch.full((1, 2, 2), float(index))


def add_uniform_noise(sample: Tensor) -> Tensor:
    return sample + torch.rand_like(sample)


def add_normal_noise(sample: Tensor) -> Tensor:
    return sample + torch.randn_like(sample)


class ToyDataModule(SSLDataModule):
    """The smallest concrete datamodule: counts how often it indexes, optional test source."""

    def __init__(self, size: int = 50, test_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.test_size = test_size
        self.index_calls = 0

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        self.index_calls += 1
        test = None if self.test_size is None else CountingSource(self.test_size)
        return CountingSource(self.size), test

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(modality="toy", channels=1)

    def train_transform(self) -> Transform:
        return add_uniform_noise

    def eval_transform(self) -> Transform:
        return torch.clone

    def view_transform(self) -> Transform:
        return add_normal_noise


def sample_ids(x: Tensor) -> list[int]:
    """Recover each sample's index from a batch of CountingSource samples (noise is below 1 for uniform)."""
    return x.flatten(1).min(dim=1).values.floor().long().tolist()


def epoch_items(dm: SSLDataModule, epoch: int) -> dict[int, Tensor]:
    """Every training item of one epoch, keyed by sample index."""
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    items = {}
    for batch in loader:
        for sample_id, x in zip(sample_ids(batch["x"]), batch["x"]):
            items[sample_id] = x
    return items


def test_split_is_a_seeded_disjoint_partition() -> None:
    dm = ToyDataModule(size=50, val_fraction=0.2, seed=3)
    train, val = dm.split_indices()
    assert (len(train), len(val)) == (40, 10)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(50))
    assert torch.equal(train, ToyDataModule(size=50, val_fraction=0.2, seed=3).indices("train"))
    assert not torch.equal(val, ToyDataModule(size=50, val_fraction=0.2, seed=4).indices("val"))
    assert torch.equal(dm.indices("all"), torch.arange(50))


def test_data_is_indexed_once() -> None:
    dm = ToyDataModule(batch_size=4)
    dm.setup("fit")
    dm.train_dataloader()
    dm.val_dataloader()
    dm.eval_dataloader("all")
    assert dm.index_calls == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_bad_val_fraction_is_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        ToyDataModule(val_fraction=fraction)


def test_val_fraction_leaving_no_training_samples_is_rejected() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        ToyDataModule(size=1, val_fraction=0.5).split_indices()


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("num_workers", -1), ("num_views", -2), ("predict_split", "everything")],
)
def test_bad_loader_arguments_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ToyDataModule(**{field: value})


@pytest.mark.parametrize(("num_views", "expected"), [(None, 0), (0, 0), (3, 3)])
def test_train_batches_carry_views_only_when_asked(num_views: int | None, expected: int) -> None:
    dm = ToyDataModule(batch_size=8, num_views=num_views)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (8, 1, 2, 2)
    assert batch["x"].dtype == torch.float32
    assert batch["y"].dtype == torch.long
    assert len(batch.get("views", [])) == expected
    for view in batch.get("views", []):
        assert view.shape == batch["x"].shape
        assert not torch.equal(view, batch["x"])
    assert "views" not in next(iter(dm.val_dataloader()))


def test_num_views_set_by_the_model_before_loaders_is_used() -> None:
    dm = ToyDataModule(batch_size=8)
    dm.num_views = 2
    assert len(next(iter(dm.train_dataloader()))["views"]) == 2


def test_train_loader_shuffles_and_drops_the_last_partial_batch() -> None:
    dm = ToyDataModule(size=50, batch_size=16, val_fraction=0.2)
    batches = list(dm.train_dataloader())
    assert [len(batch["y"]) for batch in batches] == [16, 16]
    seen = [i for batch in batches for i in sample_ids(batch["x"])]
    assert seen != sorted(seen)
    assert set(seen) <= set(dm.indices("train").tolist())
    kept = ToyDataModule(size=50, batch_size=16, drop_last=False).train_dataloader()
    assert sum(len(batch["y"]) for batch in kept) == 40


def test_batch_size_larger_than_the_train_split_is_rejected_with_drop_last() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ToyDataModule(size=10, batch_size=9).train_dataloader()


def test_eval_loaders_keep_source_order_and_labels() -> None:
    dm = ToyDataModule(size=20, batch_size=6, predict_split="all")
    for split in ("train", "val", "all"):
        loader = dm.eval_dataloader(split)
        xs = torch.cat([batch["x"] for batch in loader])
        ys = torch.cat([batch["y"] for batch in loader])
        assert sample_ids(xs) == dm.indices(split).tolist()
        assert torch.equal(ys, dm.train_source.labels[dm.indices(split)])
    predicted = torch.cat([batch["x"] for batch in dm.predict_dataloader()])
    assert sample_ids(predicted) == list(range(20))
    assert (torch.cat([batch["y"] for batch in dm.eval_dataloader("all")]) == -1).sum() == 3


def test_test_split_needs_a_test_source() -> None:
    with pytest.raises(ValueError, match="no test set") as error:
        ToyDataModule().test_dataloader()
    # the hint names only the options the datamodule has: ToyDataModule has no test_path
    assert "test_fraction=" in str(error.value) and "test_path" not in str(error.value)
    with pytest.raises(ValueError, match="no test set"):
        ToyDataModule().setup("test")
    dm = ToyDataModule(test_size=7, batch_size=4, predict_split="test")
    assert sum(len(batch["y"]) for batch in dm.test_dataloader()) == 7
    assert sum(len(batch["y"]) for batch in dm.predict_dataloader()) == 7
    with pytest.raises(ValueError, match="split"):
        dm.eval_dataloader("holdout")


def test_augmentation_depends_only_on_seed_epoch_and_index() -> None:
    kwargs = {"size": 40, "batch_size": 4, "seed": 5}
    first = epoch_items(ToyDataModule(**kwargs), epoch=1)
    with_workers = epoch_items(ToyDataModule(**kwargs, num_workers=2), epoch=1)
    resumed = epoch_items(ToyDataModule(**kwargs), epoch=1)
    other_epoch = epoch_items(ToyDataModule(**kwargs), epoch=2)
    other_seed = epoch_items(ToyDataModule(**{**kwargs, "seed": 6}), epoch=1)
    assert first.keys() == with_workers.keys() == resumed.keys()
    for index, x in first.items():
        assert torch.equal(x, with_workers[index])
        assert torch.equal(x, resumed[index])
        assert not torch.equal(x, other_epoch[index])
        if index in other_seed:
            assert not torch.equal(x, other_seed[index])


def test_seeding_in_the_main_process_leaves_the_global_rng_alone() -> None:
    dataset = SeededTrainDataset(CountingSource(4), torch.arange(4), add_uniform_noise, add_normal_noise, 2, 0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    dataset[(1, 0)]
    assert torch.equal(torch.rand(3), expected)


def test_sampler_yields_index_epoch_pairs_and_shards_across_ranks() -> None:
    dataset = list(range(10))
    shards = []
    for rank in range(2):
        sampler = EpochSeededSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(4)
        keys = list(sampler)
        assert {epoch for _, epoch in keys} == {4}
        shards.append({index for index, _ in keys})
    assert shards[0].isdisjoint(shards[1])
    assert shards[0] | shards[1] == set(range(10))


def test_train_loader_uses_the_trainers_world_size_and_rank() -> None:
    dm = ToyDataModule(size=50, batch_size=4)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)
    sampler = dm.train_dataloader().sampler
    assert isinstance(sampler, EpochSeededSampler)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (2, 1, 20)


class RecordingModule(L.LightningModule):
    """Records the training inputs it sees, epoch by epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.seen: dict[int, list[Tensor]] = {}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.seen.setdefault(self.current_epoch, []).append(batch["x"].clone())
        return self.layer(batch["x"].flatten(1)).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_sets_the_sampler_epoch(tmp_path) -> None:
    dm = ToyDataModule(size=20, batch_size=4, val_fraction=0.0)
    model = RecordingModule()
    trainer = fast_trainer(tmp_path, max_epochs=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    for epoch in (0, 1):
        loader = ToyDataModule(size=20, batch_size=4, val_fraction=0.0).train_dataloader()
        loader.sampler.set_epoch(epoch)
        expected = [batch["x"] for batch in loader]
        assert all(torch.equal(a, b) for a, b in zip(model.seen[epoch], expected, strict=True))
    assert not torch.equal(model.seen[0][0], model.seen[1][0])


def test_error_helpers_name_the_field_and_the_expectation(tmp_path: Any) -> None:
    error = invalid("channels", "3", "1")
    assert str(error) == "channels: expected 3, got 1"
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        require_path(tmp_path / "missing.png", "path")
    assert require_path(tmp_path, "path") == tmp_path


def test_test_fraction_holds_out_a_test_split_without_moving_the_val_split() -> None:
    plain = ToyDataModule(size=50, val_fraction=0.2, batch_size=4)
    held = ToyDataModule(size=50, val_fraction=0.2, test_fraction=0.1, batch_size=4)
    held.setup("test")
    train, val, test = (set(held.indices(split).tolist()) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (35, 10, 5)
    assert train | val | test == set(range(50)) and not (train & test or val & test or train & val)
    assert torch.equal(held.indices("val"), plain.indices("val"))
    scored = torch.cat([batch["x"] for batch in held.test_dataloader()])
    assert sample_ids(scored) == held.indices("test").tolist()


@pytest.mark.parametrize(("val_fraction", "test_fraction"), [(0.2, -0.1), (0.2, 1.0), (0.5, 0.5)])
def test_bad_test_fraction_is_rejected(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        ToyDataModule(val_fraction=val_fraction, test_fraction=test_fraction)


def test_test_fraction_with_a_test_set_of_its_own_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"test_fraction.*has a test set of its own"):
        ToyDataModule(test_size=5, test_fraction=0.1).setup("fit")


def test_drop_last_warns_when_it_drops_a_large_share() -> None:
    with pytest.warns(UserWarning, match=r"leaves 8 of 40 training samples.*20%"):
        ToyDataModule(size=50, batch_size=16).train_dataloader()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ToyDataModule(size=50, batch_size=8).train_dataloader()  # 40 = 5 x 8: nothing dropped
        ToyDataModule(size=50, batch_size=16, drop_last=False).train_dataloader()


class ValidatingModule(RecordingModule):
    """A module with a validation step, so Lightning would run validation if there were any."""

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        raise AssertionError("no validation batch expected with val_fraction=0")


def test_no_validation_split_fits_without_an_empty_loader(tmp_path) -> None:
    dm = ToyDataModule(size=20, batch_size=4, val_fraction=0.0)
    trainer = fast_trainer(tmp_path, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        trainer.fit(ValidatingModule(), datamodule=dm)
    assert trainer.global_step == 5


def size_of(path: Path) -> int:
    """A file's size; a ValueError naming it when it is empty (a stand-in for a decoding check)."""
    size = path.stat().st_size
    if size == 0:
        raise invalid(path, "a non-empty file", "0 bytes")
    return size


def sized_files(folder: Path, sizes: list[int]) -> list[Path]:
    files = [folder / f"f{number}.bin" for number in range(len(sizes))]
    for file, size in zip(files, sizes):
        file.write_bytes(b"x" * size)
    return files


@pytest.mark.parametrize("workers", [1, 3])
def test_check_files_yields_good_files_in_order(tmp_path: Path, workers: int) -> None:
    files = sized_files(tmp_path, [3, 1, 4, 1, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(check_files(files, size_of, "error", "path", workers=workers)) == list(enumerate([3, 1, 4, 1, 5]))


def test_check_files_raises_at_the_first_bad_file_or_skips_with_one_warning(tmp_path: Path) -> None:
    files = sized_files(tmp_path, [2, 0, 3, 0])
    with pytest.raises(ValueError, match=r"f1\.bin: expected a non-empty file, got 0 bytes \(on_bad_file='skip'"):
        list(check_files(files, size_of, "error", "path", workers=2))
    with pytest.warns(UserWarning, match=r"left out 2 of 4 files of path") as caught:
        assert list(check_files(files, size_of, "skip", "path", workers=2)) == [(0, 2), (2, 3)]
    assert len(caught) == 1 and "f1.bin" in str(caught[0].message) and "f3.bin" in str(caught[0].message)


def test_check_files_never_drops_a_class_or_everything(tmp_path: Path) -> None:
    files = sized_files(tmp_path, [2, 0, 0, 3])
    with (
        pytest.warns(UserWarning, match="left out 2 of 4"),
        pytest.raises(ValueError, match=r"path: class 'b': expected at least one usable"),
    ):
        list(check_files(files, size_of, "skip", "path", labels=[0, 1, 1, 2], class_names=["a", "b", "c"]))
    with (
        pytest.warns(UserWarning, match="left out 2 of 2"),
        pytest.raises(ValueError, match=r"test_path: expected at least one usable file"),
    ):
        list(check_files(files[1:3], size_of, "skip", "test_path"))
    with pytest.raises(ValueError, match="on_bad_file: expected one of"):
        list(check_files(files, size_of, "ignore", "path"))


def batches(loader: Any) -> list[Tensor]:
    return [batch["x"] for batch in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_loader_restored_mid_epoch_continues_with_the_next_batch(num_workers) -> None:
    loader = ToyDataModule(size=40, batch_size=4, val_fraction=0.0, num_workers=num_workers).train_dataloader()
    loader.sampler.set_epoch(3)
    epoch = batches(loader)
    iterator = iter(loader)
    next(iterator), next(iterator)
    assert loader.state_dict() == {"epoch": 3, "batches": 2}

    dm = ToyDataModule(size=40, batch_size=4, val_fraction=0.0, num_workers=num_workers)
    dm.load_state_dict({"train_loader": loader.state_dict()})  # before the loader exists, as Lightning does
    resumed = dm.train_dataloader()
    resumed.sampler.set_epoch(3)
    rest = batches(resumed)
    assert len(rest) == len(epoch) - 2
    assert all(torch.equal(a, b) for a, b in zip(rest, epoch[2:], strict=True))
    assert resumed.state_dict() == {"epoch": 3, "batches": len(epoch)}
    assert dm.state_dict() == {"train_loader": resumed.state_dict()}
    assert len(batches(resumed)) == len(epoch)  # the next pass is whole again


def test_a_state_from_another_epoch_skips_nothing() -> None:
    loader = ToyDataModule(size=40, batch_size=4, val_fraction=0.0).train_dataloader()
    loader.load_state_dict({"epoch": 2, "batches": 10})  # saved at the end of epoch 2
    loader.sampler.set_epoch(3)
    assert len(batches(loader)) == 10
