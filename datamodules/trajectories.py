"""Trajectories of (observation, action) pairs, cut into windows of past observations, future observations and the
actions in between: the data of action-conditioned JEPAs (world models, imitation).

Where the trajectories come from:

- **Simulated** (``path=None``, the default): gymnasium's classic-control environments (``pip install
  "jepa-lightning[control]"``), ``CartPole-v1`` or ``Pendulum-v1``, rolled out once by a scripted expert
  (:func:`cartpole_expert`: a PD controller on the pole's angle and the cart's position; :func:`pendulum_expert`:
  energy-pumping swing-up, then PD around the top) or a random policy, with an optional share ``action_noise`` of
  uniformly random actions, every episode seeded from ``(seed, episode)``. The rollout is written to
  ``cache_dir`` (default ``<cache>/trajectories``, see :func:`~datamodules.base.cache_root`) as an NPZ named after
  its settings, and then read like any log: a second run with the same settings reads the file and simulates nothing.
- **Your own logs** (``path=...``): an NPZ with ``observations`` float ``(N, C)`` (or ``(N,)``), ``actions``
  ``(N, A)`` (or ``(N,)``) and optional integer ``episode`` ``(N,)`` ids; or a CSV / TSV / Parquet table with the
  observation columns (``observation_columns``, default every column whose name starts with ``obs``), the action
  columns (``action_columns``, default those starting with ``action``), an optional episode column
  (``episode_column``, used when the table has it) and an optional ``time_column`` that orders the rows of an
  episode. Row ``t`` holds the observation ``o_t`` and the action ``a_t`` taken after observing it; an episode is
  the rows of one id, in file (or time) order; without ids the file is one episode.

Windows: at every step ``t`` (every ``stride``-th) where they fit in an episode, ``x`` is the ``history``
observations ``o_{t-history+1} .. o_t`` as a ``(C, history)`` series, ``future`` the ``horizon`` observations
``o_{t+1} .. o_{t+horizon}`` ``(C, horizon)``, and ``cond`` the actions ``a_t .. a_{t+horizon-1}`` ``(horizon,
A)`` that lead there. Observations are z-scored per channel with the statistics of every step of the file
(``normalize``); actions are kept as logged (CartPole's discrete push is stored as its direction, -1 left / +1 right,
so that 0 means no push). Splits are by episode: ``val_fraction`` / ``test_fraction`` of the episodes (a seeded
permutation), never windows of one episode on both sides.

Bad input raises a ValueError naming the file and the field before training: an unreadable file, a missing array or
column, arrays of different lengths, non-numeric or NaN / inf values (naming the row and channel), an episode
shorter than ``history + horizon``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm.auto import tqdm

from datamodules.base import SampleSource, SSLDataModule, Transform, cache_root, invalid, require_path
from datamodules.tables import TABLE_FORMATS, numeric_values, read_table, table_format
from jepa_lightning.inputs import InputSpec

#: The simulated environments, all in gymnasium's classic control (no physics engine to install).
ENVIRONMENTS = ("CartPole-v1", "Pendulum-v1")
#: How the simulated episodes are played: the scripted expert, or uniformly random actions.
Policy = Literal["expert", "random"]
POLICIES = ("expert", "random")
#: The arrays of a trajectory NPZ (the cache's format and the one read from users' logs).
OBSERVATIONS, ACTIONS, EPISODE = "observations", "actions", "episode"
#: Smallest standard deviation a channel is divided by when z-scoring (a constant channel is only centred).
NORM_EPS = 1e-6


# --------------------------------------------------------------------------------------------- scripted experts


def cartpole_expert(observation: np.ndarray) -> float:
    """Push direction (-1 left, +1 right) of a PD controller that keeps CartPole's pole up and its cart near the
    centre: the sign of ``10 theta + 2 theta_dot + 0.1 x + 0.5 x_dot``."""
    x, x_dot, theta, theta_dot = (float(value) for value in observation)
    return 1.0 if 10 * theta + 2 * theta_dot + 0.1 * x + 0.5 * x_dot > 0 else -1.0


def pendulum_expert(observation: np.ndarray) -> float:
    """Torque in [-2, 2] that swings Pendulum up and holds it: PD on the angle near the top (``cos theta > 0.85``),
    elsewhere energy pumping ``u = (E_top - E) sign(theta_dot)`` with ``E = theta_dot^2 / 2 + 15 cos theta`` (the
    environment's ``theta_ddot = 15 sin theta + 3 u``, so ``dE/dt = 3 u theta_dot``)."""
    cos, sin, theta_dot = (float(value) for value in observation)
    if cos > 0.85:
        torque = -(10 * np.arctan2(sin, cos) + 2 * theta_dot)
    else:
        energy = 0.5 * theta_dot**2 + 15 * cos
        torque = (15 - energy) * (1.0 if theta_dot >= 0 else -1.0)
    return float(np.clip(torque, -2.0, 2.0))


EXPERTS: dict[str, Callable[[np.ndarray], float]] = {"CartPole-v1": cartpole_expert, "Pendulum-v1": pendulum_expert}


def random_action(env_id: str, rng: np.random.Generator) -> float:
    """A uniformly random action in the stored convention (CartPole: -1 or +1; Pendulum: a torque in [-2, 2])."""
    return float(rng.choice([-1.0, 1.0])) if env_id == "CartPole-v1" else float(rng.uniform(-2.0, 2.0))


def env_action(env_id: str, action: float) -> Any:
    """The stored action as the environment takes it (CartPole: 0 = left, 1 = right)."""
    return int(action > 0) if env_id == "CartPole-v1" else np.array([action], dtype=np.float32)


GYMNASIUM_HINT = (
    'simulating trajectories needs gymnasium: pip install "jepa-lightning[control]" (or pass path=... to read '
    "your own logs)"
)


def gymnasium_module() -> Any:
    """The ``gymnasium`` module, or an ImportError saying how to install it (an optional extra)."""
    try:
        import gymnasium
    except ImportError as error:
        raise ImportError(GYMNASIUM_HINT) from error
    return gymnasium


def rollout(
    env_id: str, episodes: int, steps: int, policy: Policy, action_noise: float, seed: int
) -> dict[str, np.ndarray]:
    """Play ``episodes`` episodes of at most ``steps`` steps (fewer when one terminates), each seeded from
    ``(seed, episode)``: the environment's reset and the policy's random draws. Returns the NPZ arrays
    ``observations`` ``(N, C)``, ``actions`` ``(N, 1)`` (the action taken after each observation) and ``episode``."""
    env = gymnasium_module().make(env_id, max_episode_steps=steps)
    observations, actions, ids = [], [], []
    try:
        for episode in tqdm(range(episodes), desc=f"Simulating {env_id}"):
            rng = np.random.default_rng([seed, episode])
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            for _ in range(steps):
                random = policy == "random" or rng.random() < action_noise
                action = random_action(env_id, rng) if random else EXPERTS[env_id](observation)
                observations.append(np.asarray(observation, dtype=np.float32))
                actions.append(action)
                ids.append(episode)
                observation, _, terminated, truncated, _ = env.step(env_action(env_id, action))
                if terminated or truncated:
                    break
    finally:
        env.close()
    return {
        OBSERVATIONS: np.stack(observations),
        ACTIONS: np.asarray(actions, dtype=np.float32)[:, None],
        EPISODE: np.asarray(ids, dtype=np.int64),
    }


# --------------------------------------------------------------------------------------------- reading logs


@dataclass(frozen=True)
class TrajectoryFile:
    """The episodes of one file: observations ``float32 (T_e, C)`` and actions ``(T_e, A)`` per episode, the ids
    of the episodes (in order of first appearance) and the observation channels' names (None when unnamed)."""

    path: Path
    observations: list[np.ndarray]
    actions: list[np.ndarray]
    episode_ids: list[Any]
    channel_names: tuple[str, ...] | None


def as_rows(array: np.ndarray, path: Path, name: str) -> np.ndarray:
    """``(N,)`` or ``(N, K)`` real numbers as ``float32 (N, K)``; an error naming the file and array otherwise."""
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise invalid(f"{path}: {name}", "a real numeric (N,) or (N, K) array", f"shape {array.shape}, {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise invalid(f"{path}: {name}", "at least one row and one column", f"shape {array.shape}")
    return array.astype(np.float32)


def check_finite_rows(values: np.ndarray, path: Path, name: str) -> None:
    """Raise naming the file, array, row and column of the first NaN / inf value."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise invalid(
            f"{path}: {name}",
            "finite values",
            f"{int(bad.sum())} non-finite value(s), first {values[row, column]} in row {row}, column {column}",
        )


def split_episodes(
    path: Path, observations: np.ndarray, actions: np.ndarray, episode: np.ndarray | None, names: tuple[str, ...] | None
) -> TrajectoryFile:
    """Check the arrays of one file (lengths, values) and group their rows by episode (order of first appearance,
    rows in file order within an episode)."""
    if actions.shape[0] != observations.shape[0]:
        raise invalid(
            f"{path}: {ACTIONS}", f"{observations.shape[0]} rows, one per observation", f"{actions.shape[0]} rows"
        )
    check_finite_rows(observations, path, OBSERVATIONS)
    check_finite_rows(actions, path, ACTIONS)
    if episode is None:
        return TrajectoryFile(path, [observations], [actions], [0], names)
    if episode.shape != (observations.shape[0],):
        raise invalid(
            f"{path}: {EPISODE}", f"one id per observation, shape ({observations.shape[0]},)", str(episode.shape)
        )
    codes, ids = pd.factorize(pd.Series(episode), sort=False)
    if (codes < 0).any():
        raise invalid(f"{path}: {EPISODE}", "an episode id on every row", f"{int((codes < 0).sum())} missing")
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return TrajectoryFile(
        path,
        np.split(observations[order], bounds),
        np.split(actions[order], bounds),
        [item.item() if hasattr(item, "item") else item for item in ids],
        names,
    )


def read_trajectory_npz(path: Path) -> TrajectoryFile:
    """An NPZ with ``observations``, ``actions`` and optional ``episode`` (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as error:
        raise invalid(path, "a readable NPZ file", f"{type(error).__name__}: {error}") from error
    missing = [key for key in (OBSERVATIONS, ACTIONS) if key not in arrays]
    if missing:
        raise invalid(
            path, f"an NPZ with arrays {OBSERVATIONS!r} and {ACTIONS!r} (and optional {EPISODE!r})", f"{sorted(arrays)}"
        )
    observations = as_rows(arrays[OBSERVATIONS], path, OBSERVATIONS)
    actions = as_rows(arrays[ACTIONS], path, ACTIONS)
    episode = arrays.get(EPISODE)
    if episode is not None and (episode.ndim != 1 or not np.issubdtype(episode.dtype, np.integer)):
        raise invalid(f"{path}: {EPISODE}", "integer ids (N,)", f"shape {episode.shape}, {episode.dtype}")
    return split_episodes(path, observations, actions, episode, None)


@dataclass(frozen=True)
class TrajectoryColumns:
    """Which columns of a table hold what (see the module docstring); None: the defaults."""

    observation_columns: tuple[str, ...] | None = None
    action_columns: tuple[str, ...] | None = None
    episode_column: str = EPISODE
    time_column: str | None = None

    def pick(self, path: Path, columns: list[str], field: str, prefix: str) -> list[str]:
        """The columns named by ``field`` (all must exist), or those whose name starts with ``prefix``."""
        named = getattr(self, field)
        if named is None:
            chosen = [column for column in columns if column.lower().startswith(prefix)]
            if not chosen:
                raise invalid(field, f"columns of {path} starting with {prefix!r}, or {field}=[...]", f"{columns}")
            return chosen
        unknown = [column for column in named if column not in columns]
        if unknown:
            raise invalid(field, f"column names of {path} {columns}", f"unknown column(s) {unknown}")
        return list(named)


def read_trajectory_table(path: Path, kind: str, layout: TrajectoryColumns) -> TrajectoryFile:
    """A CSV / TSV / Parquet table of steps (see the module docstring)."""
    frame = read_table(path, kind)
    columns = list(frame.columns)
    observed = layout.pick(path, columns, "observation_columns", "obs")
    acted = layout.pick(path, columns, "action_columns", "action")
    if layout.time_column is not None and layout.time_column not in columns:
        raise invalid("time_column", f"a column of {path} {columns}", repr(layout.time_column))
    episode = None
    if layout.episode_column in columns:
        ids = frame[layout.episode_column]
        if ids.isna().any():
            raise invalid(f"{path}: column {layout.episode_column!r}", "an episode id on every row", "missing ids")
        episode = pd.factorize(ids, sort=False)[0]
    if layout.time_column is not None:
        times = frame[layout.time_column]
        if times.isna().any():
            raise invalid(f"{path}: column {layout.time_column!r}", "a time on every row", "missing times")
        order = np.lexsort((times.to_numpy(), episode if episode is not None else np.zeros(len(frame), np.int64)))
        frame = frame.iloc[order]
        episode = None if episode is None else episode[order]

    def values(names: list[str]) -> np.ndarray:
        stacked = [numeric_values(frame[name], f"{path}: column {name!r}") for name in names]
        return np.stack(stacked, axis=1).astype(np.float32)

    data = split_episodes(path, values(observed), values(acted), episode, tuple(observed))
    if episode is None:
        return data
    first = pd.unique(frame[layout.episode_column])
    return TrajectoryFile(path, data.observations, data.actions, list(first), data.channel_names)


def read_trajectories(path: Path, file_format: str, layout: TrajectoryColumns) -> TrajectoryFile:
    """Dispatch on the format (``"auto"``: from the suffix)."""
    if file_format not in ("auto", "npz", *TABLE_FORMATS.values()):
        raise invalid(
            "file_format", f"'auto', 'npz' or one of {sorted(set(TABLE_FORMATS.values()))}", repr(file_format)
        )
    if file_format == "npz" or (file_format == "auto" and path.suffix.lower() == ".npz"):
        return read_trajectory_npz(path)
    try:
        kind = table_format(path, file_format)
    except ValueError:
        raise invalid(path, f"a trajectory file (.npz {' '.join(TABLE_FORMATS)})", "another suffix") from None
    return read_trajectory_table(path, kind, layout)


# --------------------------------------------------------------------------------------------- samples and batches


class TrajectorySource(SampleSource):
    """Episodes in memory (observations already normalised); item ``i`` is the window at ``items[i] = (episode,
    t)``: ``{"x": (C, history), "future": (C, horizon), "cond": (horizon, A)}``."""

    def __init__(
        self, observations: list[np.ndarray], actions: list[np.ndarray], items: Tensor, history: int, horizon: int
    ) -> None:
        self.observations = observations
        self.actions = actions
        self.items = items
        self.labels = torch.full((len(items),), -1, dtype=torch.long)
        self.history = history
        self.horizon = horizon

    def load(self, index: int) -> dict[str, Tensor]:
        episode, t = (int(value) for value in self.items[index])
        observations = self.observations[episode]
        return {
            "x": torch.from_numpy(observations[t - self.history + 1 : t + 1].T.copy()),
            "future": torch.from_numpy(observations[t + 1 : t + 1 + self.horizon].T.copy()),
            "cond": torch.from_numpy(self.actions[episode][t : t + self.horizon].copy()),
        }


def identity(sample: Any) -> Any:
    """The windows need no transform (a JEPA's randomness is in its masks; a picklable function for workers)."""
    return sample


def collate_windows(items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
    """Batch the items ``{"x": window dict, "y": label}`` into ``{"x", "future", "cond", "y"}``."""
    batch = default_collate(list(items))
    return {**batch["x"], "y": batch["y"]}


class TrajectoryDataModule(SSLDataModule):
    """Windows of trajectories (see the module docstring): simulated by a scripted expert in gymnasium's classic
    control, or read from your NPZ / CSV / Parquet logs.

    Batch: ``x`` float ``(B, C, history)`` (the observed steps, a series in the time-series layout), ``future``
    ``(B, C, horizon)`` (the next observations), ``cond`` ``(B, horizon, A)`` (the actions from the last observed
    step on) and ``y`` (-1: unlabelled). The input spec gives ``channels = C``, ``length = history``,
    ``horizon`` and ``condition_dim = A``.

    Args:
        path: your log file (NPZ / CSV / TSV / Parquet); None simulates ``env``.
        env: the environment to simulate (:data:`ENVIRONMENTS`).
        episodes, steps: simulated episodes and their longest length (CartPole ends an episode when the pole falls).
        policy: ``"expert"`` (the scripted controller) or ``"random"``.
        action_noise: share of the expert's steps that take a uniformly random action instead (exploration, so that
            the data shows what other actions do).
        cache_dir: where rollouts are kept (None: ``<cache>/trajectories``).
        history, horizon, stride: observed steps, future steps, steps between window starts.
        normalize: z-score observations per channel with the file's statistics.
        file_format, observation_columns, action_columns, episode_column, time_column: how to read ``path``.
        kwargs: the splits, batch size and seed of :class:`~datamodules.base.SSLDataModule` (the seed also seeds
            the simulation).
    """

    def __init__(
        self,
        path: str | None = None,
        env: str = "CartPole-v1",
        episodes: int = 40,
        steps: int = 200,
        policy: Policy = "expert",
        action_noise: float = 0.2,
        cache_dir: str | None = None,
        history: int = 4,
        horizon: int = 4,
        stride: int = 1,
        normalize: bool = True,
        file_format: str = "auto",
        observation_columns: Sequence[str] | None = None,
        action_columns: Sequence[str] | None = None,
        episode_column: str = EPISODE,
        time_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if env not in ENVIRONMENTS:
            raise invalid("env", f"one of {ENVIRONMENTS}", repr(env))
        if policy not in POLICIES:
            raise invalid("policy", f"one of {POLICIES}", repr(policy))
        if not 0.0 <= action_noise <= 1.0:
            raise invalid("action_noise", "a share in [0, 1]", repr(action_noise))
        for name, value in (("episodes", episodes), ("steps", steps), ("history", history), ("horizon", horizon)):
            if value < 1:
                raise invalid(name, "an integer >= 1", repr(value))
        if stride < 1:
            raise invalid("stride", "an integer >= 1", repr(stride))
        self.path = path
        self.env = env
        self.episodes = episodes
        self.steps = steps
        self.policy = policy
        self.action_noise = action_noise
        self.cache_dir = cache_dir
        self.history = history
        self.horizon = horizon
        self.stride = stride
        self.normalize = normalize
        self.file_format = file_format
        self.columns = TrajectoryColumns(
            None if observation_columns is None else tuple(observation_columns),
            None if action_columns is None else tuple(action_columns),
            episode_column,
            time_column,
        )
        self._file: TrajectoryFile | None = None

    # ----------------------------------------------------------------- simulation and cache

    @property
    def rollout_settings(self) -> dict[str, Any]:
        """What a simulated rollout depends on (its cache file is named after them)."""
        return {
            "env": self.env,
            "episodes": self.episodes,
            "steps": self.steps,
            "policy": self.policy,
            "action_noise": self.action_noise,
            "seed": self.seed,
        }

    @property
    def cache_file(self) -> Path:
        """The NPZ of the simulated rollout: ``<cache_dir>/<env>-<hash of the settings>.npz``."""
        folder = Path(self.cache_dir).expanduser() if self.cache_dir is not None else cache_root() / "trajectories"
        digest = hashlib.sha256(json.dumps(self.rollout_settings, sort_keys=True).encode()).hexdigest()[:12]
        return folder / f"{self.env}-{digest}.npz"

    def simulated_file(self) -> Path:
        """The cached rollout, simulated and written first when it is not there yet (atomically: a partial file is
        never read)."""
        target = self.cache_file
        if target.exists():
            return target
        arrays = rollout(self.env, self.episodes, self.steps, self.policy, self.action_noise, self.seed)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.stem}.partial-{os.getpid()}.npz")
        np.savez(partial, **arrays)
        partial.replace(target)
        return target

    # ----------------------------------------------------------------- indexing

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read (simulating first when needed) and check the trajectories, and index their windows."""
        path = self.simulated_file() if self.path is None else require_path(self.path, "path")
        data = read_trajectories(path, "npz" if self.path is None else self.file_format, self.columns)
        needed = self.history + self.horizon
        for number, (episode_id, steps) in enumerate(zip(data.episode_ids, data.observations)):
            if len(steps) < needed:
                raise invalid(
                    f"{path}: episode {episode_id!r} (number {number})",
                    f"at least history + horizon = {needed} steps",
                    f"{len(steps)} steps",
                )
        self._file = data
        mean, std = self.statistics
        observations = [((steps - mean) / std).astype(np.float32) for steps in data.observations]
        items = [
            (number, t)
            for number, steps in enumerate(observations)
            for t in range(self.history - 1, len(steps) - self.horizon, self.stride)
        ]
        source = TrajectorySource(
            observations, data.actions, torch.tensor(items, dtype=torch.long), self.history, self.horizon
        )
        return source, None

    @property
    def trajectories(self) -> TrajectoryFile:
        """The file as read (indexes the data on first use)."""
        self._indexed_sources()
        assert self._file is not None
        return self._file

    @cached_property
    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of every observation of the file (zeros and ones without
        ``normalize``)."""
        data = self._file if self._file is not None else self.trajectories
        channels = data.observations[0].shape[1]
        if not self.normalize:
            return np.zeros(channels, np.float32), np.ones(channels, np.float32)
        values = np.concatenate(data.observations).astype(np.float64)
        std = values.std(axis=0)
        return values.mean(axis=0).astype(np.float32), np.where(std > NORM_EPS, std, 1.0).astype(np.float32)

    def _fraction_splits(self) -> tuple[Tensor, Tensor, Tensor]:
        """Train, val and test windows split by episode: the first ``val_fraction`` of a seeded permutation of the
        episodes is val, the next ``test_fraction`` test (at least one episode each when the fraction is > 0)."""
        if self._split is None:
            source = self.train_source
            assert isinstance(source, TrajectorySource)
            episodes = len(source.observations)
            num_val, num_test = (
                max(1, round(episodes * fraction)) if fraction > 0 else 0
                for fraction in (self.val_fraction, self.test_fraction)
            )
            if episodes - num_val - num_test < 1:
                raise invalid(
                    "val_fraction/test_fraction",
                    f"fractions that leave training episodes out of {episodes} (splits are by episode)",
                    repr((self.val_fraction, self.test_fraction)),
                )
            order = torch.randperm(episodes, generator=torch.Generator().manual_seed(self.seed))
            groups = order.split([num_val, num_test, episodes - num_val - num_test])
            of_item = source.items[:, 0]
            val, test, train = (torch.isin(of_item, group).nonzero()[:, 0] for group in groups)
            self._split = (train, val, test)
        return self._split

    # ----------------------------------------------------------------- what the model sees

    @property
    def input_spec(self) -> InputSpec:
        """Observation channels (named for tables), ``length = history``, ``horizon`` and the action width
        ``condition_dim``; indexes the data."""
        data = self.trajectories
        return InputSpec(
            modality="trajectory",
            channels=data.observations[0].shape[1],
            channel_names=data.channel_names,
            length=self.history,
            horizon=self.horizon,
            condition_dim=data.actions[0].shape[1],
        )

    def train_transform(self) -> Transform:
        return identity

    def eval_transform(self) -> Transform:
        return identity

    def view_transform(self) -> Transform:
        """No augmented views: the predictive methods of trajectories need none."""
        return identity

    def _loader(self, dataset: Dataset, **kwargs: Any) -> DataLoader:
        return super()._loader(dataset, collate_fn=collate_windows, **kwargs)
