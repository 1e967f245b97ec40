"""What every modality's datamodule shares: splits, seeding, loaders, augmented views and input checks.

A modality subclasses :class:`SSLDataModule` and supplies only what is specific to it: how to index its data
(:meth:`SSLDataModule.index_sources`), what the model must know (:attr:`SSLDataModule.input_spec`) and its
transforms. Everything that decides *which* samples a loader yields, in which order and with which random
augmentation lives here, so every modality is reproducible in the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info
from tqdm.auto import tqdm

from jepa_lightning.inputs import InputSpec

Transform = Callable[[Any], Any]
SPLITS = ("train", "val", "test", "all")
#: ``drop_last=True`` warns when the incomplete last batch holds more than this share of an epoch's samples.
DROPPED_SHARE_WARNING = 0.1
#: What indexing does with a file that fails its check: raise naming it, or leave it out with one warning.
BadFilePolicy = Literal["error", "skip"]
BAD_FILE_POLICIES: tuple[str, ...] = get_args(BadFilePolicy)
#: The environment variable that moves the cache of generated or unpacked data (see :func:`cache_root`).
CACHE_ENV = "JEPA_LIGHTNING_CACHE"
#: Threads that check files while indexing (decoders such as PIL, libsndfile and NumPy release the GIL).
CHECK_WORKERS = min(8, os.cpu_count() or 1)
Checked = TypeVar("Checked")
#: What :func:`check_files` checks: a file, or any other handle on a sample (e.g. an index into an in-memory data set).
Item = TypeVar("Item")


def invalid(where: str | Path, expected: str, got: str) -> ValueError:
    """Build the error for bad input: it names the file or field, what was expected and what was found.

    Returned rather than raised so call sites read ``raise invalid(...)`` and type checkers see the raise.
    """
    return ValueError(f"{where}: expected {expected}, got {got}")


def cache_root() -> Path:
    """Where data made once is kept (unpacked bundles, simulated rollouts): ``$JEPA_LIGHTNING_CACHE`` or
    ``~/.cache/jepa-lightning``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "jepa-lightning").expanduser()


