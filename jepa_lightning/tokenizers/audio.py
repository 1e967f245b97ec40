"""Audio waveforms -> a (frequency, time) grid of log-mel patch tokens with fixed sin-cos positions (A-JEPA)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchaudio.transforms import MelSpectrogram

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.init import trunc_normal_init
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens, grid_coords, sincos_embedding

LOG_OFFSET = 1e-6
NORM_EPS = 1e-5


class LogMelPatchTokenizer(Tokenizer):
    """Waveforms ``(B, 1, T)`` -> non-overlapping patches of their normalised log-mel spectrogram.

    Front end (run in float32 on the input's device, outside autocast): ``torchaudio`` ``MelSpectrogram``
    (power 2, centred frames, so ``T // hop_length + 1`` frames), ``log(mel + 1e-6)``, then the trailing
    frames that do not fill a whole patch are cropped, and each spectrogram is instance-normalised over
    (frequency, time): ``(s - mean) / (std + 1e-5)`` with statistics of that sample alone, so no dataset
    statistics are needed. Patches of ``patch_size = (freq, time)`` bins are embedded by a strided
    convolution; tokens are in row-major order over the ``(F_patches, T_patches)`` grid (frequency is the
    first axis), with the 2-D sin-cos embedding of their grid coordinates as positions.

    The grid depends on the clip length, so it is built from the actual input in ``forward`` (cached per
    grid shape and device): clips of any length with at least one patch of frames work.

    ``silence_db``: the time columns of patches whose loudest mel bin (before normalisation) lies more than this many
    decibels below the clip's loudest are marked as silence (``Tokens.valid`` False), so that the zero padding of
    clips shorter than the datamodule's clip and the silence around a word are never context, target, regularised or
    read out, as the padding of shorter series is not. The clip's loudest column always stays valid. None: every
    token is valid.
    """

    def __init__(
        self,
        spec: InputSpec,
        embed_dim: int,
        n_mels: int = 128,
        n_fft: int = 1024,
        hop_length: int | None = None,
        patch_size: int | tuple[int, int] = 16,
        silence_db: float | None = None,
    ) -> None:
        super().__init__()
        spec.require("sample_rate")
        if spec.channels not in (None, 1):
            raise ValueError(f"LogMelPatchTokenizer takes mono audio (channels=1), the spec says {spec.channels}")
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if len(patch) != 2 or min(patch) < 1:
            raise ValueError(f"patch_size must be a positive int or (freq, time) pair, got {patch_size}")
        if n_mels % patch[0]:
            raise ValueError(f"n_mels={n_mels} is not divisible by the patch height {patch[0]} (frequency bins)")
        if embed_dim % 4:
            raise ValueError(f"2-D sin-cos positions need embed_dim divisible by 4, got {embed_dim}")
        if silence_db is not None and silence_db <= 0:
            raise ValueError(f"silence_db must be a level difference > 0 dB (or None), got {silence_db}")
        self.silence_db = silence_db
        self.embed_dim = embed_dim
        self.sample_rate = int(spec.sample_rate)
        self.n_mels = n_mels
        self.hop_length = hop_length if hop_length is not None else self.sample_rate // 100
        self.patch_size: tuple[int, int] = patch
        self.melspec = MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=n_fft, hop_length=self.hop_length, n_mels=n_mels
        )
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch, stride=patch)
        trunc_normal_init(self.proj)
        self._grid_cache: dict[tuple[tuple[int, int], torch.device], tuple[Tensor, Tensor]] = {}

    def spectrogram(self, x: Tensor) -> Tensor:
        """Normalised log-mel spectrogram ``(B, 1, n_mels, frames)``, frames cropped to whole patches."""
        return normalize_clip(self.log_mel(x))

    def log_mel(self, x: Tensor) -> Tensor:
        """Log-mel spectrogram ``log(mel + 1e-6)`` ``(B, 1, n_mels, frames)`` in float32, before normalisation,
        frames cropped to whole patches."""
        self._check_input(x)
        if self.melspec.mel_scale.fb.dtype != torch.float32:
            self.melspec.float()  # the front end stays float32 when the module is cast (e.g. bf16-true)
        with torch.autocast(device_type=x.device.type, enabled=False):
            mel = self.melspec(x.float())  # (B, 1, n_mels, frames)
            frames = mel.shape[-1]
            if frames < self.patch_size[1]:
                raise ValueError(
                    f"LogMelPatchTokenizer: a clip of {x.shape[-1]} samples gives {frames} frames, fewer than one "
                    f"patch ({self.patch_size[1]} frames); use longer clips or a smaller hop_length / patch."
                )
            mel = mel[..., : frames - frames % self.patch_size[1]]
            return torch.log(mel + LOG_OFFSET)

    def sound_columns(self, logmel: Tensor) -> Tensor:
        """``(B, T_patches)`` bool: the patch columns of ``logmel`` ``(B, 1, n_mels, frames)`` whose loudest bin is
        within ``silence_db`` of the clip's loudest."""
        loudest = logmel.flatten(1, 2).unflatten(-1, (-1, self.patch_size[1])).amax(dim=(1, 3))  # (B, T_patches)
        floor = loudest.amax(dim=1, keepdim=True) - self.silence_db * math.log(10) / 10  # dB of power, natural log
        return loudest >= floor

    def layout_for(self, grid: tuple[int, int], device: torch.device) -> tuple[TokenLayout, Tensor]:
        """Layout and positions ``(1, N, D)`` of a ``(F_patches, T_patches)`` grid (cached)."""
        key = (grid, device)
        if key not in self._grid_cache:
            coords = grid_coords(grid, device=device)
            self._grid_cache[key] = (coords, sincos_embedding(coords, self.embed_dim))
        coords, positions = self._grid_cache[key]
        return TokenLayout(kind="grid", shape=grid, coords=coords), positions

    def forward(self, x: Tensor) -> Tokens:
        logmel = self.log_mel(x)
        patches = self.proj(normalize_clip(logmel).to(self.proj.weight.dtype))  # (B, D, F_patches, T_patches)
        grid = (patches.shape[-2], patches.shape[-1])
        features = patches.flatten(2).transpose(1, 2)
        layout, positions = self.layout_for(grid, features.device)
        valid = None
        if self.silence_db is not None:  # a column's verdict holds for every frequency row (row-major grid)
            valid = self.sound_columns(logmel).unsqueeze(1).expand(-1, grid[0], -1).flatten(1)
        return Tokens(features=features, positions=positions.to(features.dtype), layout=layout, valid=valid)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"LogMelPatchTokenizer expects mono waveforms of shape (B, 1, T), got {tuple(x.shape)}")


def normalize_clip(logmel: Tensor) -> Tensor:
    """Each spectrogram ``(B, 1, n_mels, frames)`` instance-normalised over (frequency, time)."""
    mean = logmel.mean(dim=(-2, -1), keepdim=True)
    std = logmel.std(dim=(-2, -1), keepdim=True)
    return (logmel - mean) / (std + NORM_EPS)
