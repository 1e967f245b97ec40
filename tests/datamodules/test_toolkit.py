"""The data toolkit belongs to no modality: modality modules build on the toolkit only, never on each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_import_graph
from tests.test_import_graph import ROOT, module_name, project_imports

#: The modality-neutral modules: splits and loaders, recordings, tables, the UCR/UEA ``.ts`` format. Every other
#: module of ``datamodules`` is a modality.
TOOLKIT = {"datamodules.base", "datamodules.recordings", "datamodules.tables", "datamodules.ts_format"}
MODULES = sorted(path for path in (ROOT / "datamodules").glob("*.py") if path.name != "__init__.py")


def forbidden_imports(path: Path) -> list[str]:
    """``line: name`` of every import of ``datamodules`` in ``path`` outside the toolkit (the package root included:
    it imports every modality)."""
    return [
        f"{line}: {name}"
        for name, line, _ in project_imports(path)
        if name.split(".")[0] == "datamodules" and name not in TOOLKIT
    ]


def test_the_toolkit_and_the_modalities_are_found():
    names = {module_name(path) for path in MODULES}
    assert names >= TOOLKIT
    assert names - TOOLKIT >= {"datamodules.ecg", "datamodules.eeg", "datamodules.tabular", "datamodules.time_series"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_datamodules_import_only_the_toolkit(path):
    found = forbidden_imports(path)
    assert not found, f"{path.name} imports beyond {sorted(TOOLKIT)}:\n" + "\n".join(found)


def test_a_modality_importing_another_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(test_import_graph, "ROOT", tmp_path)
    planted = tmp_path / "datamodules" / "audio.py"
    planted.parent.mkdir()
    planted.write_text("from datamodules.base import invalid\nfrom datamodules.ecg import Augment\nimport datamodules")
    assert forbidden_imports(planted) == ["2: datamodules.ecg", "3: datamodules"]
