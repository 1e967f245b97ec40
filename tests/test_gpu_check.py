"""``benchmarks/gpu_check.sh``: it stops with a clear message where no GPU is present (CI runs it that far), and its
code path runs end to end on the CPU when told to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_check  # noqa: E402


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_without_a_gpu_it_stops_with_status_2_and_says_why() -> None:
    result = run_script()
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr
    assert result.stdout == ""


def test_on_the_cpu_when_allowed_it_prints_one_row_per_workload() -> None:
    result = run_script(
        "--allow-cpu", "--sizes", "tiny", "--image-size", "32", "--batch-size", "4", "--steps", "2", "--warmup", "1",
        "--no-compile",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| workload", "| I-JEPA ViT-tiny 32px", "| SimCLR ResNet-18 32px"]
    for row in rows[1:]:
        fp32, bf16 = (float(value) for value in row.split(" | ")[2].split(" / "))
        assert bf16 == pytest.approx(fp32, rel=0.02)


def test_a_bf16_loss_off_the_fp32_one_is_reported() -> None:
    row = gpu_check.Row("w", 8, 1.0, 1.05, 1.0, None, 0.0, 0.0, None)
    assert gpu_check.loss_mismatches([row], rtol=0.1) == []
    assert len(gpu_check.loss_mismatches([row], rtol=0.01)) == 1
    row.bf16_loss = float("nan")
    assert len(gpu_check.loss_mismatches([row], rtol=0.1)) == 1


def test_the_peak_table_prefers_the_more_specific_name(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = gpu_check.torch.device("cuda")
    monkeypatch.setattr(gpu_check.torch.cuda, "get_device_name", lambda device: "NVIDIA H100 PCIe")
    assert gpu_check.bf16_peak_flops(cuda, None) == 756e12
    monkeypatch.setattr(gpu_check.torch.cuda, "get_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    assert gpu_check.bf16_peak_flops(cuda, None) == 989e12
    assert gpu_check.bf16_peak_flops(cuda, 100.0) == 100e12
