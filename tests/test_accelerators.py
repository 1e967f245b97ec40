"""Accelerator neutrality: the package never calls CUDA directly, so CPU, CUDA and TPU (through Lightning's XLA
support) all run the same code; devices come from the Trainer and from the tensors themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jepa_lightning", "datamodules")


def is_cuda(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(":")[0] == "cuda"


def cuda_uses(source: str, filename: str) -> list[str]:
    """``file:line: what`` for every ``torch.cuda`` attribute, ``.cuda()`` call and tensor placed on ``"cuda"``
    (``torch.device("cuda")``, ``.to("cuda")``, ``device="cuda"``). Naming the device type to check a tensor's own
    device (e.g. ``device.type in {"cpu", "cuda"}`` to pick a fused kernel) is a guarded path, not a CUDA call."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        torch_cuda = isinstance(node, ast.Attribute) and node.attr == "cuda" and isinstance(node.value, ast.Name)
        if torch_cuda and node.value.id == "torch":
            found.append((node.lineno, "torch.cuda"))
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "cuda":
            found.append((node.lineno, ".cuda()"))
        placed = [arg for arg in node.args if name in ("device", "to") and is_cuda(arg)]
        placed += [keyword.value for keyword in node.keywords if keyword.arg == "device" and is_cuda(keyword.value)]
        found += [(node.lineno, f"placed on {arg.value!r}") for arg in placed]
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def test_the_scanner_finds_each_kind_of_cuda_use_and_allows_device_type_checks() -> None:
    source = (
        "import torch\n"
        "x = torch.zeros(1).cuda()\n"
        "torch.cuda.synchronize()\n"
        "y = torch.ones(1, device='cuda:0')\n"
        "z = x.to('cuda')\n"
        "d = torch.device('cuda')\n"
        "fused = x.device.type in {'cpu', 'cuda'}\n"
    )
    assert cuda_uses(source, "m.py") == [
        "m.py:2: .cuda()",
        "m.py:3: torch.cuda",
        "m.py:4: placed on 'cuda:0'",
        "m.py:5: placed on 'cuda'",
        "m.py:6: placed on 'cuda'",
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_makes_no_direct_cuda_call(package: str) -> None:
    uses = [
        use
        for path in sorted((ROOT / package).rglob("*.py"))
        for use in cuda_uses(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not uses, "CUDA-only calls (use the Trainer's device or the tensors' own device instead):\n" + "\n".join(
        uses
    )
