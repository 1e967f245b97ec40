"""The data toolkit belongs to no modality: modality modules build on the toolkit only, never on each other, and the
recording datamodules state only their own arguments (the shared ones reach the CLI through ``**kwargs``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from jsonargparse import ArgumentParser

from datamodules.base import SSLDataModule
from datamodules.ecg import ECGDataModule
from datamodules.eeg import EEGDataModule
from datamodules.recordings import RecordingDataModule
from tests import test_import_graph
from tests.test_import_graph import ROOT, module_name, project_imports

#: The modality-neutral modules: splits and loaders, recordings, tables, the UCR/UEA ``.ts`` format. Every other
#: module of ``datamodules`` is a modality.
TOOLKIT = {"datamodules.base", "datamodules.recordings", "datamodules.tables", "datamodules.ts_format"}
#: Variants of a modality that build on it (and on nothing else beyond the toolkit): spoken words paired with their
#: phoneme strings are audio clips with a second view; the modality itself never imports its variant.
VARIANTS = {"datamodules.spoken_words": {"datamodules.audio"}}
MODULES = sorted(path for path in (ROOT / "datamodules").glob("*.py") if path.name != "__init__.py")


def forbidden_imports(path: Path) -> list[str]:
    """``line: name`` of every import of ``datamodules`` in ``path`` outside the toolkit (the package root included:
    it imports every modality) and, for a variant, outside the modality it extends."""
    allowed = TOOLKIT | VARIANTS.get(module_name(path), set())
    return [
        f"{line}: {name}"
        for name, line, _ in project_imports(path)
        if name.split(".")[0] == "datamodules" and name not in allowed
    ]


def test_the_toolkit_and_the_modalities_are_found():
    names = {module_name(path) for path in MODULES}
    assert names >= TOOLKIT
    assert names - TOOLKIT >= {"datamodules.ecg", "datamodules.eeg", "datamodules.tabular", "datamodules.time_series"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_datamodules_import_only_the_toolkit(path):
    found = forbidden_imports(path)
    assert not found, f"{path.name} imports beyond {sorted(TOOLKIT)}:\n" + "\n".join(found)


def test_a_modality_never_imports_its_variant():
    for variant, bases in VARIANTS.items():
        for base in bases:
            path = ROOT / (base.replace(".", "/") + ".py")
            assert variant not in {name for name, _, _ in project_imports(path)}


def test_a_modality_importing_another_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(test_import_graph, "ROOT", tmp_path)
    planted = tmp_path / "datamodules" / "audio.py"
    planted.parent.mkdir()
    planted.write_text("from datamodules.base import invalid\nfrom datamodules.ecg import Augment\nimport datamodules")
    assert forbidden_imports(planted) == ["2: datamodules.ecg", "3: datamodules"]


def parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Named parameters of ``cls.__init__`` (without ``self`` and ``**kwargs``)."""
    named = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return {p.name: p for p in named if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("cls", [ECGDataModule, EEGDataModule])
def test_recording_datamodules_restate_no_shared_argument(cls):
    """A subclass names a shared argument only to give it another default; the rest go through ``**kwargs``."""
    shared, own = parameters(RecordingDataModule), parameters(cls)
    restated = sorted(name for name in own.keys() & shared.keys() if own[name].default == shared[name].default)
    assert not restated, f"{cls.__name__} restates {restated}: leave them to **kwargs"
    assert "kwargs" in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("cls", [ECGDataModule, EEGDataModule])
def test_the_cli_sees_every_shared_argument(cls):
    """jsonargparse follows ``**kwargs`` to the parents: every argument is configurable, with the class's default."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    defaults = parser.get_defaults().data
    expected = {**parameters(SSLDataModule), **parameters(RecordingDataModule), **parameters(cls)}
    assert set(vars(defaults)) == set(expected)
    for name, parameter in expected.items():
        assert defaults[name] == parameter.default, name


def test_leads_is_the_ecg_name_of_channels():
    assert ECGDataModule(leads=["I", "II"]).channels == ["I", "II"]
    by_channels = ECGDataModule(channels=["I", "II"])
    assert by_channels.leads == ["I", "II"] and by_channels.pipeline.channels == ("I", "II")
    with pytest.raises(ValueError, match=r"leads and channels.*leads=\['I'\] and channels=\['II'\]"):
        ECGDataModule(leads=["I"], channels=["II"])