def require_path(path: str | Path, field: str) -> Path:
    """``path`` as a :class:`Path`; :class:`FileNotFoundError` naming ``field`` when nothing is there."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"{field}={str(path)!r}: expected an existing file or folder, found nothing there")
    return resolved


def require_bad_file_policy(on_bad_file: str) -> None:
    """Raise naming ``on_bad_file`` unless it is one of :data:`BAD_FILE_POLICIES`."""
    if on_bad_file not in BAD_FILE_POLICIES:
        raise invalid("on_bad_file", f"one of {BAD_FILE_POLICIES}", repr(on_bad_file))


def _attempt(check: Callable[[Item], Checked], path: Item) -> tuple[Checked | None, ValueError | None]:
    """``check(path)`` and no error, or None and the ValueError that says why ``path`` is bad."""
    try:
        return check(path), None
    except ValueError as error:
        return None, error


def check_files(
    files: Sequence[Item],
    check: Callable[[Item], Checked],
    on_bad_file: str,
    field: str,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    workers: int = 1,
) -> Iterator[tuple[int, Checked]]:
    """Run ``check`` on every file, with a progress bar, and yield ``(position, result)`` of the good ones in order.

    Indexing calls this so that a bad file fails before the first training step rather than in the middle of an
    epoch. A file is bad when ``check`` raises a ValueError (naming the file and what was expected, see
    :func:`invalid`). ``on_bad_file="error"`` raises at the first bad file in file order; ``"skip"`` leaves bad files
    out and, once every file is checked, warns once listing each with its reason. Skipping every file of ``field``,
    or every file of a class (``labels`` index ``class_names``), is an error: a class is never dropped silently (that
    would renumber the labels). ``workers > 1`` checks files in that many threads (for checks that decode); results
    still come in file order, so callers may keep state across them.
    """
    require_bad_file_policy(on_bad_file)
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    attempt = partial(_attempt, check)
    outcomes = pool.map(attempt, files) if pool is not None else map(attempt, files)
    skipped: list[tuple[int, str]] = []
    try:
        for position, (result, error) in enumerate(tqdm(outcomes, total=len(files), desc=f"Checking {field}")):
            if error is None:
                yield position, result  # type: ignore[misc]  # a result whenever there is no error
            elif on_bad_file == "error":
                raise ValueError(f"{error} (on_bad_file='skip' leaves bad files out and lists them)") from error
            else:
                skipped.append((position, str(error)))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not skipped:
        return
    warnings.warn(
        f"on_bad_file='skip': left out {len(skipped)} of {len(files)} files of {field}:\n  "
        + "\n  ".join(reason for _, reason in skipped),
        stacklevel=3,
    )
    if len(skipped) == len(files):
        raise invalid(field, "at least one usable file", f"{len(skipped)} bad file(s), all skipped")
    if labels is not None and class_names is not None:
        lost = Counter(labels[position] for position, _ in skipped)
        totals = Counter(labels)
        for label, count in sorted(lost.items()):
            if label >= 0 and count == totals[label]:
                raise invalid(
                    f"{field}: class {class_names[label]!r}",
                    "at least one usable file (fix its files or remove the class)",
                    f"{count} bad file(s), all skipped",
                )


def index_class_folders(
    folder: Path,
    accept: Callable[[Path], bool],
    what: str,
    training_classes: list[str] | None,
    held_out: bool,
    is_class_dir: Callable[[Path], bool] = Path.is_dir,
    recursive: bool = True,
) -> tuple[list[Path], list[int], list[str] | None]:
    """Files of ``folder``: class sub-folders (sorted names -> labels 0..K-1) or a flat folder (labels -1).

    Returns the files, their labels and the class names (None for a flat folder). ``accept`` says which entries
    count, ``what`` names them in errors. A held-out set (``held_out``) must use the training set's classes.
    ``is_class_dir`` says which sub-folders are classes (videos: not the frame folders, which are samples);
    ``recursive=False`` takes only the entries directly inside each class folder.
    """
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    class_dirs = [entry for entry in entries if is_class_dir(entry)]
    loose = [entry for entry in entries if accept(entry)]
    if class_dirs and loose:
        raise invalid(
            folder,
            f"either class sub-folders or a flat folder of {what}, not both",
            f"{len(class_dirs)} sub-folders and {len(loose)} files at the top level",
        )
    if not class_dirs:
        if not loose:
            raise invalid(folder, f"{what} or class sub-folders", "none")
        return loose, [-1] * len(loose), None
    names = [entry.name for entry in class_dirs]
    known = training_classes if held_out else names
    if known is None:
        raise invalid(folder, "a flat folder, as the training set has no class sub-folders", "sub-folders")
    files: list[Path] = []
    labels: list[int] = []
    for name, class_dir in zip(names, class_dirs):
        if name not in known:
            raise invalid(class_dir, f"a class of the training set {known}", f"unknown class {name!r}")
        inside = class_dir.rglob("*") if recursive else class_dir.iterdir()
        class_files = sorted(entry for entry in inside if accept(entry))
        if not class_files:
            raise invalid(class_dir, what, "none")
        files += class_files
        labels += [known.index(name)] * len(class_files)
    return files, labels, names


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The RNG seed of one training sample: a well-mixed function of (seed, epoch, sample index) only."""
    entropy = [seed % 2**64, epoch, index]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


class SampleSource(Dataset, ABC):
    """The raw samples of one data source in the modality's canonical layout, before any transform.

    ``labels`` is a ``LongTensor (N,)`` with -1 for unlabeled samples; :meth:`load` reads sample ``index``
    (lazily, from disk or memory). Subclasses must be picklable so DataLoader workers can use them.
    """

    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def load(self, index: int) -> Any:
        """Read sample ``index`` in the modality's canonical layout."""

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.load(index), int(self.labels[index])


class MultiViewTransform(ABC):
    """Makes every view of one sample in one call, for views that share a random draw (one crop for all of them) or
    report what was drawn: returns ``{"views": [view, ...], "cond": Tensor}`` (``"cond"``, the batch contract's
    condition, may be left out), merged into the training item. A datamodule's ``view_transform`` may return one."""

    @abstractmethod
    def __call__(self, sample: Any, num_views: int) -> dict[str, Any]:
        """The ``num_views`` views of ``sample`` (and what they depend on)."""


class EvalDataset(Dataset):
    """Deterministic items ``{"x": transform(sample), "y": label}`` of ``source`` at ``indices``."""

    def __init__(self, source: SampleSource, indices: Tensor, transform: Transform) -> None:
        self.source = source
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        sample, label = self.source[int(self.indices[position])]
        return {"x": self.transform(sample), "y": label}


