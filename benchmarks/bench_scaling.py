"""Scaling with the number of synapses (compile time, memory, tick time) and with depth.

What is measured
----------------
**Size.** ``mlp([w, w, w], activation="tanh", convention="post")`` with ``w`` chosen for
about 1e4, 1e5, 1e6 and 1e7 synapses (``2 w^2 + ...``; ``--quick``: up to 1e6):

- *compile time*: :func:`neurosim.compile.compile_graph` alone, and the whole
  ``Simulator(graph)`` (compile, initial parameters, state), per synapse;
- *memory*: the bytes of every numpy array in ``sim.netlist`` and ``sim.state`` at
  batch 1 (each array counted once), per synapse. Target: at most 24 bytes per synapse;
- *tick time*: one all-active Strict PC learning tick (every neuron computes, every
  synapse is visited by the error stage and, if it leaves a free neuron, by the value
  stage: see ``bench_throughput.py``), per synapse; expected constant (linear
  scaling). At each size the same-run ratios to the plain numba passes of
  ``bench_throughput.py`` (*loop / bound* through per-synapse indices, *loop / runs
  bound* over the netlist's runs, *loop / par. runs bound* its ``prange`` version)
  separate the event machinery's cost from the memory hierarchy's.

**Depth.** Z-IL at batch 1 on ``mlp([256] * (L + 1) + [10], "sigmoid", "pre")`` (``L``
hidden layers, ``L + 1`` weight layers), ``L = 1..8``, against backprop (``sgd_step``)
on the same network: ms per sample and the ratio Z-IL / BP, which should stay flat
if both cost the same per layer. As in ``bench_online.py``, BP is timed with the BLAS
as loaded and with one BLAS thread, and the faster of each round is the reference.

Why ratios
----------
Times per synapse across sizes are compared with the 1e6 case of the same run
(*rel. 1e6*: 1.0 means linear), and the loop with the bound and BP timed in the same
rounds; absolute figures move with the shared machine's load.

Run ``python benchmarks/bench_scaling.py [--quick]``.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (puts the repository root on sys.path)
import numpy as np  # noqa: E402
from bench_throughput import BOUND_NAMES, make_bounds, synapse_counts  # noqa: E402

from neurosim.compile import compile_graph  # noqa: E402
from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import mlp  # noqa: E402
from neurosim.reference.backprop import sgd_step  # noqa: E402
from neurosim.rules import ZIL, StrictPC  # noqa: E402

FULL_TARGETS = [10**4, 10**5, 10**6, 10**7]
QUICK_TARGETS = [10**4, 10**5, 10**6]
TARGET_BYTES_PER_SYNAPSE = 24
DEPTHS = list(range(1, 9))
ALPHA = 1e-3


def width_for(n_synapses: int) -> int:
    """The width ``w`` of ``mlp([w, w, w])`` (``2 w^2`` synapses) closest to ``n_synapses``."""
    return max(2, round((n_synapses / 2) ** 0.5))


def arrays_of(*bundles: object) -> dict[str, int]:
    """``{name: nbytes}`` of the numpy arrays held by ``bundles`` (dataclasses or named
    tuples), each array once (the first name it is found under)."""
    seen: set[int] = set()
    out: dict[str, int] = {}
    for bundle in bundles:
        items = bundle._asdict().items() if hasattr(bundle, "_asdict") else vars(bundle).items()
        for name, v in items:
            if isinstance(v, np.ndarray) and id(v) not in seen:
                seen.add(id(v))
                out[name] = v.nbytes
    return out


def array_bytes(*bundles: object) -> int:
    """Total ``nbytes`` of the numpy arrays held by ``bundles``, each array once."""
    return sum(arrays_of(*bundles).values())


def tick_candidate(sim: Simulator, n_ticks: int, rng: np.random.Generator) -> common.Candidate:
    """Time ``n_ticks`` all-active Strict PC learning ticks at batch 1 (prediction phase excluded)."""
    n_in = sim.graph.nodes[sim.inputs[0]]["size"]
    n_out = sim.graph.nodes[sim.outputs[0]]["size"]

    def run() -> float:
        x, y = rng.uniform(0, 1, (1, n_in)), rng.uniform(-0.5, 0.5, (1, n_out))
        p = sim.present(x, y, StrictPC(alpha=1e-3, eta=0.1, n=n_ticks), all_active=True)
        with common.Stopwatch() as sw:
            p.advance(n_ticks)
        if p.done != n_ticks:
            raise RuntimeError(f"the presentation stopped after {p.done} of {n_ticks} ticks")
        p.finish()
        return sw.seconds

    return run


def measure_size(target: int, repeats: int, tick_seconds: float, rng: np.random.Generator) -> dict[str, Any]:
    """Compile time, memory and tick time (with the bound) of ``mlp([w, w, w])`` for ``target`` synapses."""
    w = width_for(target)
    graph = mlp([w, w, w], activation="tanh", convention="post")
    n_build = repeats if target < 10**7 else 3
    compile_s, build_s = [], []
    sim = None
    for _ in range(n_build):  # compile alone and the whole Simulator, alternately
        with common.Stopwatch() as sw:
            compile_graph(graph)
        compile_s.append(sw.seconds)
        sim = None
        with common.Stopwatch() as sw:
            sim = Simulator(graph, seed=0)
        build_s.append(sw.seconds)
    assert sim is not None
    counts = synapse_counts(sim)
    n_syn = counts["n_synapses"]

    # estimate one tick to choose how many to time (about tick_seconds per repeat)
    probe = tick_candidate(sim, 1, rng)
    probe()  # warm-up (compilation, first touch of the arrays)
    one = min(probe() for _ in range(2))
    n_ticks = int(min(200, max(3, round(tick_seconds / max(one, 1e-6)))))
    bounds = make_bounds(sim, 1, rng)
    candidates = {"loop": tick_candidate(sim, n_ticks, rng)}
    for name, fn in bounds.items():
        candidates[name] = common.timed(lambda fn=fn: fn(n_ticks))
    times = common.interleaved(candidates, repeats, label=f"{n_syn:,} synapses")
    by_array = arrays_of(sim.netlist, sim.state)
    sim_bytes = sum(by_array.values())
    netlist_bytes = array_bytes(sim.netlist)
    tick = common.median(times["loop"]) / n_ticks
    return {
        "width": w, **counts,
        "compile_graph_seconds": compile_s, "simulator_seconds": build_s,
        "bytes_netlist": netlist_bytes, "bytes_state_batch1": sim_bytes - netlist_bytes, "bytes_total": sim_bytes,
        "bytes_per_synapse": sim_bytes / n_syn,
        "bytes_by_array": dict(sorted(by_array.items(), key=lambda kv: -kv[1])),
        "ticks_timed": n_ticks, "raw_tick_block_seconds": times,
        "seconds_per_tick": tick, "ns_per_synapse_tick": 1e9 * tick / n_syn,
        "ns_per_event": 1e9 * tick / counts["events_per_tick_per_lane"],
        "ratio_loop_over": {k: common.paired_ratio(times[k], times["loop"]) for k in bounds},
    }


def zil_vs_bp(depth: int, calls: int, repeats: int, rng: np.random.Generator) -> dict[str, Any]:
    """Z-IL and BP at batch 1 on a chain with ``depth`` hidden layers of 256: seconds per sample."""
    graph = mlp([256] * (depth + 1) + [10], activation="sigmoid", convention="pre")
    sim = Simulator(graph, seed=0)
    state = {"bp": sim.params}
    rule = ZIL(alpha=ALPHA)
    xs = rng.uniform(0, 1, (4096, 256))
    ys = np.eye(10)[rng.integers(0, 10, 4096)]
    pos = {"zil": 0, "bp": 0}

    def batches(who: str) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for _ in range(calls):  # the next samples of this candidate's stream
            k = pos[who] % len(xs)
            out.append((xs[k : k + 1], ys[k : k + 1]))
            pos[who] += 1
        return out

    def zil() -> float:
        data = batches("zil")
        with common.Stopwatch() as sw:
            for x, y in data:
                sim.learn(x, y, rule)
        return sw.seconds / calls

    def bp(blas: int | None, who: str) -> common.Candidate:
        def run() -> float:
            data = batches(who)
            with common.limit_blas(blas), common.Stopwatch() as sw:
                for x, y in data:
                    state[who] = sgd_step(graph, state[who], x, y, ALPHA)
            return sw.seconds / calls

        return run

    candidates = {"zil": zil, "bp": bp(None, "bp")}
    if (common.blas_threads() or 1) > 1:  # see bench_online.py: the faster BP of each round
        state["bp1"], pos["bp1"] = dict(state["bp"]), 0
        candidates["bp1"] = bp(1, "bp1")
    times = common.interleaved(candidates, repeats, label=f"depth {depth}")
    best = common.best_of(*(times[k] for k in ("bp", "bp1") if k in times))
    return {
        "hidden_layers": depth, "weight_layers": depth + 1, "synapses": int(sim.netlist.n_synapses),
        "calls_per_block": calls, "raw_seconds_per_sample": times, "best_bp_seconds_per_sample": best,
        "zil_ms": 1e3 * common.median(times["zil"]), "bp_ms": 1e3 * common.median(best),
        "ratio_zil_over_bp": common.paired_ratio(times["zil"], best),
    }


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=float, nargs="+", default=None, help="synapse counts (default 1e4 .. 1e7)")
    p.add_argument("--depths", type=int, nargs="+", default=None, help="hidden layers for the depth sweep (1..8)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    targets = [int(t) for t in args.targets] if args.targets else (QUICK_TARGETS if quick else FULL_TARGETS)
    depths = args.depths or DEPTHS
    repeats = args.repeats or (5 if quick else 7)
    tick_seconds = 0.15 if quick else 0.5
    calls = 3 if quick else 20
    machine = common.machine_info()
    common.header("Scaling: synapses and depth", machine, quick)
    print(f"sizes: mlp([w, w, w], tanh, post) for {', '.join(f'{t:.0e}' for t in targets)} synapses; "
          f"depth: Z-IL vs BP at batch 1, mlp([256] * (L + 1) + [10], sigmoid, pre), L = {depths}; "
          f"median of {repeats}")
    sys.stdout.flush()
    rng = np.random.default_rng(0)

    sizes = [measure_size(t, repeats, tick_seconds, rng) for t in targets]
    ref = next((s for s in sizes if s["n_synapses"] >= 5 * 10**5), sizes[-1])
    rows = []
    for s in sizes:
        comp = common.median(s["compile_graph_seconds"])
        build = common.median(s["simulator_seconds"])
        s["ns_per_synapse_tick_rel"] = s["ns_per_synapse_tick"] / ref["ns_per_synapse_tick"]
        rows.append([
            f"{s['n_synapses']:,}", s["width"], common.fmt(comp), common.fmt(1e9 * comp / s["n_synapses"]),
            common.fmt(build), f"{s['bytes_total'] / 2**20:.1f}", common.fmt(s["bytes_per_synapse"]),
            "yes" if s["bytes_per_synapse"] <= TARGET_BYTES_PER_SYNAPSE else "no",
            common.fmt(1e3 * s["seconds_per_tick"]), common.fmt(s["ns_per_synapse_tick"]),
            common.fmt(s["ns_per_synapse_tick_rel"]),
            *(common.fmt(s["ratio_loop_over"][k]) if k in s["ratio_loop_over"] else "-" for k in BOUND_NAMES),
        ])
    print()
    print(common.table(
        ["synapses", "w", "compile s", "compile ns/syn", "Simulator s", "memory MiB", "bytes/syn",
         f"<= {TARGET_BYTES_PER_SYNAPSE}", "tick ms", "tick ns/syn", f"rel. {ref['n_synapses']:.0e}",
         *(f"loop/{label}" for label in BOUND_NAMES.values())],
        rows,
    ))
    big = sizes[-1]
    top = [(k, v / big["n_synapses"]) for k, v in big["bytes_by_array"].items()][:6]
    print(f"bytes per synapse at {big['n_synapses']:,} synapses, largest arrays: "
          + ", ".join(f"{k} {v:.2f}" for k, v in top))
    sys.stdout.flush()

    depth_results = [zil_vs_bp(d, calls, repeats, rng) for d in depths]
    print()
    print(common.table(
        ["hidden layers L", "weight layers", "synapses", "Z-IL ms/sample", "BP ms/sample", "Z-IL / BP"],
        [[d["hidden_layers"], d["weight_layers"], f"{d['synapses']:,}", common.fmt(d["zil_ms"]),
          common.fmt(d["bp_ms"]), common.fmt(d["ratio_zil_over_bp"])] for d in depth_results],
    ))
    print("BP: in each round the faster of BP with the BLAS as loaded and with 1 BLAS thread")
    settings = {
        "quick": quick, "targets": targets, "size_graph": "mlp([w, w, w], tanh, post)",
        "tick_rule": {"rule": "strict", "alpha": 1e-3, "eta": 0.1}, "all_active": True, "lanes": 1,
        "tick_seconds_per_repeat": tick_seconds, "depths": depths,
        "depth_graph": "mlp([256] * (L + 1) + [10], sigmoid, pre)", "depth_rule": ZIL(alpha=ALPHA).to_dict(),
        "depth_calls_per_block": calls, "repeats": repeats, "warmup": 1, "dtype": "float64",
        "target_bytes_per_synapse": TARGET_BYTES_PER_SYNAPSE,
        "bp_reference": "per round, the faster of BP with the BLAS as loaded and with 1 BLAS thread",
    }
    results = {
        "sizes": sizes, "depth": depth_results,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    path = common.save_results("scaling", machine, settings, results, started)
    print(f"\nsaved {path.relative_to(common.REPO_ROOT)} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
