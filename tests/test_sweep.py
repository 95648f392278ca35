"""Sweeps: the cells' rows are a serial run's, bit for bit; resume; failed cells; errors.

The cells run here with ``serial=True`` (the dask path is tested on a real cluster in
``tests/test_sweep_cluster.py``). The reference is the experiment's own ``run`` on the
whole grid in one call, which shares no code with the sweep's cutting into cells.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import neurosim.sweep.runner as runner
from neurosim.cli import main
from neurosim.errors import ConfigError
from neurosim.experiments import experiment, settings_for
from neurosim.sweep import load_rows, make_spec, run_sweep

REPO = Path(__file__).resolve().parents[1]
# Tiny settings on the bundled digits: seconds per cell once compiled.
TABLE3 = {"dataset": "digits", "samples": 40, "t_d": [1, 4], "hidden": [[16, 16]], "late_hidden": [16],
          "ticks": 8, "seeds": [0, 3], "rnn_t_d": []}
ABLATIONS = {"dataset": "digits", "train_samples": 40, "test_samples": 30, "epochs": 2, "depths": [1, 2],
             "noise": [0.1], "update_step": [], "gamma": [0.5], "seeds": [2, 5]}


def _same(a: list[dict], b: list[dict]) -> bool:
    """Equal rows, floats bit for bit (NaN equal to NaN), in any order."""
    def key(row: dict) -> str:
        return json.dumps({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()}, sort_keys=True)
    return sorted(map(key, a)) == sorted(map(key, b))


def _serial_rows(name: str, values: dict) -> list[dict]:
    module = experiment(name)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in module.run(settings_for(name, False, values), lambda _: None).rows]


@pytest.mark.parametrize("name, values, cells", [("table3", TABLE3, 2 * 2 * 2), ("ablations", ABLATIONS, 2 * 2 * 2)])
def test_cells_equal_the_serial_run(tmp_path, name, values, cells):
    spec = make_spec(name, overrides=values)
    assert len(spec.cells()) == cells  # ablations: depths x (noise + gamma, a union) x seeds
    report = run_sweep(spec, tmp_path / "s", serial=True, progress=False, log=lambda _: None)
    assert (report.done, report.failed, report.pending) == (cells, [], 0)
    rows = load_rows(tmp_path / "s")
    assert _same(rows, _serial_rows(name, values))
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == len(rows)  # no row twice


def test_interrupted_sweep_resumes_and_skips_done_cells(tmp_path, monkeypatch):
    spec = make_spec("table3", overrides=TABLE3)
    real = runner.run_cell
    calls: list[dict] = []

    def interrupted(name, settings):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the fourth cell
        calls.append(settings)
        return real(name, settings)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "s", serial=True, progress=False, log=lambda _: None)
    done = sorted(p.name for p in (tmp_path / "s" / "cells").iterdir())
    assert len(done) == 3  # whole files only: no temporary left behind
    assert not [p for p in (tmp_path / "s").rglob("*") if p.name.endswith(".tmp")]
    table = list(csv.DictReader(open(tmp_path / "s" / "table.csv")))
    assert len(table) == 3 * 2  # the tables were written for the finished cells (2 nets each)
    first = {p: (tmp_path / "s" / "cells" / p).read_bytes() for p in done}

    resumed: list[dict] = []
    monkeypatch.setattr(runner, "run_cell", lambda name, s: resumed.append(s) or real(name, s))
    report = run_sweep(spec, tmp_path / "s", serial=True, progress=False, log=lambda _: None)
    assert (report.skipped, report.done, report.pending) == (3, 5, 0)
    assert len(resumed) == 5 and not any(s in calls for s in resumed)  # the finished cells did not run again
    assert all((tmp_path / "s" / "cells" / p).read_bytes() == b for p, b in first.items())
    assert _same(load_rows(tmp_path / "s"), _serial_rows("table3", TABLE3))


def test_max_cells_leaves_the_rest_for_a_later_run(tmp_path):
    spec = make_spec("table3", overrides=TABLE3)
    report = run_sweep(spec, tmp_path / "s", serial=True, max_cells=2, progress=False, log=lambda _: None)
    assert (report.done, report.pending) == (2, 6)
    assert "2 of 8 cells done" in (tmp_path / "s" / "summary.md").read_text()


def test_a_failed_cell_is_reported_and_the_others_finish(tmp_path):
    # mnist from a folder that does not exist fails when the cell loads it; digits is bundled.
    values = {**TABLE3, "data_dir": str(tmp_path / "no-such-folder"), "t_d": [4], "seeds": [0]}
    spec = make_spec("table3", overrides=values, split=["detectors"], grid={"dataset": ["mnist", "digits"]})
    lines: list[str] = []
    report = run_sweep(spec, tmp_path / "s", serial=True, progress=False, log=lines.append)
    assert report.done == 2 and len(report.failed) == 2
    assert all("dataset=\"mnist\"" in label and "DataError" in err for _, label, err in report.failed)
    record = json.loads((tmp_path / "s" / "failed" / f"{report.failed[0][0]}.json").read_text())
    assert "no-such-folder" in record["error"] and "Traceback" in record["error"]
    assert sum("FAILED" in line for line in lines) == 2
    assert {r["net"].split("-")[0] for r in load_rows(tmp_path / "s")} == {"64"}  # the digits cells


def test_a_grown_sweep_reuses_its_finished_cells(tmp_path):
    one = {**TABLE3, "t_d": [4], "seeds": [0], "detectors": ["feedback"]}
    run_sweep(make_spec("table3", overrides=one), tmp_path / "s", serial=True, progress=False, log=lambda _: None)
    grown = make_spec("table3", overrides={**one, "seeds": [0, 3]})
    report = run_sweep(grown, tmp_path / "s", serial=True, progress=False, log=lambda _: None)
    assert (report.skipped, report.done) == (1, 1)  # the seed-0 cell is the same computation
    manifest = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert manifest["definition"]["settings"]["seeds"] == [0, 3] and len(manifest["history"]) == 1
    assert {r["seed"] for r in csv.DictReader(open(tmp_path / "s" / "table.csv"))} == {"0", "3"}
    with pytest.raises(ConfigError, match="another experiment"):
        run_sweep(make_spec("ablations", overrides={**ABLATIONS, "depths": [1], "seeds": [2]}), tmp_path / "s",
                  serial=True, progress=False, log=lambda _: None)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("")
    with pytest.raises(ConfigError, match="not a sweep directory"):
        run_sweep(make_spec("table3", overrides=TABLE3), tmp_path / "other", serial=True, log=lambda _: None)


def test_without_dask_a_clear_message_and_serial_still_works(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    spec = make_spec("table3", overrides={**TABLE3, "t_d": [4], "seeds": [0], "detectors": ["feedback"]})
    with pytest.raises(ConfigError, match=r'pip install "neurosim\[dask\]".*--serial'):
        run_sweep(spec, tmp_path / "a", progress=False, log=lambda _: None)
    report = run_sweep(spec, tmp_path / "b", serial=True, progress=False, log=lambda _: None)
    assert report.done == 1 and not report.failed


def test_bad_sweeps_are_one_line_errors(tmp_path):
    cli = CliRunner()
    for args, message in [(["table4"], "measures time"), (["table3", "--split", "lr"], "not a list setting"),
                          (["table3", "--split", "t_d", "--split", "t_d"], "two axes"),
                          (["nosuch"], "unknown experiment"), (["table3", "--serial", "--workers", "2"], "drop")]:
        result = cli.invoke(main, ["sweep", *args, "--out", str(tmp_path / "x")])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_sweep_definition_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('experiment = "ablations"\nseeds = [4]\nsplit = [["noise", "gamma"]]\n'
                    '[settings]\ndataset = "digits"\ntrain_samples = 20\ntest_samples = 10\nnoise = [0.0]\n'
                    'update_step = []\ngamma = [1.0, 0.5]\n[grid]\nlr = [0.001, 0.01]\n')
    result = CliRunner().invoke(main, ["sweep", str(path), "--serial", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "6 of 6 cells done" in result.output  # 2 lr x (1 noise + 2 gamma)
    rows = load_rows(tmp_path / "s")
    assert sorted({(r["condition"], r["value"]) for r in rows}) == [("C1", "0.0"), ("C3", "0.5"), ("C3", "1.0")]
    exact = [r for r in rows if r["value"] in ("0.0", "1.0")]  # C1 and C3 intact: Z-IL is backprop
    assert len(exact) == 4 and all(r["weight_divergence"] < 1e-12 for r in exact)
    summary = list(csv.DictReader(open(tmp_path / "s" / "summary.csv")))
    assert len(summary) == 6 and {r["lr"] for r in summary} == {"0.001", "0.01"}  # grid axes kept apart
    assert all(float(r["final_test_error_minus_bp"]) == 0.0 for r in summary if r["value"] in ("0.0", "1.0"))


@pytest.mark.slow  # two fresh processes loading the kernels: about a minute on a loaded machine
def test_sigterm_stops_a_sweep_cleanly_and_the_same_command_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "s"
    args = [sys.executable, "-m", "neurosim", "sweep", "table3", "--serial", "--out", str(out), "--set", "dataset=digits",
            "--set", "samples=40", "--set", "ticks=8", "--set", "hidden=[[16]]", "--set", "t_d=[1, 2, 3]",
            "--set", 'detectors=["song"]', "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "cells").is_dir() or not any((out / "cells").iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # as a batch system stops a job
        text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "the same command resumes" in text, text
    finished = len(list((out / "cells").iterdir()))
    assert 1 <= finished < 3 and not [p for p in out.rglob("*.tmp")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and f"{finished} already done" in done.stdout, done.stdout + done.stderr
