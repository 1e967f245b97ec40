"""The example configs that ship inside the package, so that ``pip install jepa-lightning`` users have them too.

``jepa-lightning fit --config ijepa_digits`` (a bare name, no such file here) runs the bundled config;
``jepa-lightning configs`` lists them, one line each; ``jepa-lightning configs copy NAME [DEST]`` writes one out
for editing (never over an existing file).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import yaml

#: The bundled configs; ``examples/configs`` in the repository is a link to this folder.
CONFIGS = Path(__file__).resolve().parent / "configs"
USAGE = "usage: jepa-lightning configs [list | copy NAME [DEST]]"


def bundled_configs() -> dict[str, Path]:
    """Every bundled config by name (its file name without ``.yaml``), sorted."""
    return {path.stem: path for path in sorted(CONFIGS.glob("*.yaml"))}


def resolve_config(value: str) -> str:
    """``value`` itself when it names an existing file or a path; the bundled config's path when it is a bare name
    (``ijepa_digits`` or ``ijepa_digits.yaml``) of one; else ``value`` (the parser then reports the missing file)."""
    if Path(value).exists() or "/" in value or "\\" in value:
        return value
    found = bundled_configs().get(value.removesuffix(".yaml"))
    return str(found) if found else value


def resolve_config_arguments(args: list[str]) -> list[str]:
    """``args`` with every ``--config NAME`` / ``--config=NAME`` passed through :func:`resolve_config`."""
    resolved = list(args)
    for index, arg in enumerate(resolved):
        if arg == "--config" and index + 1 < len(resolved):
            resolved[index + 1] = resolve_config(resolved[index + 1])
        elif arg.startswith("--config="):
            resolved[index] = "--config=" + resolve_config(arg.removeprefix("--config="))
    return resolved


def summary(path: Path) -> str:
    """One line about a config: method, datamodule, what it prints, and what it needs beyond ``pip install``."""
    config = yaml.safe_load(path.read_text())
    method = str(config["model"]["class_path"]).rsplit(".", 1)[-1]
    data = str(config["data"]["class_path"]).rsplit(".", 1)[-1]
    callbacks = {str(callback.get("class_path", "")).rsplit(".", 1)[-1] for callback in config_callbacks(config)}
    if method == "FineTune":
        prints = "fine-tunes a pretrained encoder on the labels and logs val/acc"
    elif "ControlReport" in callbacks:
        prints = "prints the action error and the next-state prediction against baselines at init and after training"
    elif "LinkPredictionReport" in callbacks:
        prints = "prints the link-prediction ROC-AUC (and the linear probe) at init and after training"
    elif "CrossModalRetrievalReport" in callbacks:
        prints = "prints cross-modal retrieval and word discrimination at init and after training"
    elif "LinearProbeReport" in callbacks:
        prints = "prints the linear probe at init and after training"
    else:
        prints = "logs the loss and RankMe"
    header = " ".join(line.lstrip("# ").strip() for line in path.read_text().splitlines()[:6] if line.startswith("#"))
    needs = re.findall(r"`(pip install [^`]+|apt-get install [^`]+)`", header)
    return f"{method} on {data}; {prints}" + (f"; needs `{needs[0]}`" if needs else "")


def config_callbacks(config: dict) -> list[dict]:
    """The trainer callbacks a config names (``class_path`` entries; a bare string counts as its class path)."""
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    return [callback if isinstance(callback, dict) else {"class_path": callback} for callback in callbacks]


def list_configs() -> str:
    configs = bundled_configs()
    width = max(map(len, configs), default=0)
    return "\n".join(f"{name:<{width}}  {summary(path)}" for name, path in configs.items())


def copy_config(name: str, destination: str | None = None) -> Path:
    """Copy the bundled config ``name`` to ``destination`` (a file or a folder; default: ``./<name>.yaml``),
    refusing to overwrite a file that exists."""
    configs = bundled_configs()
    key = name.removesuffix(".yaml")
    if key not in configs:
        raise ValueError(f"no bundled config named {name!r}; the bundled configs are: {', '.join(configs)}")
    target = Path(destination or ".")
    if target.is_dir():
        target = target / f"{key}.yaml"
    if target.exists():
        raise FileExistsError(f"{target} exists; give another destination (nothing was overwritten)")
    shutil.copyfile(configs[key], target)
    return target


def configs_command(args: list[str]) -> int:
    """``jepa-lightning configs ...``: the exit status (0, or 1 with one line on stderr)."""
    try:
        if not args or args == ["list"]:
            print(list_configs())
        elif args[0] == "copy" and len(args) in (2, 3):
            target = copy_config(args[1], args[2] if len(args) == 3 else None)
            print(f"wrote {target}; run it with: jepa-lightning fit --config {target}")
        else:
            raise ValueError(USAGE)
    except (ValueError, FileExistsError) as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
