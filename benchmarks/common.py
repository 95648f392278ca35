"""Shared helpers of the benchmark suite: machine description, interleaved timing,
tables and JSON results.

Why every figure is a ratio
---------------------------
The suite runs on a shared, noisy 2-core machine whose speed drifts from minute to
minute with other people's load. An absolute time measured at 10:00 cannot be
compared with one measured at 10:05, but two candidates timed *alternately* within
the same few seconds see the same load. So every script

- warms every candidate up once before timing it (numba compiles on the first call,
  and compilation is not what is measured),
- times the candidates in interleaved rounds (round ``r`` visits them in an order
  rotated by ``r``, so none always runs first or right after a given other one),
- reports the median of the repeats, and, for a comparison, the median of the
  per-round ratios (both candidates of one ratio were timed seconds apart),
- saves every raw timing, the settings and the machine's description as JSON under
  ``benchmarks/results/`` (git-ignored), so that a figure can be recomputed.

The scripts import this module as ``common`` (they put ``benchmarks/`` and the
repository root on ``sys.path`` themselves), so each runs with a bare
``python benchmarks/bench_X.py``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO_ROOT) not in sys.path:  # run from anywhere: the repository's neurosim first
    sys.path.insert(0, str(REPO_ROOT))

# A timed candidate: called once per round, returns the seconds it measured itself
# (so that untimed set-up, e.g. a prediction phase before the ticks, can be excluded).
Candidate = Callable[[], float]


# ---- the machine -----------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine_info() -> dict[str, Any]:
    """What ran the benchmark: CPU, cores, memory, OS, versions, git commit, load."""
    import numba
    import numpy

    cpuinfo = _read("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            meminfo[key] = int(rest.split()[0]) * 1024
    dirty = _git("status", "--porcelain")
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer_requested": numba.config.THREADING_LAYER,
        "thread_pools": thread_pools(),
        "thread_env": {k: os.environ[k] for k in sorted(os.environ) if k.endswith("_NUM_THREADS")},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(dirty),
        "git_dirty_files": dirty.splitlines()[:50],
        "load_average_at_start": load,
    }


def thread_pools() -> list[dict[str, Any]]:
    """The native thread pools loaded now (BLAS, OpenMP), from threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "num_threads", "version", "threading_layer", "architecture")
    return [{k: d.get(k) for k in keys} for d in threadpool_info()]


def limit_blas(threads: int | None) -> Any:
    """A context manager limiting the BLAS thread pool to ``threads`` (no-op for ``None``).

    Multithreaded BLAS on a busy 2-core machine can stall for whole scheduler quanta
    when one of its threads is descheduled; ``--blas-threads 1`` removes that from
    backprop's timings. Needs threadpoolctl (installed with scikit-learn).
    """
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def blas_threads() -> int | None:
    """Threads of numpy's BLAS now (None if threadpoolctl is missing or finds no BLAS)."""
    pools = [p for p in thread_pools() if p.get("user_api") == "blas"]
    return int(pools[0]["num_threads"]) if pools else None


def best_of(*series: Sequence[float]) -> list[float]:
    """Round by round, the fastest of several timings of one thing (e.g. two BLAS settings)."""
    return [min(ts) for ts in zip(*series)]


def describe_machine(info: Mapping[str, Any]) -> str:
    """One line summarizing :func:`machine_info` for the top of a table."""
    mem = info.get("memory_bytes")
    mem_s = f"{mem / 2**30:.0f} GiB" if mem else "? GiB"
    commit = (info.get("git_commit") or "?")[:10] + (" (dirty)" if info.get("git_dirty") else "")
    load = ", ".join(f"{x:.2f}" for x in info.get("load_average_at_start") or [])
    blas = [p for p in info.get("thread_pools") or [] if p.get("user_api") == "blas"]
    blas_s = f", {blas[0]['internal_api']} {blas[0]['num_threads']} threads" if blas else ""
    return (
        f"{info.get('cpu_model')}, {info.get('logical_cores')} cores, {mem_s}; python {info.get('python')}, "
        f"numpy {info.get('numpy')}{blas_s}, numba {info.get('numba')} ({info.get('numba_threads')} threads); "
        f"commit {commit}; load {load}"
    )


