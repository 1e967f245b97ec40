"""torch-geometric is loaded only by what needs it: the graph tower, ConGraT and the graph / point-cloud data modules
are package attributes imported on first use (:mod:`jepa_lightning.lazy`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import datamodules
import jepa_lightning.methods
import jepa_lightning.nn


def test_the_packages_and_the_cli_import_without_torch_geometric() -> None:
    script = textwrap.dedent(
        """
        import sys
        import datamodules, jepa_lightning.cli, jepa_lightning.methods, jepa_lightning.nn
        assert "torch_geometric" not in sys.modules, "imported eagerly"
        from jepa_lightning.nn import GATEncoder
        from jepa_lightning.nn.graph import GATEncoder as defined
        assert GATEncoder is defined and "torch_geometric" in sys.modules
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("package", "name", "module"),
    [
        (jepa_lightning.nn, "GATEncoder", "jepa_lightning.nn.graph"),
        (jepa_lightning.nn, "GATLayer", "jepa_lightning.nn.graph"),
        (jepa_lightning.methods, "ConGraT", "jepa_lightning.methods.congrat"),
        (datamodules, "GraphDataModule", "datamodules.graphs"),
        (datamodules, "PointCloudDataModule", "datamodules.point_clouds"),
    ],
)
def test_lazy_names_resolve_to_their_classes_and_stay(package: object, name: str, module: str) -> None:
    value = getattr(package, name)
    assert value.__module__ == module and value is sys.modules[module].__dict__[name]
    assert vars(package)[name] is value  # kept as an ordinary attribute after the first use
    assert name in package.__all__


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"module 'jepa_lightning.nn' has no attribute 'GATEncoders'"):
        jepa_lightning.nn.GATEncoders  # noqa: B018
