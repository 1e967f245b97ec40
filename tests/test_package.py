"""The top-level package: methods importable from ``jepa_lightning`` lazily, so importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jepa_lightning
from jepa_lightning import methods


def test_import_is_light_and_methods_load_on_first_use():
    code = (
        "import sys, jepa_lightning\n"
        "heavy = {'torch', 'lightning', 'timm'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "from jepa_lightning import IJEPA, JEPA, SimCLR\n"
        "assert 'lightning' in sys.modules and IJEPA.__module__ == 'jepa_lightning.methods.ijepa'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", jepa_lightning.__all__)
def test_every_exported_name_is_the_class_of_its_module(name):
    value = getattr(jepa_lightning, name)
    assert value.__name__ == name
    if name != "InputSpec":
        assert getattr(methods, name) is value


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'IJEPa'"):
        _ = jepa_lightning.IJEPa
    assert "IJEPA" in dir(jepa_lightning)
