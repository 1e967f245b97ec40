"""The batch contract: what the data tells the model (:class:`InputSpec`) and what a model takes from a batch.

A leaf module (it imports only torch): datamodules, tokenizers, networks, methods and callbacks all build on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor


@dataclass(frozen=True)
class InputSpec:
    """What the model must know about the data, told by the datamodule (the CLI links it).

    Fields a modality does not use stay ``None``. ``num_classes`` is only used by evaluation. Tables: ``num_numeric``
    numeric features, ``categories`` the cardinality of each categorical feature (its codes are ``0 .. card - 1``)
    and ``feature_names`` (numeric ones first, then categorical, the order of the tokens). Recordings: ``length`` is the
    number of samples of every window when batches are not padded (no ``lengths``), so a patch tokenizer can check its
    patch length when the model is built instead of at the first step (audio: the samples of every clip). Series in
    padded batches (``lengths``): ``padded_length`` is the width every batch is cropped or padded to, when the
    datamodule fixes one, so a patch tokenizer can size its patches to the series (``min_patches``). Video: ``frames``
    per clip (with ``channels`` and ``image_size``), so a tubelet tokenizer can check its tubelet when the model is
    built. Graphs: ``channels`` is the width of the node features; ``vocab_size`` the size of the node texts'
    vocabulary (token ids ``0 .. vocab_size - 1``, 0 = padding) when the batches pair each node with its text.
    ``condition_dim`` is the width ``C`` of the batches' condition ``batch["cond"]`` (see :func:`model_condition`),
    when the datamodule emits one. Trajectories: ``horizon`` is the number of future steps of each window
    (``batch["future"]``, and the actions ``batch["cond"]``), beside ``length``, the observed steps ``batch["x"]``.
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
    length: int | None = None
    frames: int | None = None
    vocab_size: int | None = None
    condition_dim: int | None = None
    padded_length: int | None = None
    horizon: int | None = None

    def require(self, *names: str) -> None:
        """Raise a clear error when a field this consumer needs is missing."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"InputSpec for modality {self.modality!r} lacks {', '.join(missing)}: "
                "the datamodule must provide it (or pass input_spec=... by hand)."
            )


# Checkpoints keep the spec in their hyperparameters; let ``torch.load(weights_only=True)`` (Lightning's default when
# resuming) rebuild it, also from checkpoints written before it moved here from ``jepa_lightning.tokenizers.base``.
torch.serialization.add_safe_globals([InputSpec, (InputSpec, "jepa_lightning.tokenizers.base.InputSpec")])


class TabularInput(NamedTuple):
    """A batch of table rows as the model takes them: ``numeric`` float ``(B, F_num)`` (NaN = missing) and
    ``categorical`` long codes ``(B, F_cat)``. Kept apart (not packed into one float tensor) so codes stay exact under
    ``bf16-true``; a tuple, so Lightning moves it to the device and ``default_collate`` batches it field by field."""

    numeric: Tensor
    categorical: Tensor


class SeriesInput(NamedTuple):
    """A batch of series of different lengths: ``values`` float ``(B, C, T)`` zero-padded at the end and ``lengths``
    long ``(B,)``, the real samples of each. Tokenizers mark the tokens made only of padding as invalid, so padding is
    never context, target or part of a readout."""

    values: Tensor
    lengths: Tensor


class GraphInput(NamedTuple):
    """A batch of graph items: the node features ``x`` float ``(N, F)`` of the (sub)graph that message passing sees,
    its ``edge_index`` long ``(2, E)`` (source row, target row; torch-geometric's layout) and ``seeds`` long ``(B,)``.
    Node-level items (``batch`` is None): item ``b`` is node ``seeds[b]`` of ``x``. Graph-level items: ``batch`` long
    ``(N,)`` says which item each node belongs to, and ``seeds`` is ``arange(B)`` (it carries the item count without a
    host-device synchronisation)."""

    x: Tensor
    edge_index: Tensor
    seeds: Tensor
    batch: Tensor | None = None


#: What tokenizers, backbones and ``embed`` take: a tensor in the modality's canonical layout, table rows, padded
#: series with their lengths, or graph items.
ModelInput = Tensor | TabularInput | SeriesInput | GraphInput


def model_input(batch: Mapping[str, Any]) -> ModelInput:
    """The model's input of a batch: ``batch["x"]``; a :class:`TabularInput` when the batch also holds categorical
    codes ``batch["x_cat"]`` (the tabular batch contract); a :class:`SeriesInput` when it holds the valid lengths of
    padded series ``batch["lengths"]`` (the time-series batch contract); a :class:`GraphInput` when it holds an
    ``batch["edge_index"]`` (the graph batch contract: ``x``, ``edge_index``, ``seeds`` and, for graph-level items,
    ``batch``)."""
    if "x_cat" in batch:
        return TabularInput(batch["x"], batch["x_cat"])
    if "lengths" in batch:
        return SeriesInput(batch["x"], batch["lengths"])
    if "edge_index" in batch:
        return GraphInput(batch["x"], batch["edge_index"], batch["seeds"], batch.get("batch"))
    return batch["x"]


def paired_input(batch: Mapping[str, Any]) -> Tensor:
    """The second modality of a paired batch (the paired batch contract): ``batch["pair"]``, one entry per item of
    ``batch["x"]`` in the same order (e.g. the token ids ``(B, L)`` of each node's text, 0 = padding). Two-tower
    methods contrast the two; probes and ``embed`` read ``batch["x"]``."""
    if "pair" not in batch:
        raise ValueError(
            "a two-tower method needs paired batches (batch['pair'], the second modality of each item); this "
            "datamodule gives none (for graphs: configure the node texts, e.g. text_column=... or wordnet=...)"
        )
    return batch["pair"]


def model_condition(batch: Mapping[str, Any]) -> Tensor | None:
    """The batch's condition, ``batch["cond"]`` (None when absent), which a conditioned predictor takes beside the
    input: what happened between the context and the targets (a transformation's parameters, an action). Layouts:
    float ``(B, C)``, one vector per sample, or ``(B, M, C)``, one per target group (or per view: the image
    datamodule's ``view_params`` gives ``(B, V, C)``, the parameters of each view's photometric transform, which a
    method such as IWM arranges itself; or per future step: the trajectory datamodule's actions ``(B, horizon, A)``
    beside ``batch["future"]``, which the control presets flatten)."""
    return batch.get("cond")


def input_batch_size(x: ModelInput) -> int:
    """Number of samples of a model input."""
    if isinstance(x, GraphInput):
        return x.seeds.shape[0]
    return x[0].shape[0] if isinstance(x, (TabularInput, SeriesInput)) else x.shape[0]


def concat_inputs(inputs: Sequence[ModelInput]) -> ModelInput:
    """Model inputs (e.g. augmented views) concatenated along the batch, field by field for table rows and series."""
    if isinstance(inputs[0], GraphInput):
        raise ValueError("graph inputs are not concatenated as views: their seeds index each view's own subgraph")
    if isinstance(inputs[0], (TabularInput, SeriesInput)):
        return type(inputs[0])(*(torch.cat(parts) for parts in zip(*inputs)))
    return torch.cat(list(inputs))


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
