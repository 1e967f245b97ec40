"""The trajectory datamodule: seeded rollouts of the scripted experts, the NPZ cache, users' NPZ / CSV / Parquet logs,
windows and episode splits, and bad input named before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules import TrajectoryDataModule
from datamodules import trajectories as tr


def test_rollouts_are_seeded_and_the_experts_control_their_systems():
    first = tr.rollout("CartPole-v1", 2, 200, "expert", 0.0, seed=0)
    again = tr.rollout("CartPole-v1", 2, 200, "expert", 0.0, seed=0)
    other = tr.rollout("CartPole-v1", 2, 200, "expert", 0.0, seed=1)
    for key in (tr.OBSERVATIONS, tr.ACTIONS, tr.EPISODE):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first[tr.OBSERVATIONS], other[tr.OBSERVATIONS])
    # the PD expert keeps the pole up for every one of the 200 steps; pushes are stored as -1 / +1
    assert first[tr.OBSERVATIONS].shape == (400, 4) and np.bincount(first[tr.EPISODE]).tolist() == [200, 200]
    assert set(np.unique(first[tr.ACTIONS])) == {-1.0, 1.0}
    assert np.abs(first[tr.OBSERVATIONS][:, 2]).max() < 0.2095  # the angle at which CartPole ends an episode
    # the random policy lets it fall within a few dozen steps
    assert len(tr.rollout("CartPole-v1", 1, 200, "random", 0.0, seed=0)[tr.EPISODE]) < 100
    pendulum = tr.rollout("Pendulum-v1", 1, 200, "expert", 0.0, seed=0)
    cos_theta = pendulum[tr.OBSERVATIONS][:, 0]
    assert cos_theta[:5].max() < 0.9 < cos_theta[-20:].min()  # swung up from below, held at the top
    assert np.abs(pendulum[tr.ACTIONS]).max() <= 2.0


def test_the_rollout_is_cached_once_and_read_like_a_log(tmp_path, monkeypatch):
    settings = {"episodes": 3, "steps": 30, "cache_dir": str(tmp_path), "history": 2, "horizon": 3, "batch_size": 4}
    data = TrajectoryDataModule(**settings)
    assert not data.cache_file.exists()
    spec = data.input_spec
    assert data.cache_file.exists() and data.cache_file.parent == tmp_path
    assert (spec.channels, spec.length, spec.horizon, spec.condition_dim) == (4, 2, 3, 1)

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr(tr, "rollout", no_simulation)
    cached = TrajectoryDataModule(**settings)
    assert cached.cache_file == data.cache_file
    torch.testing.assert_close(cached.train_source.load(5), data.train_source.load(5))
    assert TrajectoryDataModule(**settings, seed=1).cache_file != data.cache_file  # other settings, another file
    assert TrajectoryDataModule(**settings, action_noise=0.1).cache_file != data.cache_file


def steps_log(episodes: int = 3, length: int = 12) -> dict[str, np.ndarray]:
    """Observation ``o_t = (100 e + t, -t)`` and action ``a_t = t + 0.5`` in episode ``e``: windows are checkable."""
    t = np.tile(np.arange(length), episodes).astype(np.float32)
    episode = np.repeat(np.arange(episodes), length)
    observations = np.stack([100 * episode + t, -t], axis=1).astype(np.float32)
    return {"observations": observations, "actions": t + 0.5, "episode": episode}


def test_windows_of_a_users_npz_log_and_the_batch_layout(tmp_path):
    path = tmp_path / "log.npz"
    np.savez(path, **steps_log())
    data = TrajectoryDataModule(path=str(path), history=3, horizon=2, normalize=False, batch_size=4, val_fraction=0.34)
    assert len(data.train_source) == 3 * (12 - 3 - 2 + 1)
    item = data.train_source.load(0)  # episode 0, t = 2
    torch.testing.assert_close(item["x"], torch.tensor([[0.0, 1, 2], [0, -1, -2]]))
    torch.testing.assert_close(item["future"], torch.tensor([[3.0, 4], [-3, -4]]))
    torch.testing.assert_close(item["cond"], torch.tensor([[2.5], [3.5]]))  # a_t .. a_{t+horizon-1}
    batch = next(iter(data.val_dataloader()))
    assert batch["x"].shape == (4, 2, 3) and batch["future"].shape == (4, 2, 2) and batch["cond"].shape == (4, 2, 1)
    assert batch["y"].tolist() == [-1] * 4
    # splits are by episode: the first observation channel says which (100 e + t)
    episode_of = {
        split: {int(data.train_source.load(int(i))["x"][0, 0]) // 100 for i in data.indices(split)}
        for split in ("train", "val")
    }
    assert len(episode_of["val"]) == 1 and not episode_of["val"] & episode_of["train"]
    assert episode_of["val"] | episode_of["train"] == {0, 1, 2}
    normalized = TrajectoryDataModule(path=str(path), history=3, horizon=2)
    everything = np.concatenate(normalized.train_source.observations)
    np.testing.assert_allclose(everything.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(everything.std(0), 1, atol=1e-4)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_log_with_episode_and_time_columns(tmp_path, suffix):
    log = steps_log(episodes=2, length=8)
    frame = pd.DataFrame(
        {
            "run": np.where(log["episode"] == 0, "b", "a"),  # ids that are not numbers, first appearance "b"
            "time": np.tile(np.arange(8), 2) * 0.1,
            "obs_position": log["observations"][:, 0],
            "obs_velocity": log["observations"][:, 1],
            "action_force": log["actions"],
            "note": "x",
        }
    ).sample(frac=1.0, random_state=0)  # shuffled rows: the time column orders them
    path = tmp_path / f"log{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    data = TrajectoryDataModule(
        path=str(path), episode_column="run", time_column="time", history=2, horizon=2, normalize=False
    )
    assert data.input_spec.channel_names == ("obs_position", "obs_velocity") and data.input_spec.condition_dim == 1
    assert data.trajectories.episode_ids == ["b", "a"]
    torch.testing.assert_close(data.train_source.load(0)["x"], torch.tensor([[0.0, 1], [0, -1]]))
    torch.testing.assert_close(data.train_source.load(5)["x"], torch.tensor([[100.0, 101], [0, -1]]))
    with pytest.raises(ValueError, match=r"action_columns.*unknown column\(s\) \['torque'\]"):
        index(path=str(path), action_columns=["torque"])


def index(**kwargs) -> None:
    """Index the data (what the CLI does first, reading the input spec)."""
    assert TrajectoryDataModule(**kwargs).input_spec is not None


def bad_npz(tmp_path, **arrays) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


def test_bad_logs_are_named_before_training(tmp_path):
    log = steps_log()
    cases = [
        ({"observations": log["observations"]}, r"bad\.npz: expected an NPZ with arrays 'observations' and 'actions'"),
        ({**log, "actions": log["actions"][:-1]}, r"bad\.npz: actions: expected 36 rows, one per observation"),
        ({**log, "episode": log["episode"][:-1]}, r"bad\.npz: episode: expected one id per observation"),
        ({**log, "episode": log["episode"] * 0.5}, r"bad\.npz: episode: expected integer ids"),
        ({**log, "observations": np.where(np.arange(36)[:, None] == 7, np.nan, log["observations"])}, "row 7"),
        ({**log, "actions": np.full(36, "left")}, r"bad\.npz: actions: expected a real numeric"),
    ]
    for arrays, message in cases:
        with pytest.raises(ValueError, match=message):
            index(path=bad_npz(tmp_path, **arrays))
    nan = log["observations"].copy()
    nan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"observations: expected finite values, got 1 non-finite value\(s\)"):
        index(path=bad_npz(tmp_path, **{**log, "observations": nan}))
    short = {**log, "episode": np.where(np.arange(36) < 33, log["episode"], 7)}  # episode 7: 3 steps
    with pytest.raises(ValueError, match=r"bad\.npz: episode 7 \(number 3\): expected at least history \+ horizon = 8"):
        index(path=bad_npz(tmp_path, **short), history=4, horizon=4)
    (tmp_path / "log.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"log\.txt: expected a trajectory file"):
        index(path=str(tmp_path / "log.txt"))
    with pytest.raises(FileNotFoundError, match="path="):
        index(path=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="val_fraction/test_fraction"):
        TrajectoryDataModule(path=bad_npz(tmp_path, **log), val_fraction=0.5, test_fraction=0.4).indices("train")
    for field, value in (("env", "Acrobot-v1"), ("policy", "greedy"), ("action_noise", 1.5), ("horizon", 0)):
        with pytest.raises(ValueError, match=field):
            TrajectoryDataModule(**{field: value})
