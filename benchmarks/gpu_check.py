"""The device check: what a lent GPU does with neurosim, in at most 5 minutes.

Run on a machine with a CUDA GPU and the ``gpu`` extra (``pip install ".[gpu]"``)::

    python benchmarks/gpu_check.py [--quick] [--out FILE.json]

It first describes the device (CuPy's view: name, compute capability, memory, driver and
runtime versions; numba-cuda's version and whether it sees the GPU). Without CuPy or
without a device it says which, and exits with status 0 having measured nothing.

Then it times the vectorized reference (:func:`neurosim.reference.run_rule`) with
``xp=cupy`` against ``xp=numpy`` on a fixed synthetic MLP, ``784-256-256-10`` sigmoid
(pre convention, mse), for backprop (``BP``) and ``FixedPred`` (its default ``n``, the
exact gradient), in float64 and float32, at batch sizes 1, 64 and 1024 (1 and 256 with
``--quick``). The data and parameters are on the device before the clock starts, and
every timed call ends with a device synchronization. Each line reports the median time
per call on each side, their ratio (numpy over cupy, from interleaved rounds as in
:mod:`common`), and how far the GPU's new parameters are from the CPU's (largest
relative difference over the parameters; cuBLAS and the device's ``exp`` round
differently from the CPU's, so float64 agrees to round-off, not bit for bit), and
whether two device runs of the same call give the same bits (the reference uses no
atomics of its own; cuBLAS may, depending on the algorithm it picks).

The event loop on the GPU (synaptic events per second, bytes per synapse, construction
time, bitwise agreement with the CPU) is a later step of issue 14 and is not measured
here yet.

``--stand-in`` runs the same measurements with numpy in the place of CuPy (labelled as
such in the output): it checks the script itself on a machine without a GPU, and its
figures say nothing about GPUs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import common
from neurosim.arrays import to_numpy
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.reference import run_rule
from neurosim.rules import BP, FixedPred

SIZES = [784, 256, 256, 10]


def detect_device() -> dict[str, Any]:
    """The GPU as CuPy and numba-cuda see it: ``{"gpu": bool, "reason": str, ...}``."""
    info: dict[str, Any] = {"gpu": False}
    try:
        import numba_cuda

        from numba import cuda

        info["numba_cuda"] = numba_cuda.__version__
        info["numba_cuda_sees_gpu"] = bool(cuda.is_available())
    except ImportError:
        info["numba_cuda"] = None
    try:
        import cupy
    except ImportError as exc:
        info["reason"] = f"CuPy is not installed ({exc}): pip install '.[gpu]'"
        return info
    info["cupy"] = cupy.__version__
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy without a driver or a device raises CUDARuntimeError
        info["reason"] = f"CuPy finds no CUDA device: {exc}"
        return info
    if count < 1:
        info["reason"] = "CuPy finds no CUDA device"
        return info
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    info.update(
        gpu=True,
        devices=count,
        name=name.decode() if isinstance(name, bytes) else str(name),
        compute_capability=f"{props['major']}.{props['minor']}",
        memory_bytes=int(props["totalGlobalMem"]),
        multiprocessors=int(props["multiProcessorCount"]),
        driver_version=cupy.cuda.runtime.driverGetVersion(),
        runtime_version=cupy.cuda.runtime.runtimeGetVersion(),
    )
    return info


def _device_namespace(stand_in: bool) -> tuple[Any, Callable[[], None]]:
    """``(xp, synchronize)``: CuPy and a device synchronization, or numpy and nothing."""
    if stand_in:
        return np, lambda: None
    import cupy

    return cupy, cupy.cuda.Device().synchronize


def measure(batches: list[int], repeats: int, stand_in: bool) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Time ``run_rule`` on the device namespace against numpy; table rows and JSON records."""
    xp, synchronize = _device_namespace(stand_in)
    graph = mlp(SIZES, activation="sigmoid", convention="pre")
    rows, records = [], []
    for dtype in (np.float64, np.float32):
        host_params = {n: p.astype(dtype) for n, p in init_params(graph, seed=0).items()}
        dev_params = {n: xp.asarray(p) for n, p in host_params.items()}
        for batch in batches:
            rng = np.random.default_rng(batch)
            x = rng.random((batch, SIZES[0])).astype(dtype)
            y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], batch)]
            dev_x, dev_y = xp.asarray(x), xp.asarray(y)
            synchronize()
            for rule in (BP(alpha=1e-3), FixedPred(alpha=1e-3)):
                def on_host(rule: Any = rule) -> Any:
                    return run_rule(graph, host_params, x, y, rule)

                def on_device(rule: Any = rule) -> Any:
                    result = run_rule(graph, dev_params, dev_x, dev_y, rule, xp=xp)
                    synchronize()
                    return result

                times = common.interleaved(
                    {"numpy": common.timed(on_host), "device": common.timed(on_device)}, repeats,
                    label=f"{type(rule).__name__} {np.dtype(dtype).name} batch {batch}",
                )
                want, got, again = on_host().params, on_device().params, on_device().params
                repeatable = all(
                    to_numpy(got[n], xp).tobytes() == to_numpy(again[n], xp).tobytes() for n in want
                )
                diff = max(
                    float(np.max(np.abs(to_numpy(got[n], xp) - want[n])) / max(np.max(np.abs(want[n])), 1e-300))
                    for n in want
                )
                ratio = common.paired_ratio(times["numpy"], times["device"])
                rows.append([type(rule).__name__, np.dtype(dtype).name, batch,
                             common.fmt(1e3 * common.median(times["numpy"])),
                             common.fmt(1e3 * common.median(times["device"])),
                             common.fmt(ratio), f"{diff:.1e}", "yes" if repeatable else "NO"])
                records.append({"rule": type(rule).__name__, "dtype": np.dtype(dtype).name, "batch": batch,
                                "numpy_seconds": times["numpy"], "device_seconds": times["device"],
                                "numpy_over_device": ratio, "max_relative_difference": diff,
                                "device_repeatable": repeatable})
    return rows, records


