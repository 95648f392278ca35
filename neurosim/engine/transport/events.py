"""The event queue of the asynchronous mode: a binary min-heap over parallel arrays.

Every event of the asynchronous driver (a message's delivery, a neuron's computation, a
plasticity commit) is one row of a few flat arrays, so that numba code pushes and pops
events without a Python object (clause A5 of ``docs/async.md``). Events pop in the
total order of their *key*

    ``(time, kind, target, source, seq, data)``

compared lexicographically: ``time`` (float64, in hops), then ``kind``
(:data:`DELIVERY` < :data:`COMPUTE` < :data:`COMMIT`: at equal times deliveries come
first, then computations, then plasticity commits), then the receiving neuron
``target``, then the sending ``source`` (a neuron or a link), then ``seq`` (the
emission index on the link, so that the order of two messages on one link does not
depend on the order in which they were pushed), then ``data`` (the caller's payload
handle, which makes the order total even for keys the caller left equal). Ties are
therefore deterministic: the sequence of pops is a function of the set of events
pushed, whatever the order of the pushes (``tests/test_async_events.py`` checks it
against ``sorted`` on random streams with ties).

``kind``, ``target`` and ``source`` are packed into one int64 (``kind << 60 |
target << 30 | source``), so that one comparison orders all three: ``kind`` is at most
:data:`MAX_KIND`, ``target`` and ``source`` below :data:`MAX_ID` (2**30, about a
billion neurons). The heap has a fixed capacity: :func:`push` returns False when it is
full and :func:`grown` returns a copy with twice the capacity (or :func:`push_or_grow`
does both), all callable from numba code. Measured throughput: ``docs/async.md`` and
``benchmarks/bench_event_queue.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

DELIVERY, COMPUTE, COMMIT = 0, 1, 2  # event kinds, in their order at equal times
MAX_KIND = 7
MAX_ID = 1 << 30
_KIND_SHIFT = 60
_TARGET_SHIFT = 30


class EventQueue(NamedTuple):
    """A min-heap of events as parallel arrays (``size[0]`` of them in use).

    ``time[k]``, ``order[k]`` (packed kind, target, source), ``seq[k]`` and ``data[k]``
    are the key of the event in heap slot ``k``; slot 0 holds the least.
    """

    time: np.ndarray  # float64 [capacity]
    order: np.ndarray  # int64 [capacity]
    seq: np.ndarray  # int64 [capacity]
    data: np.ndarray  # int64 [capacity]
    size: np.ndarray  # int64 [1]


def new_queue(capacity: int = 1024) -> EventQueue:
    """An empty queue holding up to ``capacity`` events before it must grow."""
    capacity = max(int(capacity), 1)
    return EventQueue(np.empty(capacity, np.float64), np.empty(capacity, np.int64), np.empty(capacity, np.int64),
                      np.empty(capacity, np.int64), np.zeros(1, np.int64))


@numba.njit(cache=True, inline="always")
def pack(kind: int, target: int, source: int) -> int:
    """``kind``, ``target`` and ``source`` as one int64 that orders them lexicographically."""
    return (np.int64(kind) << _KIND_SHIFT) | (np.int64(target) << _TARGET_SHIFT) | np.int64(source)


@numba.njit(cache=True, inline="always")
def unpack(order: int) -> tuple[int, int, int]:
    """``(kind, target, source)`` from :func:`pack`'s int64."""
    mask = np.int64(MAX_ID - 1)
    return order >> _KIND_SHIFT, (order >> _TARGET_SHIFT) & mask, order & mask


@numba.njit(cache=True, inline="always")
def _less(t1: float, o1: int, s1: int, d1: int, t2: float, o2: int, s2: int, d2: int) -> bool:
    if t1 != t2:
        return t1 < t2
    if o1 != o2:
        return o1 < o2
    if s1 != s2:
        return s1 < s2
    return d1 < d2


