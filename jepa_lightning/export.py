"""A trained encoder as plain files: weights in safetensors, and a JSON beside them with what rebuilds the network.

:func:`save_encoder` writes ``<name>.safetensors`` (a plain state dict: no pickle, no code) and ``<name>.json``
(format, the input spec, the architecture as class paths with their constructor arguments, and where the encoder
came from); :func:`load_encoder` rebuilds the network from them without Lightning and returns it in eval mode,
``x -> (B, D)``, with embeddings equal to the method's ``embed``. The ``jepa-lightning export`` command writes them
from a fit config and a checkpoint.

Two layouts: ``"native"`` (the package's own modules: any tokenizer and encoder) and ``"timm"`` (a ViT on image
patches in the key layout of timm's ``VisionTransformer``; the JSON names the ``timm.create_model`` arguments and the
``pretrained_cfg_overlay`` entries that load it). Loading is safe: weights are read by safetensors, never unpickled,
and the JSON may only name classes of the modules in ``trusted_modules`` (``jepa_lightning`` by default) that derive
from :class:`~jepa_lightning.tokens.RecordsArguments`, so a crafted JSON cannot call an arbitrary function.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import safetensors
import safetensors.torch
import timm
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec
from jepa_lightning.nn.backbones import TokenEncoder
from jepa_lightning.tokenizers.images import PatchTokenizer2d
from jepa_lightning.tokens import RecordsArguments

#: ``format`` of the JSON: what :func:`load_encoder` accepts, and its version.
FORMAT = "jepa-lightning-encoder"
FORMAT_VERSION = 1
#: The key layouts :func:`save_encoder` writes.
Layout = Literal["native", "timm"]
#: Stands for the data's :class:`InputSpec` among constructor arguments in the JSON (kept once, under ``input_spec``).
INPUT_SPEC = "$input_spec"
#: The timm architecture name the ``"timm"`` layout is loaded under; its keyword arguments override every size.
TIMM_MODEL = "vit_base_patch16_224"
#: timm's ViT LayerNorm eps; an encoder with another one cannot be loaded by ``timm.create_model`` from JSON arguments.
TIMM_NORM_EPS = 1e-6
#: ``scheme://``: a remote file, refused (download it yourself).
REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ExportError(ValueError):
    """The encoder cannot be written in the asked layout, or the files cannot be loaded; the message says why."""


def paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, description)``: ``<name>.safetensors`` and ``<name>.json`` for either of them (or a bare name)."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encode_argument(value: Any, where: str) -> Any:
    """A constructor argument as JSON: scalars, lists (tuples) of them, and the data's :class:`InputSpec`."""
    if isinstance(value, InputSpec):
        return INPUT_SPEC
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [encode_argument(item, where) for item in value]
    raise ExportError(
        f"{where} is a {type(value).__name__}: only numbers, strings, booleans, None, lists of them and the "
        "InputSpec can be written to the JSON that rebuilds the encoder"
    )


def decode_argument(value: Any, spec: InputSpec) -> Any:
    """Inverse of :func:`encode_argument` (JSON lists become tuples)."""
    if value == INPUT_SPEC:
        return spec
    if isinstance(value, list):
        return tuple(decode_argument(item, spec) for item in value)
    return value


