"""The feature tokenizer: values against a hand computation, missing values, layout, input checks."""

from __future__ import annotations

import pytest
import torch

from jepa_lightning.tokenizers import FeatureTokenizer, InputSpec, TabularInput

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
