"""VideoDataModule: videos the tests write with PyAV (always), the opencv-doc AVIs (when installed), frame folders,
arrays, labels, clips, augmentation, bad files and moving digits."""

from __future__ import annotations

from pathlib import Path

import av
import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.video import ClipTransform, VideoDataModule, VideoRef, moving_digits
from jepa_lightning.methods import VJEPA
from jepa_lightning.nn import TransformerEncoder

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_AVIS = sorted(OPENCV_DATA.glob("*.avi")) if OPENCV_DATA.is_dir() else []


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4") -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames with PyAV (none: a file with a video stream and no frame)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def ramp(count: int = 20, height: int = 32, width: int = 48) -> np.ndarray:
    """Frames of constant grey ``10 * i``: a decoded frame tells which frame it was."""
    return np.arange(count, dtype=np.uint8)[:, None, None, None] * np.full((1, height, width, 3), 10, np.uint8)


def plain(**kwargs) -> VideoDataModule:
    """No normalisation, so clips keep the decoded values (scaled to [0, 1])."""
    defaults = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "val_fraction": 0.0, "batch_size": 1}
    return VideoDataModule(**{**defaults, **kwargs})


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "mpeg4"), (".avi", "mpeg4"), (".webm", "libvpx")])
def test_a_video_written_with_pyav_reads_back_as_clips_in_frame_order(tmp_path, suffix, codec):
    write_video(tmp_path / f"ramp{suffix}", ramp(), codec)
    data = plain(path=str(tmp_path), frames_per_clip=4, frame_step=3, image_size=(16, 24))
    assert data.train_source.videos[0].num_frames == 20
    clip = data.eval_transform()(data.train_source.load(0))
    assert clip.shape == (3, 4, 16, 24)
    # centre clip: span 10 of 20 frames -> start 5, frames 5, 8, 11, 14 (grey 50, 80, 110, 140)
    levels = clip.mean(dim=(0, 2, 3)) * 255
    torch.testing.assert_close(levels, torch.tensor([50.0, 80.0, 110.0, 140.0]), atol=6, rtol=0)
    assert data.input_spec.frames == 4 and data.input_spec.channels == 3 and data.input_spec.modality == "video"


