"""benchmarks/gpu_check.py: a clean exit without a GPU, and its measurements on the CPU
with numpy standing in for CuPy (the code path a GPU run takes, minus the device)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(_gpu_present(), reason="a GPU is present: the script would measure it")
def test_without_a_gpu_the_check_says_so_and_exits_cleanly(tmp_path):
    out = tmp_path / "check.json"
    proc = _run("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "no GPU:" in proc.stdout and "Nothing was measured" in proc.stdout
    assert not out.exists()


def test_the_stand_in_run_measures_every_rule_and_dtype_and_writes_json(tmp_path):
    out = tmp_path / "sub" / "check.json"
    proc = _run("--stand-in", "--repeats", "1", "--batches", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "numpy standing in for CuPy" in proc.stdout
    doc = json.loads(out.read_text())
    records = doc["results"]["reference"]
    assert sorted((r["rule"], r["dtype"]) for r in records) == [
        ("BP", "float32"), ("BP", "float64"), ("FixedPred", "float32"), ("FixedPred", "float64")]
    # numpy against numpy: the same code path on both sides, so the same bits
    assert all(r["max_relative_difference"] == 0.0 and r["batch"] == 2 and r["device_repeatable"] for r in records)
    assert all(len(r["numpy_seconds"]) == len(r["device_seconds"]) == 1 for r in records)