@numba.njit(cache=True)
def push(q: EventQueue, time: float, kind: int, target: int, source: int, seq: int, data: int) -> bool:
    """Insert an event; False (and nothing inserted) when the queue is full.

    ``time`` must not be NaN; ``0 <= kind <= MAX_KIND``, ``0 <= target, source < MAX_ID``
    (the caller's contract, not checked here: this is the inner loop).
    """
    n = q.size[0]
    if n >= q.time.shape[0]:
        return False
    o = pack(kind, target, source)
    k = n
    while k > 0:  # sift the hole up while the parent is greater
        p = (k - 1) >> 1
        if not _less(time, o, seq, data, q.time[p], q.order[p], q.seq[p], q.data[p]):
            break
        q.time[k], q.order[k], q.seq[k], q.data[k] = q.time[p], q.order[p], q.seq[p], q.data[p]
        k = p
    q.time[k], q.order[k], q.seq[k], q.data[k] = time, o, seq, data
    q.size[0] = n + 1
    return True


@numba.njit(cache=True)
def grown(q: EventQueue) -> EventQueue:
    """A copy of ``q`` with twice its capacity (the same events, the same heap)."""
    cap = 2 * q.time.shape[0]
    n = q.size[0]
    time, order = np.empty(cap, np.float64), np.empty(cap, np.int64)
    seq, data = np.empty(cap, np.int64), np.empty(cap, np.int64)
    for k in range(n):
        time[k], order[k], seq[k], data[k] = q.time[k], q.order[k], q.seq[k], q.data[k]
    size = np.zeros(1, np.int64)
    size[0] = n
    return EventQueue(time, order, seq, data, size)


@numba.njit(cache=True)
def push_or_grow(q: EventQueue, time: float, kind: int, target: int, source: int, seq: int,
                 data: int) -> EventQueue:
    """Insert an event, growing the queue first if it is full; returns the queue to use."""
    if not push(q, time, kind, target, source, seq, data):
        q = grown(q)
        push(q, time, kind, target, source, seq, data)
    return q


@numba.njit(cache=True)
def peek(q: EventQueue) -> tuple[float, int, int, int, int, int]:
    """The least event ``(time, kind, target, source, seq, data)`` without removing it;
    ``(inf, -1, -1, -1, -1, -1)`` when the queue is empty."""
    if q.size[0] == 0:
        return np.inf, -1, -1, -1, -1, -1
    kind, target, source = unpack(q.order[0])
    return q.time[0], kind, target, source, q.seq[0], q.data[0]


@numba.njit(cache=True)
def peek_time(q: EventQueue) -> float:
    """The time of the least event; ``inf`` when the queue is empty."""
    return q.time[0] if q.size[0] > 0 else np.inf


@numba.njit(cache=True)
def pop(q: EventQueue) -> tuple[float, int, int, int, int, int]:
    """Remove and return the least event ``(time, kind, target, source, seq, data)``;
    ``(inf, -1, -1, -1, -1, -1)`` when the queue is empty."""
    n = q.size[0]
    if n == 0:
        return np.inf, -1, -1, -1, -1, -1
    kind, target, source = unpack(q.order[0])
    out = (q.time[0], kind, target, source, q.seq[0], q.data[0])
    n -= 1
    q.size[0] = n
    if n > 0:  # move the last event into the hole at the root and sift it down
        t, o, s, d = q.time[n], q.order[n], q.seq[n], q.data[n]
        k = 0
        while True:
            c = 2 * k + 1
            if c >= n:
                break
            if c + 1 < n and _less(q.time[c + 1], q.order[c + 1], q.seq[c + 1], q.data[c + 1],
                                   q.time[c], q.order[c], q.seq[c], q.data[c]):
                c += 1
            if not _less(q.time[c], q.order[c], q.seq[c], q.data[c], t, o, s, d):
                break
            q.time[k], q.order[k], q.seq[k], q.data[k] = q.time[c], q.order[c], q.seq[c], q.data[c]
            k = c
        q.time[k], q.order[k], q.seq[k], q.data[k] = t, o, s, d
    return out


def check_ids(kind: int, target: int, source: int) -> None:
    """Raise :class:`~neurosim.errors.ConfigError` unless the fields fit :func:`pack`
    (for drivers to check their neuron and link counts once, outside the inner loop)."""
    from neurosim.errors import ConfigError

    if not 0 <= kind <= MAX_KIND:
        raise ConfigError(f"event kind must be from 0 to {MAX_KIND}, got {kind}")
    for name, value in (("target", target), ("source", source)):
        if not 0 <= value < MAX_ID:
            raise ConfigError(f"event {name} must be from 0 to {MAX_ID - 1} (the queue packs it in 30 bits), "
                              f"got {value}; the network has too many neurons or links for one queue")
