"""Figures of what the event loop did: events, plasticity, states, energy, error waves.

Every function draws on ``ax`` (a new figure's Axes when ``None``) and returns the
Axes; nothing is shown, so the module runs under any backend, ``Agg`` (headless)
included; it does not choose one for you.
The inputs are *tables*: a dict of equal-length numpy columns or a pandas DataFrame.

events
    ``tick, kind (0 value neuron, 1 error neuron), neuron, vertex (int index), pos``
timeline (plasticity)
    ``tick, step, vertex, neuron, param, delta, cause`` with ``cause`` 0 (the rule's
    schedule), 1 (the change detector phi), 2 (end of relaxation), 3 (a shared
    parameter's deferred update)
traces
    ``tick`` plus one column per traced quantity, e.g. ``eps[layer1:3]``
energy
    ``tick, energy`` with ``E(t) = 1/2 sum_i eps_i(t)^2``

Until the event loop records these itself, :func:`record_presentation` builds them by
advancing a :class:`~neurosim.engine.simulator.Presentation` one tick at a time, and
:func:`timeline_table` from a :class:`~neurosim.engine.simulator.LearnResult`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from neurosim.errors import DataError
from neurosim.rules import IL, ZIL, FaZIL, FixedPred, Rule, StrictPC


CAUSES = {0: "schedule", 1: "phi", 2: "end of relaxation", 3: "shared deferred"}
EVENT_COLUMNS = ("tick", "kind", "neuron", "vertex", "pos")
TIMELINE_COLUMNS = ("tick", "step", "vertex", "neuron", "param", "delta", "cause")
ENERGY_COLUMNS = ("tick", "energy")


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


# ---- plots ----------------------------------------------------------------------------
def plot_raster(events: Any, vertices: Sequence[str], ax: Axes | None = None) -> Axes:
    """Event raster: one point per event at ``(tick, row)``, coloured by vertex.

    Rows stack the vertices in index order, each ``max(pos) + 1`` rows high; value
    neurons' events are dots, error neurons' events crosses. One scatter per
    (vertex, kind) that has events.
    """
    ev = columns(events, EVENT_COLUMNS)
    ax = _axes(ax)
    vertex, pos = ev["vertex"].astype(np.int64), ev["pos"].astype(np.int64)
    row = _vertex_offsets(vertex, pos, len(vertices))[vertex] + pos if vertex.size else pos
    colors = _vertex_colors(len(vertices))
    for k, name in enumerate(vertices):
        for kind, marker, what in ((0, ".", "value"), (1, "x", "error")):
            sel = (vertex == k) & (ev["kind"] == kind)
            if np.any(sel):
                ax.scatter(ev["tick"][sel], row[sel], s=12, marker=marker, color=colors[k], label=f"{name} {what}")
    ax.set_xlabel("tick")
    ax.set_ylabel("neuron (stacked by vertex)")
    ax.set_title("events")
    if ax.collections:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_update_timing(timeline: Any, vertices: Sequence[str], ax: Axes | None = None) -> Axes:
    """When weights changed: one marker per (tick, vertex, cause) with at least one change.

    The marker's area grows with the number of changes (rows of the timeline) it stands
    for; one scatter per cause present, labelled with :data:`CAUSES`.
    """
    tl = columns(timeline, TIMELINE_COLUMNS)
    ax = _axes(ax)
    for cause, name in CAUSES.items():
        sel = tl["cause"] == cause
        if not np.any(sel):
            continue
        pairs, counts = np.unique(np.column_stack([tl["tick"][sel], tl["vertex"][sel]]).astype(np.int64),
                                  axis=0, return_counts=True)
        ax.scatter(pairs[:, 0], pairs[:, 1], s=20 + 10 * np.sqrt(counts), label=name, alpha=0.8)
    ax.set_yticks(range(len(vertices)), list(vertices))
    ax.set_xlabel("tick")
    ax.set_title("weight updates")
    if ax.collections:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_traces(traces: Any, ax: Axes | None = None, names: Sequence[str] | None = None) -> Axes:
    """One line per traced quantity (every non-``tick`` column, or ``names``) against ``tick``."""
    tr = columns(traces, ("tick",))
    chosen = [c for c in tr if c != "tick"] if names is None else list(names)
    missing = [c for c in chosen if c not in tr]
    if missing:
        raise DataError(f"traces have no column(s) {missing}")
    ax = _axes(ax)
    for c in chosen:
        ax.plot(tr["tick"], tr[c], marker=".", label=c)
    ax.set_xlabel("tick")
    ax.set_title("state traces")
    if chosen and len(chosen) <= 12:
        ax.legend(fontsize="x-small", loc="best")
    return ax


def plot_energy(energy: Any, ax: Axes | None = None, label: str | None = None, log: bool = True) -> Axes:
    """The energy ``E(t) = 1/2 sum eps^2`` against ``tick`` (NaN ticks, e.g. held steps, skipped)."""
    en = columns(energy, ENERGY_COLUMNS)
    ax = _axes(ax)
    ok = np.isfinite(en["energy"])
    ax.plot(en["tick"][ok], en["energy"][ok], marker="o", label=label)
    if log and np.all(en["energy"][ok] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("tick")
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


def plot_error_wave(wave: np.ndarray, neuron_vertex: np.ndarray, vertices: Sequence[str],
                    ax: Axes | None = None) -> Axes:
    """Heatmap of ``|eps_i(t)|``: ticks down, error neurons across, vertex borders marked.

    ``wave`` is ``(ticks, n_error)`` (:attr:`Recording.wave`), ``neuron_vertex`` the
    vertex index of each error neuron. The colour scale is logarithmic from 1e-12 of
    the largest value, so that the front of the wave, where errors first become
    nonzero, is visible.
    """
    wave = np.asarray(wave, np.float64)
    if wave.ndim != 2 or wave.shape[1] != len(neuron_vertex):
        raise DataError(f"wave must be (ticks, {len(neuron_vertex)}), got {wave.shape}")
    from matplotlib.colors import LogNorm

    ax = _axes(ax)
    top = float(np.max(wave)) if wave.size and np.max(wave) > 0 else 1.0
    image = ax.imshow(np.maximum(wave, top * 1e-12), aspect="auto", interpolation="nearest",
                      norm=LogNorm(vmin=top * 1e-12, vmax=top), cmap="magma")
    ax.figure.colorbar(image, ax=ax, label="|eps|")
    borders = np.flatnonzero(np.diff(np.asarray(neuron_vertex))) + 0.5
    for b in borders:
        ax.axvline(b, color="white", lw=0.8)
    starts = np.concatenate([[-0.5], borders])
    ends = np.concatenate([borders, [len(neuron_vertex) - 0.5]])
    present = np.asarray(neuron_vertex)[np.concatenate([[0], np.flatnonzero(np.diff(neuron_vertex)) + 1])] \
        if len(neuron_vertex) else []
    ax.set_xticks((starts + ends) / 2, [vertices[int(k)] for k in present])
    ax.set_ylabel("tick")
    ax.set_title("error wave |eps|")
    return ax


def save_error_wave_gif(wave: np.ndarray, neuron_vertex: np.ndarray, vertices: Sequence[str],
                        path: str | Path, fps: int = 2) -> Path:
    """An animation of :func:`plot_error_wave`'s rows: ``|eps_i|`` per neuron, one frame per tick.

    Written with matplotlib's ``PillowWriter`` (pillow is a matplotlib dependency).
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    wave = np.asarray(wave, np.float64)
    fig, ax = plt.subplots(figsize=(6, 3))
    colors = np.array(_vertex_colors(len(vertices)))[np.asarray(neuron_vertex, np.int64)]
    bars = ax.bar(np.arange(wave.shape[1]), wave[0], color=colors)
    ax.set_ylim(0, float(np.max(wave)) * 1.05 if wave.size and np.max(wave) > 0 else 1.0)
    ax.set_xlabel("error neuron (coloured by vertex)")
    ax.set_ylabel("|eps|")

    def frame(t: int) -> list:
        for bar, h in zip(bars, wave[t]):
            bar.set_height(h)
        ax.set_title(f"tick {t}")
        return list(bars)

    anim = FuncAnimation(fig, frame, frames=wave.shape[0], blit=False)
    path = Path(path)
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