def recipe(module: nn.Module) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` that rebuild ``module`` (its recorded constructor arguments)."""
    arguments = getattr(module, "constructor_arguments", None)
    if not isinstance(module, RecordsArguments) or arguments is None:
        raise ExportError(
            f"{class_path(type(module))} does not record its constructor arguments, so it cannot be rebuilt from a "
            "file: derive it from jepa_lightning.tokens.RecordsArguments"
        )
    name = class_path(type(module))
    return {
        "class_path": name,
        "init_args": {key: encode_argument(value, f"argument {key!r} of {name}") for key, value in arguments.items()},
    }


def architecture(encoder: nn.Module) -> dict[str, Any]:
    """What rebuilds ``encoder``: a :class:`TokenEncoder`'s tokenizer, transformer and readout, or a backbone."""
    if isinstance(encoder, TokenEncoder):
        return {
            "kind": "tokens",
            "tokenizer": recipe(encoder.tokenizer),
            "encoder": recipe(encoder.encoder),
            "readout": encoder.readout,
        }
    return {"kind": "backbone", "backbone": recipe(encoder)}


def timm_layout(encoder: nn.Module, spec: InputSpec) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The state dict of ``encoder`` in the key layout of timm's ``VisionTransformer`` and the ``timm.create_model``
    keyword arguments that build that model: no class token, tokens averaged (``global_pool="avg"``) after the final
    norm (``fc_norm=False``), the sin-cos positions as ``pos_embed``. Refused (:class:`ExportError`, naming every
    difference) for encoders timm's ViT does not compute exactly."""
    if not isinstance(encoder, TokenEncoder) or not isinstance(encoder.tokenizer, PatchTokenizer2d):
        parts = type(encoder.tokenizer if isinstance(encoder, TokenEncoder) else encoder).__name__
        raise ExportError(
            f"the timm layout is for a ViT on image patches (PatchTokenizer2d + TransformerEncoder), not {parts}"
        )
    args = encoder.encoder.constructor_arguments
    expected = {
        "norm_placement": "pre",
        "activation": "gelu",
        "attention": "full",
        "positions_every_layer": False,
        "output_head": False,
        "norm_eps": TIMM_NORM_EPS,
    }
    problems = [f"{key}={args[key]!r} (timm: {value!r})" for key, value in expected.items() if args[key] != value]
    if encoder.readout != "mean":
        problems.append(f"readout={encoder.readout!r} (timm's global_pool='avg' is the mean)")
    if problems:
        raise ExportError("timm's VisionTransformer does not compute this encoder: " + ", ".join(problems))
    tokenizer = encoder.tokenizer
    state = {
        "patch_embed.proj.weight": tokenizer.proj.weight,
        "patch_embed.proj.bias": tokenizer.proj.bias,
        "pos_embed": tokenizer.positions,
    }
    state.update(encoder.encoder.state_dict())
    kwargs = {
        "img_size": list(tokenizer.image_size),
        "patch_size": tokenizer.patch_size,
        "in_chans": spec.channels,
        "embed_dim": args["embed_dim"],
        "depth": args["depth"],
        "num_heads": args["num_heads"],
        "mlp_ratio": args["mlp_ratio"],
        "class_token": False,
        "global_pool": "avg",
        "fc_norm": False,
        "num_classes": 0,
    }
    return state, kwargs


def save_encoder(
    encoder: nn.Module,
    path: str | Path,
    input_spec: InputSpec,
    layout: Layout = "native",
    metadata: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``encoder`` (``x -> (B, D)``: a :class:`TokenEncoder` or a backbone that records its arguments) as
    ``<path>.safetensors`` and ``<path>.json``; returns both paths. ``metadata`` (JSON values) is kept in the JSON
    (the export command records the method, its config, the network and the checkpoint)."""
    if layout not in ("native", "timm"):
        raise ExportError(f"layout must be 'native' or 'timm', got {layout!r}")
    weights, description = paths(path)
    if not weights.parent.is_dir():
        raise ExportError(f"cannot write {weights}: the folder {weights.parent} does not exist")
    info: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "layout": layout, "weights": weights.name}
    if layout == "timm":
        state, kwargs = timm_layout(encoder, input_spec)
        overlay = {"input_size": [kwargs["in_chans"], *kwargs["img_size"]]}  # timm compares it with in_chans
        info["timm"] = {"model_name": TIMM_MODEL, "kwargs": kwargs, "pretrained_cfg_overlay": overlay}
    else:
        state = encoder.state_dict()
        info["architecture"] = architecture(encoder)
    info["input_spec"] = {key: encode_argument(value, key) for key, value in dataclasses.asdict(input_spec).items()}
    info.update(metadata or {})
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}
    safetensors.torch.save_file(tensors, str(weights), metadata={"format": FORMAT})
    description.write_text(json.dumps(info, indent=2) + "\n")
    return weights, description


def resolve_class(name: str, trusted_modules: Sequence[str]) -> type[nn.Module]:
    """The class at ``name`` if it lives in a trusted module and records its arguments (what export writes)."""
    module_name, _, attribute = name.rpartition(".")
    if not any(module_name == root or module_name.startswith(root + ".") for root in trusted_modules):
        raise ExportError(
            f"the encoder's JSON names {name!r}, outside the trusted modules {list(trusted_modules)}: pass "
            "trusted_modules=[...] to load_encoder if you trust the file"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ExportError(f"the encoder's JSON names {name!r}, which cannot be imported: {error}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and issubclass(cls, RecordsArguments)):
        raise ExportError(f"the encoder's JSON names {name!r}, which is not a network that export writes")
    return cls


def build(entry: dict[str, Any], spec: InputSpec, trusted_modules: Sequence[str]) -> nn.Module:
    """The module of a :func:`recipe`."""
    cls = resolve_class(entry["class_path"], trusted_modules)
    return cls(**{key: decode_argument(value, spec) for key, value in entry["init_args"].items()})


def load_encoder(path: str | Path, trusted_modules: Sequence[str] = ("jepa_lightning",)) -> nn.Module:
    """Rebuild an encoder written by ``jepa-lightning export`` (or :func:`save_encoder`), in eval mode.

    ``path``: the ``.safetensors`` file or its ``.json`` (both must be there). The result maps the model's input
    (a batch's ``x``, or ``TabularInput`` / ``SeriesInput`` as :func:`~jepa_lightning.inputs.model_input` makes it)
    to embeddings ``(B, D)``: the method's ``embed``, exactly. A ``"timm"`` layout is loaded by
    ``timm.create_model`` (a timm ``VisionTransformer``). Remote paths are refused; weights are never unpickled.
    """
    if REMOTE.match(str(path)):
        raise ExportError(f"{path!r} is remote: download the .safetensors and .json files and pass the local path")
    weights, description = paths(path)
    for file in (weights, description):
        if not file.is_file():
            raise FileNotFoundError(f"no encoder file {file} (an export writes <name>.safetensors and <name>.json)")
    try:
        info = json.loads(description.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"{description} is not the JSON of an exported encoder: {error}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ExportError(f'{description} is not the JSON of an exported encoder (no "format": "{FORMAT}")')
    if info.get("version", 0) > FORMAT_VERSION:
        raise ExportError(f"{description} has format version {info['version']}; this jepa-lightning reads up to 1")
    try:
        state = safetensors.torch.load_file(str(weights))
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise ExportError(f"{weights} is not a safetensors file: {error}") from None
    if info.get("layout") == "timm":
        kwargs = {key: decode_argument(value, None) for key, value in info["timm"]["kwargs"].items()}
        model = timm.create_model(info["timm"]["model_name"], pretrained=False, **kwargs)
    else:
        spec_fields = {key: decode_argument(value, None) for key, value in info["input_spec"].items()}
        spec = InputSpec(**spec_fields)
        entry = info["architecture"]
        if entry["kind"] == "tokens":
            tokenizer = build(entry["tokenizer"], spec, trusted_modules)
            transformer = build(entry["encoder"], spec, trusted_modules)
            model = TokenEncoder(tokenizer, transformer, entry["readout"])
        else:
            model = build(entry["backbone"], spec, trusted_modules)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ExportError(f"{weights} does not fit the network its JSON describes: {error}") from None
    return model.eval()
