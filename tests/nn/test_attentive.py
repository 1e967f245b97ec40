"""The attentive probe head against V-JEPA's official AttentivePooler / AttentiveClassifier."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jepa_lightning.nn import AttentiveClassifier, AttentivePooler

# ---- official code, re-typed (test-only) -------------------------------------------------------------------------
# official: facebookresearch/jepa@51c59d518fc63c08464af6de585f78ac0c7ed4d5 src/models/utils/modules.py and
# src/models/attentive_pooler.py (use_sdpa=False path: the same attention written out; dropout 0).


def official_trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    # official: facebookresearch/jepa@51c59d5 src/utils/tensors.py::trunc_normal_
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        lo, up = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * up - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
        return tensor


class OfficialMLP(nn.Module):
    # official: ...@51c59d5 src/models/utils/modules.py::MLP
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class OfficialAttention(nn.Module):
    # official: ...@51c59d5 src/models/utils/modules.py::Attention (use_sdpa=False)
    def __init__(self, dim, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class OfficialBlock(nn.Module):
    # official: ...@51c59d5 src/models/utils/modules.py::Block
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = OfficialAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OfficialMLP(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class OfficialCrossAttention(nn.Module):
    # official: ...@51c59d5 src/models/utils/modules.py::CrossAttention (use_sdpa=False)
    def __init__(self, dim, num_heads=12, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, int(dim * 2), bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q, x):
        b, n, c = q.shape
        q = self.q(q).reshape(b, n, self.num_heads, c // self.num_heads).permute(0, 2, 1, 3)
        b, n_tokens, c = x.shape
        kv = self.kv(x).reshape(b, n_tokens, 2, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        xattn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        q = (xattn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(q)


class OfficialCrossAttentionBlock(nn.Module):
    # official: ...@51c59d5 src/models/utils/modules.py::CrossAttentionBlock
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.xattn = OfficialCrossAttention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OfficialMLP(dim, int(dim * mlp_ratio))

    def forward(self, q, x):
        q = q + self.xattn(q, self.norm1(x))
        return q + self.mlp(self.norm2(q))


class OfficialAttentivePooler(nn.Module):
    # official: ...@51c59d5 src/models/attentive_pooler.py::AttentivePooler (complete_block=True)
    def __init__(
        self, num_queries=1, embed_dim=768, num_heads=12, mlp_ratio=4.0, depth=1, init_std=0.02, qkv_bias=True
    ):
        super().__init__()
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        self.cross_attention_block = OfficialCrossAttentionBlock(embed_dim, num_heads, mlp_ratio, qkv_bias)
        self.blocks = None
        if depth > 1:
            self.blocks = nn.ModuleList(
                [OfficialBlock(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth - 1)]
            )
        self.init_std = init_std
        official_trunc_normal_(self.query_tokens, std=self.init_std)
        self.apply(self._init_weights)
        self._rescale_blocks()

    def _rescale_blocks(self):
        def rescale(param, layer_id):
            param.div_(math.sqrt(2.0 * layer_id))

        rescale(self.cross_attention_block.xattn.proj.weight.data, 1)
        rescale(self.cross_attention_block.mlp.fc2.weight.data, 1)
        if self.blocks is not None:
            for layer_id, layer in enumerate(self.blocks, 1):
                rescale(layer.attn.proj.weight.data, layer_id + 1)
                rescale(layer.mlp.fc2.weight.data, layer_id + 1)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            official_trunc_normal_(m.weight, std=self.init_std)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def forward(self, x):
        q = self.query_tokens.repeat(len(x), 1, 1)
        q = self.cross_attention_block(q, x)
        if self.blocks is not None:
            for blk in self.blocks:
                q = blk(q)
        return q


class OfficialAttentiveClassifier(nn.Module):
    # official: ...@51c59d5 src/models/attentive_pooler.py::AttentiveClassifier
    def __init__(self, embed_dim=768, num_heads=12, mlp_ratio=4.0, depth=1, num_classes=1000):
        super().__init__()
        self.pooler = OfficialAttentivePooler(1, embed_dim, num_heads, mlp_ratio, depth)
        self.linear = nn.Linear(embed_dim, num_classes, bias=True)

    def forward(self, x):
        return self.linear(self.pooler(x).squeeze(1))


# ---- tests ------------------------------------------------------------------------------------------------------


def test_shapes():
    tokens = torch.randn(5, 7, 32)
    assert AttentivePooler(32, 4, num_queries=3, depth=2)(tokens).shape == (5, 3, 32)
    assert AttentiveClassifier(32, 4, num_classes=6)(tokens).shape == (5, 6)
    with pytest.raises(ValueError, match="divisible"):
        AttentiveClassifier(30, 4, num_classes=2)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_matches_the_official_classifier_with_copied_weights(depth):
    ours = AttentiveClassifier(48, 4, num_classes=5, depth=depth)
    official = OfficialAttentiveClassifier(48, 4, depth=depth, num_classes=5)
    official.load_state_dict(ours.state_dict())  # same parameter names: official checkpoints load as they are
    tokens = torch.randn(3, 11, 48)
    torch.testing.assert_close(ours(tokens), official(tokens), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", [1, 2])
def test_initialisation_matches_the_official_one(depth):
    """Same distributions tensor by tensor (torch's trunc_normal_ now samples by rejection, the official copy by
    inverse CDF, so the draws differ): trunc-normal 0.02 queries and weights, residual projections of block l
    divided by sqrt(2 l), zero biases, unit norms, PyTorch's default classifier."""
    torch.manual_seed(3)
    ours = AttentiveClassifier(128, 4, num_classes=64, depth=depth).state_dict()
    official = OfficialAttentiveClassifier(128, 4, depth=depth, num_classes=64).state_dict()
    assert ours.keys() == official.keys()
    for name, value in ours.items():
        reference = official[name]
        assert value.shape == reference.shape, name
        if value.numel() > 1000:  # weights: the spread (within sampling noise) and the truncation at +-2
            assert value.std().item() == pytest.approx(reference.std().item(), rel=0.1), name
            assert value.abs().max() <= 2.0
        elif name.startswith("pooler.cross"):  # biases and norms: exact (zeros and ones)
            torch.testing.assert_close(value, reference, msg=name)
    rescaled = (
        ours["pooler.cross_attention_block.xattn.proj.weight"].std()
        / ours["pooler.cross_attention_block.xattn.q.weight"].std()
    )
    assert rescaled.item() == pytest.approx(1 / math.sqrt(2.0), rel=0.1)


