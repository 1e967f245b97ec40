"""Backbones: the networks whose representations a method learns and probes evaluate."""

from __future__ import annotations

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
    """

    def __init__(
        self,
        spec: InputSpec,
        model_name: str = "resnet18",
        small_input_stem: bool = False,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        spec.require("channels")
        if model_name.startswith(("hf-hub:", "hf_hub:")):
            raise ValueError(
                f"TimmBackbone({model_name!r}): models from the Hugging Face Hub are not loaded (that downloads "
                "files); name a timm architecture such as 'resnet18', which is built locally and randomly initialised"
            )
        self.model = timm.create_model(model_name, pretrained=False, in_chans=spec.channels, num_classes=0)
        if small_input_stem:
            replace_stem(self.model, spec.channels, model_name)
        self.embed_dim = self.model.num_features
        self.channels_last = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


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
