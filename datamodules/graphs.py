"""Graphs on torch-geometric's ``Data``: node tables and edge lists, WordNet, or a torch-geometric data set passed in.

Two levels. **Node level** (one graph; the items are its nodes): the train / val / test splits are node splits of
the base class, and each batch is the neighbourhood its nodes' encoder sees: ``{"x": float (N_sub, F) node features,
"edge_index": long (2, E_sub), "seeds": long (B,) the batch's nodes in x, "y": long (B,), "node": long (B,) their ids,
"pair": long (B, L) the token ids of their texts (when the nodes have texts), "similarity": float (B, N) (with
``graph_similarity``)}``. ``num_neighbors=None`` gives every batch the whole graph its split may see (ConGraT's
batches); ``num_neighbors=[k1, k2, ...]`` samples at most ``k_h`` neighbours per node and hop (``-1``: all) around the
batch's nodes, for graphs too large for one pass. The sampler is plain torch: torch-geometric's ``NeighborLoader``
needs the ``pyg-lib`` or ``torch-sparse`` extension packages, which do not install here; its draws are seeded by
(seed, epoch, node), so a resumed run samples the same neighbourhoods. ``graph_split="inductive"`` lets each split's
message passing see only the edges among its own nodes (ConGraT's inductive setting), "transductive" every edge.
``link_fraction`` holds edges out of every split's message passing for the link-prediction probe
(:meth:`GraphDataModule.link_prediction_pairs`). **Graph level** (a torch-geometric data set of many graphs; the items
are graphs): splits of graphs, batches ``{"x", "edge_index", "batch": long (N,) graph of each node, "seeds": arange(B),
"y"}`` from torch-geometric's ``Batch``.

Node texts are tokenised with a word vocabulary built from the texts of the training split (0 = padding, 1 =
unknown, then the most frequent words). Bad input fails before training with an error naming the file and field:
missing columns, duplicate node ids, edges to nodes the node table lacks, non-numeric, NaN or infinite features,
missing labels or texts.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.base import SampleSource, SSLDataModule, Transform, invalid, require_path
from datamodules.tables import numeric_values, read_table
from jepa_lightning.inputs import InputSpec

with warnings.catch_warnings():  # torch-geometric scripts helpers with torch.jit at import, which torch deprecates
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

GraphLevel = Literal["node", "graph"]
GraphSplit = Literal["transductive", "inductive"]
PAD, UNKNOWN = 0, 1
WORD = re.compile(r"[a-z0-9]+")
#: WordNet's lexicographer files by number (the ``lex_filenum`` field of its data files; see lexnames(5WN)).
WORDNET_LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
WORDNET_DEFAULT = "/usr/share/wordnet"


def words(text: str) -> list[str]:
    """Lower-case words and numbers of ``text`` (the node-text tokenizer's pre-tokenisation)."""
    return WORD.findall(text.lower())


def build_vocabulary(texts: Sequence[str], size: int) -> dict[str, int]:
    """Word -> id for the ``size - 2`` most frequent words of ``texts`` (ties in alphabetical order), from id 2."""
    counts = Counter(word for text in texts for word in words(text))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))[: max(size - 2, 0)]
    return {word: index + 2 for index, word in enumerate(ranked)}


def tokenize(texts: Sequence[str], vocabulary: dict[str, int], length: int) -> Tensor:
    """Token ids ``(len(texts), length)``: each text's words (unknown ones 1), cut at ``length``, padded with 0; a
    text without words is one unknown token."""
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    for row, text in enumerate(texts):
        tokens = [vocabulary.get(word, UNKNOWN) for word in words(text)][:length] or [UNKNOWN]
        ids[row, : len(tokens)] = torch.tensor(tokens)
    return ids


