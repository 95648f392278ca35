"""The synchronous mode is unchanged bit for bit: ``benchmarks/sync_identity.py``'s cases
against the set saved from the code before the engine's cut (commit 964303a)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "sync_identity"
_spec = importlib.util.spec_from_file_location("sync_identity", REPO / "benchmarks" / "sync_identity.py")
sync_identity = importlib.util.module_from_spec(_spec)
sys.modules["sync_identity"] = sync_identity  # dataclasses look their module up
_spec.loader.exec_module(sync_identity)


@pytest.mark.parametrize("case", sync_identity._cases(), ids=lambda c: c.name)
def test_sync_mode_identical_to_saved_runs(case):
    with np.load(REFERENCE / f"{case.name}.npz") as f:
        ref = {k: f[k] for k in f.files}
    assert sync_identity.compare(ref, sync_identity.run_case(case)) == []


def test_compare_sees_one_ulp_and_a_dtype():
    ref = {"a": np.array([1.0, 2.0]), "b": np.zeros(2, np.int64)}
    assert sync_identity.compare(ref, dict(ref)) == []
    assert sync_identity.compare(ref, {"a": np.array([1.0, np.nextafter(2.0, 3.0)]), "b": ref["b"]}) == ["a: values differ"]
    assert sync_identity.compare(ref, {"a": ref["a"], "b": np.zeros(2, np.int32)}) == ["b: int64(2,) -> int32(2,)"]
    assert sync_identity.compare(ref, {"a": ref["a"]}) == ["missing b"]
