"""A real dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

Started as a user would start them on a cluster (``python -m dask scheduler`` /
``worker``), reached through ``neurosim sweep --scheduler tcp://HOST:PORT``; the sweep's
rows must equal the experiment's serial run bit for bit, and the cells must have run
in the worker processes. The processes are ended by their ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from neurosim.cli import main  # noqa: E402
from neurosim.experiments import experiment, settings_for  # noqa: E402
from neurosim.sweep import load_rows  # noqa: E402
from neurosim.sweep.cluster import PIN_ENV  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VALUES = {"dataset": "digits", "samples": 40, "t_d": [2, 4], "hidden": [[16]], "late_hidden": [16], "ticks": 8,
          "seeds": [0, 7], "detectors": ["song"], "rnn_t_d": []}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def test_sweep_on_a_real_cluster_equals_the_serial_run(tmp_path):
    env = {**os.environ, **PIN_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    scheduler_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        def start(*args: str, name: str) -> None:
            log = open(tmp_path / f"{name}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], env=env, cwd=tmp_path,
                                          stdout=log, stderr=subprocess.STDOUT))

        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file), name="scheduler")
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for k in range(2):
            start("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--name", f"w{k}", name=f"worker{k}")
        worker_pids = {p.pid for p in procs[1:]}
        import distributed

        with distributed.Client(address, timeout="60s") as client:  # the cluster is up, as a user would see it
            client.wait_for_workers(2, timeout=120)

        result = CliRunner().invoke(main, ["sweep", "table3", "--scheduler", address, "--out", str(tmp_path / "s"),
                                           "--set", json_set("samples"), "--set", json_set("t_d"),
                                           "--set", json_set("hidden"), "--set", json_set("late_hidden"),
                                           "--set", json_set("ticks"), "--set", json_set("detectors"),
                                           "--set", json_set("rnn_t_d"),
                                           "--set", "dataset=digits", "--seed", "0", "--seed", "7"])
        assert result.exit_code == 0, result.output + "".join(
            (tmp_path / f"{n}.log").read_text() for n in ("scheduler", "worker0", "worker1"))
        assert "4 of 4 cells done" in result.output and "kernels compiled on 2 worker(s)" in result.output
        cells = [json.loads(p.read_text()) for p in (tmp_path / "s" / "cells").iterdir()]
        assert {c["pid"] for c in cells} <= worker_pids  # the cells ran in the workers, not here
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            _stop(proc)
        for log in logs:
            log.close()

    serial = experiment("table3").run(settings_for("table3", False, VALUES), lambda _: None).rows
    key = lambda r: json.dumps({k: repr(getattr(v, "item", lambda: v)()) for k, v in r.items()}, sort_keys=True)  # noqa: E731
    assert sorted(map(key, load_rows(tmp_path / "s"))) == sorted(map(key, serial))


def json_set(name: str) -> str:
    """``--set NAME=VALUE`` with VALUE in TOML (JSON lists of numbers and strings are TOML)."""
    return f"{name}={json.dumps(VALUES[name])}"
