"""Graphs: readers (node tables, edge lists, torch-geometric objects, WordNet), node and graph batches, neighbour
sampling, inductive splits, held-out links, texts and input errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import KarateClub

from datamodules.graphs import WORDNET_DEFAULT, Csr, GraphDataModule, build_vocabulary, tokenize
from jepa_lightning.inputs import GraphInput, model_input, paired_input


def karate(**kwargs) -> GraphDataModule:
    defaults = {"dataset": KarateClub(), "batch_size": 8, "val_fraction": 0.25, "num_views": 0}
    return GraphDataModule(**{**defaults, **kwargs})


def write_graph(folder: Path, nodes: int = 12) -> tuple[Path, Path]:
    """A ring of ``nodes`` nodes with two features, a label and a text each, as a node table and an edge table."""
    table = pd.DataFrame(
        {
            "id": [f"n{i}" for i in range(nodes)],
            "a": [float(i) for i in range(nodes)],
            "b": [float(i % 3) for i in range(nodes)],
            "kind": ["even" if i % 2 == 0 else "odd" for i in range(nodes)],
            "text": [f"node number {i} is {'even' if i % 2 == 0 else 'odd'}" for i in range(nodes)],
        }
    )
    edges = pd.DataFrame(
        {"source": [f"n{i}" for i in range(nodes)], "target": [f"n{(i + 1) % nodes}" for i in range(nodes)]}
    )
    table.to_csv(folder / "nodes.csv", index=False)
    edges.to_csv(folder / "edges.csv", index=False)
    return folder / "nodes.csv", folder / "edges.csv"


def test_node_batches_read_their_nodes_in_the_whole_graph():
    dm = karate()
    graph = KarateClub()[0]
    assert dm.input_spec.channels == 34 and dm.input_spec.num_classes == 4 and dm.input_spec.vocab_size is None
    batch = next(iter(dm.train_dataloader()))
    x = model_input(batch)
    assert isinstance(x, GraphInput) and x.batch is None
    torch.testing.assert_close(x.x[x.seeds], graph.x[batch["node"]])
    torch.testing.assert_close(batch["y"], graph.y[batch["node"]])
    assert x.edge_index.shape[1] == graph.edge_index.shape[1]  # every edge of the (transductive) graph


def test_sampled_neighbourhoods_are_real_capped_and_reproducible():
    dm = karate(num_neighbors=[2, 2])
    graph = KarateClub()[0]
    real = set(map(tuple, graph.edge_index.T.tolist()))
    loader = dm.train_dataloader()
    first, again = next(iter(loader)), next(iter(loader))
    for key in ("x", "edge_index", "seeds", "node"):
        torch.testing.assert_close(first[key], again[key])  # the same epoch samples the same neighbourhoods
    nodes, x = first["node"], first["x"]
    assert (first["seeds"] == torch.arange(8)).all()
    # recover global ids of the subgraph's nodes through their (distinct) one-hot features
    ids = x.argmax(1)
    assert (ids[:8] == nodes).all()
    edges = {(int(ids[s]), int(ids[t])) for s, t in first["edge_index"].T.tolist()}
    assert edges <= real
    incoming = torch.bincount(first["edge_index"][1], minlength=len(ids))[:8]
    assert incoming.max() <= 2  # a seed's neighbours are sampled once, at most 2 of them
    loader.sampler.set_epoch(1)
    other = next(iter(loader))
    assert not torch.equal(other["node"], first["node"])


def test_csr_sample_caps_each_node_and_keeps_all_with_minus_one():
    edge_index = torch.tensor([[1, 2, 3, 0, 0], [0, 0, 0, 1, 2]])
    csr = Csr(edge_index, 4)
    src, dst = csr.sample(torch.tensor([0, 1]), 2, torch.Generator().manual_seed(0))
    assert (dst == 0).sum() == 2 and (dst == 1).sum() == 1 and set(src[dst == 0].tolist()) <= {1, 2, 3}
    src, dst = csr.sample(torch.tensor([0]), -1, torch.Generator().manual_seed(0))
    assert sorted(src.tolist()) == [1, 2, 3]


def test_inductive_split_hides_other_splits_nodes():
    dm = karate(graph_split="inductive")
    train = set(dm.indices("train").tolist())
    batch = next(iter(dm.train_dataloader()))
    visible = {int(i) for i in batch["x"].argmax(1)}
    assert visible == train and len(batch["x"]) == len(train)
    val = next(iter(dm.eval_dataloader("val")))
    assert len(val["x"]) == len(dm.indices("val"))


def test_held_out_links_leave_message_passing_and_come_with_negatives():
    dm = karate(link_fraction=0.2)
    pairs, labels = dm.link_prediction_pairs()
    held = pairs[:, labels == 1]
    seen = set(map(tuple, dm.graph.edge_index.T.tolist()))
    assert held.shape[1] == round(0.2 * 78) and not any((a, b) in seen or (b, a) in seen for a, b in held.T.tolist())
    original = set(map(tuple, KarateClub()[0].edge_index.T.tolist()))
    assert not any((a, b) in original for a, b in pairs[:, labels == 0].T.tolist())
    assert (pairs[0] != pairs[1]).all()


def test_node_table_and_edge_list_with_texts(tmp_path):
    nodes, edges = write_graph(tmp_path)
    dm = GraphDataModule(
        nodes=str(nodes), edges=str(edges), label_column="kind", text_column="text", batch_size=4, num_views=0
    )
    spec = dm.input_spec
    assert spec.channels == 2 and spec.num_classes == 2 and spec.vocab_size > 3
    assert dm.class_names == ["even", "odd"]
    batch = next(iter(dm.eval_dataloader("val")))
    assert batch["edge_index"].shape[1] == 24  # the ring, both directions
    ids = paired_input(batch)
    tokens, vocabulary = dm.tokens()
    assert torch.equal(ids, tokens[batch["node"]]) and (ids[:, 0] > 1).all()
    assert set(vocabulary) <= set(" ".join(dm.texts).split())


def test_edge_list_alone_and_whitespace_format(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# a path\na b\nb c\nc d\n")
    dm = GraphDataModule(edges=str(path), batch_size=2, val_fraction=0.25, num_views=0)
    assert dm.input_spec.channels == 2 and dm.graph.num_nodes == 4
    batch = next(iter(dm.train_dataloader()))
    assert batch["y"].tolist() == [-1, -1]


def test_tokenizer_vocabulary_and_padding():
    vocabulary = build_vocabulary(["the cat", "the dog", "a cat"], size=4)
    assert vocabulary == {"cat": 2, "the": 3}
    ids = tokenize(["The cat sat", "", "dog"], vocabulary, length=2)
    assert ids.tolist() == [[3, 2], [1, 0], [1, 0]]


def test_graph_level_batches_and_splits():
    graphs = [
        Data(x=torch.randn(3 + i % 2, 4), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
        for i in range(10)
    ]
    dm = GraphDataModule(dataset=graphs, batch_size=4, val_fraction=0.2, num_views=0)
    assert dm.input_spec.channels == 4 and dm.input_spec.num_classes == 2
    batch = next(iter(dm.train_dataloader()))
    x = model_input(batch)
    assert x.batch is not None and x.seeds.tolist() == [0, 1, 2, 3] and int(x.batch.max()) == 3
    assert len(dm.indices("val")) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, e: t.drop(columns=["kind"]), r"nodes.csv: columns: expected the columns .*'kind'"),
        (lambda t, e: t.assign(a=[float("nan"), *list(t.a[1:])]), r"nodes.csv: column 'a': expected a feature value"),
        (lambda t, e: t.assign(a=["x", *list(t.a[1:])]), r"nodes.csv: column 'a': expected numbers"),
        (lambda t, e: t.assign(id=["n1", *list(t.id[1:])]), r"nodes.csv: column 'id': expected one distinct id"),
        (lambda t, e: t.assign(kind=[None, *list(t.kind[1:])]), r"nodes.csv: column 'kind': expected a label"),
    ],
)
def test_bad_node_tables_fail_naming_file_and_field(tmp_path, change, message):
    nodes, edges = write_graph(tmp_path)
    change(pd.read_csv(nodes), None).to_csv(nodes, index=False)
    with pytest.raises(ValueError, match=message):
        _ = GraphDataModule(
            nodes=str(nodes), edges=str(edges), feature_columns=["a", "b"], label_column="kind", text_column="text"
        ).input_spec


def test_bad_edges_and_sources_fail_before_training(tmp_path):
    nodes, edges = write_graph(tmp_path)
    pd.DataFrame({"source": ["n0", "n1"], "target": ["n1", "ghost"]}).to_csv(edges, index=False)
    with pytest.raises(ValueError, match=r"edges.csv: row 2: expected edges between nodes .* unknown node 'ghost'"):
        _ = GraphDataModule(nodes=str(nodes), edges=str(edges)).input_spec
    pd.DataFrame({"from": ["n0"], "to": ["n1"]}).to_csv(edges, index=False)
    with pytest.raises(ValueError, match=r"edges.csv: columns: expected the edge columns \['source', 'target'\]"):
        _ = GraphDataModule(nodes=str(nodes), edges=str(edges)).input_spec
    bad = Data(x=torch.tensor([[1.0], [float("nan")]]), edge_index=torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r"dataset.x: expected finite node features"):
        _ = GraphDataModule(dataset=bad).input_spec
    with pytest.raises(ValueError, match="one source"):
        GraphDataModule(nodes=str(nodes), edges=str(edges), wordnet="/nowhere")
    with pytest.raises(FileNotFoundError, match="wordnet="):
        _ = GraphDataModule(wordnet=str(tmp_path / "missing")).input_spec


@pytest.mark.skipif(not (Path(WORDNET_DEFAULT) / "data.noun").is_file(), reason="Debian's wordnet is not installed")
def test_wordnet_synsets_glosses_and_hypernyms():
    dm = GraphDataModule(wordnet=WORDNET_DEFAULT, wordnet_nodes=300, batch_size=16, num_views=0)
    spec = dm.input_spec
    assert dm.graph.num_nodes >= 300 and spec.num_classes == len(dm.class_names) > 5
    assert "noun.Tops" in dm.class_names  # entity, the root every chain reaches
    assert any("that which is perceived or known" in text for text in dm.texts)
    batch = next(iter(dm.train_dataloader()))
    assert batch["pair"].shape == (16, 32) and batch["x"].shape[1] == 512
    # a tree closed under hypernyms: connected, one edge fewer than nodes (both directions stored)
    assert dm.graph.edge_index.shape[1] >= 2 * (dm.graph.num_nodes - 1)


def test_similarity_rows_are_congrats_mutual_neighbour_cosines():
    dm = karate(graph_similarity=True)
    batch = next(iter(dm.train_dataloader()))
    # official: wwbrannon/congrat@029844dcdfbd19315fc38cc8a161886745205e0d
    # src/clip_graph/data/dataset.py::GraphDatasetMixin.compute_mutuals
    adjacency = torch.zeros(34, 34).index_put_(tuple(dm.graph.edge_index), torch.tensor(1.0))
    mutual = torch.nn.functional.normalize(adjacency @ adjacency.T, p=2, dim=1)
    torch.testing.assert_close(batch["similarity"], mutual[batch["node"]])
    torch.testing.assert_close(batch["similarity"] @ mutual.T, (mutual @ mutual.T)[batch["node"]])
