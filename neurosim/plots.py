"""Figures of what the event loop did: events, plasticity, states, energy, error waves.

Every function draws on ``ax`` (a new figure's Axes when ``None``) and returns the
Axes; nothing is shown, so the module runs under any backend, ``Agg`` (headless)
included; it does not choose one for you.
The inputs are the tables of a :class:`~neurosim.monitors.Monitor` (``mon.table(name)``,
a dict of equal-length numpy columns, or ``mon.frame(name)``, a pandas DataFrame), with
``mon.vertices`` naming the integer ``vertex`` codes:

``events``
    ``tick, step, kind (0 value, 1 error, 2 feedback), neuron, vertex, pos``:
    :func:`plot_raster`.
``plasticity``
    ``tick, step, vertex (-1 for a shared parameter's deferred sum), neuron, param,
    delta, cause`` with ``cause`` 0 (the rule's schedule), 1 (the change detector phi),
    2 (end of relaxation), 3 (a shared parameter's deferred sum applied):
    :func:`plot_update_timing`.
``traces``
    ``tick, step, energy`` and ``v[vertex:pos]``, ``mu[...]``, ``eps[...]``,
    ``phi[...]`` (suffix ``@b`` for lane ``b > 0``): :func:`plot_traces`,
    :func:`plot_energy`, and :func:`error_wave` for :func:`plot_error_wave` and
    :func:`save_error_wave_gif`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from neurosim.errors import DataError


CAUSES = {0: "schedule", 1: "phi", 2: "end of relaxation", 3: "deferred sum"}
CAUSE_MARKERS = {0: "o", 1: "^", 2: "s", 3: "D"}
KINDS = {0: ("value", "."), 1: ("error", "x"), 2: ("feedback", "+")}
EVENT_COLUMNS = ("tick", "step", "kind", "neuron", "vertex", "pos")
PLASTICITY_COLUMNS = ("tick", "step", "vertex", "neuron", "param", "delta", "cause")
DEFERRED_LABEL = "shared (deferred)"


def columns(table: Any, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """A table (dict of columns or pandas DataFrame) as a dict of 1-d numpy arrays.

    Raises :class:`DataError` if a required column is missing or the lengths differ.
    """
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # a DataFrame
        cols = {str(c): table[c].to_numpy() for c in table.columns}
    elif isinstance(table, Mapping):
        cols = {str(k): np.asarray(v) for k, v in table.items()}
    else:
        raise DataError(f"a table must be a dict of columns or a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in required if c not in cols]
    if missing:
        raise DataError(f"table has no column(s) {missing}; it has {sorted(cols)}")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise DataError(f"table columns have different lengths {sorted(lengths)}")
    return cols


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots(figsize=(6, 3.5))[1] if ax is None else ax


def _vertex_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(k % cmap.N) for k in range(n)]


def _vertex_offsets(vertex: np.ndarray, pos: np.ndarray, n_vertices: int) -> np.ndarray:
    """Row of the first neuron of each vertex when vertices are stacked in index order."""
    widths = np.zeros(n_vertices, np.int64)
    if vertex.size:
        np.maximum.at(widths, vertex.astype(np.int64), pos.astype(np.int64) + 1)
    return np.concatenate([[0], np.cumsum(widths)[:-1]])


def _mark_learning(ax: Axes, tick: np.ndarray, step: np.ndarray) -> None:
    """A dashed vertical line at the tick of each learning step 0 (each presentation's start)."""
    for t in np.unique(tick[step == 0]):
        ax.axvline(t, color="grey", ls="--", lw=0.8)


def _x_rows(table: dict[str, np.ndarray], x: str) -> tuple[np.ndarray, np.ndarray]:
    """The x values and the rows to draw: every row against ``tick``, or the learning
    rows (``step >= 0``) against ``step``."""
    if x == "tick":
        return table["tick"], np.ones(len(table["tick"]), bool)
    if x == "step":
        return table["step"], table["step"] >= 0
    raise DataError(f"x must be 'tick' or 'step', got {x!r}")


# ---- plots ----------------------------------------------------------------------------
def plot_raster(events: Any, vertices: Sequence[str], ax: Axes | None = None) -> Axes:
    """Event raster: one point per row of the events table, at ``(tick, row)``, coloured by vertex.

    Rows stack the vertices in index order, each ``max(pos) + 1`` rows high; a value
    neuron's belief is a dot, an error neuron's error a cross and its feedback to its
    parents a plus (:data:`KINDS`). One scatter per (vertex, kind) that has events,
    with its legend outside the Axes on the right; a dashed line marks each learning
    step 0 (the prediction phase lies before it).
    """
    ev = columns(events, EVENT_COLUMNS)
    ax = _axes(ax)
    vertex, pos = ev["vertex"].astype(np.int64), ev["pos"].astype(np.int64)
    row = _vertex_offsets(vertex, pos, len(vertices))[vertex] + pos
    colors = _vertex_colors(len(vertices))
    for k, name in enumerate(vertices):
        for kind, (what, marker) in KINDS.items():
            sel = (vertex == k) & (ev["kind"] == kind)
            if np.any(sel):
                ax.scatter(ev["tick"][sel], row[sel], s=12, marker=marker, color=colors[k], label=f"{name} {what}")
    _mark_learning(ax, ev["tick"], ev["step"])
    ax.set_xlabel("tick")
    ax.set_ylabel("neuron (stacked by vertex)")
    ax.set_title("events")
    if ax.collections:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_update_timing(plasticity: Any, vertices: Sequence[str], ax: Axes | None = None,
                       size_by_delta: bool = True) -> Axes:
    """When and where weights changed: markers at ``(learning step, vertex)``, one style per cause.

    Rows are the vertices in index order, then, when the table has rows with vertex -1
    (a shared parameter's deferred sum applied), one more row labelled
    :data:`DEFERRED_LABEL`. There is one marker per (cause, step, row) with at least one
    change, in one scatter per cause present (labels :data:`CAUSES`, markers
    :data:`CAUSE_MARKERS`); with ``size_by_delta`` its area grows with the sum of
    ``|delta|`` of those changes, relative to the largest such sum.
    """
    pl = columns(plasticity, PLASTICITY_COLUMNS)
    ax = _axes(ax)
    vertex = pl["vertex"].astype(np.int64)
    row = np.where(vertex >= 0, vertex, len(vertices))
    keys, inverse = np.unique(np.column_stack([pl["cause"].astype(np.int64), pl["step"].astype(np.int64), row]),
                              axis=0, return_inverse=True)
    total = np.bincount(np.ravel(inverse), weights=np.abs(pl["delta"].astype(np.float64)), minlength=len(keys))
    top = float(total.max()) if total.size else 0.0
    sizes = 15 + 85 * total / top if size_by_delta and top > 0 else np.full(len(keys), 40.0)
    for cause, name in CAUSES.items():
        sel = keys[:, 0] == cause
        if np.any(sel):
            ax.scatter(keys[sel, 1], keys[sel, 2], s=sizes[sel], marker=CAUSE_MARKERS[cause], label=name, alpha=0.8)
    labels = list(vertices) + ([DEFERRED_LABEL] if np.any(vertex < 0) else [])
    ax.set_yticks(range(len(labels)), labels)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("learning step")
    ax.set_title("weight updates")
    if ax.collections:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_traces(traces: Any, ax: Axes | None = None, names: Sequence[str] | None = None,
                x: str = "tick") -> Axes:
    """One line per traced quantity: ``names``, or every column but ``tick, step, energy``.

    Against ``tick`` (every row; a dashed line marks each learning step 0) or, with
    ``x="step"``, against the learning step (rows with ``step >= 0``).
    """
    tr = columns(traces, ("tick", "step"))
    chosen = [c for c in tr if c not in ("tick", "step", "energy")] if names is None else list(names)
    missing = [c for c in chosen if c not in tr]
    if missing:
        raise DataError(f"traces have no column(s) {missing}")
    xs, rows = _x_rows(tr, x)
    ax = _axes(ax)
    for c in chosen:
        ax.plot(xs[rows], tr[c][rows], marker=".", label=c)
    if x == "tick":
        _mark_learning(ax, tr["tick"], tr["step"])
    ax.set_xlabel("tick" if x == "tick" else "learning step")
    ax.set_title("state traces")
    if chosen and len(chosen) <= 12:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_energy(traces: Any, ax: Axes | None = None, x: str = "step", label: str | None = None,
                log: bool = True) -> Axes:
    """The ``energy`` column, ``E = 1/2 sum eps^2`` after each tick's error stage.

    Against the learning step (``x="step"``, rows with ``step >= 0``: one presentation's
    curve is its ``LearnResult.energy``) or against ``tick`` (every row, the prediction
    phase included). NaN rows (held-error steps) are skipped; the axis is logarithmic
    when ``log`` and every drawn value is positive.
    """
    tr = columns(traces, ("tick", "step", "energy"))
    xs, rows = _x_rows(tr, x)
    energy = tr["energy"].astype(np.float64)
    rows = rows & np.isfinite(energy)
    ax = _axes(ax)
    ax.plot(xs[rows], energy[rows], marker="o", label=label)
    if log and np.all(energy[rows] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("tick" if x == "tick" else "learning step")
    ax.set_ylabel("energy")
    ax.set_title("energy")
    if label is not None:
        ax.legend(fontsize="x-small")
    return ax


METRICS = {"relative_error": "relative error ||u - r|| / ||r||", "angle": "angle to the gradient (degrees)"}


def plot_gradient_match(table: Any, metric: str = "relative_error", ax: Axes | None = None,
                        title: str | None = None) -> Axes:
    """``metric`` (``relative_error`` or ``angle``) against ``n``, one line per ``step_size``.

    The table has columns ``n``, ``step_size`` and the metric (Rosenbaum 2022, Figs. 2
    and 4: ``||u - r|| / ||r||`` and ``arccos(u.r / (|u| |r|))`` between a rule's update
    ``u`` and the exact negative gradient ``r``). Relative errors are drawn on a log
    axis, with exact zeros clipped to 1e-17.
    """
    if metric not in METRICS:
        raise DataError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    tb = columns(table, ("n", "step_size", metric))
    ax = _axes(ax)
    for eta in np.unique(tb["step_size"]):
        sel = tb["step_size"] == eta
        order = np.argsort(tb["n"][sel])
        y = tb[metric][sel][order].astype(np.float64)
        if metric == "relative_error":
            y = np.maximum(y, 1e-17)
        ax.plot(tb["n"][sel][order], y, marker=".", label=f"step {eta:g}")
    if metric == "relative_error":
        ax.set_yscale("log")
    ax.set_xlabel("n (inference steps)")
    ax.set_ylabel(METRICS[metric])
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize="x-small")
    return ax


def error_wave(traces: Any, vertices: Sequence[str], lane: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The error wave of a traces table: ``|eps|`` of every traced error neuron, per learning tick.

    Returns ``(wave, neuron_vertex)``: ``wave`` is ``(ticks, n)``, one row per learning
    tick (``step >= 0``; several presentations follow each other) and one column per
    ``eps[vertex:pos]`` column of lane ``lane`` (suffix ``@lane`` for ``lane > 0``),
    ordered by vertex index and then position; ``neuron_vertex`` is each column's
    vertex index. Raises :class:`DataError` when the table traces no error neuron.
    """
    tr = columns(traces, ("tick", "step"))
    pattern = re.compile(r"eps\[(.+):(\d+)\]" + (f"@{lane}" if lane else ""))
    found = []
    for name in tr:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        if match[1] not in vertices:
            raise DataError(f"traces column {name!r} names no vertex of {list(vertices)}")
        found.append((list(vertices).index(match[1]), int(match[2]), name))
    if not found:
        raise DataError(f"traces have no eps[vertex:pos] columns of lane {lane}; trace error neurons "
                        "with Monitor(errors=...)")
    found.sort()
    learning = tr["step"] >= 0
    wave = np.abs(np.column_stack([tr[name][learning] for _, _, name in found]).astype(np.float64))
    return wave, np.array([k for k, _, _ in found], np.int64)


def plot_error_wave(wave: np.ndarray, neuron_vertex: np.ndarray, vertices: Sequence[str],
                    ax: Axes | None = None) -> Axes:
    """Heatmap of ``|eps_i(t)|``: learning ticks down, error neurons across, vertex borders marked.

    ``wave`` is ``(ticks, n)`` and ``neuron_vertex`` the vertex index of each column,
    as :func:`error_wave` returns them (columns grouped by vertex). The colour scale is
    logarithmic from 1e-12 of the largest value, so that the front of the wave, where
    errors first become nonzero, is visible; each vertex's columns are labelled with
    its name.
    """
    wave = np.asarray(wave, np.float64)
    neuron_vertex = np.asarray(neuron_vertex, np.int64)
    if wave.ndim != 2 or wave.shape[1] != len(neuron_vertex):
        raise DataError(f"wave must be (ticks, {len(neuron_vertex)}), got {wave.shape}")
    ax = _axes(ax)
    top = float(np.max(wave)) if wave.size and np.max(wave) > 0 else 1.0
    image = ax.imshow(np.maximum(wave, top * 1e-12), aspect="auto", interpolation="nearest",
                      norm=LogNorm(vmin=top * 1e-12, vmax=top), cmap="magma")
    ax.figure.colorbar(image, ax=ax, label="|eps|")
    firsts = np.flatnonzero(np.diff(neuron_vertex)) + 1  # first column of each vertex but the first
    for b in firsts:
        ax.axvline(b - 0.5, color="white", lw=0.8)
    starts = np.concatenate([[0], firsts]) if len(neuron_vertex) else np.zeros(0, np.int64)
    ends = np.append(starts[1:], len(neuron_vertex))
    ax.set_xticks((starts + ends - 1) / 2, [vertices[int(k)] for k in neuron_vertex[starts]])
    ax.set_ylabel("learning step")
    ax.set_title("error wave |eps|")
    return ax


def save_error_wave_gif(wave: np.ndarray, neuron_vertex: np.ndarray, vertices: Sequence[str],
                        path: str | Path, fps: int = 2) -> Path:
    """An animation of :func:`plot_error_wave`'s rows: a bar of ``|eps_i|`` per error
    neuron, coloured by vertex, one frame per learning tick.

    Written with matplotlib's ``PillowWriter`` (pillow is a matplotlib dependency).
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    wave = np.asarray(wave, np.float64)
    if wave.ndim != 2 or not len(wave):
        raise DataError(f"wave must be (ticks, n) with at least one tick, got {wave.shape}")
    fig, ax = plt.subplots(figsize=(6, 3))
    colors = np.array(_vertex_colors(len(vertices)))[np.asarray(neuron_vertex, np.int64)]
    bars = ax.bar(np.arange(wave.shape[1]), wave[0], color=colors)
    ax.set_ylim(0, float(np.max(wave)) * 1.05 if np.max(wave) > 0 else 1.0)
    ax.set_xlabel("error neuron (coloured by vertex)")
    ax.set_ylabel("|eps|")

    def frame(t: int) -> list:
        for bar, h in zip(bars, wave[t]):
            bar.set_height(h)
        ax.set_title(f"learning step {t}")
        return list(bars)

    anim = FuncAnimation(fig, frame, frames=wave.shape[0], blit=False)
    path = Path(path)
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