def test_padding_tokens_get_zero_attention():
    torch.manual_seed(0)
    head = AttentiveClassifier(32, 4, num_classes=3, depth=2)
    tokens = torch.randn(2, 9, 32)
    valid = torch.ones(2, 9, dtype=torch.bool)
    valid[0, 6:] = False  # sample 0: 6 real tokens, then padding
    out = head(tokens, valid)
    changed = tokens.clone()
    changed[0, 6:] = 1e3 * torch.randn(3, 32)
    torch.testing.assert_close(head(changed, valid), out)  # padding values do not matter
    torch.testing.assert_close(head(tokens[:1, :6]), out[:1])  # = the unpadded sequence
    assert not torch.allclose(head(tokens)[0], out[0])  # without the mask they would
    # the attention weights themselves: softmax over keys with padding masked -> exactly 0 on padding
    block = head.pooler.cross_attention_block
    q = block.xattn.q(head.pooler.query_tokens.expand(2, -1, -1)).reshape(2, 1, 4, 8).transpose(1, 2)
    k = block.xattn.kv(block.norm1(tokens))[..., :32].reshape(2, 9, 4, 8).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(8)
    weights = scores.masked_fill(~valid[:, None, None, :], float("-inf")).softmax(-1)
    assert (weights[0, :, :, 6:] == 0).all() and torch.allclose(weights.sum(-1), torch.ones(2, 4, 1))
    expected = F.scaled_dot_product_attention(q, k, k, attn_mask=valid[:, None, None, :])
    torch.testing.assert_close(expected, weights @ k)
