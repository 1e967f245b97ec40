"""ECG datamodule: WFDB and array readers, resampling, windows, leads, filtering, the bundled record, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb

from datamodules.ecg import BUNDLED_RECORD, ECGDataModule
from datamodules.recordings import resample


def all_windows(datamodule: ECGDataModule) -> torch.Tensor:
    source = datamodule.train_source
    return torch.stack([source[i][0] for i in range(len(source))])


def write_wfdb(folder: Path, name: str, signal: np.ndarray, rate: float, leads: list[str]) -> Path:
    """A WFDB record of ``signal`` ``(T, leads)`` (16-bit, physical units mV) in ``folder``."""
    wfdb.wrsamp(
        name, fs=rate, units=["mV"] * len(leads), sig_name=leads, p_signal=signal, fmt=["16"] * len(leads),
        write_dir=str(folder),
    )  # fmt: skip
    return folder / f"{name}.hea"


def sine(rate: float, seconds: float, frequency: float, leads: int = 1) -> np.ndarray:
    """``(leads, T)`` sines; lead k has amplitude k + 1."""
    t = np.arange(round(rate * seconds)) / rate
    return np.stack([(k + 1) * np.sin(2 * np.pi * frequency * t) for k in range(leads)])


def test_wfdb_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1000, 2))  # 4 s at 250 Hz
    write_wfdb(tmp_path, "rec", signal, 250, ["I", "II"])
    datamodule = ECGDataModule(path=str(tmp_path), window_seconds=2, val_fraction=0)
    windows = all_windows(datamodule)
    assert windows.shape == (2, 2, 500)
    assert datamodule.input_spec.channel_names == ("I", "II") and datamodule.input_spec.sample_rate == 250
    read_back = wfdb.rdrecord(str(tmp_path / "rec")).p_signal.T
    np.testing.assert_allclose(windows.permute(1, 0, 2).reshape(2, -1).numpy(), read_back, rtol=0, atol=1e-6)
    np.testing.assert_allclose(read_back, signal.T, atol=1e-3)  # 16-bit quantisation of the writer
    assert (datamodule.train_source.labels == -1).all()


def test_wfdb_record_listed_by_name(tmp_path):
    write_wfdb(tmp_path, "rec", np.zeros((600, 1)), 100, ["II"])
    datamodule = ECGDataModule(path=[str(tmp_path / "rec")], window_seconds=3, val_fraction=0)
    assert len(datamodule.train_source) == 2


@pytest.mark.parametrize("form", ["npy", "npz"])
def test_array_round_trip(tmp_path, form):
    signal = np.random.default_rng(1).normal(size=(3, 900)).astype(np.float32)
    if form == "npy":
        np.save(tmp_path / "a.npy", signal)
        options = {"array_sample_rate": 300, "array_lead_names": ["I", "II", "V1"]}
    else:
        np.savez(tmp_path / "a.npz", signal=signal, sample_rate=300.0, lead_names=np.array(["I", "II", "V1"]))
        options = {}
    datamodule = ECGDataModule(path=str(tmp_path), window_seconds=1, val_fraction=0, **options)
    windows = all_windows(datamodule)
    assert torch.equal(windows.permute(1, 0, 2).reshape(3, -1), torch.from_numpy(signal))
    assert datamodule.input_spec.channels == 3 and datamodule.lead_names == ("I", "II", "V1")


def test_npz_gain_and_baseline_give_physical_units(tmp_path):
    counts = np.array([[1024, 1224, 824, 1024]], dtype=np.uint16)
    np.savez(tmp_path / "a.npz", signal=counts, sample_rate=4.0, gain=200.0, baseline=1024.0)
    window = all_windows(ECGDataModule(path=str(tmp_path / "a.npz"), window_seconds=1, val_fraction=0))[0]
    assert torch.equal(window, torch.tensor([[0.0, 1.0, -1.0, 0.0]]))


def test_resampling_keeps_duration_and_shape():
    rate, target, seconds = 360, 250, 10
    resampled = resample(sine(rate, seconds, 3.0), rate, target)
    assert resampled.shape == (1, seconds * target)  # same 10 s at the new rate
    expected = sine(target, seconds, 3.0)
    np.testing.assert_allclose(resampled[:, 50:-50], expected[:, 50:-50], atol=1e-2)


def test_datamodule_resamples_to_the_target_rate(tmp_path):
    np.save(tmp_path / "a.npy", sine(500, 8, 2.0))
    datamodule = ECGDataModule(path=str(tmp_path), sample_rate=125, array_sample_rate=500, window_seconds=4)
    assert datamodule.window_length == 500 and datamodule.input_spec.sample_rate == 125
    assert datamodule.train_source[0][0].shape == (1, 500)


def test_windows_and_stride(tmp_path):
    signal = np.arange(1000, dtype=np.float32)[None]  # 10 s at 100 Hz
    np.save(tmp_path / "a.npy", signal)
    datamodule = ECGDataModule(
        path=str(tmp_path), array_sample_rate=100, window_seconds=4, stride_seconds=2, val_fraction=0
    )
    windows = all_windows(datamodule)
    assert [int(w[0, 0]) for w in windows] == [0, 200, 400, 600]
    for window in windows:
        assert torch.equal(window[0], torch.arange(int(window[0, 0]), int(window[0, 0]) + 400, dtype=torch.float32))


def test_lead_selection_by_name_in_the_given_order(tmp_path):
    np.savez(tmp_path / "a.npz", signal=sine(100, 2, 1.0, leads=3), sample_rate=100.0, lead_names=["I", "II", "V1"])
    datamodule = ECGDataModule(path=str(tmp_path), leads=["V1", "I"], window_seconds=2, val_fraction=0)
    window = all_windows(datamodule)[0]
    np.testing.assert_allclose(window.numpy(), sine(100, 2, 1.0, leads=3)[[2, 0]], rtol=1e-6)
    assert datamodule.input_spec.channel_names == ("V1", "I")


def test_missing_lead_names_the_record_and_its_leads(tmp_path):
    write_wfdb(tmp_path, "rec", np.zeros((600, 2)), 100, ["I", "II"])
    with pytest.raises(ValueError, match=r"rec\.hea.*no \['V1'\].*\['I', 'II'\]"):
        ECGDataModule(path=str(tmp_path), leads=["I", "V1"], window_seconds=2).setup("fit")


def test_a_garbled_array_header_names_the_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 600)))
    raw = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(raw.replace(b"}", b" ", 1))  # NumPy's header parser fails with a TokenError
    with pytest.raises(ValueError, match=r"a\.npy: expected a readable NPY/NPZ file, got TokenError"):
        ECGDataModule(path=str(tmp_path), array_sample_rate=100, window_seconds=2).setup("fit")


def test_records_without_lead_names_get_a_hint(tmp_path):
    np.save(tmp_path / "b.npy", np.zeros((1, 600)))
    with pytest.raises(
        ValueError,
        match=r"b\.npy: expected lead names to select leads=\['II'\] \(store 'lead_names'"
        r" in the NPZ or set array_lead_names=\[\.\.\.\], or set leads=None",
    ):
        ECGDataModule(path=str(tmp_path), leads=["II"], array_sample_rate=100, window_seconds=2).setup("fit")
    write_wfdb(tmp_path, "a", np.zeros((600, 1)), 100, ["II"])
    with pytest.raises(
        ValueError,
        match=r"b\.npy: expected the leads of a\.hea: 1 \['II'\], got 1 \[\]; this record has no "
        r"lead names: store 'lead_names' .*, then set leads=\[\.\.\.\] to keep the same leads",
    ):
        ECGDataModule(path=str(tmp_path), array_sample_rate=100, window_seconds=2).setup("fit")


def test_records_with_different_leads_get_the_common_ones_as_a_hint(tmp_path):
    write_wfdb(tmp_path, "a", np.zeros((600, 2)), 100, ["I", "II"])
    write_wfdb(tmp_path, "b", np.zeros((600, 2)), 100, ["II", "V1"])
    with pytest.raises(
        ValueError,
        match=r"b\.hea: expected the leads of a\.hea: 2 \['I', 'II'\], got 2 \['II', 'V1'\]; "
        r"set leads=\['II'\] to keep the same leads from every record",
    ):
        ECGDataModule(path=str(tmp_path), window_seconds=2).setup("fit")
    assert len(ECGDataModule(path=str(tmp_path), leads=["II"], window_seconds=2).train_source) == 6


def test_bandpass_removes_baseline_wander(tmp_path):
    rate, seconds = 250, 40
    t = np.arange(rate * seconds) / rate
    heart = np.sin(2 * np.pi * 8 * t)
    wander = 2.0 * np.sin(2 * np.pi * 0.1 * t) + 0.5
    np.save(tmp_path / "a.npy", (heart + wander)[None])
    datamodule = ECGDataModule(
        path=str(tmp_path), array_sample_rate=rate, bandpass=(0.5, 40), window_seconds=seconds, val_fraction=0
    )
    filtered = all_windows(datamodule)[0, 0].numpy()
    interior = slice(5 * rate, -5 * rate)
    assert np.abs(filtered[interior] - heart[interior]).max() < 0.05
    assert np.abs((heart + wander)[interior] - heart[interior]).max() > 2  # the wander was large


def test_normalize_gives_zero_mean_unit_variance_per_lead(tmp_path):
    np.save(tmp_path / "a.npy", 3 * sine(100, 4, 1.5, leads=2) + 7)
    datamodule = ECGDataModule(path=str(tmp_path), array_sample_rate=100, window_seconds=2, normalize="window")
    window = next(iter(datamodule.eval_dataloader("all")))["x"][0]
    torch.testing.assert_close(window.mean(dim=1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(window.std(dim=1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)


def test_dataset_normalize_uses_training_statistics_per_lead(tmp_path):
    np.save(tmp_path / "a.npy", 3 * sine(100, 4, 1.5, leads=2) + 7)
    np.save(tmp_path / "b.npy", 6 * sine(100, 4, 1.5, leads=2) + 1)
    datamodule = ECGDataModule(
        path=str(tmp_path), array_sample_rate=100, window_seconds=2, normalize="dataset", val_fraction=0, batch_size=4
    )
    windows = next(iter(datamodule.eval_dataloader("all")))["x"]  # a's two windows, then b's
    pooled = torch.cat(list(windows), dim=1)
    torch.testing.assert_close(pooled.mean(dim=1), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled.std(dim=1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    ratio = windows[2].std(dim=1) / windows[0].std(dim=1)  # amplitude differences between records survive
    torch.testing.assert_close(ratio, torch.full((2,), 2.0), atol=1e-3, rtol=0)


def test_class_folders_give_labels(tmp_path):
    for name in ("afib", "normal"):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "x.npy", np.zeros((1, 200)))
    datamodule = ECGDataModule(path=str(tmp_path), array_sample_rate=100, window_seconds=1, val_fraction=0)
    assert datamodule.train_source.labels.tolist() == [0, 0, 1, 1]
    assert datamodule.class_names == ["afib", "normal"] and datamodule.input_spec.num_classes == 2


def test_views_are_seeded_augmentations(tmp_path):
    np.save(tmp_path / "a.npy", sine(100, 8, 1.0, leads=2))
    datamodule = ECGDataModule(path=str(tmp_path), array_sample_rate=100, window_seconds=2, num_views=2, batch_size=2)
    first, second = next(iter(datamodule.train_dataloader())), next(iter(datamodule.train_dataloader()))
    assert len(first["views"]) == 2 and first["views"][0].shape == first["x"].shape == (2, 2, 200)
    assert all(torch.equal(a, b) for a, b in zip(first["views"], second["views"]))
    assert not torch.equal(first["views"][0], first["views"][1]) and not torch.equal(first["views"][0], first["x"])
    assert (first["y"] == -1).all()


def test_bundled_record_208_loads_in_millivolts():
    assert BUNDLED_RECORD.stat().st_size < 250_000
    datamodule = ECGDataModule(val_fraction=0)
    spec = datamodule.input_spec
    assert (spec.modality, spec.channels, spec.sample_rate, spec.channel_names) == ("ecg", 1, 360.0, ("MLII",))
    assert len(datamodule.train_source) == 30  # 5 minutes in 10 s windows
    raw = np.load(BUNDLED_RECORD)["signal"]
    assert raw.shape == (1, 108_000)
    window = datamodule.train_source[0][0]
    assert window.shape == (1, 3600)
    np.testing.assert_allclose(window.numpy(), (raw[:, :3600] - 1024.0) / 200.0, rtol=0, atol=1e-6)
    assert -4 < float(window.min()) < float(window.max()) < 4  # an ECG in mV


# --------------------------------------------------------------------------------------------- bad input


def index(path, **options) -> None:
    ECGDataModule(path=str(path) if not isinstance(path, list) else path, **options).setup("fit")


def test_lead_count_mismatch_names_the_file(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 500)))
    np.save(tmp_path / "b.npy", np.zeros((3, 500)))
    with pytest.raises(ValueError, match=r"b\.npy.*leads of a\.npy"):
        index(tmp_path, array_sample_rate=100, window_seconds=1)


def test_sample_rate_mismatch_names_the_file(tmp_path):
    np.savez(tmp_path / "a.npz", signal=np.zeros((1, 500)), sample_rate=100.0)
    np.savez(tmp_path / "b.npz", signal=np.zeros((1, 500)), sample_rate=200.0)
    with pytest.raises(ValueError, match=r"b\.npz.*sample rate of a\.npz.*200\.0 Hz"):
        index(tmp_path, window_seconds=1)
    index(tmp_path, window_seconds=1, sample_rate=100)  # resampling to one rate is fine


def test_stored_and_configured_sample_rates_must_agree(tmp_path):
    np.savez(tmp_path / "a.npz", signal=np.zeros((1, 500)), sample_rate=100.0)
    with pytest.raises(ValueError, match=r"a\.npz.*array_sample_rate=250\.0"):
        index(tmp_path, window_seconds=1, array_sample_rate=250)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_name_the_file(tmp_path, bad):
    signal = np.zeros((2, 500))
    signal[1, 123] = bad
    np.save(tmp_path / "a.npy", signal)
    with pytest.raises(ValueError, match=r"a\.npy.*NaN/inf.*lead 1 at 123"):
        index(tmp_path, array_sample_rate=100, window_seconds=1)


def test_recording_shorter_than_a_window_names_the_file(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((1, 250)))
    with pytest.raises(ValueError, match=r"short\.npy.*one window of 10\.0 s.*250 samples"):
        index(tmp_path, array_sample_rate=100)


def test_corrupt_array_names_the_file(tmp_path):
    (tmp_path / "broken.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"broken\.npy.*readable NPY/NPZ"):
        index(tmp_path, array_sample_rate=100, window_seconds=1)


def test_corrupt_wfdb_records_name_the_file(tmp_path):
    header = write_wfdb(tmp_path, "rec", np.zeros((600, 1)), 100, ["II"])
    with (tmp_path / "rec.dat").open("r+b") as signal_file:
        signal_file.truncate(100)
    with pytest.raises(ValueError, match=r"rec\.hea.*readable WFDB record"):
        index(header, window_seconds=1)
    (tmp_path / "garbage.hea").write_text("not a header\n")
    with pytest.raises(ValueError, match=r"garbage\.hea.*readable WFDB record"):
        index(tmp_path / "garbage.hea", window_seconds=1)


def test_missing_path_and_sample_rate(tmp_path):
    with pytest.raises(FileNotFoundError, match="path="):
        index(tmp_path / "nothing.npy")
    np.save(tmp_path / "a.npy", np.zeros((1, 500)))
    with pytest.raises(ValueError, match=r"a\.npy.*sample rate"):
        index(tmp_path / "a.npy")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"window_seconds": 0}, "window_seconds"),
        ({"leads": []}, "leads"),
        ({"sample_rate": 100, "bandpass": (0.5, 60)}, "bandpass"),
        ({"time_mask": 1.0}, "time_mask"),
        ({"normalize": True}, "normalize"),
    ],
)
def test_bad_arguments_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        ECGDataModule(**options)
