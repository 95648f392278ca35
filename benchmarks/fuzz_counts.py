"""Run the fuzz suites (``tests/test_fuzz_*.py``) and print how many cases each generated,
and their outcomes by kind: ``accepted`` (the input was valid and the call ran) or the
class of the neurosim error that refused it. Any other outcome fails the suite.

    python benchmarks/fuzz_counts.py            # the suites as CI runs them (fixed seed)
    python benchmarks/fuzz_counts.py -- -x -k graphs   # extra pytest arguments after --

The table is Markdown; the last line gives the total and the wall time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    import pytest

    sys.path.insert(0, str(REPO))
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    files = sorted(str(p) for p in (REPO / "tests").glob("test_fuzz_*.py"))
    os.chdir(REPO)
    start = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *files, *extra])
    seconds = time.perf_counter() - start
    import fuzz_support  # the module the suites counted in (imported by pytest from tests/)

    outcomes = sorted({o for c in fuzz_support.COUNTS.values() for o in c})
    print("\n| kind | cases | " + " | ".join(outcomes) + " |")
    print("|---|---:|" + "---:|" * len(outcomes))
    for kind, counter in sorted(fuzz_support.COUNTS.items()):
        cells = " | ".join(str(counter.get(o, 0)) for o in outcomes)
        print(f"| {kind} | {sum(counter.values())} | {cells} |")
    print(f"\n{fuzz_support.total()} cases in {seconds:.0f} s (pytest exit status {int(code)})")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
