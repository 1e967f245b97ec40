"""The graph tower of two-tower methods: a graph attention network over node features and edges (ConGraT's; its text
tower is :class:`~jepa_lightning.nn.text.TextEncoder`). The only network module that needs torch-geometric."""

from __future__ import annotations

import math
import warnings

import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.inputs import GraphInput, InputSpec
from jepa_lightning.tokens import RecordsArguments

with warnings.catch_warnings():  # torch-geometric scripts helpers with torch.jit at import, which torch deprecates
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torch_geometric.nn import GATConv, global_mean_pool


class GATLayer(nn.Module):
    """ConGraT's GAT block: ``GATConv`` (heads concatenated) -> ``Linear`` -> GELU -> ``Linear`` -> ``LayerNorm``."""

    def __init__(self, width: int, heads: int, dropout: float, feedforward: int) -> None:
        super().__init__()
        self.conv = GATConv(width, width, heads=heads, dropout=dropout, concat=True)
        self.linear1 = nn.Linear(width * heads, feedforward)
        self.linear2 = nn.Linear(feedforward, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.norm(self.linear2(F.gelu(self.linear1(self.conv(x, edge_index)))))


class GATEncoder(RecordsArguments, nn.Module):
    """Graph attention network node encoder (ConGraT's ``GATMod``): input dropout, a linear embedding of the node
    features scaled by ``sqrt(hidden)``, then ``num_layers`` residual :class:`GATLayer` s; the items of a
    :class:`~jepa_lightning.inputs.GraphInput` are read out as their seed nodes' states (node level) or the mean over
    their nodes (graph level). ``embed_dim`` = ``hidden``. Defaults: the ConGraT paper's (hidden 64, 3 layers, 2
    heads, dropout 0.3, feed-forward 128). Records its arguments, so ``jepa-lightning export`` writes it and
    :func:`~jepa_lightning.load_encoder` rebuilds it."""

    def __init__(
        self,
        spec: InputSpec,
        hidden: int = 64,
        num_layers: int = 3,
        heads: int = 2,
        dropout: float = 0.3,
        feedforward: int = 128,
    ) -> None:
        super().__init__()
        spec.require("channels")
        if num_layers < 1:
            raise ValueError(f"GATEncoder needs num_layers >= 1, got {num_layers}")
        self.embed_dim = hidden
        self.dropout = nn.Dropout(dropout)
        self.embed = nn.Linear(spec.channels, hidden)  # type: ignore[arg-type]  # required above
        self.layers = nn.ModuleList(GATLayer(hidden, heads, dropout, feedforward) for _ in range(num_layers))

    def nodes(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The state ``(N, hidden)`` of every node of the (sub)graph."""
        h = self.embed(self.dropout(x)) * math.sqrt(self.embed_dim)
        for layer in self.layers:
            h = h + layer(h, edge_index)
        return h

    def forward(self, graph: GraphInput) -> Tensor:
        h = self.nodes(graph.x, graph.edge_index)
        if graph.batch is None:
            return h[graph.seeds]
        return global_mean_pool(h, graph.batch, size=graph.seeds.shape[0])
