"""The asynchronous mode's event queue (clause A5): pops follow the total order
``(time, kind, target, source, seq, data)``, checked against Python's ``sorted`` and
``heapq`` on random streams with many ties."""

from __future__ import annotations

import heapq

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.engine.transport import events as ev
from neurosim.errors import ConfigError

# few distinct values per field, so that ties are frequent at every level of the key
_event = st.tuples(
    st.sampled_from([0.0, 0.5, 1.0, 1.0 + 2**-52, 2.0, 3.0]),
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2),
    st.integers(0, 1000),
)


def _drain(q: ev.EventQueue) -> list[tuple]:
    out = []
    while q.size[0]:
        t, k, tg, s, sq, d = ev.pop(q)
        out.append((float(t), int(k), int(tg), int(s), int(sq), int(d)))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, max_size=200), st.integers(1, 8))
def test_pops_follow_the_total_order(stream: list[tuple], capacity: int) -> None:
    q = ev.new_queue(capacity)
    for e in stream:
        q = ev.push_or_grow(q, *e)
    assert _drain(q) == sorted(stream)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _event), max_size=300))
def test_interleaved_pushes_and_pops_match_heapq(ops: list[tuple[bool, tuple]]) -> None:
    q = ev.new_queue(4)
    ref: list[tuple] = []
    for is_pop, e in ops:
        if is_pop:
            got = ev.pop(q)
            want = heapq.heappop(ref) if ref else (np.inf, -1, -1, -1, -1, -1)
            assert tuple(got) == want
        else:
            q = ev.push_or_grow(q, *e)
            heapq.heappush(ref, e)
        assert ev.peek_time(q) == (ref[0][0] if ref else np.inf)
        assert tuple(ev.peek(q)) == (ref[0] if ref else (np.inf, -1, -1, -1, -1, -1))


def test_pop_order_does_not_depend_on_push_order() -> None:
    rng = np.random.default_rng(3)
    stream = [(float(rng.integers(0, 4)), int(rng.integers(0, 3)), int(rng.integers(0, 5)),
               int(rng.integers(0, 5)), int(rng.integers(0, 3)), k) for k in range(500)]
    orders = []
    for perm in (np.arange(500), rng.permutation(500), rng.permutation(500)):
        q = ev.new_queue(16)
        for k in perm:
            q = ev.push_or_grow(q, *stream[k])
        orders.append(_drain(q))
    assert orders[0] == orders[1] == orders[2] == sorted(stream)


def test_full_queue_refuses_then_grows() -> None:
    q = ev.new_queue(2)
    assert ev.push(q, 1.0, 0, 0, 0, 0, 0) and ev.push(q, 0.5, 0, 0, 0, 0, 1)
    assert not ev.push(q, 0.25, 0, 0, 0, 0, 2)  # full: nothing inserted
    assert q.size[0] == 2
    q = ev.grown(q)
    assert q.time.shape[0] == 4 and ev.push(q, 0.25, 0, 0, 0, 0, 2)
    assert [e[5] for e in _drain(q)] == [2, 1, 0]


def test_large_ids_pack_and_unpack() -> None:
    top = ev.MAX_ID - 1
    q = ev.new_queue(4)
    ev.push(q, 0.0, ev.COMMIT, top, top, 7, 9)
    ev.push(q, 0.0, ev.DELIVERY, top, 0, 0, 0)
    assert tuple(ev.pop(q)) == (0.0, ev.DELIVERY, top, 0, 0, 0)
    assert tuple(ev.pop(q)) == (0.0, ev.COMMIT, top, top, 7, 9)


def test_usable_from_numba_code() -> None:
    @numba.njit
    def hold(q: ev.EventQueue, n: int) -> tuple[ev.EventQueue, float]:
        last = -1.0
        ok = True
        for k in range(n):
            q = ev.push_or_grow(q, float((k * 7919) % 101), ev.COMPUTE, k % 13, 0, k, k)
        for _ in range(n):
            t = ev.pop(q)[0]
            ok = ok and t >= last
            last = t
        return q, 1.0 if ok else 0.0

    q, ok = hold(ev.new_queue(1), 1000)
    assert ok == 1.0 and q.size[0] == 0 and q.time.shape[0] >= 1000


def test_check_ids_names_the_field() -> None:
    ev.check_ids(ev.COMMIT, ev.MAX_ID - 1, 0)
    with pytest.raises(ConfigError, match="target"):
        ev.check_ids(0, ev.MAX_ID, 0)
    with pytest.raises(ConfigError, match="kind"):
        ev.check_ids(8, 0, 0)
