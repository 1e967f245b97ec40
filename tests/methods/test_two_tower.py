"""TwoTower and ConGraT: paired batches, the bounded logit scale, the optional terms, clipping, and a CLI fit."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import KarateClub

from datamodules.graphs import GraphDataModule
from jepa_lightning.cli import build_cli
from jepa_lightning.inputs import InputSpec, model_input
from jepa_lightning.methods import ConGraT, TwoTower
from jepa_lightning.nn import GATEncoder, TextEncoder
from tests.conftest import FAST_TRAINER_ARGS, fast_trainer

WORDS = ["officer", "member", "instructor", "administrator"]


def karate_with_texts(**kwargs) -> GraphDataModule:
    """Zachary's karate club with a short text per member naming its community."""
    graph = KarateClub()[0]
    texts = [f"member {i} of the {WORDS[int(label)]} faction" for i, label in enumerate(graph.y)]
    data = Data(x=graph.x, edge_index=graph.edge_index, y=graph.y, text=texts)
    defaults = {"dataset": data, "batch_size": 8, "val_fraction": 0.25}
    return GraphDataModule(**{**defaults, **kwargs})


def tiny_congrat(dm: GraphDataModule, **kwargs) -> ConGraT:
    defaults = {
        "encoder": lambda spec: GATEncoder(spec, hidden=16, num_layers=2, heads=2),
        "pair_encoder": lambda spec: TextEncoder(spec, width=16, depth=1, heads=2, max_length=32),
        "embed_dim": 16,
        "input_spec": dm.input_spec,
    }
    return ConGraT(**{**defaults, **kwargs})


def test_congrat_defaults_follow_the_paper():
    dm = karate_with_texts()
    model = ConGraT(input_spec=dm.input_spec)
    assert model.encoder.embed_dim == 64 and len(model.encoder.layers) == 3
    assert model.encoder.layers[0].conv.heads == 2 and model.encoder.dropout.p == 0.3
    assert model.dropout.p == 0.3 and model.lr == model.min_lr == 1e-4 and model.adam_eps == 1e-4
    assert model.log_scale.item() == pytest.approx(3.5)
    with torch.no_grad():
        model.log_scale.fill_(10.0)
    assert model.logit_scale.item() == pytest.approx(100.0)  # bounded at exp(ln 100)


def test_fit_trains_both_towers_and_embeds_nodes(tmp_path):
    dm = karate_with_texts()
    model = tiny_congrat(dm, supervised_weight=0.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = fast_trainer(tmp_path, max_steps=3, limit_val_batches=1)
    trainer.fit(model, dm)
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert {"encoder", "pair_encoder", "projector", "pair_projector", "log_scale"} <= changed
    assert torch.isfinite(trainer.callback_metrics["train/supervised"])
    assert "val/loss" in trainer.callback_metrics
    batch = next(iter(dm.eval_dataloader("val")))
    assert model.embed(model_input(batch)).shape == (8, 16)


def test_similarity_smoothing_asks_the_datamodule_for_similarities(tmp_path):
    dm = karate_with_texts()
    model = tiny_congrat(dm, similarity_smoothing=0.1)
    assert not dm.graph_similarity
    trainer = fast_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, dm)
    assert dm.graph_similarity and torch.isfinite(trainer.callback_metrics["train/contrastive"])


def test_gradients_are_clipped_at_norm_one_unless_the_trainer_clips(monkeypatch):
    dm = karate_with_texts()
    model = tiny_congrat(dm)
    calls = []
    monkeypatch.setattr(model, "clip_gradients", lambda optimizer, value, algorithm: calls.append((value, algorithm)))
    model.configure_gradient_clipping(None, None, None)
    model.configure_gradient_clipping(None, 0.5, "value")
    assert calls == [(1.0, "norm"), (0.5, "value")]


def test_unpaired_batches_are_refused():
    dm = GraphDataModule(dataset=KarateClub(), batch_size=8, num_views=0)
    spec = InputSpec("graphs", channels=dm.input_spec.channels, vocab_size=10)
    model = TwoTower(encoder=GATEncoder, pair_encoder=TextEncoder, input_spec=spec)
    batch = next(iter(dm.train_dataloader()))
    with pytest.raises(ValueError, match=r"batch\['pair'\]"):
        model.training_step(batch, 0)


def test_fit_from_the_command_line_on_files_written_here(tmp_path: Path, capsys):
    n = 24
    pd.DataFrame(
        {
            "id": range(n),
            "f": [math.sin(i) for i in range(n)],
            "g": [i % 4 for i in range(n)],
            "label": [i % 2 for i in range(n)],
            "text": [f"node {i} {'red' if i % 2 else 'blue'}" for i in range(n)],
        }
    ).to_csv(tmp_path / "nodes.csv", index=False)
    pd.DataFrame({"source": range(n), "target": [(i + 1) % n for i in range(n)]}).to_csv(
        tmp_path / "edges.csv", index=False
    )
    args = [
        "fit",
        "--model=jepa_lightning.methods.ConGraT",
        "--model.init_args.embed_dim=16",
        "--model.init_args.pair_encoder=jepa_lightning.nn.TextEncoder",
        "--model.init_args.pair_encoder.init_args.width=16",
        "--data=datamodules.GraphDataModule",
        f"--data.init_args.nodes={tmp_path / 'nodes.csv'}",
        f"--data.init_args.edges={tmp_path / 'edges.csv'}",
        "--data.init_args.label_column=label",
        "--data.init_args.text_column=text",
        "--data.init_args.link_fraction=0.2",
        "--data.init_args.batch_size=6",
        "--trainer.max_steps=2",
        "--trainer.callbacks+=jepa_lightning.callbacks.LinkPredictionReport",
        "--trainer.callbacks+=jepa_lightning.callbacks.LinearProbeReport",
        "--trainer.callbacks.init_args.plot=false",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--diagnostics=false",
        *FAST_TRAINER_ARGS,
    ]
    build_cli(args)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Link prediction ROC-AUC (cosine of node embeddings):" in text
    assert "pretrained encoder:" in text
