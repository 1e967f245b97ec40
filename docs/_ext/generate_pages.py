"""Sphinx extension: writes the per-method, per-datamodule and API pages from the package at build time.

Nothing it writes is committed (``docs/generated/`` is ignored by git): every build reads the methods, datamodules and
bundled configs of the checkout it runs in, so a new preset gets its page without editing the docs. A page is
rewritten only when its text changes, so incremental builds stay incremental.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import yaml
from docutils.nodes import Element
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

import datamodules
import jepa_lightning
from jepa_lightning import bundled, methods

DOCS = Path(__file__).resolve().parent.parent
GENERATED = DOCS / "generated"
#: The generic methods (the bases every preset specialises, and fine-tuning): documented too, but not presets.
GENERIC = ("SSLMethod", "JEPA", "JointEmbedding", "TwoTower", "TrajectoryJEPA", "FineTune")
#: Packages whose modules get API pages.
API_PACKAGES = (jepa_lightning, datamodules)


def method_classes() -> dict[str, type]:
    """Every LightningModule of ``jepa_lightning.methods.__all__`` but the abstract base, by name."""
    return {
        name: value
        for name in methods.__all__
        if inspect.isclass(value := getattr(methods, name))
        and issubclass(value, methods.SSLMethod)
        and value is not methods.SSLMethod
    }


def presets() -> list[str]:
    """The paper presets: every method that is not one of the generic bases."""
    return [name for name in method_classes() if name not in GENERIC]


def configs_by_method() -> dict[str, list[str]]:
    """Bundled config names by the method class their ``model.class_path`` names."""
    found: dict[str, list[str]] = {}
    for name, path in bundled.bundled_configs().items():
        class_path = str(yaml.safe_load(path.read_text())["model"]["class_path"])
        found.setdefault(class_path.rsplit(".", 1)[-1], []).append(name)
    return found


def heading(text: str, underline: str = "=") -> str:
    return f"{text}\n{underline * len(text)}\n"


def method_page(name: str, configs: list[str]) -> str:
    cls = method_classes()[name]
    kind = "generic method" if name in GENERIC else "paper preset"
    lines = [
        heading(name),
        f"*{kind}* (:mod:`{cls.__module__}`). The class docstring below holds the paper, the defaults and the",
        "documented deviations from the official code; :doc:`/fidelity` has the table across presets.",
        "",
        f".. autoclass:: jepa_lightning.methods.{name}",
        "   :no-index:",
        "",
    ]
    if not configs:
        lines += [heading("Config", "-"), "No bundled config runs this class directly.", ""]
    for config in configs:
        path = bundled.bundled_configs()[config]
        lines += [
            heading(f"Config: {config}", "-"),
            f"``jepa-lightning fit --config {config}``: {bundled.summary(path)}.",
            "",
            f".. literalinclude:: /../jepa_lightning/configs/{config}.yaml",
            "   :language: yaml",
            "",
        ]
    return "\n".join(lines)


def datamodule_page(name: str) -> str:
    cls = getattr(datamodules, name)
    return "\n".join(
        [
            heading(name),
            f".. automodule:: {cls.__module__}",
            "   :no-index:",
            "",
            f".. autoclass:: datamodules.{name}",
            "   :no-index:",
            "",
        ]
    )


def api_modules() -> list[str]:
    """Every module of the package and of ``datamodules``, sorted (``__main__`` left out: importing it runs the CLI)."""
    names = []
    for package in API_PACKAGES:
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def api_page(module: str) -> str:
    """A module's page: its docstring and members; a package's: its docstring only (its members are re-exports,
    documented once, in the module that defines them)."""
    members = [] if hasattr(importlib.import_module(module), "__path__") else ["   :members:"]
    return "\n".join([heading(f"``{module}``"), f".. automodule:: {module}", *members, ""])


def toctree(title: str, entries: list[str], intro: str = "") -> str:
    return "\n".join(
        [heading(title), intro, "", ".. toctree::", "   :maxdepth: 1", "", *(f"   {e}" for e in entries), ""]
    )


def write(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx rebuilds only pages whose file changed), through a
    renamed temporary file, so that two builds at once (test workers) never read a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, path)


def generate(app: Sphinx) -> None:
    """Write every generated page; remove generated pages of classes or modules that no longer exist."""
    pages: dict[str, str] = {}
    configs = configs_by_method()
    names = [name for name in GENERIC if name in method_classes()] + sorted(presets(), key=str.lower)
    for name in names:
        pages[f"methods/{name.lower()}.rst"] = method_page(name, configs.get(name, []))
    pages["methods/index.rst"] = toctree(
        "Methods",
        [name.lower() for name in names],
        "One page per method of ``jepa_lightning.methods``: the generic ones, then the paper presets built on them.",
    )
    modules = [name for name in datamodules.__all__ if name.endswith("DataModule") and name != "SSLDataModule"]
    for name in modules:
        pages[f"datamodules/{name.lower()}.rst"] = datamodule_page(name)
    pages["datamodules/index.rst"] = toctree(
        "Datamodules",
        [name.lower() for name in modules],
        "One page per modality: the formats it reads, its options and what it does with bad input.",
    )
    api = api_modules()
    for module in api:
        pages[f"api/{module}.rst"] = api_page(module)
    pages["api/index.rst"] = toctree("API reference", api, "Generated from the docstrings by ``sphinx.ext.autodoc``.")
    for relative, text in pages.items():
        write(GENERATED / relative, text)
    for stale in GENERATED.rglob("*.rst"):
        if str(stale.relative_to(GENERATED)) not in pages:
            stale.unlink()


def resolve_reexport(app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element) -> Element | None:
    """Link a reference to a re-exported name (``jepa_lightning.masks.MultiBlockMaskSampler``, or a member of one,
    as the docstrings write them) to where it is documented: the module that defines it."""
    if node.get("refdomain") != "py":
        return None
    parts = node["reftarget"].split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:split])
        try:
            value = getattr(importlib.import_module(module), parts[split])
        except (ImportError, AttributeError, ValueError):
            continue
        home = getattr(value, "__module__", None)
        if not isinstance(home, str) or home == module or not home.startswith(("jepa_lightning", "datamodules")):
            return None
        target = ".".join([home, getattr(value, "__qualname__", parts[split]), *parts[split + 1 :]])
        py = env.get_domain("py")
        return py.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], target, node, contnode)
    return None


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("builder-inited", generate)
    app.connect("missing-reference", resolve_reexport)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
