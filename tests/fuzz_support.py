"""What the fuzz suites (``tests/test_fuzz_*.py``) share: junk values, one case runner, the counts.

Every generated case runs through :func:`run_case`, which asserts the contract of
issue 10: the call returns, or raises one of neurosim's own exceptions
(:class:`neurosim.errors.NeurosimError`) with a message; any other exception fails the
test (hypothesis then shrinks the input to a minimal example). A case also has a time
limit: a SIGALRM breaks a hang in Python code, and the measured time is checked after
the call (a hang inside a numba kernel is caught when the kernel returns).

The counts of cases and outcomes are kept in :data:`COUNTS` (``kind -> outcome ->
n``); ``benchmarks/fuzz_counts.py`` runs the suites and prints them.

Counts in the junk values avoid the band of valid but slow values (10**4 to 10**6
inference steps, hidden layers of 10**4 units...): a fuzz case is either small or
beyond every budget of :mod:`neurosim.validation`, so that each one is fast.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from neurosim.errors import NeurosimError

#: kind of input -> outcome (``accepted`` or the exception's class name) -> cases
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
#: seconds a case may take, by default (generous: CI shares 2 cores)
CASE_LIMIT = 20.0


def fuzz_settings(n: int) -> settings:
    """Reproducible hypothesis settings: ``n`` cases from a fixed seed, no example
    database written to disk, no hypothesis deadline (:func:`run_case` times each case).
    ``NEUROSIM_FUZZ_NO_SHRINK=1`` reports a failure without shrinking it (faster while
    developing)."""
    phases = [p for p in Phase if not (os.environ.get("NEUROSIM_FUZZ_NO_SHRINK") and p is Phase.shrink)]
    return settings(
        max_examples=n, derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=list(HealthCheck), phases=phases,
    )


@pytest.fixture(scope="session")
def warm_engine() -> None:
    """Run every rule once in float64 and float32, untimed: numba's first compile (about a
    minute on a cold cache) is not a case's time."""
    from neurosim.engine import Simulator
    from neurosim.graph import mlp
    from neurosim.rules import IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

    for dtype in (np.float64, np.float32):
        sim = Simulator(mlp([2, 2, 2]), dtype=dtype)
        for rule in (IL(t_c=1), ZIL(), FaZIL(), StrictPC(n=1), FixedPred(), IPC(ticks=2)):
            sim.learn(np.ones((1, 2)), np.ones((1, 2)), rule)


class CaseTimeout(Exception):
    """A case ran past its time limit (raised by the alarm; never caught by neurosim)."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case still running after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_case(kind: str, call: Callable[[], object], limit: float = CASE_LIMIT) -> str:
    """Run one case; return and record its outcome (``accepted`` or the error's class name).

    Fails (raises) if ``call`` raises anything but a :class:`NeurosimError`, if the
    error's message is empty or spans several lines of text with a traceback, or if the
    case takes longer than ``limit`` seconds.
    """
    start = time.perf_counter()
    with _alarm(2 * limit):
        try:
            call()
            outcome = "accepted"
        except NeurosimError as exc:
            message = str(exc)
            assert message.strip(), f"{type(exc).__name__} without a message"
            assert "Traceback" not in message, message
            outcome = type(exc).__name__
    elapsed = time.perf_counter() - start
    assert elapsed <= limit, f"{kind} case took {elapsed:.1f} s, over its limit of {limit} s"
    COUNTS[kind][outcome] += 1
    return outcome


def timed_case(kind: str, call: Callable[[], str], limit: float = CASE_LIMIT) -> str:
    """Run a case that checks its own contract and returns its outcome (a command line);
    time it as :func:`run_case` does and record the outcome."""
    start = time.perf_counter()
    with _alarm(2 * limit):
        outcome = call()
    elapsed = time.perf_counter() - start
    assert elapsed <= limit, f"{kind} case took {elapsed:.1f} s, over its limit of {limit} s"
    COUNTS[kind][outcome] += 1
    return outcome


def total(kinds: tuple[str, ...] | None = None) -> int:
    """Cases counted so far (of ``kinds``, or of every kind)."""
    return sum(sum(c.values()) for k, c in COUNTS.items() if kinds is None or k in kinds)


# ---- junk ---------------------------------------------------------------------------

#: counts: small valid ones, and ones beyond every budget (never the slow band between)
counts = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([-(10**12), -1, 0, 10**7, 10**9, 10**12, 2**63 - 1, 2**64]),
)
#: real numbers, with the awkward ones
reals = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-320, 1e308, -1.0, 0.5, 1.0, 2.5]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    counts,
    reals,
    st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.sampled_from([np.float32(0.1), np.float64(2.0), np.int64(3), np.int32(-1), np.bool_(True),
                     np.complex64(1j), np.str_("relu"), np.uint8(7)]),
    st.text(max_size=8),
    st.sampled_from(["", "relu", "mse", "ce", "pre", "post", "tanh", "none", "no", "true", "1", "nan", "inf"]),
    st.binary(max_size=6),
)
#: arbitrary junk: scalars, containers, arrays, objects
junk = st.recursive(
    st.one_of(
        _scalars,
        st.sampled_from([np.zeros(3), np.array(["a", "b"]), np.ones((2, 2), complex), np.array([True]),
                         np.array([1, "x"], dtype=object), np.zeros((0,)), np.full((2, 3), np.nan)]),
        st.builds(object),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=4), inner, max_size=2)),
    max_leaves=4,
)


def typo(word: str, data: st.DataObject) -> str:
    """``word`` with one character inserted, dropped, doubled or replaced."""
    i = data.draw(st.integers(0, max(len(word) - 1, 0)))
    how = data.draw(st.sampled_from(["insert", "drop", "double", "replace"]))
    ch = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_s"))
    if how == "insert":
        return word[:i] + ch + word[i:]
    if how == "drop" and len(word) > 1:
        return word[:i] + word[i + 1:]
    if how == "double":
        return word[: i + 1] + word[i:]
    return word[:i] + ch + word[i + 1:]


def valid_batch(g, sim, hot: int) -> tuple[dict, dict]:
    """Two uniform samples for every input of ``sim`` and one-hot targets (class ``hot``)
    for every output: a batch that passes validation."""
    rng = np.random.default_rng(0)
    x = {v: rng.uniform(size=(2, g.nodes[v]["size"])) for v in sim.inputs}
    y = {}
    for o in sim.outputs:
        target = np.zeros((2, g.nodes[o]["size"]))
        target[:, hot] = 1.0
        y[o] = target
    return x, y