class SeededTrainDataset(EvalDataset):
    """Training items whose augmentation depends only on (seed, epoch, sample index).

    Keys are ``(position, epoch)`` tuples from :class:`EpochSeededSampler`. Before transforming, torch's RNG
    is seeded from (seed, epoch, index into the source), so an item is the same whatever the number of
    workers, the order in which workers run, or whether training was resumed. In the main process
    (``num_workers=0``) this happens inside :func:`torch.random.fork_rng`, so the caller's global RNG stream
    is left untouched.
    """

    def __init__(
        self,
        source: SampleSource,
        indices: Tensor,
        transform: Transform,
        view_transform: Transform | Sequence[Transform],
        num_views: int,
        seed: int,
    ) -> None:
        """``view_transform``: one transform for every view, or one per view (``num_views`` of them, e.g. global
        and local crops)."""
        super().__init__(source, indices, transform)
        if isinstance(view_transform, Sequence) and len(view_transform) != num_views:
            raise invalid("view_transform", f"{num_views} transforms, one per view", f"{len(view_transform)}")
        self.view_transform = view_transform
        self.num_views = num_views
        self.seed = seed

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:  # type: ignore[override]
        position, epoch = key
        index = int(self.indices[position])
        sample, label = self.source[index]
        in_main_process = get_worker_info() is None
        with torch.random.fork_rng(devices=[]) if in_main_process else contextlib.nullcontext():
            # Transforms draw from the CPU generator; seeding only it is ~100x cheaper than torch.manual_seed.
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            item: dict[str, Any] = {"x": self.transform(sample), "y": label}
            if self.num_views > 0 and isinstance(self.view_transform, MultiViewTransform):
                item.update(self.view_transform(sample, self.num_views))
            elif self.num_views > 0:
                transforms = (
                    self.view_transform
                    if isinstance(self.view_transform, Sequence)
                    else [self.view_transform] * self.num_views
                )
                item["views"] = [view(sample) for view in transforms]
        return item


class EpochSeededSampler(DistributedSampler):
    """A :class:`DistributedSampler` that yields ``(position, epoch)`` so the dataset can seed each sample.

    Being a ``DistributedSampler``, Lightning keeps it under DDP instead of replacing it, and calls its
    :meth:`set_epoch` at every epoch start (also after a resume), which both reshuffles the order
    (seeded by ``seed + epoch``) and changes each sample's augmentation.
    """

    #: ``(epoch, position)`` where a run resumed mid-epoch continues; used by the next pass over that epoch only.
    resume_at: tuple[int, int] | None = None

    def starting_position(self) -> int:
        """Where the next pass over the current epoch starts: 0, or the resumed position within it."""
        at = self.resume_at
        return at[1] if at is not None and at[0] == self.epoch else 0

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch, start = self.epoch, self.starting_position()
        self.resume_at = None
        return ((position, epoch) for position in itertools.islice(super().__iter__(), start, None))


class ResumableLoader(DataLoader):
    """The training loader: it counts the batches of the current epoch it has handed out, so that a checkpoint
    written mid-epoch resumes with the next batch instead of replaying the epoch from its start.

    The count is :meth:`state_dict`; :meth:`load_state_dict` makes the next pass over that epoch start after those
    batches. Lightning fetches nothing ahead from a loader with a length, so the count is the number of batches
    trained on. The loader must use an :class:`EpochSeededSampler`.
    """

    sampler: EpochSeededSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, EpochSeededSampler):
            raise TypeError(f"ResumableLoader needs an EpochSeededSampler, got {type(self.sampler).__name__}")
        self.batches_served = 0

    def __iter__(self) -> Iterator[Any]:
        self.batches_served = self.sampler.starting_position() // self.batch_size
        for batch in super().__iter__():
            self.batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: the epoch and the number of its batches handed out so far."""
        return {"epoch": self.sampler.epoch, "batches": self.batches_served}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Start the next pass over epoch ``state_dict["epoch"]`` after its first ``state_dict["batches"]``."""
        self.sampler.resume_at = (state_dict["epoch"], state_dict["batches"] * self.batch_size)


