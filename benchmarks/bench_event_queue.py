"""The asynchronous mode's event queue: push + pop throughput against events in flight.

The classic *hold* model of event-queue studies: the queue holds ``N`` events; each
operation pops the least event and pushes one ``Exp(1)`` hops later (a neuron that
receives a message and emits one), so that ``N`` stays constant. Reported per ``N``:
nanoseconds per hold (one pop plus one push) of
:mod:`neurosim.engine.transport.events` in numba, and, as the familiar yardstick,
Python's ``heapq`` on tuples of the same keys, timed in interleaved rounds; and the
ratio of the two (a per-round ratio, as every figure of this suite). A binary heap
costs ``O(log N)`` per hold, so the time grows slowly with ``N`` and steps up where the
heap leaves the processor's caches.

Run: ``python benchmarks/bench_event_queue.py [--quick]``.
"""

from __future__ import annotations

import heapq
import time

import numba
import numpy as np

import common
from neurosim.engine.transport import events as ev


@numba.njit(cache=True)
def _fill(q: ev.EventQueue, n: int, gaps: np.ndarray) -> ev.EventQueue:
    for k in range(n):
        q = ev.push_or_grow(q, gaps[k], ev.DELIVERY, k % 1021, k % 997, k, k)
    return q


@numba.njit(cache=True)
def _hold(q: ev.EventQueue, gaps: np.ndarray) -> float:
    acc = 0.0
    for k in range(gaps.shape[0]):
        t, kind, target, source, seq, data = ev.pop(q)
        acc += t
        ev.push(q, t + gaps[k], kind, target, source, seq + 1, data)
    return acc


def _numba_candidate(n: int, ops: int, rng: np.random.Generator) -> common.Candidate:
    gaps0, gaps = rng.exponential(1.0, n), rng.exponential(1.0, ops)

    def run() -> float:
        q = _fill(ev.new_queue(n), n, gaps0)
        t0 = time.perf_counter()
        _hold(q, gaps)
        return (time.perf_counter() - t0) / ops

    return run


def _heapq_candidate(n: int, ops: int, rng: np.random.Generator) -> common.Candidate:
    gaps0, gaps = rng.exponential(1.0, n).tolist(), rng.exponential(1.0, ops).tolist()

    def run() -> float:
        h = [(gaps0[k], ev.DELIVERY, k % 1021, k % 997, k, k) for k in range(n)]
        heapq.heapify(h)
        t0 = time.perf_counter()
        pop, push = heapq.heappop, heapq.heappush
        for g in gaps:
            t, kind, target, source, seq, data = pop(h)
            push(h, (t + g, kind, target, source, seq + 1, data))
        return (time.perf_counter() - t0) / ops

    return run


def main() -> None:
    args = common.parser(__doc__).parse_args()
    started = time.perf_counter()
    machine = common.machine_info()
    common.header("event queue: push + pop (hold) against events in flight", machine, args.quick)
    repeats = args.repeats or (3 if args.quick else 7)
    sizes = [10, 100, 1_000, 10_000, 100_000] + ([] if args.quick else [1_000_000, 4_000_000])
    ops = 200_000 if args.quick else 1_000_000
    rng = np.random.default_rng(0)
    rows, results = [], []
    for n in sizes:
        common.progress(f"N = {n}")
        cands = {"numba": _numba_candidate(n, ops, rng), "heapq": _heapq_candidate(n, ops // 10, rng)}
        times = common.interleaved(cands, repeats)
        nb, hq = common.median(times["numba"]), common.median(times["heapq"])
        speedup = common.paired_ratio(times["heapq"], times["numba"])
        rows.append([f"{n:,}", common.fmt(nb * 1e9), common.fmt(1e-6 / nb), common.fmt(hq * 1e9), common.fmt(speedup)])
        results.append(dict(in_flight=n, ns_per_hold_numba=nb * 1e9, ns_per_hold_heapq=hq * 1e9,
                            heapq_over_numba=speedup, raw=times))
    print(common.table(["events in flight", "ns / hold (numba)", "M holds / s", "ns / hold (heapq)",
                        "heapq / numba"], rows))
    path = common.save_results("event_queue", machine, dict(sizes=sizes, ops=ops, repeats=repeats), results, started)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
