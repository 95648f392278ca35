"""A fresh install works: a wheel built from the checkout, installed into a new virtual
environment, runs every command from a folder outside the repository (issue 10).

The venv sees the system's packages (numba, numpy...: no download), but neurosim itself
comes from the wheel: the test checks where it is imported from, and runs with no
PYTHONPATH and from a temporary folder, so the source tree cannot leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_every_command(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO)],
         cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("neurosim-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path, timeout=600)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run([str(python), "-c", "import neurosim; print(neurosim.__file__)"], cwd=outside).stdout.strip()
    assert Path(where).is_relative_to(env_dir), f"neurosim imported from {where}, not from the wheel"
    out = _run(["bash", str(REPO / ".ci" / "smoke.sh"), str(python)], cwd=outside, timeout=1200).stdout
    assert "smoke: every command works from an install" in out
    assert f"smoke: neurosim from {Path(where).parent}" in out
