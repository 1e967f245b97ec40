"""Audio datamodule: WAV/FLAC/OGG readers, mono mixdown, resampling, crops, manifests, bad files, seeding."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import datamodules.audio as audio
from datamodules.audio import AudioDataModule, ClipTransform, crop_or_pad, time_shift, zero_band

RATE = 8000


def tone(seconds: float, frequency: float = 440.0, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine of ``seconds`` at ``rate``."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int = RATE, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, data, rate, **options)
    return path


def clips(datamodule: AudioDataModule) -> list[torch.Tensor]:
    """Every processed clip of the training source, whole (before crop / pad)."""
    source = datamodule.train_source
    return [source.load(i) for i in range(len(source))]


FORMATS = {
    "wav": {"subtype": "FLOAT"},
    "flac": {"subtype": "PCM_24"},
    "ogg": {"format": "OGG", "subtype": "VORBIS"},
}


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_each_format_round_trips(tmp_path, extension):
    written = tone(0.5, 300.0)
    path = write(tmp_path / f"a.{extension}", written, **FORMATS[extension])
    datamodule = AudioDataModule(path=str(tmp_path), sample_rate=RATE, clip_seconds=0.5, val_fraction=0)
    (clip,) = clips(datamodule)
    decoded, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE and clip.shape == (1, written.size) and clip.dtype == torch.float32
    assert torch.equal(clip[0], torch.from_numpy(decoded))  # exactly what soundfile decodes
    tolerance = {"wav": 0.0, "flac": 2**-22, "ogg": 0.05}[extension]  # float, 24-bit, lossy Vorbis
    assert np.abs(decoded - written).max() <= tolerance
    assert datamodule.input_spec.sample_rate == RATE and datamodule.input_spec.channels == 1


def test_mono_mixdown_is_the_mean_of_the_channels(tmp_path):
    left, right = tone(0.25, 200.0), tone(0.25, 700.0, amplitude=0.25)
    write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    (clip,) = clips(AudioDataModule(path=str(tmp_path), sample_rate=RATE, clip_seconds=0.25, val_fraction=0))
    torch.testing.assert_close(clip[0], torch.from_numpy((left + right) / 2), rtol=0, atol=1e-7)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    write(tmp_path / "a.wav", tone(1.0, 440.0, rate=44100), rate=44100, subtype="FLOAT")
    (clip,) = clips(AudioDataModule(path=str(tmp_path), sample_rate=16000, clip_seconds=1.0, val_fraction=0))
    assert clip.shape == (1, 16000)  # the same 1 s at the new rate
    spectrum = torch.fft.rfft(clip[0]).abs()
    assert int(spectrum.argmax()) == 440  # 1 Hz bins over 1 s


def test_crop_and_pad_lengths_and_values(tmp_path):
    short, long = tone(0.25, 300.0), tone(1.0, 500.0)
    write(tmp_path / "long.wav", long, subtype="FLOAT")
    write(tmp_path / "short.wav", short, subtype="FLOAT")
    datamodule = AudioDataModule(path=str(tmp_path), sample_rate=RATE, clip_seconds=0.5, val_fraction=0, batch_size=1)
    length = 4000
    evaluated = [item["x"] for item in datamodule.eval_dataloader("all").dataset]
    assert [x.shape for x in evaluated] == [(1, length), (1, length)]
    centre = (long.size - length) // 2
    assert torch.equal(evaluated[0][0], torch.from_numpy(long[centre : centre + length]))  # centre crop
    assert torch.equal(evaluated[1][0, : short.size], torch.from_numpy(short))  # zero padding at the end
    assert not evaluated[1][0, short.size :].any()
    train = datamodule.train_dataloader().dataset
    for epoch in range(3):
        x = train[(0, epoch)]["x"][0].numpy()  # a random crop: a contiguous window of the clip
        starts = [s for s in range(long.size - length + 1) if np.array_equal(long[s : s + length], x)]
        assert len(x) == length and len(starts) == 1


def test_crop_or_pad_and_time_shift_by_hand():
    clip = torch.arange(1.0, 6.0)[None]  # 1 2 3 4 5
    assert torch.equal(crop_or_pad(clip, 3, 1), torch.tensor([[2.0, 3.0, 4.0]]))
    assert torch.equal(crop_or_pad(clip, 7, 0), torch.tensor([[1.0, 2, 3, 4, 5, 0, 0]]))
    assert torch.equal(time_shift(clip, 2), torch.tensor([[0.0, 0, 1, 2, 3]]))
    assert torch.equal(time_shift(clip, -2), torch.tensor([[3.0, 4, 5, 0, 0]]))
    assert torch.equal(time_shift(clip, 0), clip)


def labeled_folder(root: Path, per_class: int = 4, seconds: float = 1.0) -> Path:
    for number, name in enumerate(["cat", "dog"]):
        for k in range(per_class):
            write(root / name / f"{k}.wav", tone(seconds, 200.0 + 100 * number + 10 * k), subtype="FLOAT")
    return root


def test_class_folders_give_labels_and_the_input_spec(tmp_path):
    datamodule = AudioDataModule(path=str(labeled_folder(tmp_path)), sample_rate=RATE, clip_seconds=0.5)
    assert datamodule.class_names == ["cat", "dog"]
    assert datamodule.train_source.labels.tolist() == [0] * 4 + [1] * 4
    spec = datamodule.input_spec
    assert (spec.modality, spec.channels, spec.sample_rate, spec.num_classes) == ("audio", 1, RATE, 2)


def first_batch(datamodule: AudioDataModule) -> dict:
    return next(iter(datamodule.train_dataloader()))


def test_batches_and_views_are_deterministic_per_seed(tmp_path):
    folder = labeled_folder(tmp_path)
    options = {"path": str(folder), "sample_rate": RATE, "clip_seconds": 0.5, "batch_size": 4, "num_views": 2}
    a, b = first_batch(AudioDataModule(**options)), first_batch(AudioDataModule(**options))
    other = first_batch(AudioDataModule(**options, seed=1))
    assert a["x"].shape == (4, 1, 4000) and len(a["views"]) == 2 and a["views"][0].shape == (4, 1, 4000)
    assert torch.equal(a["x"], b["x"]) and all(torch.equal(u, v) for u, v in zip(a["views"], b["views"]))
    assert not torch.equal(a["x"], other["x"])
    assert not torch.equal(a["views"][0], a["views"][1])  # two different augmentations of each sample


def test_views_apply_gain_noise_and_time_mask(tmp_path):
    write(tmp_path / "a.wav", tone(0.5), subtype="FLOAT")
    options = {"path": str(tmp_path), "sample_rate": RATE, "clip_seconds": 0.5, "val_fraction": 0, "frequency_mask": 0}
    plain = AudioDataModule(**options, noise=0, max_shift_seconds=0, time_mask=0, gain_range=(2.0, 2.0))
    view = plain.view_transform()(plain.train_source.load(0))
    torch.testing.assert_close(view[0], 2 * torch.from_numpy(tone(0.5)))  # exactly the gain
    masked = AudioDataModule(**options, noise=0, max_shift_seconds=0, time_mask=0.25, gain_range=(1.0, 1.0))
    view = masked.view_transform()(masked.train_source.load(0))
    assert int((view == 0).sum()) >= 1000  # a run of 25% of 4000 samples silenced (plus the sine's zeros)


def two_tones() -> torch.Tensor:
    """0.5 s at RATE (2 Hz rfft bins) of 500 Hz (bin 250) plus 1500 Hz (bin 750), ``(1, 4000)`` float32."""
    return torch.from_numpy(tone(0.5, 500.0) + tone(0.5, 1500.0))[None]


def test_zero_band_removes_the_tone_inside_the_band_only():
    clip = two_tones()
    kept = zero_band(clip, 700, 100)  # bins 700..799: 1400-1598 Hz
    magnitude = torch.fft.rfft(kept[0].double()).abs()
    assert kept.shape == clip.shape and kept.dtype == torch.float32
    assert magnitude[250] == pytest.approx(0.5 * 4000 / 2, rel=1e-4)  # amplitude * T / 2: the 500 Hz tone stays
    assert magnitude[700:800].max() < 1e-2  # the 1500 Hz tone is gone (float32 round-off only)
    torch.testing.assert_close(kept[0], torch.from_numpy(tone(0.5, 500.0)), rtol=0, atol=1e-5)
    odd = clip[:, :3999]  # irfft back to an odd length
    assert zero_band(odd, 0, 0).shape == odd.shape


def test_view_frequency_mask_draws_a_band_per_seed():
    clip = two_tones()
    transform = ClipTransform(4000, random_crop=False, frequency_mask=0.5)
    torch.manual_seed(3)
    width = round(float(torch.rand(())) * 0.5 * 2001)  # what the transform draws, in its order
    start = int(torch.randint(2001 - width + 1, ()))
    torch.manual_seed(3)
    view = transform(clip)
    torch.testing.assert_close(view, zero_band(clip, start, width), rtol=0, atol=0)
    torch.manual_seed(3)
    assert torch.equal(transform(clip), view)  # deterministic per seed
    assert view.shape == clip.shape and view.dtype == clip.dtype and width > 0
    assert torch.equal(ClipTransform(4000, random_crop=False, frequency_mask=0.0)(clip), clip)  # 0 disables it


def test_manifest_paths_resolve_against_the_csv_folder(tmp_path):
    write(tmp_path / "clips" / "a.wav", tone(0.5), subtype="FLOAT")
    absolute = write(tmp_path / "elsewhere" / "b.flac", tone(0.5, 300.0), subtype="PCM_16")
    manifest = tmp_path / "lists" / "train.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"path,label\n../clips/a.wav,yes\n{absolute},no\n../clips/a.wav,\n")
    datamodule = AudioDataModule(path=str(manifest), sample_rate=RATE, clip_seconds=0.5, val_fraction=0)
    source = datamodule.train_source
    assert source.files == [manifest.parent / "../clips/a.wav", absolute, manifest.parent / "../clips/a.wav"]
    assert datamodule.class_names == ["no", "yes"] and source.labels.tolist() == [1, 0, -1]
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("path\nclips/a.wav\n")
    datamodule = AudioDataModule(path=str(unlabeled), sample_rate=RATE, clip_seconds=0.5, val_fraction=0)
    assert datamodule.class_names is None and datamodule.train_source.labels.tolist() == [-1]


def test_manifest_errors_name_the_manifest(tmp_path):
    write(tmp_path / "a.wav", tone(0.5), subtype="FLOAT")
    no_path = tmp_path / "no_path.csv"
    no_path.write_text("file,label\na.wav,x\n")
    with pytest.raises(ValueError, match=r"no_path\.csv.*'path' column"):
        AudioDataModule(path=str(no_path)).setup("fit")
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("path,label\na.wav,x\n")
    test.write_text("path,label\na.wav,z\n")
    with pytest.raises(ValueError, match=r"test\.csv.*unknown label\(s\) \['z'\]"):
        AudioDataModule(path=str(train), test_path=str(test), sample_rate=RATE, clip_seconds=0.5).setup("fit")
    missing = tmp_path / "missing.csv"
    missing.write_text("path\nnot_there.wav\n")
    with pytest.raises(ValueError, match=r"not_there\.wav: expected an existing audio file"):
        AudioDataModule(path=str(missing), sample_rate=RATE, clip_seconds=0.5).setup("fit")


def bad_folder(root: Path) -> dict[str, str]:
    """Two good files and one of each kind of bad file; returns bad file name -> expected reason."""
    write(root / "good1.wav", tone(0.5), subtype="FLOAT")
    write(root / "good2.ogg", tone(0.5), format="OGG", subtype="VORBIS")
    (root / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    write(root / "silent.flac", np.zeros(4000, dtype=np.float32), subtype="PCM_16")
    write(root / "short.wav", tone(0.05), subtype="FLOAT")
    write(root / "nan.wav", np.full(100, np.nan, dtype=np.float32), subtype="FLOAT")
    whole = write(root / "whole.wav", tone(0.5), subtype="PCM_16").read_bytes()
    (root / "truncated.wav").write_bytes(whole[: len(whole) // 2])  # libsndfile reads it as a shorter clip
    (root / "whole.wav").unlink()
    return {
        "truncated.wav": "as its WAV header declares, got 3978 (truncated)",
        "corrupt.wav": "a readable WAV/FLAC/OGG file",
        "silent.flac": "silence",
        "short.wav": "min_seconds=0.1",
        "nan.wav": "NaN/inf",
    }


def test_bad_files_raise_naming_the_file_by_default(tmp_path):
    reasons = bad_folder(tmp_path)
    for name, reason in reasons.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (tmp_path / name).rename(folder / name)
        datamodule = AudioDataModule(path=str(folder), sample_rate=RATE, clip_seconds=0.5, min_seconds=0.1)
        with pytest.raises(ValueError, match=rf"{re.escape(name)}: expected .*{re.escape(reason)}"):
            datamodule.setup("fit")


def test_skip_mode_leaves_bad_files_out_and_lists_them(tmp_path):
    reasons = bad_folder(tmp_path)
    datamodule = AudioDataModule(
        path=str(tmp_path), sample_rate=RATE, clip_seconds=0.5, min_seconds=0.1, on_bad_file="skip", val_fraction=0
    )
    with pytest.warns(UserWarning, match=r"left out 5 of 7 files") as caught:
        datamodule.setup("fit")
    message = str(caught[0].message)
    assert all(f"{name}: expected" in message and reason in message for name, reason in reasons.items())
    assert [file.name for file in datamodule.train_source.files] == ["good1.wav", "good2.ogg"]


@pytest.mark.parametrize("extension", sorted(FORMATS))
@pytest.mark.parametrize("kept", [0.3, 0.8])
def test_truncated_files_of_every_format_fail_while_indexing(tmp_path, extension, kept):
    whole = write(tmp_path / f"clip.{extension}", tone(1.0), **FORMATS[extension]).read_bytes()
    (tmp_path / f"clip.{extension}").write_bytes(whole[: round(len(whole) * kept)])
    with pytest.raises(ValueError, match=rf"clip\.{extension}: expected"):
        AudioDataModule(path=str(tmp_path), sample_rate=RATE, clip_seconds=0.5).setup("fit")


def test_a_class_left_without_files_is_an_error(tmp_path):
    write(tmp_path / "a" / "good.wav", tone(0.5))
    write(tmp_path / "b" / "silent.wav", np.zeros(100, dtype=np.float32))
    datamodule = AudioDataModule(path=str(tmp_path), on_bad_file="skip", clip_seconds=0.5)
    with pytest.warns(UserWarning, match="silent.wav"), pytest.raises(ValueError, match="path: class 'b': expected"):
        datamodule.setup("fit")


def test_all_files_bad_in_skip_mode_is_an_error(tmp_path):
    write(tmp_path / "silent.wav", np.zeros(100, dtype=np.float32))
    datamodule = AudioDataModule(path=str(tmp_path), on_bad_file="skip", clip_seconds=0.5)
    with pytest.warns(UserWarning, match="silent.wav"), pytest.raises(ValueError, match="at least one usable"):
        datamodule.setup("fit")


def test_missing_default_folder_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "KLETTRES_ROOT", tmp_path / "klettres")
    with pytest.raises(FileNotFoundError, match=r"apt-get install klettres-data.*path="):
        AudioDataModule().setup("fit")


def test_default_folder_layout_labels_languages(tmp_path, monkeypatch):
    """klettres-data's layout: <language>/{alpha,syllab}/*.ogg beside folders without recordings."""
    for language, count in (("de", 2), ("fr", 3)):
        for k in range(count):
            write(tmp_path / language / "alpha" / f"{k}.ogg", tone(0.3), format="OGG", subtype="VORBIS")
    write(tmp_path / "fr" / "syllab" / "ba.ogg", tone(0.3), format="OGG", subtype="VORBIS")
    (tmp_path / "id").mkdir()
    (tmp_path / "id" / "sounds.xml").write_text("<sounds/>")
    (tmp_path / "pics").mkdir()
    (tmp_path / "de.txt").write_text("")
    monkeypatch.setattr(audio, "KLETTRES_ROOT", tmp_path)
    datamodule = AudioDataModule(sample_rate=RATE, clip_seconds=0.3)
    assert datamodule.class_names == ["de", "fr"]
    assert datamodule.train_source.labels.tolist() == [0, 0, 1, 1, 1, 1]


