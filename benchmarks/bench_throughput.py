"""Event throughput of the event loop against a plain numba pass over the same synapses.

What is measured
----------------
A large layered network (default ``mlp([1000, 1000, 1000, 1000, 10], "tanh", "post")``,
about 3M synapses) runs Strict PC (``StrictPC(alpha=1e-3, eta=0.1, n=N)``) with
``all_active=True``: every neuron computes in every tick, so in each learning tick

- the error stage visits every synapse once (each error neuron's weighted sum), and
- the value stage visits once every synapse whose presynaptic value neuron is free,
  i.e. not an input (each value neuron's feedback ``sum_s w_s g_s``).

A *synaptic event* is one such visit, one multiply-add per lane, so one tick is
``n_syn + n_syn_from_free`` events per lane, ``B`` times that for a mini-batch of ``B``
lanes. The loop's time is that of :meth:`Presentation.advance` over ``N`` learning
ticks of a presentation whose prediction phase has already run (``--method advance``,
the default), or the difference of ``learn`` with ``n = N`` and ``n = 1``, which costs
``N - 1`` ticks (``--method subtract``).

**The bound** is a plain ``@njit`` pass with no scheduling at all over the same
netlist: for each error neuron ``sum_s theta[s_param[s]] * x[s_pre[s]]`` (CSR by
target: ``in_ptr``, ``s_pre``, ``s_param``; ``theta[s]`` when ``s_param`` is empty,
i.e. no weight is shared, as in the loop) and for each free value neuron
``sum_q theta[s_param[out_syn[q]]] * g[s_post[out_syn[q]]]`` (``out_ptr``/``out_syn``):
the same multiply-adds per lane, single-threaded, ``N`` times, in the state's layout
(neurons by lanes). The target is on *loop / bound*.

Two more passes are timed beside it when the netlist stores its synapses as *runs*
(``fr_*``, ``br_*``: :mod:`neurosim.compile.runs`), the layout the loop itself reads:
the **runs bound** (the same sums, looping over runs instead of gathering through
per-synapse indices) and its ``prange`` version on all numba threads, the
**par. runs bound**. The loop's stages are parallel and read runs, so *loop / par.
runs bound* is the like-for-like figure: what the scheduling itself costs.

Why a ratio
-----------
Events per second depend on the machine and its load; the ratio *loop / bound*
(bound time over loop time, in the same round) says how much the event machinery
(wake rings, lines, change detection, phases) costs over the bare arithmetic.
Target: ``loop / bound >= 0.5``. A ratio above 1 means the loop does the same
arithmetic faster than the plain pass (threads, a better memory layout).

Run ``python benchmarks/bench_throughput.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (puts the repository root on sys.path)
import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import prange  # noqa: E402

from neurosim.compile.netlist import ROLE_INPUT  # noqa: E402
from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import mlp  # noqa: E402
from neurosim.rules import StrictPC  # noqa: E402

FULL_SIZES = [1000, 1000, 1000, 1000, 10]
QUICK_SIZES = [500, 500, 500, 10]
TARGET_RATIO = 0.5


# ---- the bounds -------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _csr_sum(i: int, ptr: np.ndarray, idx: np.ndarray, other: np.ndarray, param: np.ndarray,
             theta: np.ndarray, src: np.ndarray, out: np.ndarray, via_syn: bool) -> None:
    """``out[i] = sum theta[param[s]] * src[other[s]]`` over the synapses ``s`` of row ``i`` of a CSR.

    ``via_syn``: the row lists synapse ids (``out_syn``), else it is the synapses
    themselves (``in_ptr``). ``param`` is the netlist's ``s_param``: empty when no
    weight is shared, and then synapse ``s`` reads ``theta[s]`` (as the loop does).
    One lane sums in a register; several lanes innermost.
    """
    B = src.shape[1]
    shared = param.shape[0] > 0
    if B == 1:
        acc = 0.0
        for q in range(ptr[i], ptr[i + 1]):
            s = idx[q] if via_syn else q
            acc += theta[param[s] if shared else s] * src[other[s], 0]
        out[i, 0] = acc
    else:
        row = out[i]
        for b in range(B):
            row[b] = 0.0
        for q in range(ptr[i], ptr[i + 1]):
            s = idx[q] if via_syn else q
            w = theta[param[s] if shared else s]
            col = src[other[s]]
            for b in range(B):
                row[b] += w * col[b]


@numba.njit(cache=True)
def csr_bound_ticks(
    n_ticks: int,
    in_ptr: np.ndarray, s_pre: np.ndarray, param: np.ndarray, theta: np.ndarray, x: np.ndarray, a: np.ndarray,
    free: np.ndarray, out_ptr: np.ndarray, out_syn: np.ndarray, s_post: np.ndarray, g: np.ndarray, fb: np.ndarray,
) -> float:
    """The bound: ``n_ticks`` times every error neuron's weighted sum and every free value
    neuron's feedback, through the per-synapse index arrays (CSR by target and by source).

    ``x[n_value, B]``, ``g[n_error, B]`` are the signals; ``a[n_error, B]`` and
    ``fb[n_value, B]`` receive the sums, laid out as the loop's state (neuron-major,
    lanes contiguous). Returns a checksum, so that nothing is optimized away.
    """
    check = 0.0
    for _ in range(n_ticks):
        for i in range(a.shape[0]):
            _csr_sum(i, in_ptr, in_ptr, s_pre, param, theta, x, a, False)
        for k in range(free.shape[0]):
            _csr_sum(free[k], out_ptr, out_syn, s_post, param, theta, g, fb, True)
        check += a[0, 0] + fb[free[0], 0]
    return check


@numba.njit(cache=True, inline="always")
def _runs_sum(i: int, ptr: np.ndarray, syn: np.ndarray, stride: np.ndarray, first: np.ndarray,
              length: np.ndarray, strided: bool, param: np.ndarray, theta: np.ndarray, src: np.ndarray,
              out: np.ndarray) -> None:
    """``out[i] = sum`` over the runs ``r`` of neuron ``i`` of ``theta[syn_r + q * stride_r] * src[first_r + q]``.

    Forward runs have stride 1 (``strided`` False); ``param`` as in :func:`_csr_sum`.
    """
    B = src.shape[1]
    shared = param.shape[0] > 0
    if B == 1:
        acc = 0.0
        for r in range(ptr[i], ptr[i + 1]):
            s0, p0, n = syn[r], first[r], length[r]
            step = stride[r] if strided else 1
            for q in range(n):
                s = s0 + q * step
                acc += theta[param[s] if shared else s] * src[p0 + q, 0]
        out[i, 0] = acc
    else:
        row = out[i]
        for b in range(B):
            row[b] = 0.0
        for r in range(ptr[i], ptr[i + 1]):
            s0, p0, n = syn[r], first[r], length[r]
            step = stride[r] if strided else 1
            for q in range(n):
                s = s0 + q * step
                w = theta[param[s] if shared else s]
                col = src[p0 + q]
                for b in range(B):
                    row[b] += w * col[b]


@numba.njit(cache=True)
def runs_bound_ticks(
    n_ticks: int,
    fr_ptr: np.ndarray, fr_syn: np.ndarray, fr_pre: np.ndarray, fr_len: np.ndarray, br_ptr: np.ndarray,
    br_syn: np.ndarray, br_stride: np.ndarray, br_post: np.ndarray, br_len: np.ndarray, param: np.ndarray,
    theta: np.ndarray, x: np.ndarray, a: np.ndarray, free: np.ndarray, g: np.ndarray, fb: np.ndarray,
) -> float:
    """:func:`csr_bound_ticks` over the netlist's runs (``fr_*``, ``br_*``: see
    :mod:`neurosim.compile.runs`) instead of per-synapse indices: the same multiply-adds,
    the loop's own synapse layout."""
    check = 0.0
    for _ in range(n_ticks):
        for i in range(a.shape[0]):
            _runs_sum(i, fr_ptr, fr_syn, fr_syn, fr_pre, fr_len, False, param, theta, x, a)
        for k in range(free.shape[0]):
            _runs_sum(free[k], br_ptr, br_syn, br_stride, br_post, br_len, True, param, theta, g, fb)
        check += a[0, 0] + fb[free[0], 0]
    return check


