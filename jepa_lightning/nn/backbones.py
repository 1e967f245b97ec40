"""Backbones: the networks whose representations a method learns and probes evaluate."""

from __future__ import annotations

from typing import Literal

import timm
import torch
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, ModelInput
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.functional import Readout, check_readout, masked_mean, read_out
from jepa_lightning.tokens import RecordsArguments, Tokenizer, TokenizerFactory, Tokens


class TokenBackbone(nn.Module):
    """Tokenizer + transformer encoder: every token of ``x`` encoded, ``(B, N, D)``.

    The network a JEPA trains (and its EMA teacher copies); :meth:`pooled` averages the tokens. The encoder may also be
    a dense one (:class:`~jepa_lightning.nn.SparseResNet`) that reads tokens of another width, its ``token_dim``.
    """

    def __init__(self, tokenizer: Tokenizer, encoder: TransformerEncoder) -> None:
        super().__init__()
        token_dim = getattr(encoder, "token_dim", encoder.embed_dim)  # a dense encoder reads pixel cells
        if tokenizer.embed_dim != token_dim:
            raise ValueError(f"tokenizer width {tokenizer.embed_dim} != the width {token_dim} the encoder reads")
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.embed_dim = encoder.embed_dim

    def forward(self, x: ModelInput) -> Tensor:
        return self.encode(x)[0]

    def encode(self, x: ModelInput) -> tuple[Tensor, Tokens]:
        """Every token of ``x`` encoded, ``(B, N, D)``, and the tokens (layout, validity) it came from."""
        tokens = self.tokenizer(x)
        return self.encoder(tokens), tokens

    def pooled(self, x: ModelInput) -> Tensor:
        """Average of the encoded tokens, ``(B, D)`` (padding tokens left out)."""
        encoded, tokens = self.encode(x)
        return masked_mean(encoded, tokens.valid)


class PooledTokenBackbone(nn.Module):
    """Any modality's tokenizer + a transformer encoder, mean-pooled to ``(B, D)`` for joint-embedding methods.

    Built from the data's :class:`InputSpec` (the CLI supplies it), so the same config runs on any datamodule
    whose modality the tokenizer understands.
    """

    def __init__(self, spec: InputSpec, encoder: TransformerEncoder, tokenizer: TokenizerFactory) -> None:
        super().__init__()
        self.tokens = TokenBackbone(tokenizer(spec, encoder.embed_dim), encoder)
        self.embed_dim = encoder.embed_dim

    def forward(self, x: ModelInput) -> Tensor:
        return self.tokens.pooled(x)


