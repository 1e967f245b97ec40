"""The package's import graph: no cycles between its subpackages, contracts that are leaves, no imports hidden in
functions to dodge a cycle."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jepa_lightning", "datamodules")
#: Leaf modules: the batch and token contracts everything else builds on; they import nothing of the project's but
#: each other in this order.
LEAVES = {"jepa_lightning.inputs": set(), "jepa_lightning.tokens": {"jepa_lightning.inputs"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The node of the graph: a subpackage (``jepa_lightning.nn``) or a top-level module (``jepa_lightning.cli``);
    every module of ``datamodules`` is its own node."""
    parts = module.split(".")
    return ".".join(parts[:3] if parts[0] == "datamodules" else parts[:2])


def project_imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import of the project's own modules in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    top_level = {id(node) for node in tree.body}
    top_level |= {id(n) for node in tree.body if isinstance(node, ast.If) for n in node.body}  # TYPE_CHECKING blocks
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.append((name, node.lineno, id(node) in top_level))
    return found


def source_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def graph() -> dict[str, dict[str, str]]:
    """``edges[a][b]``: where node ``a`` imports node ``b`` first (``file:line``); the package roots (façades that
    re-export) are left out."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for path in source_files():
        source = unit(module_name(path))
        if source in PACKAGES:
            continue
        for name, line, _ in project_imports(path):
            target = unit(name)
            if target != source and target not in PACKAGES:
                edges[source].setdefault(target, f"{path.relative_to(ROOT)}:{line}")
    return edges


def find_cycle(edges: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle of the graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, {}):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in list(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_cycle_between_subpackages():
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(f"{a} ({edges[a][b]})" for a, b in itertools.pairwise(cycle))


def test_modules_import_from_submodules_not_from_the_package_roots():
    """``from jepa_lightning import x`` inside the package goes through the root's lazy façade, which imports
    ``jepa_lightning.methods``: a cycle the graph cannot see (``import jepa_lightning.nn`` first then fails)."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in source_files()
        if path.name != "__init__.py" or module_name(path) not in PACKAGES
        for name, line, _ in project_imports(path)
        if name in PACKAGES
    ]
    assert not found, f"imports from a package root: {found}"


def test_cycle_detection_finds_a_planted_cycle():
    edges = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:1"}, "c": {"a": "c.py:1"}, "d": {"a": "d.py:1"}}
    assert find_cycle(edges) in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle({"a": {"b": "x"}, "b": {}}) is None


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_contract_modules_are_leaves(leaf):
    path = ROOT / (leaf.replace(".", "/") + ".py")
    imported = {name for name, _, _ in project_imports(path)}
    assert imported <= LEAVES[leaf], f"{leaf} imports {sorted(imported - LEAVES[leaf])}"


def test_project_imports_are_at_module_level():
    local = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in source_files()
        for name, line, top in project_imports(path)
        if not top
    ]
    assert not local, "imports inside functions (a cycle worked around?):\n" + "\n".join(local)


def test_masks_know_no_modality_tokenizer():
    for path in (ROOT / "jepa_lightning" / "masks").glob("*.py"):
        imported = {unit(name) for name, _, _ in project_imports(path)}
        assert "jepa_lightning.tokenizers" not in imported, f"{path.name} imports a tokenizer"