@numba.njit(cache=True, parallel=True)
def runs_bound_ticks_parallel(
    n_ticks: int,
    fr_ptr: np.ndarray, fr_syn: np.ndarray, fr_pre: np.ndarray, fr_len: np.ndarray, br_ptr: np.ndarray,
    br_syn: np.ndarray, br_stride: np.ndarray, br_post: np.ndarray, br_len: np.ndarray, param: np.ndarray,
    theta: np.ndarray, x: np.ndarray, a: np.ndarray, free: np.ndarray, g: np.ndarray, fb: np.ndarray,
) -> float:
    """:func:`runs_bound_ticks` with both passes parallel over their target neurons (``prange``)."""
    check = 0.0
    for _ in range(n_ticks):
        for i in prange(a.shape[0]):
            _runs_sum(i, fr_ptr, fr_syn, fr_syn, fr_pre, fr_len, False, param, theta, x, a)
        for k in prange(free.shape[0]):
            _runs_sum(free[k], br_ptr, br_syn, br_stride, br_post, br_len, True, param, theta, g, fb)
        check += a[0, 0] + fb[free[0], 0]
    return check


RUN_FIELDS = ("fr_ptr", "fr_syn", "fr_pre", "fr_len", "br_ptr", "br_syn", "br_stride", "br_post", "br_len")
BOUND_NAMES = {"bound": "bound", "runs": "runs bound", "runs_parallel": "par. runs bound"}


