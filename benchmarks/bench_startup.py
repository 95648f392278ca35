"""Start-up time: a fresh Python process that builds a model and learns one sample.

What is measured
----------------
The wall time of a subprocess ``python -c "<snippet>"`` where the snippet builds a
small MLP, a :class:`~neurosim.engine.Simulator` and calls ``learn`` once with
``FaZIL`` (the first thing a user does), with ``NUMBA_CACHE_DIR`` pointing to

- a fresh empty temporary folder: **cold** (numba compiles every kernel and writes
  its cache there); each cold run gets its own fresh folder;
- a folder a cold run has just filled: **warm** (numba loads the kernels from its
  cache; anything compiled again shows up here);

and, for reference, ``python -c "import neurosim"`` and ``python -c "import numpy,
numba"`` (the floor of any process that uses the engine). The processes run from a
temporary working directory with the repository on ``PYTHONPATH``. Functions numba
reports it cannot cache (``NumbaWarning: Cannot cache compiled function ...``) are
listed: they are compiled again by every process.

Targets: cold <= 10 s, warm <= 2 s. Warm and import runs are medians of 3 (quick) or
5; cold runs are at least 2, more while the time budget allows (``--cold-budget``).

Why ratios
----------
Start-up depends on the disk cache and the load; the table gives warm / cold and each
figure over the bare ``import numpy, numba`` of the same round.

Run ``python benchmarks/bench_startup.py [--quick]``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

LEARN_SNIPPET = (
    "import numpy as np; "
    "from neurosim.graph import mlp; from neurosim.engine import Simulator; from neurosim.rules import FaZIL; "
    "sim = Simulator(mlp([8, 6, 3]), seed=0); "
    "r = sim.learn(np.full((1, 8), 0.5), np.array([[1.0, 0.0, 0.0]]), FaZIL(alpha=0.01)); "
    "assert not r.diverged"
)
IMPORT_SNIPPET = "import neurosim"
BASELINE_SNIPPET = "import numpy, numba"
TARGETS = {"cold": 10.0, "warm": 2.0}
_UNCACHEABLE = re.compile(r'Cannot cache compiled function "([^"]+)"')


def run_python(snippet: str, cache_dir: Path, workdir: Path) -> dict[str, Any]:
    """Run ``python -c snippet`` with ``NUMBA_CACHE_DIR=cache_dir``; wall seconds, status, uncacheable functions."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(common.REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    before = cache_stamp(cache_dir)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = cache_stamp(cache_dir)
    out = {
        "seconds": seconds, "returncode": proc.returncode,
        "uncacheable": sorted(set(_UNCACHEABLE.findall(proc.stderr))),
        "cache_files": len(after), "cache_written": after != before,
    }
    if proc.returncode != 0:
        out["stderr_tail"] = proc.stderr[-2000:]
        raise RuntimeError(f"python -c {snippet!r} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return out


def cache_files(cache_dir: Path) -> int:
    """Number of numba index/data files under ``cache_dir``."""
    return sum(1 for p in cache_dir.rglob("*") if p.suffix in (".nbi", ".nbc"))


def cache_stamp(cache_dir: Path) -> list[tuple[str, int, int]]:
    """Name, size and modification time of every file in the cache: a warm run that changes it compiled."""
    return sorted((str(p.relative_to(cache_dir)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in cache_dir.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--cold-budget", type=float, default=None,
                   help="seconds of cold runs after the first 2 (default: 0 quick, 150 full)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    n_warm = args.repeats or (3 if quick else 5)
    min_cold, max_cold = 2, 2 if quick else 6
    budget = args.cold_budget if args.cold_budget is not None else (0.0 if quick else 150.0)
    machine = common.machine_info()
    common.header("Start-up: fresh processes, cold and warm numba cache", machine, quick)
    print(f"snippet: python -c \"{LEARN_SNIPPET}\"")
    sys.stdout.flush()

    root = Path(tempfile.mkdtemp(prefix="neurosim-startup-"))
    raw: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": [], "import_neurosim": [], "import_numba": []}
    files_written: list[int] = []
    try:
        workdir = root / "cwd"
        workdir.mkdir()
        cache = None
        r = 0
        while True:  # round r: a cold run in a fresh cache (while wanted), then warm, import, baseline
            cold_time = sum(x["seconds"] for x in raw["cold"][min_cold:])
            want_cold = len(raw["cold"]) < min_cold or (
                len(raw["cold"]) < max_cold and cold_time + common.median([x["seconds"] for x in raw["cold"]]) <= budget
            )
            if not want_cold and len(raw["warm"]) >= n_warm:
                break
            if want_cold or cache is None:
                cache = root / f"cache{r}"
                cache.mkdir()
                common.progress(f"round {r + 1}: cold")
                raw["cold"].append(run_python(LEARN_SNIPPET, cache, workdir))
                files_written.append(cache_files(cache))
            if len(raw["warm"]) < n_warm:
                common.progress(f"round {r + 1}: warm")
                raw["warm"].append(run_python(LEARN_SNIPPET, cache, workdir))
                raw["import_neurosim"].append(run_python(IMPORT_SNIPPET, cache, workdir))
                raw["import_numba"].append(run_python(BASELINE_SNIPPET, cache, workdir))
            r += 1
        common.progress("")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    secs = {k: [x["seconds"] for x in v] for k, v in raw.items()}
    med = {k: common.median(v) for k, v in secs.items()}
    base = secs["import_numba"]
    rows = []
    labels = {
        "cold": "learn, cold cache", "warm": "learn, warm cache",
        "import_neurosim": "import neurosim", "import_numba": "import numpy, numba",
    }
    for key, label in labels.items():
        ts = secs[key]
        # cold runs have no baseline of their own round after the warm runs stop: pair by index
        over_base = common.paired_ratio(ts, base[: len(ts)]) if len(base) >= len(ts) else med[key] / med["import_numba"]
        target = TARGETS.get(key)
        rows.append([
            label, len(ts), common.fmt(med[key]), common.fmt(min(ts)), common.fmt(max(ts)), common.fmt(over_base),
            "-" if target is None else f"<= {target:g} s: " + ("yes" if med[key] <= target else "no"),
        ])
    print()
    print(common.table(["process", "runs", "median s", "min s", "max s", "x import numba", "target"], rows))
    warm_over_cold = med["warm"] / med["cold"]
    uncacheable = sorted({f for x in raw["warm"] for f in x["uncacheable"]})
    print(f"warm / cold: {common.fmt(warm_over_cold)}; cache files written by a cold run: {files_written}")
    recompiled = [i for i, x in enumerate(raw["warm"]) if x["cache_written"]]
    if recompiled:
        print(f"warm runs {recompiled} wrote new cache files: numba compiled again (a source file changed "
              "since the cold run, or a new signature)")
    if uncacheable:
        print(f"compiled again by every process (numba cannot cache them): {', '.join(uncacheable)}")
    settings = {
        "quick": quick, "snippet_learn": LEARN_SNIPPET, "snippet_import": IMPORT_SNIPPET,
        "snippet_baseline": BASELINE_SNIPPET, "warm_runs": n_warm, "cold_runs_min": min_cold,
        "cold_runs_max": max_cold, "cold_budget_seconds": budget, "targets_seconds": TARGETS,
    }
    results = {
        "raw": raw, "median_seconds": med, "warm_over_cold": warm_over_cold, "cache_files_written": files_written,
        "uncacheable_functions": uncacheable,
    }
    path = common.save_results("startup", machine, settings, results, started)
    print(f"\nsaved {path.relative_to(common.REPO_ROOT)} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