def test_cache_keeps_clips_read_while_indexing(tmp_path):
    path = write(tmp_path / "a.wav", tone(0.5), subtype="FLOAT")
    datamodule = AudioDataModule(path=str(tmp_path), sample_rate=RATE, clip_seconds=0.5, val_fraction=0, cache=True)
    source = datamodule.train_source
    path.unlink()  # served from memory from now on
    torch.testing.assert_close(source.load(0)[0], torch.from_numpy(tone(0.5)))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"clip_seconds": 0}, "clip_seconds"),
        ({"min_seconds": -1}, "min_seconds"),
        ({"on_bad_file": "ignore"}, "on_bad_file"),
        ({"gain_range": (0.0, 1.0)}, "gain_range"),
        ({"noise": -0.1}, "noise"),
        ({"max_shift_seconds": 20.0}, "max_shift_seconds"),
        ({"time_mask": 1.0}, "time_mask"),
        ({"frequency_mask": 1.5}, "frequency_mask"),
    ],
)
def test_bad_arguments_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        AudioDataModule(**options)


def test_path_that_is_neither_folder_nor_manifest(tmp_path):
    path = write(tmp_path / "a.wav", tone(0.5), subtype="FLOAT")
    with pytest.raises(ValueError, match=r"a folder of audio files or a \.csv manifest"):
        AudioDataModule(path=str(path)).setup("fit")