# ---- tables from the simulator ------------------------------------------------------------
@dataclass
class Recording:
    """One presentation advanced tick by tick (see :func:`record_presentation`).

    ``wave[t]`` is ``|eps|`` of every error neuron after learning tick ``t`` (lane
    ``lane``); ``neuron_vertex`` their vertex indices; ``events``, ``traces`` and
    ``energy`` are tables in the formats of this module; ``result`` the LearnResult.
    """

    vertices: list[str]
    wave: np.ndarray
    neuron_vertex: np.ndarray
    events: dict[str, np.ndarray]
    traces: dict[str, np.ndarray]
    energy: dict[str, np.ndarray]
    result: Any


def record_presentation(sim: Any, x: np.ndarray, y: np.ndarray, rule: Rule, lane: int = 0,
                        trace: Sequence[tuple[str, int]] = ()) -> Recording:
    """Present ``(x, y)`` under ``rule``, one learning tick at a time, recording the state.

    After each tick ``t`` it reads ``sim.state.eps`` and ``sim.state.v``: the *events*
    are the neurons whose value (kind 0) or error (kind 1) changed at ``t`` in lane
    ``lane``; the *traces* are ``eps[vertex:pos]`` and ``v[vertex:pos]`` for each
    ``(vertex, pos)`` in ``trace``; the *energy* is ``1/2 sum eps^2`` over every error
    neuron and lane, which equals ``LearnResult.energy`` (checked by the tests).
    """
    net = sim.netlist
    pres = sim.present(x, y, rule)
    eps_prev, v_prev = sim.state.eps[:, lane].copy(), sim.state.v[:, lane].copy()
    waves, energies, ev_rows = [], [], []
    trace_cols: dict[str, list[float]] = {f"{q}[{v}:{p}]": [] for v, p in trace for q in ("eps", "v")}
    t = 0
    while not pres.finished:
        pres.advance(1)
        st = sim.state
        eps, v = st.eps[:, lane].copy(), st.v[:, lane].copy()
        waves.append(np.abs(eps))
        energies.append(0.5 * float(np.sum(st.eps.astype(np.float64) ** 2)))
        for kind, now, before, vert, pos in ((0, v, v_prev, net.v_vertex, net.v_pos),
                                             (1, eps, eps_prev, net.e_vertex, net.e_pos)):
            idx = np.flatnonzero(now != before)
            ev_rows.append(np.column_stack([np.full(idx.size, t), np.full(idx.size, kind), idx, vert[idx], pos[idx]]))
        for vname, p in trace:
            trace_cols[f"eps[{vname}:{p}]"].append(float(eps[net.error_neuron(vname, p)]))
            trace_cols[f"v[{vname}:{p}]"].append(float(v[net.value_neuron(vname, p)]))
        eps_prev, v_prev = eps, v
        t += 1
    result = pres.finish()
    rows = np.concatenate(ev_rows).astype(np.int64) if ev_rows else np.zeros((0, 5), np.int64)
    ticks = np.arange(t)
    return Recording(
        vertices=list(net.vertices),
        wave=np.array(waves) if waves else np.zeros((0, net.n_error)),
        neuron_vertex=np.asarray(net.e_vertex, np.int64),
        events={c: rows[:, i] for i, c in enumerate(EVENT_COLUMNS)},
        traces={"tick": ticks, **{k: np.array(v) for k, v in trace_cols.items()}},
        energy={"tick": ticks, "energy": np.array(energies)},
        result=result,
    )


