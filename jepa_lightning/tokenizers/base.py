"""What every tokenizer shares: the data description it is built from and the tokens it returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class InputSpec:
    """What the model must know about the data, told by the datamodule (the CLI links it).

    Fields a modality does not use stay ``None``. ``num_classes`` is only used by evaluation. Tables: ``num_numeric``
    numeric features, ``categories`` the cardinality of each categorical feature (its codes are ``0 .. card - 1``)
    and ``feature_names`` (numeric ones first, then categorical, the order of the tokens).
    """

    modality: str
    channels: int | None = None
    image_size: tuple[int, int] | None = None
    sample_rate: float | None = None
    num_classes: int | None = None
    channel_names: tuple[str, ...] | None = None
    num_numeric: int | None = None
    categories: tuple[int, ...] | None = None
    feature_names: tuple[str, ...] | None = None

    def require(self, *names: str) -> None:
        """Raise a clear error when a field this consumer needs is missing."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"InputSpec for modality {self.modality!r} lacks {', '.join(missing)}: "
                "the datamodule must provide it (or pass input_spec=... by hand)."
            )


class TabularInput(NamedTuple):
    """A batch of table rows as the model takes them: ``numeric`` float ``(B, F_num)`` (NaN = missing) and
    ``categorical`` long codes ``(B, F_cat)``. Kept apart (not packed into one float tensor) so codes stay exact under
    ``bf16-true``; a tuple, so Lightning moves it to the device and ``default_collate`` batches it field by field."""

    numeric: Tensor
    categorical: Tensor


#: What tokenizers, backbones and ``embed`` take: a tensor in the modality's canonical layout, or table rows.
ModelInput = Tensor | TabularInput


def model_input(batch: Mapping[str, Any]) -> ModelInput:
    """The model's input of a batch: ``batch["x"]``, or a :class:`TabularInput` when the batch also holds
    categorical codes ``batch["x_cat"]`` (the tabular batch contract)."""
    if "x_cat" in batch:
        return TabularInput(batch["x"], batch["x_cat"])
    return batch["x"]


def input_batch_size(x: ModelInput) -> int:
    """Number of samples of a model input."""
    return (x.numeric if isinstance(x, TabularInput) else x).shape[0]


def concat_inputs(inputs: Sequence[ModelInput]) -> ModelInput:
    """Model inputs (e.g. augmented views) concatenated along the batch, field by field for table rows."""
    if isinstance(inputs[0], TabularInput):
        return TabularInput(*(torch.cat(parts) for parts in zip(*inputs)))
    return torch.cat(list(inputs))


# Checkpoints keep the spec in their hyperparameters; let ``torch.load(weights_only=True)`` (Lightning's
# default when resuming) rebuild it.
torch.serialization.add_safe_globals([InputSpec])


@dataclass(frozen=True)
class TokenLayout:
    """Where the tokens sit, so mask samplers and predictors can reason about geometry.

    ``shape`` is the token grid (e.g. ``(rows, cols)`` for image patches); ``coords`` holds each token's
    coordinates on that grid, shape ``(1 or B, N, len(shape))``, in the same order as the tokens.
    """

    kind: str
    shape: tuple[int, ...]
    coords: Tensor

    @property
    def num_tokens(self) -> int:
        return self.coords.shape[1]


@dataclass
class Tokens:
    """A tokenizer's output: features ``(B, N, D)``, positions ``(1 or B, N, D)`` and their layout."""

    features: Tensor
    positions: Tensor
    layout: TokenLayout


def grid_coords(shape: tuple[int, ...], device: torch.device | None = None) -> Tensor:
    """Integer coordinates of every cell of a grid in row-major order, ``(1, prod(shape), len(shape))``."""
    axes = [torch.arange(size, device=device, dtype=torch.float32) for size in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([axis.reshape(-1) for axis in mesh], dim=-1).unsqueeze(0)


def sincos_embedding(coords: Tensor, dim: int) -> Tensor:
    """Fixed sine-cosine embedding of k-dimensional coordinates ``(..., k) -> (..., dim)``.

    Each axis gets ``dim / k`` features (half sines, half cosines, frequencies ``1 / 10000^(i / (d/2))``),
    concatenated axis by axis: for a 2-D grid this is the I-JEPA / MAE 2-D sin-cos embedding.
    """
    num_axes = coords.shape[-1]
    if dim % (2 * num_axes):
        raise ValueError(f"sin-cos positions need dim divisible by {2 * num_axes} for {num_axes}-D coords, got {dim}")
    per_axis = dim // num_axes
    omega = torch.arange(per_axis // 2, device=coords.device, dtype=torch.float32) / (per_axis / 2.0)
    omega = 1.0 / 10000**omega
    angles = coords.float().unsqueeze(-1) * omega  # (..., k, per_axis / 2)
    embedding = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., k, per_axis)
    return embedding.flatten(-2)


def check_on_device(condition: Tensor, message: str) -> None:
    """Reject input for which the boolean scalar ``condition`` is false: ``ValueError(message)`` on the CPU; on an
    accelerator an asynchronous device-side assertion with the same message, so the check never stalls the host."""
    if condition.device.type != "cpu":
        torch._assert_async(condition, message)
    elif not condition:
        raise ValueError(message)


def check_finite(x: Tensor, message: str) -> None:
    """Reject NaN / inf input (see :func:`check_on_device`)."""
    check_on_device(torch.isfinite(x).all(), message)


class Tokenizer(nn.Module):
    """Base class of tokenizers: ``forward(x) -> Tokens``; ``embed_dim`` is the token width."""

    embed_dim: int

    def forward(self, x: Tensor) -> Tokens:  # pragma: no cover - interface
        raise NotImplementedError


#: Builds a tokenizer from the data description and the encoder width. In configs: a ``class_path`` whose first
#: two constructor arguments are ``spec`` and ``embed_dim`` (the model supplies them); in Python, e.g.
#: ``functools.partial(PatchTokenizer2d, patch_size=4)``.
TokenizerFactory = Callable[[InputSpec, int], Tokenizer]
