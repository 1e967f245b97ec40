"""The documentation site builds with warnings as errors and without network, and every method has its page.

The build is the command CI and the README use (``python -m sphinx -W --keep-going -b html docs <out>``); the pages
of the methods, datamodules and API are generated from the package during it (``docs/_ext/generate_pages.py``).
"""

from __future__ import annotations

import html
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jepa_lightning import bundled, methods

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

ROOT = Path(__file__).resolve().parent.parent
#: The bases the presets specialise (their pages exist too, but they are not presets).
GENERIC = {"SSLMethod", "JEPA", "JointEmbedding", "TwoTower", "TrajectoryJEPA", "FineTune"}


def presets() -> list[str]:
    return [
        name
        for name in methods.__all__
        if inspect.isclass(cls := getattr(methods, name)) and issubclass(cls, methods.SSLMethod) and name not in GENERIC
    ]


def build(out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def page_text(site: Path, relative: str) -> str:
    path = site / relative
    assert path.is_file(), f"{relative} was not built"
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def check_every_preset_has_a_page_with_its_docstring_and_its_configs(site: Path) -> None:
    names = presets()
    assert {"IJEPA", "VJEPA", "TJEPA", "SimCLR", "LeJEPA"} <= set(names)
    for name in names:
        text = page_text(site, f"generated/methods/{name.lower()}.html")
        opening = re.split(r"[:`(']", inspect.getdoc(getattr(methods, name)))[0].strip()
        assert len(opening) >= 3, name
        assert opening in text, (name, opening)
        for config, path in bundled.bundled_configs().items():
            if f"jepa_lightning.methods.{name}\n" in path.read_text():
                assert f"jepa-lightning fit --config {config}" in text, (name, config)
                assert "class_path: jepa_lightning.methods." + name in text, (name, config)


def check_every_method_of_the_readme_table_has_a_page(site: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| method \\ modality |", 1)[1].split("\n\n", 1)[0]
    named = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split(" | ")[0])}
    assert len(named) > 15
    for name in named:
        assert (site / f"generated/methods/{name.lower()}.html").is_file(), name


def check_hand_written_pages_api_and_datamodules_are_there(site: Path) -> None:
    for page in ("cli", "diagnostics", "scaling", "accelerators", "fidelity"):
        assert (site / f"{page}.html").is_file(), page
    assert "srun python -m jepa_lightning fit" in page_text(site, "scaling.html")
    assert "MultiBlockMaskSampler" in page_text(site, "generated/api/jepa_lightning.masks.multiblock.html")
    assert "on_bad_file" in page_text(site, "generated/datamodules/imagedatamodule.html")


def test_the_docs_build_with_warnings_as_errors_and_every_method_has_its_page(tmp_path: Path) -> None:
    """One test, so that one build serves every check (also when pytest-xdist spreads tests over workers)."""
    build(tmp_path / "html")
    check_every_preset_has_a_page_with_its_docstring_and_its_configs(tmp_path / "html")
    check_every_method_of_the_readme_table_has_a_page(tmp_path / "html")
    check_hand_written_pages_api_and_datamodules_are_there(tmp_path / "html")