class SSLDataModule(LightningDataModule, ABC):
    """Modality-agnostic base: seeded train/val split, loaders, augmented views and per-sample seeding.

    Batches are dicts ``{"x": Tensor, "y": LongTensor (-1 = no label), "views": [Tensor, ...]}`` where
    ``"views"`` is present only in training batches and only when ``num_views > 0``; a view transform that is a
    :class:`MultiViewTransform` may add ``"cond"`` (e.g. the views' augmentation parameters). ``num_views=None`` means
    "the model decides": a method that needs views sets ``datamodule.num_views`` in its ``setup`` hook, before
    loaders exist; if nobody does, no views are made.

    Args:
        batch_size: samples per batch (per process under DDP).
        num_workers: DataLoader worker processes (kept alive across epochs when > 0).
        val_fraction: share of the training source held out for validation, in [0, 1).
        test_fraction: share of the training source held out as the ``test`` split (for data without a test set of
            its own, e.g. one table or one folder), in [0, 1); drawn with the validation split from one seeded
            permutation, so the validation split is the same whatever ``test_fraction`` is.
        seed: seeds the split, the shuffling order and every sample's augmentation.
        num_views: augmented views per training sample; ``None`` lets the model decide, 0 makes none.
        drop_last: drop the last incomplete training batch (validation and evaluation keep every sample).
        predict_split: which split :meth:`predict_dataloader` covers: "all" (the whole training source in
            its original order), "train", "val" or "test".
    """

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        seed: int = 0,
        num_views: int | None = None,
        drop_last: bool = True,
        predict_split: str = "all",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise invalid("batch_size", "an integer >= 1", repr(batch_size))
        if num_workers < 0:
            raise invalid("num_workers", "an integer >= 0", repr(num_workers))
        if not 0.0 <= val_fraction < 1.0:
            raise invalid("val_fraction", "a fraction in [0, 1)", repr(val_fraction))
        if not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
            raise invalid(
                "test_fraction",
                f"a fraction in [0, 1) that leaves training data with val_fraction={val_fraction}",
                repr(test_fraction),
            )
        if num_views is not None and num_views < 0:
            raise invalid("num_views", "None or an integer >= 0", repr(num_views))
        if predict_split not in SPLITS:
            raise invalid("predict_split", f"one of {SPLITS}", repr(predict_split))
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_views = num_views
        self.drop_last = drop_last
        self.predict_split = predict_split
        self._sources: tuple[SampleSource, SampleSource | None] | None = None
        self._split: tuple[Tensor, Tensor, Tensor] | None = None
        self._train_loader: ResumableLoader | None = None
        self._train_loader_state: dict[str, int] | None = None

    # ----------------------------------------------------------------- what each modality provides

    @abstractmethod
    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Index the data once: return the training source (split into train/val) and the test source or None.

        Called lazily on first need and cached, so it may be slow (show a progress bar) but runs once.
        """

    @property
    @abstractmethod
    def input_spec(self) -> InputSpec:
        """What the model must know about the data; must work before :meth:`setup` (the CLI reads it)."""

    @abstractmethod
    def train_transform(self) -> Transform:
        """Random transform of a raw sample into the training ``x``."""

    @abstractmethod
    def eval_transform(self) -> Transform:
        """Deterministic transform of a raw sample for validation, test, prediction and probes."""

    @abstractmethod
    def view_transform(self) -> Transform:
        """Random transform of a raw sample into one augmented view (joint-embedding methods)."""

    def view_transforms(self, num_views: int) -> Transform | MultiViewTransform | list[Transform]:
        """What makes the ``num_views`` views: by default :meth:`view_transform`, applied to every view (or a
        :class:`MultiViewTransform` making them all); a list holds one transform per view (override for views that
        differ, e.g. multi-crop)."""
        return self.view_transform()

    # ----------------------------------------------------------------- data, indexed once

    @property
    def train_source(self) -> SampleSource:
        """The source that the train/val split is drawn from (indexed on first access)."""
        return self._indexed_sources()[0]

    @property
    def test_source(self) -> SampleSource | None:
        """The held-out test source, or None when none is configured."""
        return self._indexed_sources()[1]

    def _indexed_sources(self) -> tuple[SampleSource, SampleSource | None]:
        if self._sources is None:
            self._sources = self.index_sources()
        return self._sources

    def setup(self, stage: str) -> None:
        """Index the data early so bad input (or a missing test set) fails before the loop starts; without a
        validation split (``val_fraction=0``) the trainer's validation is switched off."""
        self._indexed_sources()
        if stage == "test" or self.test_fraction:
            self._test_split_source()
        if stage == "fit" and not self.val_fraction and self.trainer is not None:
            # no validation split: validation is off, rather than an empty loader Lightning warns about
            self.trainer.limit_val_batches = 0
            self.trainer.num_sanity_val_steps = 0

    def split_indices(self) -> tuple[Tensor, Tensor]:
        """Sorted indices of the train and val splits: a permutation of the source seeded by ``seed``."""
        train, val, _ = self._fraction_splits()
        return train, val

    def _fraction_splits(self) -> tuple[Tensor, Tensor, Tensor]:
        """Train, val and held-out test indices of the training source: the first ``val_fraction`` of a seeded
        permutation is val, the next ``test_fraction`` test (at least one sample each when the fraction is > 0)."""
        if self._split is None:
            num_samples = len(self.train_source)
            num_val, num_test = (
                max(1, round(num_samples * fraction)) if fraction > 0 else 0
                for fraction in (self.val_fraction, self.test_fraction)
            )
            if num_samples - num_val - num_test < 1:
                raise invalid(
                    "val_fraction/test_fraction",
                    f"fractions that leave training samples out of {num_samples}",
                    repr((self.val_fraction, self.test_fraction)),
                )
            order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(self.seed))
            val, test, train = order.split([num_val, num_test, num_samples - num_val - num_test])
            self._split = (train.sort().values, val.sort().values, test.sort().values)
        return self._split

    def indices(self, split: str) -> Tensor:
        """Indices into the split's source for "train", "val", "test" or "all"."""
        if split not in SPLITS:
            raise invalid("split", f"one of {SPLITS}", repr(split))
        if split == "test" and not self.test_fraction:
            return torch.arange(len(self._require_test_source()))
        if split == "all":
            return torch.arange(len(self.train_source))
        return dict(zip(("train", "val", "test"), self._fraction_splits(), strict=True))[split]

    def _require_test_source(self) -> SampleSource:
        source = self.test_source
        if source is None:
            own = "configure one with test_path=... or " if hasattr(self, "test_path") else ""
            raise ValueError(
                f"{type(self).__name__} has no test set: {own}hold part of the training data out with "
                "test_fraction=... to use the 'test' split"
            )
        return source

    def _test_split_source(self) -> SampleSource:
        """Where the ``test`` split's indices point: the held-out part of the training source, or the test set."""
        if not self.test_fraction:
            return self._require_test_source()
        if self.test_source is not None:
            raise invalid(
                "test_fraction", f"0, as {type(self).__name__} has a test set of its own", repr(self.test_fraction)
            )
        return self.train_source

    # ----------------------------------------------------------------- loaders

    def _loader(self, dataset: Dataset, loader: type[DataLoader] = DataLoader, **kwargs: Any) -> DataLoader:
        return loader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled train split: train transform for ``x``, ``num_views`` views, seeded per sample; resumable
        mid-epoch (:class:`ResumableLoader`)."""
        num_views = self.num_views or 0
        dataset = SeededTrainDataset(
            self.train_source,
            self.indices("train"),
            self.train_transform(),
            self.view_transforms(num_views),
            num_views,
            self.seed,
        )
        attached = self.trainer is not None
        num_replicas = self.trainer.world_size if attached else 1
        rank = self.trainer.global_rank if attached else 0
        per_process = math.ceil(len(dataset) / num_replicas)
        if self.drop_last and per_process < self.batch_size:
            raise invalid(
                "batch_size",
                f"at most {per_process} (training samples per process) when drop_last=True, or drop_last=False",
                repr(self.batch_size),
            )
        dropped = per_process % self.batch_size if self.drop_last else 0
        if dropped > DROPPED_SHARE_WARNING * per_process:
            rank_zero_warn(
                f"{type(self).__name__}: drop_last=True leaves {dropped} of {per_process} training samples per process "
                f"out of every epoch (batch_size={self.batch_size}); a different sample each epoch, but "
                f"{dropped / per_process:.0%} of the data unseen per epoch. Use a batch_size that divides "
                f"{per_process} or drop_last=False."
            )
        sampler = self.train_sampler(dataset, num_replicas, rank)
        loader = self._loader(dataset, loader=ResumableLoader, sampler=sampler, drop_last=self.drop_last)
        assert isinstance(loader, ResumableLoader)
        self._train_loader = loader
        if self._train_loader_state is not None:
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        return loader

    def train_sampler(self, dataset: Dataset, num_replicas: int, rank: int) -> EpochSeededSampler:
        """The training loader's sampler: shuffled by ``seed`` and the epoch, split over the ranks; override for
        another order (it must stay an :class:`EpochSeededSampler`, which the loader needs to resume)."""
        return EpochSeededSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=self.seed)

    def state_dict(self) -> dict[str, Any]:
        """The training loader's place in its epoch, kept in every checkpoint so that a run resumed mid-epoch
        continues with the next batch. (Lightning also restores a stateful loader itself, but only when it builds
        the loader after restoring, which a method reading ``estimated_stepping_batches`` prevents.)"""
        return {} if self._train_loader is None else {"train_loader": self._train_loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training loader where the checkpoint left it (now, or when it is built)."""
        self._train_loader_state = state_dict.get("train_loader")
        if self._train_loader is not None and self._train_loader_state is not None:
            self._train_loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None

    def eval_dataloader(self, split: str) -> DataLoader:
        """Eval transform over "train", "val", "test" or "all": source order, no views, no sample dropped."""
        source = self._test_split_source() if split == "test" else self.train_source
        return self._loader(EvalDataset(source, self.indices(split), self.eval_transform()), shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.predict_split)
