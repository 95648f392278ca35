"""Run the whole benchmark suite, one script after the other, each in its own process.

``python benchmarks/run_all.py [--quick] [--only throughput online ...]``

Each script prints its table and saves its JSON under ``benchmarks/results/``; this
runner forwards ``--quick``, streams their output, and ends with the wall time of each
script and the exit status (non-zero if any script failed). Separate processes keep
the scripts independent: none inherits another's compiled kernels, memory or threads.
On the project's 2-core machine ``--quick`` takes about 1 minute and the full suite
about 5 (each script compiles its kernels once more after an engine source changed,
up to a minute each; the budget is 3 and 20 minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SCRIPTS = ["throughput", "online", "scaling", "startup", "float32"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (about 3 minutes)")
    p.add_argument("--only", nargs="+", choices=SCRIPTS, default=SCRIPTS, help="run only these scripts")
    args = p.parse_args(argv)
    started = time.perf_counter()
    summary = []
    for name in args.only:
        cmd = [sys.executable, str(BENCH_DIR / f"bench_{name}.py")] + (["--quick"] if args.quick else [])
        print(f"\n$ {' '.join(['python', f'benchmarks/bench_{name}.py'] + cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=BENCH_DIR.parent).returncode
        summary.append((name, rc, time.perf_counter() - t0))
    print(f"\nsuite {'(quick) ' if args.quick else ''}done in {time.perf_counter() - started:.0f} s:")
    for name, rc, seconds in summary:
        print(f"  bench_{name}.py: {'ok' if rc == 0 else f'FAILED (exit {rc})'}, {seconds:.0f} s")
    return 0 if all(rc == 0 for _, rc, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
