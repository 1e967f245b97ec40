"""Time series (and ECG / EEG) -> patch tokens: channel-independent (ECG-JEPA Kim) or channel-mixing (ECG-JEPA
Weimann & Conrad, TS-JEPA), embedded linearly or by TS-JEPA's conv, with RevIN-style instance normalisation and fixed
sin-cos positions."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, SeriesInput, check_finite
from jepa_lightning.nn.init import trunc_normal_init
from jepa_lightning.tokens import Tokenizer, TokenLayout, Tokens, grid_coords, sincos_embedding


def check_patch_length(length: int, patch_length: int) -> None:
    """Series of ``length`` samples must split into whole patches: say how to fix it otherwise."""
    if length % patch_length:
        raise ValueError(
            f"series length {length} is not a multiple of patch_length={patch_length}: the last "
            f"{length % patch_length} samples would not fill a patch. Set the datamodule's length (or window) to a "
            f"multiple of {patch_length} (e.g. {length - length % patch_length or patch_length}), choose a "
            "patch_length that divides it, or pass crop=True to the model to drop the trailing samples"
        )


def adapted_patch_length(length: int, patch_length: int, min_patches: int, shortest: int = 1) -> int:
    """``patch_length``, shortened to ``length // min_patches`` (never below ``shortest``) when a series of ``length``
    samples would give fewer than ``min_patches`` whole patches: a short series still yields context and target
    tokens (24 samples in patches of 10 give 2 tokens, one context and one target under a 70% mask)."""
    if length // patch_length >= min_patches:
        return patch_length
    return max(length // min_patches, shortest)


#: How a patch becomes a token: one linear map, or TS-JEPA's strided Conv1d followed by a linear map.
PatchEmbedding = Literal["linear", "conv"]


class ConvPatchEmbed(nn.Module):
    """TS-JEPA's patch embedding: ``Conv1d(in_channels, D, kernel, stride=kernel)`` over the patch's samples, its
    ``(D, L')`` output flattened channel-major, then ``Linear(D * L', D)``, no activation in between
    (``L' = (patch_length - kernel) // kernel + 1``: the last ``patch_length % kernel`` samples are not read).

    Input: channel-major flattened patches ``(..., in_channels * patch_length)``; output ``(..., D)``.
    """

    def __init__(self, in_channels: int, patch_length: int, embed_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if not 1 <= kernel_size <= patch_length:
            raise ValueError(f"conv kernel_size must be in [1, patch_length={patch_length}], got {kernel_size}")
        self.in_channels = in_channels
        self.patch_length = patch_length
        self.conv = nn.Conv1d(in_channels, embed_dim, kernel_size, stride=kernel_size)
        self.fc = nn.Linear(embed_dim * ((patch_length - kernel_size) // kernel_size + 1), embed_dim)

    def forward(self, patches: Tensor) -> Tensor:
        lead = patches.shape[:-1]
        features = self.conv(patches.reshape(-1, self.in_channels, self.patch_length))  # (N, D, L')
        return self.fc(features.flatten(1)).unflatten(0, lead)


class ChannelPatchTokenizer(Tokenizer):
    """Non-overlapping patches of ``patch_length`` samples (PatchTST style: stride = length) of a ``(B, C, T)`` series.

    - ``channel_independent=True`` (ECG-JEPA Kim; PatchTST): every channel's patches are tokens of a ``(C, P)``
      grid (channel-major order, token ``c * P + p``), embedded by one shared ``Linear(patch_length, D)``; the
      channel is told by 2-D sin-cos positions of ``(channel, patch)``, so masks can share time spans across
      channels.
    - ``channel_independent=False`` (ECG-JEPA Weimann & Conrad; TS-JEPA, whose series have one channel): one token
      per time patch spanning all channels, ``Linear(C * patch_length, D)`` over the channel-major flattened patch;
      ``(P,)`` layout, 1-D sin-cos.
    - ``channel_group=g > 1`` (channel-independent only; EEG-VJEPA's 4 channels x 30 samples): a token is a patch of
      ``g`` neighbouring channels, ``Linear(g * patch_length, D)`` over the channel-major flattened patch, on a
      ``(ceil(C / g), P)`` grid. Channels that do not fill the last group are an error, not dropped, unless
      ``pad_channels=True``, which pads the last group with zero channels (after normalisation).

    ``embedding="conv"`` (TS-JEPA's official tokenizer) replaces the linear map by :class:`ConvPatchEmbed`: a
    ``Conv1d`` of kernel and stride ``conv_kernel`` whose input channels are the patch's channels (``g``, or ``C``
    when channel-mixing), then a linear map of its flattened output; the conv keeps PyTorch's default init, as in
    the official code (the linear layers are truncated-normal like every other tokenizer's).

    ``instance_norm`` (RevIN without the affine part): each (sample, channel) is shifted and scaled by its own
    mean and ``sqrt(var + 1e-5)`` over time (population variance) before patching. It is not inverted: JEPA
    targets are latent, not the signal. ``P = T // patch_length`` is read from each input (positions are cached
    per patch count); trailing samples that do not fill a patch are an error unless ``crop=True``, which drops
    them (after normalising over the whole series).

    ``min_patches`` (off by default) adapts the patch length to the series: when the datamodule's fixed series length
    (``spec.length``, or ``spec.padded_length`` for padded batches) holds fewer than ``min_patches`` patches of
    ``patch_length``, the patch length becomes ``length // min_patches`` (at least ``conv_kernel`` with the conv
    embedding), see :func:`adapted_patch_length`; ``self.patch_length`` is the length used. Longer series keep
    ``patch_length``.
    """

    eps: float = 1e-5

    def __init__(
        self,
        spec: InputSpec,
        embed_dim: int,
        patch_length: int = 24,
        channel_independent: bool = True,
        instance_norm: bool = True,
        crop: bool = False,
        channel_group: int = 1,
        pad_channels: bool = False,
        embedding: PatchEmbedding = "linear",
        conv_kernel: int = 3,
        min_patches: int | None = None,
    ) -> None:
        super().__init__()
        spec.require("channels")
        if patch_length < 1:
            raise ValueError(f"patch_length must be >= 1, got {patch_length}")
        if min_patches is not None:
            if min_patches < 1:
                raise ValueError(f"min_patches must be None or >= 1, got {min_patches}")
            series_length = spec.length or spec.padded_length
            if series_length is None:
                raise ValueError(
                    "min_patches sizes the patches to the series length, which the input spec does not give: set the "
                    "datamodule's length (or window), or leave min_patches=None"
                )
            patch_length = adapted_patch_length(
                series_length, patch_length, min_patches, conv_kernel if embedding == "conv" else 1
            )
        if channel_group < 1 or (channel_group > 1 and not channel_independent):
            raise ValueError(
                f"channel_group must be >= 1, and 1 with channel_independent=False (a token then spans every "
                f"channel), got {channel_group}"
            )
        leftover = spec.channels % channel_group
        if leftover and not pad_channels:
            raise ValueError(
                f"{spec.channels} channels do not split into groups of channel_group={channel_group}: the last "
                f"{leftover} would be left over; choose a channel_group that divides {spec.channels}, select "
                "channels in the datamodule, or pass pad_channels=True to pad the last group with zero channels"
            )
        if spec.length is not None and not crop:
            check_patch_length(spec.length, patch_length)
        axes = 2 if channel_independent else 1
        if embed_dim % (2 * axes):
            raise ValueError(
                f"embed_dim must be divisible by {2 * axes} for {axes}-D sin-cos positions, got {embed_dim}"
            )
        self.embed_dim = embed_dim
        self.channels = spec.channels
        self.patch_length = patch_length
        self.channel_independent = channel_independent
        self.instance_norm = instance_norm
        self.crop = crop
        self.channel_group = channel_group
        self.padding = (channel_group - leftover) % channel_group
        self.rows = (spec.channels + self.padding) // channel_group
        if embedding not in ("linear", "conv"):
            raise ValueError(f"embedding must be 'linear' or 'conv', got {embedding!r}")
        self.embedding = embedding
        in_channels = channel_group if channel_independent else spec.channels
        self.proj: nn.Module
        if embedding == "conv":
            self.proj = ConvPatchEmbed(in_channels, patch_length, embed_dim, conv_kernel)
        else:
            self.proj = nn.Linear(in_channels * patch_length, embed_dim)
        trunc_normal_init(self)
        if isinstance(self.proj, ConvPatchEmbed):
            self.proj.conv.reset_parameters()  # the official conv keeps PyTorch's default init
        self._cache: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}

    def grid_shape(self, num_patches: int) -> tuple[int, ...]:
        """Token grid for ``num_patches`` time patches: ``(channel groups, P)`` channel-independent, else ``(P,)``."""
        return (self.rows, num_patches) if self.channel_independent else (num_patches,)

    def _coords_positions(self, num_patches: int, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (num_patches, device)
        if key not in self._cache:
            coords = grid_coords(self.grid_shape(num_patches), device=device)
            self._cache[key] = (coords, sincos_embedding(coords, self.embed_dim))
        return self._cache[key]

    def normalise(self, x: Tensor, real: Tensor | None = None) -> Tensor:
        """Zero mean, unit variance per (sample, channel) over time (identity when ``instance_norm`` is off); with
        ``real`` ``(B, 1, T)`` bool, the statistics are those of the real samples and padding stays 0."""
        if not self.instance_norm:
            return x
        if real is None:
            mean = x.mean(dim=-1, keepdim=True)
            var = x.var(dim=-1, keepdim=True, unbiased=False)
            return (x - mean) / torch.sqrt(var + self.eps)
        count = real.sum(dim=-1, keepdim=True).clamp_min(1)
        mean = (x * real).sum(dim=-1, keepdim=True) / count
        var = ((x - mean).square() * real).sum(dim=-1, keepdim=True) / count
        return torch.where(real, (x - mean) / torch.sqrt(var + self.eps), 0.0)

    def forward(self, x: Tensor | SeriesInput) -> Tokens:
        """Tokens of ``(B, C, T)`` series; of a :class:`~jepa_lightning.inputs.SeriesInput`, the series are padded to
        whole patches and a patch is a valid token when it holds at least one real sample (its padded samples are
        0, the channel mean after instance normalisation, whose statistics come from the real samples only)."""
        x, lengths = (x.values, x.lengths) if isinstance(x, SeriesInput) else (x, None)
        if x.ndim != 3 or x.shape[1] != self.channels:
            raise ValueError(
                f"ChannelPatchTokenizer expects series of shape (B, {self.channels}, T), got {tuple(x.shape)}"
            )
        length = x.shape[-1]
        if length < self.patch_length and lengths is None:
            raise ValueError(f"series of {length} samples is shorter than one patch of {self.patch_length} samples")
        if not self.crop and lengths is None:
            check_patch_length(length, self.patch_length)
        check_finite(x, "ChannelPatchTokenizer got NaN or inf values in the series")
        real = None
        if lengths is not None:
            x = nn.functional.pad(x, (0, -length % self.patch_length))  # padding completes the last patch
            length = x.shape[-1]
            real = (torch.arange(length, device=x.device) < lengths[:, None]).unsqueeze(1)  # (B, 1, T)
            x = x.masked_fill(~real, 0.0)  # whatever the padding held
        x = nn.functional.pad(self.normalise(x, real), (0, 0, 0, self.padding))  # zero channels complete the last group
        num_patches = length // self.patch_length
        patches = x[..., : num_patches * self.patch_length].unflatten(-1, (num_patches, self.patch_length))  # B,C,P,L
        if self.channel_independent:
            groups = patches.unflatten(1, (self.rows, self.channel_group)).transpose(2, 3).flatten(-2)  # B,R,P,g*L
            features = self.proj(groups).flatten(1, 2)  # (B, R * P, D), row-major
        else:
            features = self.proj(patches.transpose(1, 2).flatten(2))  # (B, P, C * L) -> (B, P, D)
        coords, positions = self._coords_positions(num_patches, x.device)
        layout = TokenLayout(
            kind="grid" if self.channel_independent else "sequence", shape=self.grid_shape(num_patches), coords=coords
        )
        valid = None
        if lengths is not None:
            starts = torch.arange(num_patches, device=x.device) * self.patch_length
            valid = starts < lengths[:, None]  # (B, P): the patch holds a real sample
            valid = valid.repeat(1, self.rows) if self.channel_independent else valid  # row-major like the tokens
        return Tokens(features=features, positions=positions.to(features.dtype), layout=layout, valid=valid)