def replace_stem(model: nn.Module, channels: int, model_name: str) -> None:
    """Replace a ResNet's 7 x 7 / stride-2 stem and max-pool by a 3 x 3 / stride-1 convolution of ``channels`` inputs
    (CIFAR-style, for small images), in place."""
    if not (hasattr(model, "conv1") and hasattr(model, "maxpool")):
        raise ValueError(f"small_input_stem needs a ResNet-style model (conv1, maxpool), not {model_name!r}")
    out_channels = model.conv1.out_channels
    model.conv1 = nn.Conv2d(channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()


#: What a :class:`TimmBackbone`'s :meth:`~TimmBackbone.embed` reads: the pooled last stage (``"last"``, what the
#: projector reads) or every stage's feature map max- and mean-pooled (``"stages"``).
TimmReadout = Literal["last", "stages"]


def stage_widths(model: nn.Module, model_name: str) -> list[int]:
    """The channels of every feature map that timm's ``forward_intermediates`` returns (the model's ``feature_info``);
    a model without them is refused (``readout="stages"`` has nothing to pool)."""
    info = getattr(model, "feature_info", None)
    if not callable(getattr(model, "forward_intermediates", None)) or not info:
        raise ValueError(
            f"TimmBackbone({model_name!r}, readout='stages'): this timm model has no stages to pool (it lacks "
            "forward_intermediates or feature_info); use readout='last'"
        )
    return [stage["num_chs"] for stage in info]


def pool_stages(model: nn.Module, x: Tensor) -> Tensor:
    """Every feature map of timm's ``model.forward_intermediates(x)`` (a ResNet: its stem and four stages) pooled
    over space and concatenated: the maxima of every map, then the means, ``(B, 2 * sum of the widths)``."""
    maps = model.forward_intermediates(x, intermediates_only=True)
    return torch.cat([m.amax(dim=(2, 3)) for m in maps] + [m.mean(dim=(2, 3)) for m in maps], dim=-1)


class TimmBackbone(RecordsArguments, nn.Module):
    """A timm model (randomly initialised: nothing is downloaded) as a pooled image backbone, ``(B, D)``.

    It never touches the network: ``pretrained`` is off and ``hf-hub:`` names are refused.

    ``small_input_stem`` replaces a ResNet's 7 x 7 / stride-2 stem and max-pool by a 3 x 3 / stride-1
    convolution, the usual change for 32 x 32 images (CIFAR-style).

    ``channels_last`` (default) keeps the convolution weights and the input in NHWC memory order: the same network and
    the same arithmetic (outputs and gradients equal up to float rounding), but oneDNN on CPUs (and cuDNN under mixed
    precision) convolve NHWC without reordering every activation to and from its blocked layout. On our CPU a
    ResNet-18's forward, backward and AdamW step on two views of 64 CIFAR-size images took 2.38 s in NHWC against
    2.83 s in NCHW (one batch of 128) or 2.63 s (two batches of 64, as lightly and stable-pretraining encode them),
    so NHWC also removes the cost of encoding the views as one batch. ``channels_last=False`` keeps NCHW (bit for bit
    the network this class built before NHWC became its default).

    ``readout`` is what :meth:`embed` reads, the vector that probes, ``predict`` and an exported encoder see;
    ``forward`` (what a projector trains on) is always the model's pooled last stage, ``embed_dim`` wide, so the
    option never changes training. ``"last"`` (default): that same vector. ``"stages"``: :func:`pool_stages`, every
    feature map of timm's ``forward_intermediates`` max- and mean-pooled and concatenated, ``readout_dim`` wide
    (a ResNet-18: its stem and four stages, 2 x 1,024 = 2,048); models without stages are refused. Chosen off the
    quality panel by ``benchmarks/readout_study.py``: after SimCLR's 200 steps on Fashion-MNIST images the panel never
    reads, a ResNet-18 probed 0.829 on its stages (0.800 at random initialisation) against 0.805 on its last stage
    (raw pixels 0.810).
    """

    def __init__(
        self,
        spec: InputSpec,
        model_name: str = "resnet18",
        small_input_stem: bool = False,
        channels_last: bool = True,
        readout: TimmReadout = "last",
    ) -> None:
        super().__init__()
        spec.require("channels")
        if model_name.startswith(("hf-hub:", "hf_hub:")):
            raise ValueError(
                f"TimmBackbone({model_name!r}): models from the Hugging Face Hub are not loaded (that downloads "
                "files); name a timm architecture such as 'resnet18', which is built locally and randomly initialised"
            )
        if readout not in ("last", "stages"):
            raise ValueError(f"TimmBackbone readout must be 'last' or 'stages', got {readout!r}")
        self.model = timm.create_model(model_name, pretrained=False, in_chans=spec.channels, num_classes=0)
        if small_input_stem:
            replace_stem(self.model, spec.channels, model_name)
        self.embed_dim = self.model.num_features
        self.readout = readout
        self.readout_dim = self.embed_dim if readout == "last" else 2 * sum(stage_widths(self.model, model_name))
        self.channels_last = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.pooled(x)

    def pooled(self, x: Tensor) -> Tensor:
        """The model's pooled last stage, ``(B, embed_dim)``: what a projector reads in training."""
        return self.model(self.in_memory_order(x))

    def in_memory_order(self, x: Tensor) -> Tensor:
        """``x`` in the model's memory order (NHWC with ``channels_last``)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def embed(self, x: Tensor) -> Tensor:
        """The representation of ``readout``, ``(B, readout_dim)``: what probes, ``predict`` and export read."""
        if self.readout == "last":
            return self.pooled(x)
        return pool_stages(self.model, self.in_memory_order(x))

    def encoder(self) -> TimmBackbone:
        """``x -> embed(x)`` as a module sharing these weights (what export writes): this backbone for
        ``readout="last"``, else a :class:`TimmEncoder` around the same timm model (its own, built with the random
        state put back, is dropped)."""
        if self.readout == "last":
            return self
        with torch.random.fork_rng(devices=[]):
            encoder = TimmEncoder(**self.constructor_arguments)
        encoder.model = self.model
        return encoder.train(self.training)


def backbone_embedding(backbone: nn.Module, x: ModelInput) -> Tensor:
    """What probes read of a pooled backbone: a :class:`TimmBackbone`'s ``readout`` (:meth:`TimmBackbone.embed`),
    any other backbone's output."""
    return backbone.embed(x) if isinstance(backbone, TimmBackbone) else backbone(x)


class TimmEncoder(TimmBackbone):
    """A :class:`TimmBackbone` whose ``forward`` is its readout (:meth:`TimmBackbone.embed`): the encoder that
    export writes for ``readout="stages"`` and :func:`jepa_lightning.load_encoder` rebuilds."""

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(x)


def exported_backbone(backbone: nn.Module) -> nn.Module:
    """A pooled backbone as ``jepa-lightning export`` writes it, ``x -> (B, D)`` computing what probes read of it
    (:func:`backbone_embedding`): a :class:`PooledTokenBackbone` as the equivalent :class:`TokenEncoder` (mean
    readout), a :class:`TimmBackbone` as the module of its ``readout`` (:meth:`TimmBackbone.encoder`), any other
    backbone as it is."""
    if isinstance(backbone, PooledTokenBackbone):
        return TokenEncoder(backbone.tokens.tokenizer, backbone.tokens.encoder, "mean")
    if isinstance(backbone, TimmBackbone):
        return backbone.encoder()
    return backbone


class TokenEncoder(TokenBackbone):
    """Tokenizer + transformer encoder read out to one vector per sample, ``(B, D')``: a JEPA's encoder as ``embed``
    reads it (and a :class:`PooledTokenBackbone`'s, with ``readout="mean"``), the network that
    :func:`jepa_lightning.load_encoder` rebuilds. See :data:`~jepa_lightning.nn.functional.Readout`."""

    def __init__(self, tokenizer: Tokenizer, encoder: TransformerEncoder, readout: Readout = "mean") -> None:
        super().__init__(tokenizer, encoder)
        check_readout(readout)
        self.readout = readout

    def forward(self, x: ModelInput) -> Tensor:
        encoded, tokens = self.encode(x)
        return read_out(encoded, tokens.layout, self.readout, tokens.valid)