def main() -> int:
    p = common.parser(__doc__)
    p.add_argument("--stand-in", action="store_true",
                   help="numpy in the place of CuPy: checks the script without a GPU (no GPU figure)")
    p.add_argument("--batches", type=int, nargs="+", metavar="B", help="batch sizes (default 1 64 1024; --quick 1 256)")
    p.add_argument("--out", metavar="FILE", help="write the JSON here (default benchmarks/results/gpu_check-*.json)")
    args = p.parse_args()
    started = time.perf_counter()
    machine = common.machine_info()
    common.header("GPU check" + (" with numpy standing in for CuPy" if args.stand_in else ""), machine, args.quick)
    device = detect_device()
    print("device: " + ", ".join(f"{k} {v}" for k, v in device.items() if k not in ("gpu", "reason")))
    if not device["gpu"] and not args.stand_in:
        print(f"no GPU: {device['reason']}. Nothing was measured (--stand-in checks the script on the CPU).")
        return 0
    batches = args.batches or ([1, 256] if args.quick else [1, 64, 1024])
    repeats = args.repeats or (3 if args.quick else 7)
    rows, records = measure(batches, repeats, args.stand_in)
    side = "stand-in (numpy)" if args.stand_in else "cupy"
    print(f"\nthe reference, mlp {'-'.join(map(str, SIZES))} sigmoid pre, median ms per call over {repeats} rounds")
    print(common.table(["rule", "dtype", "batch", "numpy ms", f"{side} ms", "numpy / device",
                        "max rel. diff", "same bits twice"], rows))
    settings = {"sizes": SIZES, "batches": batches, "repeats": repeats, "stand_in": args.stand_in}
    results = {"device": device, "reference": records}
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(common.save_results("gpu_check", machine, settings, results, started), path)
    else:
        path = common.save_results("gpu_check", machine, settings, results, started)
    print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