def timeline_table(result: Any, rule: Rule) -> dict[str, np.ndarray]:
    """The plasticity timeline of a LearnResult, one row per update of an error neuron.

    Fa-Z-IL: one row per phi firing (cause 1, at the firing's step). Z-IL: every
    error neuron at its trigger step ``l`` (or ``update_step``), IL every error neuron
    at ``t_c`` (cause 0, the schedule); Strict PC and FixedPred every error neuron at
    the end of relaxation ``n`` (cause 2). ``param`` is -1 and ``delta`` NaN: a LearnResult keeps only the summed
    change per parameter, not which step made it.
    """
    net = result.netlist
    if isinstance(rule, FaZIL):
        f = result.firings
        tick, vertex, neuron, cause = f[:, 0], f[:, 1], f[:, 2], np.ones(len(f), np.int64)
    else:
        if isinstance(rule, ZIL):
            neurons = np.flatnonzero(net.e_trigger >= 0)
            tick = net.e_trigger[neurons] if rule.update_step is None else np.full(neurons.size, rule.update_step)
            cause = np.zeros(neurons.size, np.int64)
        elif isinstance(rule, IL):
            neurons = np.arange(net.n_error)
            tick, cause = np.full(neurons.size, rule.t_c), np.zeros(neurons.size, np.int64)
        elif isinstance(rule, (StrictPC, FixedPred)):
            neurons = np.arange(net.n_error)
            tick, cause = np.full(neurons.size, result.steps - 1), np.full(neurons.size, 2)
        else:
            raise DataError(f"no timeline for rule {type(rule).__name__}")
        vertex, neuron = net.e_vertex[neurons], net.e_pos[neurons]
    n = len(tick)
    return {
        "tick": np.asarray(tick, np.int64), "step": np.asarray(tick, np.int64),
        "vertex": np.asarray(vertex, np.int64), "neuron": np.asarray(neuron, np.int64),
        "param": np.full(n, -1, np.int64), "delta": np.full(n, np.nan), "cause": np.asarray(cause, np.int64),
    }
