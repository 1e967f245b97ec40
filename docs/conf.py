"""Sphinx configuration of the jepa-lightning documentation.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (warnings are errors; no network is
needed: no intersphinx, the bundled alabaster theme). ``_ext/generate_pages.py`` writes the per-method, per-datamodule
and API pages into ``generated/`` at the start of every build.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent / "_ext")]

import jepa_lightning  # noqa: E402

project = "jepa-lightning"
author = "jepa-lightning developers"
copyright = "jepa-lightning developers"
release = jepa_lightning.__version__

# napoleon: the docstrings document arguments in Google style (``Args:`` sections).
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "generate_pages"]
napoleon_numpy_docstring = False
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Overrides of Lightning hooks (training_step, ...) would otherwise show Lightning's own docstrings, written for
# Lightning's docs (its labels, its examples), not ours.
autodoc_inherit_docstrings = False
autodoc_class_signature = "mixed"

html_theme = "alabaster"
html_title = f"jepa-lightning {release}"