# ---- timing ------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> Candidate:
    """A candidate that times the whole of ``fn()`` with the garbage collector off."""

    def run() -> float:
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        finally:
            gc.enable()

    return run


class Stopwatch:
    """Context manager timing a block with the garbage collector off: ``with Stopwatch() as sw: ...; sw.seconds``."""

    seconds: float = float("nan")

    def __enter__(self) -> Stopwatch:
        gc.collect()
        gc.disable()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        gc.enable()


def interleaved(
    candidates: Mapping[str, Candidate], repeats: int, warmup: int = 1, label: str = ""
) -> dict[str, list[float]]:
    """Time every candidate ``repeats`` times in interleaved rounds, after ``warmup`` untimed calls each.

    Round ``r`` calls the candidates in their given order rotated by ``r``. Returns
    ``{name: [seconds of round 0, round 1, ...]}``, so that ``times[a][r]`` and
    ``times[b][r]`` were taken in the same round.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(float(candidates[name]()))
        if label:
            progress(f"{label}: round {r + 1}/{repeats}")
    if label:
        progress("")
    return times


def median(xs: Sequence[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median over rounds of ``num[r] / den[r]``: each ratio compares timings of one round."""
    return median([a / b for a, b in zip(num, den) if b > 0])


def spread(xs: Sequence[float]) -> dict[str, float]:
    """Median, min, max and relative half-range of a list of timings (for the JSON)."""
    med = median(xs)
    return {
        "median": med,
        "min": min(xs) if xs else float("nan"),
        "max": max(xs) if xs else float("nan"),
        "rel_spread": (max(xs) - min(xs)) / (2 * med) if xs and med > 0 else float("nan"),
        "n": len(xs),
    }


def progress(msg: str) -> None:
    """A transient progress line on stderr (only on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + msg)
        sys.stderr.flush()


# ---- output --------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with aligned columns (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(headers))]

    def numeric(s: str) -> bool:
        try:
            float(s.replace(",", ""))
        except ValueError:
            return False
        return True

    def line(row: list[str], is_header: bool) -> str:
        out = []
        for k, c in enumerate(row):
            out.append(c.rjust(widths[k]) if not is_header and numeric(c) else c.ljust(widths[k]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0], True), sep] + [line(r, False) for r in cells[1:]])


def fmt(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits (more before the point if it is large)."""
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def utc_stamp() -> str:
    """Current UTC time as ``YYYYmmddTHHMMSSZ``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def save_results(
    name: str, machine: Mapping[str, Any], settings: Mapping[str, Any], results: Any, started: float
) -> Path:
    """Write ``benchmarks/results/<name>-<UTC timestamp>.json`` atomically and return its path.

    The file holds the machine's description, the settings, the results (summaries and
    every raw timing) and the wall time of the whole script.
    """
    import numba

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{utc_stamp()}.json"
    machine = dict(machine)
    try:  # known only once a parallel kernel has run
        machine["numba_threading_layer"] = numba.threading_layer()
    except ValueError:
        machine["numba_threading_layer"] = None
    doc = {
        "benchmark": name,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "wall_seconds": time.perf_counter() - started,
        "machine": machine,
        "settings": settings,
        "results": results,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(doc), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def parser(description: str) -> argparse.ArgumentParser:
    """The options every script takes: ``--quick`` and ``--repeats``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (the suite in ~3 min)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per figure (default 7, 5 with --quick; bench_startup: warm runs)")
    return p


def header(title: str, machine: Mapping[str, Any], quick: bool) -> None:
    """Print the title line of a script's report."""
    print(f"## {title}{' (quick)' if quick else ''}")
    print(f"machine: {describe_machine(machine)}")
    sys.stdout.flush()