def test_grey_channels_frame_folders_arrays_and_class_folders(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
    write_video(tmp_path / "cats" / "a.mp4", ramp(12))
    frames = tmp_path / "cats" / "b"  # a frame folder is one video
    frames.mkdir()
    for i in range(6):
        Image.fromarray(np.full((32, 48), 20 * i, np.uint8)).save(frames / f"{i:03d}.png")
    np.save(tmp_path / "dogs" / "c.npy", np.zeros((5, 32, 48), np.uint8))
    np.savez(tmp_path / "dogs" / "d.npz", video=np.ones((7, 32, 48), np.float32))
    data = plain(path=str(tmp_path), channels=1, mean=[0.0], std=[1.0], frames_per_clip=4, image_size=16)
    assert data.class_names == ["cats", "dogs"] and data.input_spec.num_classes == 2
    assert data.train_source.labels.tolist() == [0, 0, 1, 1]
    assert [v.kind for v in data.train_source.videos] == ["file", "frames", "array", "array"]
    assert [v.num_frames for v in data.train_source.videos] == [12, 6, 5, 7]
    folder_clip = data.eval_transform()(data.train_source.load(1))  # frames 1..4 of 6 (centre), grey 20 * i
    torch.testing.assert_close(folder_clip.mean(dim=(0, 2, 3)) * 255, torch.tensor([20.0, 40, 60, 80]), atol=1, rtol=0)
    short = data.eval_transform()(data.train_source.load(2))  # 5 frames for a clip of 4: frames 0..3
    assert short.shape == (1, 4, 16, 16)
    torch.testing.assert_close(data.eval_transform()(data.train_source.load(3)), torch.ones(1, 4, 16, 16))


def test_a_csv_manifest_gives_labels_by_name_and_the_test_set_reuses_them(tmp_path):
    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.mp4", ramp(8))
    (tmp_path / "train.csv").write_text("path,label\na.mp4,walk\nb.mp4,run\nc.mp4,\n")
    (tmp_path / "test.csv").write_text(f"path,label\n{tmp_path / 'c.mp4'},walk\n")
    data = plain(path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv"), frames_per_clip=2)
    assert data.class_names == ["run", "walk"]
    assert data.train_source.labels.tolist() == [1, 0, -1]
    assert data.test_source.labels.tolist() == [1]
    (tmp_path / "numbers.csv").write_text("path,label\na.mp4,3\nb.mp4,0\n")
    numbered = plain(path=str(tmp_path / "numbers.csv"), frames_per_clip=2)
    assert numbered.train_source.labels.tolist() == [3, 0] and numbered.input_spec.num_classes == 4
    (tmp_path / "bad.csv").write_text("file\na.mp4\n")
    with pytest.raises(ValueError, match=r"bad.csv: expected a 'path' column"):
        plain(path=str(tmp_path / "bad.csv")).setup("fit")


def test_corrupt_and_empty_files_are_named_or_skipped(tmp_path):
    write_video(tmp_path / "good.mp4", ramp(8))
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 50)
    with pytest.raises(ValueError, match=r"broken.mp4: expected a readable video"):
        plain(path=str(tmp_path)).setup("fit")
    data = plain(path=str(tmp_path), on_bad_file="skip")
    with pytest.warns(UserWarning, match="left out 1 of 2 files"):
        data.setup("fit")
    assert [v.location.name for v in data.train_source.videos] == ["good.mp4"]
    (tmp_path / "broken.mp4").unlink()
    write_video(tmp_path / "empty.avi", ramp(0))
    with pytest.raises(ValueError, match=r"empty.avi: expected a video with at least one decodable frame, got 0"):
        plain(path=str(tmp_path)).setup("fit")
    (tmp_path / "empty.avi").unlink()
    np.save(tmp_path / "nothing.npy", np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"nothing.npy: expected frames \(T, H, W\) or \(T, H, W, C\) with T >= 1"):
        plain(path=str(tmp_path)).setup("fit")


def test_training_clips_are_seeded_per_sample_and_cropped_alike_over_time(tmp_path):
    # every frame is the same random picture, so a crop shared over time gives identical frames
    picture = np.random.default_rng(0).integers(0, 256, (1, 32, 48, 1), dtype=np.uint8)
    np.save(tmp_path / "still.npy", np.repeat(picture, 9, axis=0))
    np.save(tmp_path / "other.npy", np.repeat(picture, 9, axis=0))
    data = plain(path=str(tmp_path), mean=[0.0], std=[1.0], frames_per_clip=4, image_size=16, batch_size=2)
    data.setup("fit")
    first = next(iter(data.train_dataloader()))["x"]
    again = next(iter(data.train_dataloader()))["x"]
    assert torch.equal(first, again)  # the same (seed, epoch, sample): the same clip
    assert torch.equal(first, first[:, :, :1].expand_as(first))  # one crop (and flip) for every frame of a clip
    assert not torch.equal(first[0], first[1])  # different samples: different crops


def test_clip_indices_and_moving_digits():
    clips = ClipTransform(4, 2, (8, 8), [0.0], [1.0], train=False)
    assert clips.frame_indices(20).tolist() == [6, 8, 10, 12]
    assert clips.frame_indices(3).tolist() == [0, 2, 2, 2]  # too short: the last frame repeats
    videos, labels = moving_digits(16)
    assert videos.shape == (1797, 16, 64, 64) and videos.dtype == np.uint8
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # scikit-learn's digits
    some = videos[::60]  # every 60th clip: digits stay on the canvas and move in every frame
    assert (some.reshape(len(some), 16, -1).max(axis=2) > 200).all()
    assert (np.abs(np.diff(some.astype(np.int16), axis=1)).sum(axis=(2, 3)) > 0).all()
    data = VideoDataModule(batch_size=4)
    assert data.input_spec.channels == 1 and data.input_spec.num_classes == 10 and data.input_spec.frames == 16
    ref = data.train_source.load(5)
    assert isinstance(ref, VideoRef) and int(data.train_source.labels[5]) == labels[5]
    np.testing.assert_array_equal(ref.read(np.arange(16))[:, 0].numpy(), videos[5])


def tiny_vjepa(data: VideoDataModule) -> VJEPA:
    return VJEPA(
        encoder=TransformerEncoder(embed_dim=24, depth=1, num_heads=2),
        patch_size=16,
        predictor_dim=12,
        predictor_depth=1,
        predictor_heads=2,
        input_spec=data.input_spec,
    )


def fit_steps(model: VJEPA, data: VideoDataModule, tmp_path: Path, steps: int = 2) -> None:
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == steps


def test_vjepa_trains_on_videos_written_here(tmp_path):
    for i in range(4):
        write_video(tmp_path / f"v{i}.mp4", ramp(10))
    data = VideoDataModule(path=str(tmp_path), frames_per_clip=4, frame_step=2, image_size=32, batch_size=2)
    model = tiny_vjepa(data)
    before = [p.detach().clone() for p in model.student.parameters()]
    fit_steps(model, data, tmp_path)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.student.parameters()))


@pytest.mark.skipif(len(OPENCV_AVIS) < 4, reason="Debian's opencv-doc AVI files are not installed")
def test_vjepa_trains_on_the_opencv_doc_avis(tmp_path):
    folder = tmp_path / "avis"
    folder.mkdir()
    for avi in OPENCV_AVIS:
        (folder / avi.name).symlink_to(avi)
    data = VideoDataModule(
        path=str(folder), frames_per_clip=4, frame_step=4, image_size=32, batch_size=2, val_fraction=0.25
    )
    assert sorted(v.location.name for v in data.train_source.videos) == [a.name for a in OPENCV_AVIS]
    assert data.input_spec.channels == 3
    fit_steps(tiny_vjepa(data), data, tmp_path)


def test_arrays_keep_any_channel_count_and_decoded_videos_must_match(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 16, 16, 4), np.uint8))
    data = plain(path=str(tmp_path), mean=[0.0] * 4, std=[1.0] * 4, frames_per_clip=2, image_size=8)
    assert data.input_spec.channels == 4
    assert data.eval_transform()(data.train_source.load(0)).shape == (4, 2, 8, 8)
    write_video(tmp_path / "b.mp4", ramp(4, 16, 16))
    with pytest.raises(ValueError, match=r"b.mp4: expected an array, as decoded videos have 1 or 3 channels, not 4"):
        plain(path=str(tmp_path), mean=[0.0] * 4, std=[1.0] * 4).setup("fit")
