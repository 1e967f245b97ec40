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


@pytest.mark.parametrize("name", methods.__all__)
def test_every_method_is_importable_from_the_top_level(name):
    assert getattr(jepa_lightning, name) is getattr(methods, name)


def test_input_spec_and_unknown_names():
    from jepa_lightning.inputs import InputSpec

    assert jepa_lightning.InputSpec is InputSpec
    with pytest.raises(AttributeError, match="no attribute 'IJEPa'"):
        _ = jepa_lightning.IJEPa