def make_bounds(sim: Simulator, lanes: int, rng: np.random.Generator) -> dict[str, Callable[[int], float]]:
    """The bounds for ``sim`` at ``lanes`` lanes, as functions of the number of ticks.

    ``bound``: :func:`csr_bound_ticks` over per-synapse index arrays (``s_pre``, ``s_post``,
    ``out_ptr``, ``out_syn``, as the netlist gives them, indices as int32 where they fit);
    ``runs`` and ``runs_parallel``: over the netlist's runs, when it has them. Signals
    are random; ``theta`` is a copy of the simulator's.
    """
    net = sim.netlist
    free = np.flatnonzero(net.v_role != ROLE_INPUT).astype(np.int64)
    dtype = sim.theta.dtype
    x = rng.uniform(-1, 1, (net.n_value, lanes)).astype(dtype)
    g = rng.uniform(-1, 1, (net.n_error, lanes)).astype(dtype)
    a = np.zeros((net.n_error, lanes), dtype)
    fb = np.zeros((net.n_value, lanes), dtype)
    param = np.ascontiguousarray(net.s_param)  # empty: theta[s], as in the loop
    theta = sim.theta.copy()
    index = np.int32 if net.n_synapses < 2**31 else np.int64

    def ints(arr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(arr, dtype=index)

    csr = (np.ascontiguousarray(net.in_ptr, np.int64), ints(net.s_pre), param, theta, x, a, free,
           np.ascontiguousarray(net.out_ptr, np.int64), ints(net.out_syn), ints(net.s_post), g, fb)
    bounds: dict[str, Callable[[int], float]] = {"bound": lambda n: csr_bound_ticks(n, *csr)}
    if all(hasattr(net, f) for f in RUN_FIELDS):
        runs = (*(getattr(net, f) for f in RUN_FIELDS), param, theta, x, a, free, g, fb)
        bounds["runs"] = lambda n: runs_bound_ticks(n, *runs)
        bounds["runs_parallel"] = lambda n: runs_bound_ticks_parallel(n, *runs)
    return bounds


def synapse_counts(sim: Simulator) -> dict[str, int]:
    """Synapses, synapses leaving a free (non-input) value neuron, and events per tick per lane."""
    net = sim.netlist
    n_syn = int(net.n_synapses)
    n_free = int(np.count_nonzero(net.v_role[net.s_pre] != ROLE_INPUT))
    return {
        "n_value": int(net.n_value), "n_error": int(net.n_error), "n_synapses": n_syn,
        "n_synapses_from_free": n_free, "events_per_tick_per_lane": n_syn + n_free,
    }


# ---- the loop ----------------------------------------------------------------------------------
def loop_candidate(
    sim: Simulator, lanes: int, n_ticks: int, rule_kw: dict[str, float], method: str, rng: np.random.Generator,
    log: list[dict[str, Any]],
) -> common.Candidate:
    """A candidate timing ``n_ticks`` all-active learning ticks (``advance``) or ``N - 1`` (``subtract``)."""
    n_in = sim.graph.nodes[sim.inputs[0]]["size"]
    n_out = sim.graph.nodes[sim.outputs[0]]["size"]

    def batch() -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(0, 1, (lanes, n_in)), rng.uniform(-0.5, 0.5, (lanes, n_out))

    def run_advance() -> float:
        x, y = batch()
        p = sim.present(x, y, StrictPC(n=n_ticks, **rule_kw), all_active=True)
        with common.Stopwatch() as sw:
            p.advance(n_ticks)
        done = p.done
        result = p.finish()
        log.append({"lanes": lanes, "ticks_done": done, "diverged": result.diverged})
        if done != n_ticks or result.diverged:
            raise RuntimeError(f"the presentation ran {done} of {n_ticks} ticks (diverged: {result.diverged})")
        return sw.seconds

    def run_subtract() -> float:
        x, y = batch()
        with common.Stopwatch() as long:
            r1 = sim.learn(x, y, StrictPC(n=n_ticks, **rule_kw), all_active=True)
        with common.Stopwatch() as short:
            r2 = sim.learn(x, y, StrictPC(n=1, **rule_kw), all_active=True)
        if r1.diverged or r2.diverged:
            raise RuntimeError("a timed Strict PC run diverged")
        return long.seconds - short.seconds

    return run_advance if method == "advance" else run_subtract


def choose_ticks(sim: Simulator, lanes: int, rule_kw: dict[str, float], block_s: float,
                 rng: np.random.Generator) -> int:
    """``N`` such that ``N`` all-active ticks take about ``block_s`` (between 5 and 500)."""
    probe = loop_candidate(sim, lanes, 4, rule_kw, "advance", rng, [])
    probe()  # compiles, first touch
    per_tick = min(probe() for _ in range(2)) / 4
    return int(min(500, max(5, round(block_s / max(per_tick, 1e-7)))))


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None, help=f"layer widths (default {FULL_SIZES})")
    p.add_argument("--ticks", type=int, default=None,
                   help="learning ticks N per repeat (default: enough for about --seconds of loop time)")
    p.add_argument("--seconds", type=float, default=None, help="loop time per repeat when N is chosen (1.0, quick 0.3)")
    p.add_argument("--lanes", type=int, nargs="+", default=[1, 16], help="mini-batch sizes (default 1 16)")
    p.add_argument("--method", choices=["advance", "subtract"], default="advance")
    args = p.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    sizes = args.sizes or (QUICK_SIZES if quick else FULL_SIZES)
    block_s = args.seconds or (0.3 if quick else 1.0)
    repeats = args.repeats or (5 if quick else 7)
    rule_kw = {"alpha": 1e-3, "eta": 0.1}
    machine = common.machine_info()
    common.header("Event throughput: event loop vs a plain numba pass", machine, quick)

    t0 = time.perf_counter()
    sim = Simulator(mlp(sizes, activation="tanh", convention="post"), seed=0)
    build_s = time.perf_counter() - t0
    counts = synapse_counts(sim)
    per_tick = counts["events_per_tick_per_lane"]
    print(
        f"network: mlp({sizes}, tanh, post): {counts['n_synapses']:,} synapses "
        f"({counts['n_synapses_from_free']:,} from free value neurons), {per_tick:,} events per tick per lane; "
        f"StrictPC(alpha=1e-3, eta=0.1, n=N) all_active, {'N' if args.method == 'advance' else 'N - 1'} "
        f"ticks timed ({args.method}); "
        f"median of {repeats}, numba threads {numba.get_num_threads()}"
    )
    sys.stdout.flush()

    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"counts": counts, "build_seconds": build_s, "by_lanes": {}}
    rows = []
    ticks_by_lanes: dict[int, int] = {}
    for lanes in args.lanes:
        log: list[dict[str, Any]] = []
        n_ticks = args.ticks or choose_ticks(sim, lanes, rule_kw, block_s, rng)
        ticks_by_lanes[lanes] = n_ticks
        loop_ticks = n_ticks if args.method == "advance" else n_ticks - 1
        bounds = make_bounds(sim, lanes, rng)
        candidates = {"loop": loop_candidate(sim, lanes, n_ticks, rule_kw, args.method, rng, log)}
        for name, fn in bounds.items():
            candidates[name] = common.timed(lambda fn=fn: fn(loop_ticks))
        times = common.interleaved(candidates, repeats, label=f"B={lanes}")
        events = loop_ticks * per_tick * lanes
        med = {k: common.median(v) for k, v in times.items()}
        ratios = {k: common.paired_ratio(times[k], times["loop"]) for k in bounds}
        results["by_lanes"][str(lanes)] = {
            "n": n_ticks, "ticks_timed": loop_ticks, "events_per_repeat": events,
            "raw_seconds": times,
            "summary": {k: common.spread(v) for k, v in times.items()},
            "events_per_second": {k: events / v for k, v in med.items()},
            "ratio_loop_over": ratios,
            "presentations": log,
        }
        row = [lanes, loop_ticks, common.fmt(1e3 * med["loop"] / loop_ticks), common.fmt(events / med["loop"] / 1e6)]
        for name in BOUND_NAMES:
            if name in bounds:
                row += [common.fmt(events / med[name] / 1e6), common.fmt(ratios[name])]
            else:
                row += ["-", "-"]
            if name == "bound":
                row.append("yes" if ratios[name] >= TARGET_RATIO else "no")
        rows.append(row)

    print()
    headers = ["lanes B", "ticks", "loop ms/tick", "loop Mev/s"]
    for name, label in BOUND_NAMES.items():
        headers += [f"{label} Mev/s", f"loop/{label}"] + ([f">= {TARGET_RATIO}"] if name == "bound" else [])
    print(common.table(headers, rows))
    settings = {
        "quick": quick, "sizes": sizes, "activation": "tanh", "convention": "post", "dtype": "float64",
        "rule": {"rule": "strict", "n": ticks_by_lanes, **rule_kw}, "all_active": True, "method": args.method,
        "seconds_per_repeat_target": block_s, "lanes": args.lanes, "repeats": repeats, "warmup": 1,
        "numba_threads": numba.get_num_threads(), "target_ratio": TARGET_RATIO,
    }
    path = common.save_results("throughput", machine, settings, results, started)
    print(f"\nsaved {path.relative_to(common.REPO_ROOT)} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
