"""The token contract: what every tokenizer returns (:class:`Tokens` on a :class:`TokenLayout`) and the fixed
sin-cos positions shared by tokenizers and predictors.

A leaf module (it imports only torch and :mod:`jepa_lightning.inputs`): tokenizers, mask samplers, networks and
methods build on it without importing each other.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec

#: ``TokenLayout.kind`` of a set of table features: ``shape == (F,)`` counts the feature tokens; the layout's first
#: ``num_tokens - F`` tokens are regularisation tokens (coordinates ``-R .. -1``), then the features (``0 .. F-1``).
FEATURES_LAYOUT = "features"


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
    """A tokenizer's output: features ``(B, N, D)``, positions ``(1 or B, N, D)`` and their layout.

    ``valid`` ``(B, N)`` bool marks the tokens that hold real data; False for tokens made only of padding (series
    shorter than the batch's longest). None: every token is real. Encoders leave invalid tokens out of attention,
    methods out of context, targets, losses and readouts.
    """

    features: Tensor
    positions: Tensor
    layout: TokenLayout
    valid: Tensor | None = None


def grid_coords(shape: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
    """Integer coordinates of every cell of a grid in row-major order, ``(1, prod(shape), len(shape))``."""
    axes = [torch.arange(size, device=device, dtype=torch.float32) for size in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([axis.reshape(-1) for axis in mesh], dim=-1).unsqueeze(0)


def sincos_embedding(coords: Tensor, dim: int, *, truncate: bool = False) -> Tensor:
    """Fixed sine-cosine embedding of k-dimensional coordinates ``(..., k) -> (..., dim)``.

    Each axis gets ``dim / k`` features (half sines, half cosines, frequencies ``1 / 10000^(i / (d/2))``),
    concatenated axis by axis: for a 2-D grid this is the I-JEPA / MAE 2-D sin-cos embedding.
    ``truncate=True`` accepts any even ``dim``: each axis gets ``2 * ceil(dim / 2k)`` features and the concatenation
    is cut to ``dim`` (V-JEPA's ``get_3d_sincos_pos_embed`` with ``uniform_power=True``, facebookresearch/jepa
    src/models/utils/pos_embs.py); for a ``dim`` divisible by ``2k`` both give the same table.
    """
    num_axes = coords.shape[-1]
    if truncate:
        if dim % 2:
            raise ValueError(f"sin-cos positions need an even dim, got {dim}")
        per_axis = 2 * math.ceil(dim / (2 * num_axes))
    elif dim % (2 * num_axes):
        raise ValueError(f"sin-cos positions need dim divisible by {2 * num_axes} for {num_axes}-D coords, got {dim}")
    else:
        per_axis = dim // num_axes
    omega = torch.arange(per_axis // 2, device=coords.device, dtype=torch.float32) / (per_axis / 2.0)
    omega = 1.0 / 10000**omega
    angles = coords.float().unsqueeze(-1) * omega  # (..., k, per_axis / 2)
    embedding = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., k, per_axis)
    return embedding.flatten(-2)[..., :dim]


class RecordsArguments:
    """Mixin for networks that can be rebuilt from their class and arguments (exported encoders): every instance
    keeps ``constructor_arguments``, the arguments it was built with bound to its ``__init__`` signature, defaults
    filled in (keyword arguments of a ``**kwargs`` parameter merged in). Recorded in ``__new__``, so subclasses need no
    code of their own; copies (``copy.deepcopy``, an EMA teacher) keep the original's."""

    constructor_arguments: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(instance, *args, **kwargs)
        except TypeError:  # __init__ raises the real error
            return instance
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:  # without self
            if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[name] = value
        object.__setattr__(instance, "constructor_arguments", arguments)
        return instance


class Tokenizer(RecordsArguments, nn.Module):
    """Base class of tokenizers: ``forward(x) -> Tokens``; ``embed_dim`` is the token width."""

    embed_dim: int

    def forward(self, x: Tensor) -> Tokens:  # pragma: no cover - interface
        raise NotImplementedError


#: Builds a tokenizer from the data description and the encoder width. In configs: a ``class_path`` whose first
#: two constructor arguments are ``spec`` and ``embed_dim`` (the model supplies them); in Python, e.g.
#: ``functools.partial(PatchTokenizer2d, patch_size=4)``.
TokenizerFactory = Callable[[InputSpec, int], Tokenizer]
