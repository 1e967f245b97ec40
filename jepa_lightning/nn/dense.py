"""Dense (convolutional) networks for JEPA: a sparse ResNet encoder that sees only the context cells of an image, and
the convolutional predictor that fills the other cells of its feature map with a mask token (CNN-JEPA)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import timm
import torch
import torch.nn.functional as F
from timm.models.resnet import ResNet
from torch import Tensor, nn

from jepa_lightning.distributed import all_reduce_sum, is_distributed
from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.backbones import replace_stem
from jepa_lightning.nn.functional import gather_mask_major, gather_tokens
from jepa_lightning.tokens import RecordsArguments, TokenLayout, Tokens


class ActiveCells:
    """Which cells of the final feature map a sparse network sees in the current forward pass: ``(B, 1, h, w)`` bool,
    or None (a dense pass: everything). One per network, shared by its sparse layers (a deep copy, e.g. an EMA
    teacher, gets its own); :meth:`at` upsamples it to any resolution the network runs at."""

    def __init__(self) -> None:
        self.grid: Tensor | None = None
        self.upsampled: dict[tuple[int, int], Tensor] = {}

    def set(self, grid: Tensor | None) -> None:
        self.grid = grid
        self.upsampled = {}

    def at(self, size: tuple[int, int]) -> Tensor | None:
        """The active cells at a feature map of ``size`` ``(H, W)`` (each cell repeated ``H / h`` x ``W / w``), or
        None in a dense pass."""
        if self.grid is None:
            return None
        if size not in self.upsampled:
            (h, w), (height, width) = self.grid.shape[-2:], size
            if height % h or width % w:
                raise ValueError(
                    f"a sparse layer's feature map {size} is not a whole multiple of the final grid {(h, w)}: give "
                    "the sparse encoder images whose sides are multiples of its reduction"
                )
            grid = self.grid.repeat_interleave(height // h, dim=2)
            self.upsampled[size] = grid.repeat_interleave(width // w, dim=3)
        return self.upsampled[size]


def mask_output(output: Tensor, cells: ActiveCells) -> Tensor:
    """``output`` ``(B, C, H, W)`` with the inactive positions set to 0 (unchanged in a dense pass)."""
    active = cells.at(tuple(output.shape[-2:]))
    return output if active is None else output * active.to(output.dtype)


class SparseConv2d(nn.Conv2d):
    """A convolution whose output is 0 at inactive positions (SparK's sparse convolution): masked cells stay empty
    instead of being filled from their visible neighbours."""

    cells: ActiveCells

    def forward(self, x: Tensor) -> Tensor:
        return mask_output(super().forward(x), self.cells)


class SparseMaxPool2d(nn.MaxPool2d):
    """Max pooling whose output is 0 at inactive positions."""

    cells: ActiveCells

    def forward(self, x: Tensor) -> Tensor:
        return mask_output(super().forward(x), self.cells)


class SparseAvgPool2d(nn.AvgPool2d):
    """Average pooling whose output is 0 at inactive positions."""

    cells: ActiveCells

    def forward(self, x: Tensor) -> Tensor:
        return mask_output(super().forward(x), self.cells)


class SparseBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the active positions only (SparK's sparse batch norm: a ``BatchNorm1d`` of the visible
    positions' features), 0 at inactive positions; the running statistics are those of the visible positions.
    Statistics are masked sums, so no host synchronisation; in a dense pass it is ``nn.BatchNorm2d``.

    ``sync=True`` (set by :func:`restore_sparse_batch_norms`, after a conversion to ``nn.SyncBatchNorm``): in training
    under a process group, the masked sums and counts are all-reduced over the ranks
    (:func:`jepa_lightning.distributed.all_reduce_sum`, whose backward sums the gradients as ``SyncBatchNorm``'s
    does), so sparse and dense passes normalise with the global batch's statistics, on any device (CPU gloo too)."""

    cells: ActiveCells
    sync: bool = False

    def forward(self, x: Tensor) -> Tensor:
        active = self.cells.at(tuple(x.shape[-2:]))
        synced = self.sync and self.training and is_distributed()
        if active is None and not synced:
            return super().forward(x)
        values = x.float()
        weight = torch.ones_like(values[:, :1]) if active is None else active.to(torch.float32)
        if self.training or not self.track_running_stats:
            sums = torch.cat([(values * weight).sum(dim=(0, 2, 3)), weight.sum().view(1)])
            if synced:
                sums = all_reduce_sum(sums)
            count = sums[-1].clamp_min(1)
            mean = sums[:-1] / count
            squares = ((values - mean[:, None, None]).square() * weight).sum(dim=(0, 2, 3))
            var = (all_reduce_sum(squares) if synced else squares) / count
            if self.training and self.track_running_stats:
                self.update_running_stats(mean, var * count / (count - 1).clamp_min(1))
        else:
            mean, var = self.running_mean, self.running_var
        normalized = (values - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps)
        if self.affine:
            normalized = normalized * self.weight[:, None, None] + self.bias[:, None, None]
        return (normalized * weight).to(x.dtype)

    @torch.no_grad()
    def update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        """``nn.BatchNorm2d``'s update: momentum, or the cumulative average when ``momentum`` is None."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)


def sparse_copy(layer: nn.Module, cells: ActiveCells) -> nn.Module | None:
    """The sparse counterpart of a convolution, pooling or batch-norm ``layer`` (same arguments, parameters and
    buffers) reading ``cells``; None for other layers."""
    if type(layer) is nn.Conv2d:
        sparse: nn.Module = SparseConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias is not None,
            padding_mode=layer.padding_mode,
        )
    elif type(layer) is nn.MaxPool2d:
        sparse = SparseMaxPool2d(
            layer.kernel_size, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode
        )
    elif type(layer) is nn.AvgPool2d:
        sparse = SparseAvgPool2d(
            layer.kernel_size,
            layer.stride,
            layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
            divisor_override=layer.divisor_override,
        )
    elif type(layer) is nn.BatchNorm2d:
        sparse = SparseBatchNorm2d(
            layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats
        )
    else:
        return None
    sparse.load_state_dict(layer.state_dict())
    sparse.cells = cells
    return sparse


def restore_sparse_batch_norms(module: nn.Module, cells: ActiveCells) -> None:
    """Turn every ``nn.SyncBatchNorm`` under ``module`` into a :class:`SparseBatchNorm2d` reading ``cells`` with
    ``sync=True``, holding the same parameters and buffers (not copies: the optimiser, DDP and the EMA teacher hold
    those tensors). ``nn.SyncBatchNorm.convert_sync_batchnorm``, which Lightning's ``sync_batchnorm=True`` applies,
    replaces every batch norm, the sparse ones included, by a dense ``SyncBatchNorm`` that would count the masked
    positions and, on the CPU, cannot run; the networks of this module call this at the start of their forward pass.
    The synchronised statistics are over the default process group (a converted layer's own group is not kept)."""
    for name, child in module.named_children():
        if not isinstance(child, nn.SyncBatchNorm):
            restore_sparse_batch_norms(child, cells)
            continue
        sparse = SparseBatchNorm2d(
            child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
        )
        for tensors in (sparse._parameters, sparse._buffers):
            for key in tensors:
                tensors[key] = getattr(child, key)
        sparse.cells, sparse.sync = cells, True
        sparse.train(child.training)
        setattr(module, name, sparse)


def sparsify(module: nn.Module, cells: ActiveCells) -> None:
    """Replace, in place, every convolution, max / average pooling and batch norm under ``module`` by its sparse
    counterpart reading ``cells`` (SparK's ``dense_model_to_sparse``); parameter names are unchanged."""
    for name, child in module.named_children():
        sparse = sparse_copy(child, cells)
        if sparse is None:
            sparsify(child, cells)
        else:
            setattr(module, name, sparse)


class SparseResNet(RecordsArguments, nn.Module):
    """A timm ResNet without global pooling, as a JEPA encoder of image cells with sparse convolutions.

    Its tokens are the cells of the final feature map's grid (``reduction`` pixels square, the image's
    :class:`~jepa_lightning.tokenizers.ImageCellTokenizer` with ``cell_size=reduction``), so mask samplers draw on
    that grid. ``forward(tokens, keep)`` reassembles the image, zeroes the pixels of every cell not in ``keep`` and
    runs the network with SparK's semantics (Tian et al., ICLR 2023; keyu-tian/SparK): every convolution and pooling
    output is 0 at masked positions, batch norms use the visible positions' statistics, and each stage's output is
    masked again; so nothing of a masked cell reaches a visible one, through any stage. It returns the kept cells'
    features ``(B, K, D)`` (all cells, a dense pass, when ``keep`` is None), in the order of ``keep``.

    ``model_name`` is a timm ResNet (randomly initialised, nothing is downloaded); ``layers``, ``channels`` and
    ``stem_width`` override its depth per stage, widths and stem width (e.g. a small ResNet for CPU runs);
    ``small_input_stem`` replaces the 7 x 7 / stride-2 stem and max-pool by a 3 x 3 / stride-1 convolution (CIFAR-style,
    for small images: reduction 8 instead of 32); ``output_stride`` (timm's: 8, 16 or 32) dilates the last stages
    instead of striding them, for a finer grid.
    """

    def __init__(
        self,
        spec: InputSpec,
        model_name: str = "resnet50",
        small_input_stem: bool = False,
        layers: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
        stem_width: int | None = None,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        spec.require("channels")
        if model_name.startswith(("hf-hub:", "hf_hub:")):
            raise ValueError(f"SparseResNet({model_name!r}): name a timm ResNet architecture; nothing is downloaded")
        overrides = {"layers": layers, "channels": channels, "stem_width": stem_width}
        model = timm.create_model(
            model_name,
            pretrained=False,
            in_chans=spec.channels,
            num_classes=0,
            global_pool="",
            output_stride=output_stride,
            **{
                key: tuple(value) if isinstance(value, Sequence) else value for key, value in overrides.items() if value
            },
        )
        if not isinstance(model, ResNet):
            raise ValueError(f"SparseResNet needs a timm ResNet, got {model_name!r} ({type(model).__name__})")
        if small_input_stem:
            replace_stem(model, spec.channels, model_name)
        self.cells = ActiveCells()
        sparsify(model, self.cells)
        self.model = model
        self.in_channels = spec.channels
        self.embed_dim = model.num_features
        self.reduction = output_stride // 4 if small_input_stem else output_stride
        #: Width of the tokens it reads: one cell's pixels, ``channels x reduction x reduction``.
        self.token_dim = spec.channels * self.reduction**2

    def stages(self) -> list[Callable[[Tensor], Tensor]]:
        """The stem (convolution, norm, activation, pooling), then the four residual stages."""
        model = self.model
        stem = nn.Sequential(model.conv1, model.bn1, model.act1, model.maxpool)
        return [stem, model.layer1, model.layer2, model.layer3, model.layer4]

    def images(self, tokens: Tokens) -> Tensor:
        """The images ``(B, C, H, W)`` that the cell tokens ``(B, h * w, C * r * r)`` were cut from."""
        features, (h, w), r = tokens.features, tokens.layout.shape, self.reduction
        batch, count, width = features.shape
        if width != self.token_dim or count != h * w:
            raise ValueError(
                f"SparseResNet reads cells of {self.in_channels} x {r} x {r} pixels on its grid (ImageCellTokenizer "
                f"with cell_size={r}); got tokens {tuple(features.shape)} on a {(h, w)} grid"
            )
        cells = features.reshape(batch, h, w, self.in_channels, r, r).permute(0, 3, 1, 4, 2, 5)
        return cells.reshape(batch, self.in_channels, h * r, w * r)

    def forward(self, tokens: Tokens, keep: Tensor | None = None, *, final_norm: bool = True) -> Tensor:
        """The cells' features ``(B, h * w, D)``, or those of the cells ``keep`` ``(B, K)`` (``(B, K, D)``) computed
        from those cells alone; ``final_norm`` must stay True (a ResNet ends in its last block)."""
        if not final_norm:
            raise ValueError("SparseResNet has no final norm to leave out (target_final_norm=False)")
        if tokens.valid is not None:
            raise ValueError("SparseResNet encodes whole images: padded tokens are not supported")
        restore_sparse_batch_norms(self.model, self.cells)
        x, (h, w) = self.images(tokens), tokens.layout.shape
        active = None
        if keep is not None:
            active = torch.zeros(x.shape[0], h * w, dtype=torch.bool, device=x.device).scatter_(1, keep, True)
            active = active.view(-1, 1, h, w)
        self.cells.set(active)
        try:
            x = mask_output(x, self.cells)
            for stage in self.stages():
                x = mask_output(stage(x), self.cells)
        finally:
            self.cells.set(None)
        if tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"SparseResNet's feature map is {tuple(x.shape[-2:])}, its token grid {(h, w)}")
        encoded = x.flatten(2).transpose(1, 2)
        return encoded if keep is None else gather_tokens(encoded, keep)


#: Builds a dense encoder from the data description (in configs: a ``class_path`` whose first argument ``spec`` the
#: model supplies), e.g. ``functools.partial(SparseResNet, model_name="resnet18")``.
DenseEncoderFactory = Callable[[InputSpec], SparseResNet]


class ConvPredictor(nn.Module):
    """CNN-JEPA's predictor: the context cells' features on the grid, a learned mask token in every other cell, then
    ``depth`` x (depthwise ``kernel_size`` convolution + pointwise 1 x 1 convolution + BatchNorm + ReLU) at the
    encoder's width (``separable=False``: one full ``kernel_size`` convolution instead of the pair), read at the
    target cells ``(M * B, Nt, D)`` (mask-major, as :func:`~jepa_lightning.nn.gather_mask_major`); ``normalize``
    L2-normalises each cell's prediction (the official loss normalises predictions and targets per location).

    A cell listed twice in ``context_idx`` (a context padded by repeating one of its cells) is placed once, and its
    gradient is not counted twice. The mask token is trunc-normal (std 0.02, cut at +-0.02), as in the official code.
    """

    def __init__(
        self, embed_dim: int, depth: int = 3, kernel_size: int = 3, separable: bool = True, normalize: bool = True
    ) -> None:
        super().__init__()
        if depth < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"depth must be >= 1 and kernel_size odd, got {depth} and {kernel_size}")
        self.embed_dim = embed_dim
        self.normalize = normalize
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)
        layers: list[nn.Module] = []
        for _ in range(depth):
            if separable:
                layers.append(nn.Conv2d(embed_dim, embed_dim, kernel_size, padding="same", groups=embed_dim))
                layers.append(nn.Conv2d(embed_dim, embed_dim, 1))
            else:
                layers.append(nn.Conv2d(embed_dim, embed_dim, kernel_size, padding="same"))
            layers += [nn.BatchNorm2d(embed_dim), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        #: Always a dense pass: for its batch norms once synchronised (:func:`restore_sparse_batch_norms`).
        self.cells = ActiveCells()

    def feature_map(self, context: Tensor, layout: TokenLayout, context_idx: Tensor) -> Tensor:
        """The grid ``(B, D, h, w)``: context features at ``context_idx``, the mask token everywhere else."""
        batch, cells = context.shape[0], layout.num_tokens
        counts = torch.zeros(batch, cells, device=context.device, dtype=context.dtype)
        counts = counts.scatter_add(1, context_idx, torch.ones_like(context_idx, dtype=context.dtype))
        share = (1 / counts.gather(1, context_idx)).unsqueeze(-1)  # 1 unless a cell is listed more than once
        placed = torch.zeros(batch, cells, context.shape[-1], device=context.device, dtype=context.dtype)
        placed = placed.scatter_add(1, context_idx.unsqueeze(-1).expand_as(context), context * share)
        grid = torch.where((counts > 0).unsqueeze(-1), placed, self.mask_token.to(context.dtype))
        return grid.transpose(1, 2).unflatten(2, layout.shape)

    def forward(
        self,
        context: Tensor,
        layout: TokenLayout,
        context_idx: Tensor,
        target_idx: Tensor,
        valid: Tensor | None = None,
        mask_index: int = 0,
    ) -> Tensor:
        """``context`` ``(B, Nc, D)`` encoded at ``context_idx`` ``(B, Nc)`` of a 2-D ``layout``; ``target_idx``
        ``(B, M, Nt)`` -> predictions ``(M * B, Nt, D)``. ``valid`` must be None and ``mask_index`` 0 (images are not
        padded; one mask token)."""
        if len(layout.shape) != 2 or valid is not None or mask_index != 0:
            raise ValueError(
                "ConvPredictor predicts on a 2-D grid of unpadded images with one mask token, got layout shape "
                f"{layout.shape}, valid={'set' if valid is not None else None}, mask_index={mask_index}"
            )
        restore_sparse_batch_norms(self.layers, self.cells)
        predicted = self.layers(self.feature_map(context, layout, context_idx)).flatten(2).transpose(1, 2)
        if self.normalize:
            predicted = F.normalize(predicted, dim=-1)
        return gather_mask_major(predicted, target_idx)