def hashed_bag_of_words(texts: Sequence[str], width: int) -> Tensor:
    """L2-normalised counts of the words of each text hashed (CRC32) into ``width`` buckets, ``(len(texts), width)``."""
    features = torch.zeros(len(texts), width)
    for row, text in enumerate(texts):
        for word in words(text):
            features[row, zlib.crc32(word.encode()) % width] += 1.0
    return torch.nn.functional.normalize(features, dim=1)


def read_wordnet(folder: Path, max_nodes: int, feature_dim: int, seed: int) -> tuple[Data, list[str], list[str]]:
    """A connected subset of WordNet's noun synsets: the graph, the glosses (node texts) and the class names.

    Synsets are taken in a seeded random order, each with its chain of hypernyms up to ``entity``, until at least
    ``max_nodes`` are in; edges are the hypernym / instance-hypernym links among them (made undirected: each is also
    the inverse hyponym link); the label is the
    lexicographer file (``noun.animal``, ``noun.artifact``, ...).

    Features hash the synset's lemma words and gloss (:func:`hashed_bag_of_words`): node features derived from the
    node's text, as ConGraT's data sets have them (bag-of-words or language-model embeddings of the text)."""
    path = folder / "data.noun"
    if not path.is_file():
        raise invalid(f"wordnet={str(folder)!r}", "a WordNet dict folder with data.noun", "no data.noun there")
    synsets: dict[str, tuple[int, list[str], list[str], str]] = {}
    with path.open(encoding="latin-1") as file:
        for number, line in enumerate(file, start=1):
            if line.startswith("  "):
                continue  # the licence header
            data, _, gloss = line.partition(" | ")
            fields = data.split()
            try:
                count = int(fields[3], 16)
                lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
                at = 4 + 2 * count
                pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
                hypernyms = [offset for symbol, offset, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
                synsets[fields[0]] = (int(fields[1]), lemmas, hypernyms, gloss.strip())
            except (IndexError, ValueError) as error:
                raise invalid(f"{path}:{number}", "a WordNet data line", f"{line[:60]!r} ({error})") from error
    offsets = sorted(synsets)
    chosen: dict[str, int] = {}
    for position in torch.randperm(len(offsets), generator=torch.Generator().manual_seed(seed)).tolist():
        if len(chosen) >= max_nodes:
            break
        stack = [offsets[position]]
        while stack:
            offset = stack.pop()
            if offset not in chosen:
                chosen[offset] = len(chosen)
                stack += synsets[offset][2]
    order = sorted(chosen)
    index = {offset: i for i, offset in enumerate(order)}
    edges = [(index[o], index[h]) for o in order for h in synsets[o][2] if h in index]
    lexnames = sorted({WORDNET_LEXNAMES[synsets[o][0]] for o in order})
    labels = torch.tensor([lexnames.index(WORDNET_LEXNAMES[synsets[o][0]]) for o in order])
    edge_index = to_undirected(torch.tensor(edges, dtype=torch.long).T, num_nodes=len(order))
    features = hashed_bag_of_words([" ".join([*synsets[o][1], synsets[o][3]]) for o in order], feature_dim)
    glosses = [synsets[o][3] for o in order]
    return Data(x=features, edge_index=edge_index, y=labels, num_nodes=len(order)), glosses, lexnames


def class_indices(values: pd.Series, where: str) -> tuple[Tensor, list[str]]:
    """Labels as class indices in sorted order of their string values; missing labels are an error naming ``where``."""
    if values.isna().any():
        raise invalid(where, "a label for every node", f"{int(values.isna().sum())} missing")
    text = values.map(str)
    names = sorted(set(text))
    return torch.tensor([names.index(value) for value in text]), names


def read_node_table(
    path: Path, id_column: str, feature_columns: Sequence[str] | None, label_column: str | None, text_column: str | None
) -> tuple[list[str], Tensor, Tensor | None, list[str] | None, list[str] | None]:
    """Node ids, features, labels (and class names) and texts of a CSV / TSV / Parquet node table."""
    frame = read_table(path)
    named = [id_column, *(feature_columns or []), *(c for c in (label_column, text_column) if c is not None)]
    missing = [name for name in named if name not in frame.columns]
    if missing:
        raise invalid(
            f"{path}: columns", f"the columns {missing} (id_column / feature_columns / ...)", list(frame.columns)
        )
    ids = frame[id_column].map(str)
    if frame[id_column].isna().any() or ids.duplicated().any():
        raise invalid(
            f"{path}: column {id_column!r}", "one distinct id per node", f"duplicates {list(ids[ids.duplicated()])[:3]}"
        )
    others = [name for name in frame.columns if name not in (id_column, label_column, text_column)]
    columns = (
        list(feature_columns)
        if feature_columns is not None
        else [name for name in others if pd.api.types.is_numeric_dtype(frame[name])]
    )
    features = []
    for name in columns:
        values = numeric_values(frame[name], f"{path}: column {name!r}")
        if np.isnan(values).any():
            raise invalid(
                f"{path}: column {name!r}",
                "a feature value for every node",
                f"{int(np.isnan(values).sum())} missing (NaN)",
            )
        features.append(values)
    x = torch.tensor(np.stack(features, axis=1), dtype=torch.float32) if features else None
    labels, names = (
        class_indices(frame[label_column], f"{path}: column {label_column!r}") if label_column else (None, None)
    )
    texts = None
    if text_column is not None:
        if frame[text_column].isna().any():
            raise invalid(
                f"{path}: column {text_column!r}",
                "a text for every node",
                f"{int(frame[text_column].isna().sum())} missing",
            )
        texts = frame[text_column].map(str).tolist()
    return ids.tolist(), x if x is not None else torch.empty(len(ids), 0), labels, names, texts


def read_edge_list(path: Path, columns: Sequence[str], ids: dict[str, int] | None) -> tuple[Tensor, list[str]]:
    """Edges ``(2, E)`` of a CSV / TSV table (``columns`` name source and target) or a whitespace-separated text file
    (two ids per line, ``#`` comments); ids index the node table's ``ids``, or, without one, the sorted ids found."""
    if path.suffix.lower() in (".csv", ".tsv", ".parquet"):
        frame = read_table(path)
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise invalid(f"{path}: columns", f"the edge columns {list(columns)}", list(frame.columns))
        pairs = frame[list(columns)]
    else:
        pairs = pd.read_csv(path, sep=r"\s+", header=None, comment="#", dtype=str, engine="python")
        if pairs.shape[1] < 2:
            raise invalid(path, "two node ids per line", f"{pairs.shape[1]} column(s)")
        pairs = pairs.iloc[:, :2]
    if pairs.isna().any().any():
        raise invalid(path, "a source and a target on every edge", f"{int(pairs.isna().any(axis=1).sum())} incomplete")
    source, target = (pairs.iloc[:, i].map(str).tolist() for i in range(2))
    names = sorted(set(source) | set(target)) if ids is None else list(ids)
    known = ids if ids is not None else {name: i for i, name in enumerate(names)}
    for row, (a, b) in enumerate(zip(source, target), start=1):
        if a not in known or b not in known:
            raise invalid(
                f"{path}: row {row}",
                "edges between nodes of the node table",
                f"unknown node {a if a not in known else b!r}",
            )
    return torch.tensor([[known[a] for a in source], [known[b] for b in target]], dtype=torch.long), names


def pair_codes(edge_index: Tensor, num_nodes: int) -> Tensor:
    """One integer per edge that is the same for both of its directions."""
    return edge_index.min(0).values * num_nodes + edge_index.max(0).values


class Csr:
    """Incoming edges of a graph in compressed rows: the sources of node ``v`` are ``col[rowptr[v]:rowptr[v + 1]]``."""

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        order = torch.argsort(edge_index[1] * num_nodes + edge_index[0])
        self.col = edge_index[0, order]
        counts = torch.bincount(edge_index[1], minlength=num_nodes)
        self.rowptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])

    def sample(self, frontier: Tensor, cap: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(sources, targets)`` of at most ``cap`` incoming edges of each frontier node (all when ``cap < 0``),
        drawn without replacement."""
        degree = self.rowptr[frontier + 1] - self.rowptr[frontier]
        owner = torch.repeat_interleave(torch.arange(len(frontier)), degree)
        first = torch.repeat_interleave(degree.cumsum(0) - degree, degree)
        edge = torch.repeat_interleave(self.rowptr[frontier], degree) + torch.arange(len(owner)) - first
        if cap >= 0:
            score = owner.double() + torch.rand(len(owner), generator=generator, dtype=torch.float64)
            order = torch.argsort(score)
            keep = order[(torch.arange(len(owner)) - first[order]) < cap]
            edge, owner = edge[keep], owner[keep]
        return self.col[edge], frontier[owner]


def first_occurrences(nodes: Tensor) -> Tensor:
    """The distinct values of ``nodes`` in the order of their first occurrence."""
    unique, inverse = torch.unique(nodes, return_inverse=True)
    first = torch.full((len(unique),), len(nodes), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(nodes)), "amin")
    return unique[torch.argsort(first)]


class NodeBatcher:
    """Collates node items ``{"x": (node, draw), "y": label}`` into the node-level batch contract for one split.

    Holds the split's visible graph (a picklable object, so DataLoader workers can use it). With ``num_neighbors``
    None every batch gets the whole visible graph; otherwise a neighbourhood sampled hop by hop from a generator
    seeded by the items' draws (deterministic per (seed, epoch, node) in training, fixed in evaluation).
    """

    def __init__(
        self,
        graph: Data,
        visible: Tensor,
        num_neighbors: Sequence[int] | None,
        tokens: Tensor | None,
        similarity: Tensor | None,
    ) -> None:
        edge_index = graph.edge_index
        keep = visible[edge_index[0]] & visible[edge_index[1]]
        self.num_nodes = graph.num_nodes
        self.x = graph.x
        self.edge_index = edge_index[:, keep]
        self.visible = visible
        self.num_neighbors = None if num_neighbors is None else list(num_neighbors)
        self.csr = Csr(self.edge_index, self.num_nodes)
        self.tokens = tokens
        self.similarity = similarity
        # the whole visible graph, relabelled once (num_neighbors None)
        self.members = visible.nonzero().flatten()
        self.local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        self.local[self.members] = torch.arange(len(self.members))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        nodes = torch.tensor([item["x"][0] for item in items], dtype=torch.long)
        batch: dict[str, Tensor] = {"y": torch.tensor([item["y"] for item in items]), "node": nodes}
        if self.num_neighbors is None:
            batch |= {"x": self.x[self.members], "edge_index": self.local[self.edge_index], "seeds": self.local[nodes]}
        else:
            draws = sum(int(item["x"][1]) for item in items) % 2**63
            batch |= self.sampled(nodes, torch.Generator().manual_seed(draws))
        if self.tokens is not None:
            batch["pair"] = self.tokens[nodes]
        if self.similarity is not None:
            batch["similarity"] = self.similarity.index_select(0, nodes).to_dense()
        return batch

    def sampled(self, seeds: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """The sampled neighbourhood of ``seeds``: its features, relabelled edges and the seeds' positions (first).
        Hop ``h`` samples the incoming edges of the nodes first reached at hop ``h - 1`` (torch-geometric's
        ``NeighborLoader`` semantics)."""
        frontier, sources, targets = seeds, [], []
        visited = torch.zeros(self.num_nodes, dtype=torch.bool).index_fill_(0, seeds, True)
        for cap in self.num_neighbors or []:
            src, dst = self.csr.sample(frontier, cap, generator)
            sources.append(src)
            targets.append(dst)
            reached = first_occurrences(src)
            frontier = reached[~visited[reached]]  # each node's neighbours are sampled once, at its first hop
            visited[frontier] = True
        src, dst = torch.cat([seeds[:0], *sources]), torch.cat([seeds[:0], *targets])
        nodes = first_occurrences(torch.cat([seeds, src]))
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[nodes] = torch.arange(len(nodes))
        edge_index = coalesce(torch.stack([local[src], local[dst]]), num_nodes=len(nodes))
        return {"x": self.x[nodes], "edge_index": edge_index, "seeds": torch.arange(len(seeds))}


class GraphBatcher:
    """Collates graph items ``{"x": graph index, "y": label}`` with torch-geometric's ``Batch``."""

    def __init__(self, graphs: Sequence[Data]) -> None:
        self.graphs = graphs

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        batch = Batch.from_data_list([self.graphs[int(item["x"][0])] for item in items])
        return {
            "x": batch.x.float(),
            "edge_index": batch.edge_index,
            "batch": batch.batch,
            "seeds": torch.arange(len(items)),
            "y": torch.tensor([item["y"] for item in items]),
        }


class ItemSource(SampleSource):
    """The items (nodes or graphs) by index; the graph itself lives in the batchers."""

    def __init__(self, labels: Tensor) -> None:
        self.labels = labels

    def load(self, index: int) -> int:
        return index


def with_draw(index: int) -> tuple[int, int]:
    """A training item: its index and a draw from the per-sample seeded RNG (seeds its neighbourhood sampling)."""
    return index, int(torch.randint(0, 2**62, ()))


def without_draw(index: int) -> tuple[int, int]:
    """An evaluation item: its index and a fixed draw."""
    return index, 0


class GraphDataModule(SSLDataModule):
    """Node- or graph-level data on torch-geometric (see the module docstring for the batch contracts).

    Exactly one source: ``nodes`` (a CSV / TSV / Parquet node table: ``id_column``, numeric ``feature_columns``
    (default: every other numeric column), optional ``label_column`` and ``text_column``) with ``edges`` (an edge
    table with ``edge_columns``, or a text edge list), ``edges`` alone (features: a constant and ``log(1 + degree)``),
    ``wordnet`` (a WordNet dict folder, e.g. Debian's ``/usr/share/wordnet``: ``wordnet_nodes`` noun synsets, their
    glosses as texts, hypernym links as edges, the lexicographer file as label, hashed lemma and gloss words as
    features) or ``dataset`` (a torch-geometric
    ``Data``, or a data set of them: one graph is node level, several graph level; node texts from a ``text``
    attribute). ``undirected`` adds the reverse of every edge. ``test_fraction`` holds items out as the test split.

    Args:
        level: "node" or "graph"; default: graph level for a data set of several graphs.
        graph_split: "transductive" (every split's message passing sees every edge) or "inductive" (only the edges
            among the split's own nodes; the training split never sees a validation node).
        num_neighbors: None (every batch: the whole visible graph) or neighbours sampled per hop (-1: all).
        link_fraction: share of the (undirected) edges held out of message passing for the link-prediction probe.
        vocab_size, max_text_length: the node-text tokenizer (built from the training split's texts).
        graph_similarity: add each batch node's row of ConGraT's mutual-neighbour similarity (the L2-normalised row
            of ``A A^T``, dense ``(B, N)``); a method that smooths its targets with it turns it on itself.
        feature_dim: width of WordNet's hashed word features.
    """

    def __init__(
        self,
        nodes: str | None = None,
        edges: str | None = None,
        wordnet: str | None = None,
        dataset: Any = None,
        id_column: str = "id",
        feature_columns: list[str] | None = None,
        label_column: str | None = None,
        text_column: str | None = None,
        edge_columns: tuple[str, str] = ("source", "target"),
        undirected: bool = True,
        level: GraphLevel | None = None,
        graph_split: GraphSplit = "transductive",
        num_neighbors: list[int] | None = None,
        link_fraction: float = 0.0,
        vocab_size: int = 8000,
        max_text_length: int = 32,
        graph_similarity: bool = False,
        wordnet_nodes: int = 3000,
        feature_dim: int = 512,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> None:
        """``kwargs``: the split, loader and seeding settings of :class:`SSLDataModule`."""
        super().__init__(batch_size=batch_size, **kwargs)
        given = [
            name for name, value in (("nodes", nodes), ("wordnet", wordnet), ("dataset", dataset)) if value is not None
        ]
        if len(given) > 1 or (not given and edges is None):
            raise invalid(
                "nodes/edges/wordnet/dataset", "one source: nodes (+ edges), edges, wordnet or dataset", given or "none"
            )
        if nodes is not None and edges is None:
            raise invalid("edges", "an edge list beside the node table", "None")
        if graph_split not in ("transductive", "inductive"):
            raise invalid("graph_split", "'transductive' or 'inductive'", repr(graph_split))
        if level not in (None, "node", "graph"):
            raise invalid("level", "None, 'node' or 'graph'", repr(level))
        if num_neighbors is not None and (not num_neighbors or any(k < -1 or k == 0 for k in num_neighbors)):
            raise invalid("num_neighbors", "None or a list of per-hop caps >= 1 (-1: all)", repr(num_neighbors))
        if not 0.0 <= link_fraction < 1.0:
            raise invalid("link_fraction", "a fraction in [0, 1)", repr(link_fraction))
        if vocab_size < 3 or max_text_length < 1:
            raise invalid(
                "vocab_size/max_text_length",
                "vocab_size >= 3 and max_text_length >= 1",
                repr((vocab_size, max_text_length)),
            )
        self.nodes, self.edges, self.wordnet, self.dataset = nodes, edges, wordnet, dataset
        self.id_column, self.feature_columns = id_column, feature_columns
        self.label_column, self.text_column, self.edge_columns = label_column, text_column, tuple(edge_columns)
        self.undirected, self.level, self.graph_split = undirected, level, graph_split
        self.num_neighbors, self.link_fraction = num_neighbors, link_fraction
        self.vocab_size, self.max_text_length = vocab_size, max_text_length
        self.graph_similarity, self.wordnet_nodes, self.feature_dim = graph_similarity, wordnet_nodes, feature_dim
        self.graph: Data | None = None
        self.graphs: list[Data] | None = None
        self.texts: list[str] | None = None
        self.class_names: list[str] | None = None
        self.link_edges: Tensor | None = None
        self._tokens: tuple[Tensor, dict[str, int]] | None = None
        self._similarity: Tensor | None = None

    # ----------------------------------------------------------------- reading

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        if self.dataset is not None and self._graph_level_dataset():
            self.graphs = [self._checked_graph(self.dataset[i], f"dataset[{i}]") for i in range(len(self.dataset))]
            labels = torch.tensor([int(g.y.reshape(-1)[0]) if g.y is not None else -1 for g in self.graphs])
            return ItemSource(labels), None
        graph = self._read_graph()
        if self.undirected:
            graph.edge_index = to_undirected(graph.edge_index, num_nodes=graph.num_nodes)
        graph.edge_index = coalesce(remove_self_loops(graph.edge_index)[0], num_nodes=graph.num_nodes)
        self.graph = self._hold_out_links(graph)
        labels = graph.y if graph.y is not None else torch.full((graph.num_nodes,), -1)
        return ItemSource(labels.long().reshape(-1)), None

    def _graph_level_dataset(self) -> bool:
        several = not isinstance(self.dataset, Data) and len(self.dataset) > 1
        if self.level == "node" and several:
            raise invalid("level", "'graph' for a data set of several graphs", "'node'")
        return self.level == "graph" or (self.level is None and several)

    def _read_graph(self) -> Data:
        if self.wordnet is not None:
            folder = require_path(self.wordnet, "wordnet")
            graph, self.texts, self.class_names = read_wordnet(folder, self.wordnet_nodes, self.feature_dim, self.seed)
            return graph
        if self.dataset is not None:
            graph = self.dataset if isinstance(self.dataset, Data) else self.dataset[0]
            graph = self._checked_graph(graph, "dataset")
            text = getattr(graph, "text", None)
            self.texts = list(text) if text is not None else None
            return Data(x=graph.x.float(), edge_index=graph.edge_index, y=graph.y, num_nodes=graph.num_nodes)
        assert self.edges is not None  # one source is given (checked in __init__)
        edges_path = require_path(self.edges, "edges")
        if self.nodes is None:
            edge_index, names = read_edge_list(edges_path, self.edge_columns, None)
            degree = torch.bincount(edge_index.flatten(), minlength=len(names)).float()
            x = torch.stack([torch.ones_like(degree), degree.log1p()], dim=1)
            return Data(x=x, edge_index=edge_index, num_nodes=len(names))
        nodes_path = require_path(self.nodes, "nodes")
        ids, x, labels, self.class_names, self.texts = read_node_table(
            nodes_path, self.id_column, self.feature_columns, self.label_column, self.text_column
        )
        if x.shape[1] == 0:
            raise invalid(f"{nodes_path}: columns", "at least one numeric feature column", "none")
        edge_index, _ = read_edge_list(edges_path, self.edge_columns, {name: i for i, name in enumerate(ids)})
        return Data(x=x, edge_index=edge_index, y=labels, num_nodes=len(ids))

    @staticmethod
    def _checked_graph(graph: Data, where: str) -> Data:
        """A torch-geometric graph with finite node features ``x`` and edges between its nodes."""
        if getattr(graph, "x", None) is None or graph.x.ndim != 2:
            raise invalid(f"{where}.x", "node features (N, F)", "none" if graph.x is None else tuple(graph.x.shape))
        if not torch.isfinite(graph.x.float()).all():
            raise invalid(
                f"{where}.x",
                "finite node features",
                f"{int((~torch.isfinite(graph.x.float())).sum())} NaN / inf values",
            )
        edge_index = graph.edge_index
        if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= graph.num_nodes):
            raise invalid(f"{where}.edge_index", f"node indices in [0, {graph.num_nodes})", f"{int(edge_index.max())}")
        return graph

    def _hold_out_links(self, graph: Data) -> Data:
        """Remove ``link_fraction`` of the undirected edges (both directions) from the graph, kept in ``link_edges``."""
        if not self.link_fraction:
            return graph
        edge_index = graph.edge_index
        pairs = edge_index[:, edge_index[0] < edge_index[1]]
        generator = torch.Generator().manual_seed(self.seed + 1)
        chosen = pairs[
            :, torch.randperm(pairs.shape[1], generator=generator)[: max(1, round(self.link_fraction * pairs.shape[1]))]
        ]
        keep = ~torch.isin(pair_codes(edge_index, graph.num_nodes), pair_codes(chosen, graph.num_nodes))
        self.link_edges = chosen
        return Data(x=graph.x, edge_index=edge_index[:, keep], y=graph.y, num_nodes=graph.num_nodes)

    def link_prediction_pairs(self) -> tuple[Tensor, Tensor]:
        """Node pairs ``(2, 2E)`` and labels ``(2E,)``: the held-out edges (1) and as many seeded random pairs of
        distinct, unlinked nodes (0)."""
        self._indexed_sources()
        if self.link_edges is None or self.graph is None:
            raise ValueError("link_prediction_pairs needs held-out edges: set link_fraction > 0 (node-level data)")
        n, count = self.graph.num_nodes, self.link_edges.shape[1]
        generator = torch.Generator().manual_seed(self.seed + 2)
        linked = set((self.graph.edge_index[0] * n + self.graph.edge_index[1]).tolist())
        linked |= set((self.link_edges[0] * n + self.link_edges[1]).tolist()) | set(
            (self.link_edges[1] * n + self.link_edges[0]).tolist()
        )
        negatives: list[tuple[int, int]] = []
        while len(negatives) < count:
            a, b = torch.randint(0, n, (2,), generator=generator).tolist()
            if a != b and a * n + b not in linked:
                negatives.append((a, b))
        pairs = torch.cat([self.link_edges, torch.tensor(negatives, dtype=torch.long).T], dim=1)
        return pairs, torch.cat([torch.ones(count), torch.zeros(count)])

    # ----------------------------------------------------------------- texts and similarities

    def tokens(self) -> tuple[Tensor, dict[str, int]] | None:
        """Token ids ``(N, max_text_length)`` of every node's text and the vocabulary (from the training split's
        texts), or None when the nodes have no texts."""
        self._indexed_sources()
        if self.texts is None:
            return None
        if self._tokens is None:
            train = self.indices("train").tolist()
            vocabulary = build_vocabulary([self.texts[i] for i in train], self.vocab_size)
            self._tokens = tokenize(self.texts, vocabulary, self.max_text_length), vocabulary
        return self._tokens

    def similarity(self) -> Tensor:
        """ConGraT's mutual-neighbour similarity rows: ``A A^T`` (common-neighbour counts of the visible graph) with
        L2-normalised rows, sparse ``(N, N)``; the cosine of two nodes is the dot product of their rows."""
        if self._similarity is None:
            assert self.graph is not None
            n, edge_index = self.graph.num_nodes, self.graph.edge_index
            adjacency = torch.sparse_coo_tensor(edge_index, torch.ones(edge_index.shape[1]), (n, n)).coalesce()
            mutual = torch.sparse.mm(adjacency, adjacency.t()).coalesce()
            norms = torch.zeros(n).index_add_(0, mutual.indices()[0], mutual.values().square()).sqrt()
            values = mutual.values() / norms[mutual.indices()[0]].clamp(min=1e-12)
            self._similarity = torch.sparse_coo_tensor(mutual.indices(), values, (n, n)).coalesce()
        return self._similarity

    # ----------------------------------------------------------------- the SSLDataModule contract

    @property
    def input_spec(self) -> InputSpec:
        self._indexed_sources()
        if self.graphs is not None:
            classes = int(self.train_source.labels.max()) + 1
            return InputSpec("graphs", channels=self.graphs[0].x.shape[1], num_classes=classes or None)
        assert self.graph is not None
        tokens = self.tokens()
        classes = int(self.train_source.labels.max()) + 1
        return InputSpec(
            "graphs",
            channels=self.graph.x.shape[1],
            num_classes=classes or None,
            vocab_size=None if tokens is None else len(tokens[1]) + 2,
        )

    def train_transform(self) -> Transform:
        return with_draw

    def eval_transform(self) -> Transform:
        return without_draw

    def view_transform(self) -> Transform:
        return without_draw

    def batcher(self, split: str) -> NodeBatcher | GraphBatcher:
        """The collate function of ``split``'s loader."""
        self._indexed_sources()
        if self.graphs is not None:
            return GraphBatcher(self.graphs)
        assert self.graph is not None
        visible = torch.ones(self.graph.num_nodes, dtype=torch.bool)
        if self.graph_split == "inductive" and split != "all":
            visible = torch.zeros_like(visible).index_fill_(0, self.indices(split), True)
        tokens = self.tokens()
        similarity = self.similarity() if self.graph_similarity else None
        return NodeBatcher(self.graph, visible, self.num_neighbors, None if tokens is None else tokens[0], similarity)

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
        loader.collate_fn = self.batcher("train")
        return loader

    def eval_dataloader(self, split: str) -> DataLoader:
        loader = super().eval_dataloader(split)
        loader.collate_fn = self.batcher(split)
        return loader
