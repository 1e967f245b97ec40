"""``benchmarks/quality_panel.py``'s audio sets and variants: espeak-ng word sets are written once as WAV class
folders split by voice, and ``--override`` appends a variant's arguments to a method and names it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import quality_panel


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
