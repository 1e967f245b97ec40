"""The feature tokenizer: values against a hand computation and the official T-JEPA tokenizer, missing values,
layout, positions, input checks."""

from __future__ import annotations

import math

import pytest
import torch

from jepa_lightning.tokenizers import FeatureTokenizer, InputSpec, TabularInput
from jepa_lightning.tokenizers.tabular import token_index_sincos

SPEC = InputSpec("tabular", num_numeric=2, categories=(3, 2), feature_names=("a", "b", "c", "d"))


def test_tokens_match_a_hand_computation() -> None:
    tokenizer = FeatureTokenizer(SPEC, embed_dim=4, num_register_tokens=2)
    numeric = torch.tensor([[0.5, float("nan")], [-2.0, 3.0]])
    codes = torch.tensor([[2, 0], [0, 1]])
    tokens = tokenizer(TabularInput(numeric, codes))
    assert tokens.features.shape == (2, 2 + 4, 4) and tokens.positions.shape == (1, 6, 4)
    w, b, missing = tokenizer.numeric_weight, tokenizer.numeric_bias, tokenizer.missing_token
    table, bias = tokenizer.category_table, tokenizer.category_bias
    expected = torch.stack(
        [
            torch.stack(
                [*tokenizer.register_token[0], 0.5 * w[0] + b[0], missing[1], table[2] + bias[0], table[3] + bias[1]]
            ),
            torch.stack(
                [
                    *tokenizer.register_token[0],
                    -2.0 * w[0] + b[0],
                    3.0 * w[1] + b[1],
                    table[0] + bias[0],
                    table[4] + bias[1],
                ]
            ),
        ]
    )
    torch.testing.assert_close(tokens.features, expected)
    assert tokens.layout.kind == "features" and tokens.layout.shape == (4,) and tokens.layout.num_tokens == 6
    assert tokens.layout.coords.flatten().tolist() == [-2, -1, 0, 1, 2, 3]


def test_numeric_only_tables_take_a_plain_tensor_and_gradients_reach_every_part() -> None:
    tokenizer = FeatureTokenizer(InputSpec("tabular", num_numeric=3, categories=()), embed_dim=8)
    tokens = tokenizer(torch.tensor([[1.0, float("nan"), 0.0]]))
    assert tokens.features.shape == (1, 4, 8) and torch.isfinite(tokens.features).all()
    (tokens.features.sum() + tokens.positions.sum()).backward()
    assert tokenizer.missing_token.grad[1].abs().sum() > 0 and tokenizer.missing_token.grad[0].abs().sum() == 0


def test_bad_inputs_are_rejected() -> None:
    tokenizer = FeatureTokenizer(SPEC, embed_dim=4)
    good = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="TabularInput"):
        tokenizer(good)
    with pytest.raises(ValueError, match=r"float \(B, 2\)"):
        tokenizer(TabularInput(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"long \(B, 2\)"):
        tokenizer(TabularInput(good, torch.zeros(2, 2)))
    with pytest.raises(ValueError, match="cardinalit"):
        tokenizer(TabularInput(good, torch.tensor([[3, 0], [0, 0]])))
    with pytest.raises(ValueError, match="inf"):
        tokenizer(TabularInput(torch.tensor([[float("inf"), 0.0], [0.0, 0.0]]), torch.zeros(2, 2, dtype=torch.long)))
    with pytest.raises(ValueError, match="lacks num_numeric"):
        FeatureTokenizer(InputSpec("images", channels=1), embed_dim=4)


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/utils/train_utils.py::PositionalEncoding
def official_positional_encoding(num_tokens: int, d_model: int) -> torch.Tensor:
    pe = torch.zeros(num_tokens, d_model)
    position = torch.arange(0, num_tokens, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(100.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


# official: jose-melo/t-jepa@98dda991dd5e5d12266b3557aa80a33c4e0a6606 src/encoder.py::Tokenizer.forward
def official_tokenizer(weight, bias, category_embeddings, n_cls_tokens, x_num, x_cat) -> torch.Tensor:
    x_num = torch.cat([torch.ones(len(x_num), n_cls_tokens), x_num], dim=1)
    x = weight[None] * x_num[:, :, None]
    x_cat_embedded = torch.stack([table[x_cat[:, i]] for i, table in enumerate(category_embeddings)], dim=1)
    x = torch.cat([x, x_cat_embedded], dim=1)
    return x + torch.cat([torch.zeros(n_cls_tokens, bias.shape[1]), bias])[None]


def test_sincos_positions_are_the_official_positional_encoding() -> None:
    torch.testing.assert_close(token_index_sincos(12, 64), official_positional_encoding(12, 64))
    tokenizer = FeatureTokenizer(SPEC, embed_dim=8, num_register_tokens=2, positions="sincos")
    torch.testing.assert_close(tokenizer.feature_positions[0], official_positional_encoding(6, 8))
    assert not any(name == "feature_positions" for name, _ in tokenizer.named_parameters())
    with pytest.raises(ValueError, match="positions"):
        FeatureTokenizer(SPEC, embed_dim=8, positions="rope")


def test_tokens_plus_positions_match_the_official_tokenizer_with_copied_weights() -> None:
    """The official tokenizer (+ its positional encoding) and ours agree once ours holds the same weights: its
    weight rows are [regularisation tokens; numeric weights], its bias rows [numeric; categorical] biases."""
    tokenizer = FeatureTokenizer(SPEC, embed_dim=8, num_register_tokens=2, positions="sincos")
    weight = torch.cat([tokenizer.register_token[0], tokenizer.numeric_weight]).detach()
    bias = torch.cat([tokenizer.numeric_bias, tokenizer.category_bias]).detach()
    tables = [tokenizer.category_table[:3].detach(), tokenizer.category_table[3:].detach()]
    numeric, codes = torch.randn(5, 2), torch.stack([torch.randint(0, 3, (5,)), torch.randint(0, 2, (5,))], 1)
    expected = official_tokenizer(weight, bias, tables, 2, numeric, codes) + official_positional_encoding(6, 8)
    tokens = tokenizer(TabularInput(numeric, codes))
    torch.testing.assert_close(tokens.features + tokens.positions, expected)
