"""Monitors: what the event loop records while it runs, for probing and teaching.

A :class:`Monitor` attached to a :class:`~neurosim.engine.Simulator` gives the kernels
preallocated buffers (fields of :class:`~neurosim.engine.bundles.Recorders`) that they
fill inside the loop; Python flushes them into tables between chunks of ticks (a chunk
stops early when a buffer might overflow within its next tick). Monitors are
observers: no neuron reads them, so attaching one never changes the dynamics
(``tests/test_monitors.py`` checks the results bit for bit).

Tables (dicts of equal-length numpy columns; :meth:`Monitor.frame` gives a pandas
DataFrame), as saved by :meth:`Monitor.save` to CSV files with a header line that
``pandas.read_csv`` and ``numpy.genfromtxt(path, delimiter=",", names=True)`` read
directly:

``events``
    One row per message a neuron emitted: ``tick``, ``step`` (learning step, -1 in a
    prediction phase), ``kind`` (0 a value neuron's belief, 1 an error neuron's error
    and prediction to its value neuron, 2 an error neuron's feedback ``g`` to its
    parents), ``neuron`` (index among value or error neurons), ``vertex`` (index into
    ``vertices``), ``pos``.
``plasticity``
    The plasticity timeline, one row per change of an entry of ``theta`` by one
    synapse or bias: ``tick``, ``step``, ``vertex``, ``neuron`` (error neuron; -1 for
    the application of a shared parameter's deferred sum), ``param`` (index into the
    flat parameter vector; ``parameters`` maps names to offsets), ``delta`` (the
    change), ``cause`` (0 the rule's schedule, Z-IL's ``t = l``; 1 phi; 2 the end of a
    relaxation: IL's ``t_c``, Strict PC's and FixedPred's ``n``; 3 a shared parameter's
    deferred sum applied).
``firings``
    phi's firings (Fa-Z-IL): ``tick``, ``step``, ``vertex``, ``pos``, ``lane``, ``late``
    (1 where the step is not the vertex's Z-IL trigger).
``traces``
    One row per tick: ``tick``, ``step``, ``energy`` (``1/2 sum eps^2`` after the error
    stage), then ``v[vertex:pos]`` of the traced value neurons and ``mu[...]``,
    ``eps[...]``, ``phi[...]`` of the traced error neurons (lane 0; lane ``b > 0`` has
    the suffix ``@b``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import ConfigError

Table = dict[str, np.ndarray]
Selection = None | str | Iterable[str] | Mapping[str, Iterable[int]]

_EVENTS = ("tick", "step", "kind", "neuron", "vertex", "pos")
_PLASTICITY = ("tick", "step", "vertex", "neuron", "param", "delta", "cause")
_FIRINGS = ("tick", "step", "vertex", "pos", "lane", "late")


class Monitor:
    """Record events, the plasticity timeline, phi's firings and state traces.

    Parameters
    ----------
    events, plasticity, firings
        Record every emitted message / every parameter change / phi's firings.
    values, errors
        Value neurons (``v``) and error neurons (``mu``, ``eps``, ``phi``) to trace
        every tick: ``"all"``, a list of vertex names (all their neurons), or a dict
        ``{vertex: positions}``. Tracing anything (or ``energy=True``) records the
        energy every tick.
    energy
        Record the energy every tick.
    capacity
        Rows per buffer between flushes (a buffer is at least one tick's worth).

    Examples
    --------
    >>> import numpy as np
    >>> from neurosim.graph import mlp
    >>> from neurosim.engine import Simulator
    >>> from neurosim.rules import ZIL
    >>> sim = Simulator(mlp([3, 4, 2]), seed=0)
    >>> mon = Monitor(plasticity=True).attach(sim)
    >>> _ = sim.learn(np.ones((1, 3)), np.array([[1.0, 0.0]]), ZIL(alpha=0.1))
    >>> sorted(set(mon.table("plasticity")["step"].tolist()))  # output at t = 0, hidden at t = 1
    [0, 1]
    """

    def __init__(
        self,
        *,
        events: bool = False,
        plasticity: bool = False,
        firings: bool = False,
        values: Selection = None,
        errors: Selection = None,
        energy: bool = False,
        capacity: int = 100_000,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"a monitor's capacity must be a positive int, got {capacity!r}")
        self.options = dict(events=events, plasticity=plasticity, firings=firings, energy=energy,
                            values=_jsonable(values), errors=_jsonable(errors), capacity=capacity)
        self._selection = (values, errors)
        self.capacity = capacity
        self.sim: Any = None
        self._parts: dict[str, list[Table]] = {"events": [], "plasticity": [], "firings": [], "traces": []}

    # ---- attaching ----------------------------------------------------------------
    def attach(self, sim: Any) -> Monitor:
        """Attach to a simulator (one monitor per simulator; threads must be 1)."""
        if sim.threads != 1:
            raise ConfigError("monitors record in neuron order on one thread; build the Simulator with threads=1")
        self.sim = sim
        net = sim.netlist
        values, errors = self._selection
        self.value_idx = _neurons(net, values, "value")
        self.error_idx = _neurons(net, errors, "error")
        self.traces_on = bool(len(self.value_idx) or len(self.error_idx) or self.options["energy"])
        sim.monitor = self
        return self

    def buffers(self, lanes: int) -> dict[str, np.ndarray]:
        """Fresh, empty buffers for a chunk: the monitor fields of ``Recorders``."""
        net = self.sim.netlist
        dtype = self.sim.dtype
        per_tick_events = net.n_value + 2 * net.n_error
        per_tick_changes = net.n_synapses + len(net.c_bias) + net.n_params
        n_ev = max(self.capacity, per_tick_events) if self.options["events"] else 0
        n_pl = max(self.capacity, per_tick_changes) if self.options["plasticity"] else 0
        n_tr = max(1, self.capacity // max(1, (len(self.value_idx) + 3 * len(self.error_idx)) * lanes)) \
            if self.traces_on else 0
        nv, ne = len(self.value_idx), len(self.error_idx)
        return dict(
            ev=np.zeros((n_ev, 3), np.int64), ev_n=np.zeros(1, np.int64),
            pl=np.zeros((n_pl, 4), np.int64), pl_delta=np.zeros(n_pl, dtype), pl_n=np.zeros(1, np.int64),
            tr_v_idx=self.value_idx, tr_e_idx=self.error_idx, tr_tick=np.zeros(n_tr, np.int64),
            tr_v=np.zeros((n_tr, nv, lanes), dtype), tr_mu=np.zeros((n_tr, ne, lanes), dtype),
            tr_eps=np.zeros((n_tr, ne, lanes), dtype), tr_phi=np.zeros((n_tr, ne, lanes), np.uint8),
            tr_energy=np.zeros(n_tr), tr_n=np.zeros(1, np.int64),
            reserve=np.array([per_tick_events, per_tick_changes], np.int64),
        )

    # ---- flushing -----------------------------------------------------------------
    def flush(self, rec: Any, learn_tick0: int | None) -> None:
        """Move what a chunk recorded into the tables; ``learn_tick0`` is the tick of
        learning step 0 (``None`` in a prediction phase)."""
        net = self.sim.netlist

        def step_of(tick: np.ndarray) -> np.ndarray:
            return tick - learn_tick0 if learn_tick0 is not None else np.full(len(tick), -1, np.int64)

        n = int(rec.ev_n[0])
        if n:
            tick, kind, neuron = (rec.ev[:n, k].copy() for k in range(3))
            is_value = kind == 0
            vertex = np.where(is_value, net.v_vertex[np.where(is_value, neuron, 0)],
                              net.e_vertex[np.where(is_value, 0, neuron)])
            pos = np.where(is_value, net.v_pos[np.where(is_value, neuron, 0)], net.e_pos[np.where(is_value, 0, neuron)])
            self._parts["events"].append(dict(tick=tick, step=step_of(tick), kind=kind, neuron=neuron,
                                              vertex=vertex.astype(np.int64), pos=pos.astype(np.int64)))
            rec.ev_n[0] = 0
        n = int(rec.pl_n[0])
        if n:
            tick, neuron, param, cause = (rec.pl[:n, k].copy() for k in range(4))
            vertex = np.where(neuron >= 0, net.e_vertex[np.maximum(neuron, 0)], -1).astype(np.int64)
            self._parts["plasticity"].append(dict(tick=tick, step=step_of(tick), vertex=vertex, neuron=neuron,
                                                  param=param, delta=rec.pl_delta[:n].astype(np.float64),
                                                  cause=cause))
            rec.pl_n[0] = 0
        n = int(rec.tr_n[0])
        if n:
            tick = rec.tr_tick[:n].copy()
            row: Table = dict(tick=tick, step=step_of(tick), energy=rec.tr_energy[:n].copy())
            for name, idx, kind, data in (("v", self.value_idx, "value", rec.tr_v), ("mu", self.error_idx, "error", rec.tr_mu),
                                          ("eps", self.error_idx, "error", rec.tr_eps), ("phi", self.error_idx, "error", rec.tr_phi)):
                for q, neuron in enumerate(idx):
                    vertex, pos = net.where(kind, int(neuron))
                    for b in range(data.shape[2]):
                        row[f"{name}[{vertex}:{pos}]" + (f"@{b}" if b else "")] = data[:n, q, b].copy()
            self._parts["traces"].append(row)
            rec.tr_n[0] = 0

    def add_firings(self, rows: np.ndarray, triggers: np.ndarray, learn_tick0: int) -> None:
        """phi's firings of one presentation, rows ``(step, vertex, pos, lane)``."""
        if not self.options["firings"] or not len(rows):
            return
        step, vertex, pos, lane = (rows[:, k].astype(np.int64) for k in range(4))
        late = (step != triggers[vertex]).astype(np.int64)
        self._parts["firings"].append(dict(tick=step + learn_tick0, step=step, vertex=vertex, pos=pos,
                                           lane=lane, late=late))

    # ---- reading ------------------------------------------------------------------
    @property
    def vertices(self) -> list[str]:
        """The vertex names the ``vertex`` columns index."""
        return list(self.sim.netlist.vertices)

    def table(self, name: str) -> Table:
        """One table as a dict of numpy columns (see the module docstring)."""
        if name not in self._parts:
            raise ConfigError(f"unknown monitor table {name!r}; choose one of {sorted(self._parts)}")
        parts = self._parts[name]
        if not parts:
            columns = {"events": _EVENTS, "plasticity": _PLASTICITY, "firings": _FIRINGS}.get(name, ("tick", "step", "energy"))
            return {c: np.zeros(0, np.float64 if c in ("delta", "energy") else np.int64) for c in columns}
        keys = list(parts[0])
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def frame(self, name: str) -> Any:
        """One table as a pandas DataFrame; needs pandas (``pip install "neurosim[frames]"``).

        Without pandas, :meth:`table` gives the same columns as a dict of numpy arrays.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(
                "Monitor.frame needs pandas: pip install 'neurosim[frames]' (or use Monitor.table, "
                "a dict of numpy columns)"
            ) from None
        return pd.DataFrame(self.table(name))

    def metadata(self) -> dict[str, Any]:
        """What the tables' integer codes mean: vertices, parameter offsets, the options."""
        net = self.sim.netlist
        return {
            "vertices": self.vertices,
            "parameters": {k: {"offset": off, "shape": list(shape)} for k, (off, shape) in net.param_index.items()},
            "event_kinds": {"0": "value", "1": "error", "2": "feedback"},
            "causes": {"0": "schedule", "1": "phi", "2": "end of relaxation", "3": "shared, deferred"},
            "monitor": self.options,
        }

    def save(self, target: str | os.PathLike, config: Mapping[str, Any] | None = None) -> Path:
        """Write ``events.csv``, ``plasticity.csv``, ``firings.csv``, ``traces.csv`` (those
        recorded) and ``config.json`` (``config``, the run's configuration, plus
        :meth:`metadata`) into a new directory, atomically."""
        from neurosim.recording import RunDirectory, environment

        with RunDirectory(target) as run:
            run.write_config({"run": dict(config or {}), "recording": self.metadata(), "environment": environment()})
            for name in self._parts:
                if self._parts[name]:
                    _write_csv(run.path / f"{name}.csv", self.table(name))
        return Path(target)


def _write_csv(path: Path, table: Table) -> None:
    names = list(table)
    columns = [table[k] for k in names]
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for row in zip(*columns):
            fh.write(",".join(repr(float(x)) if isinstance(x, np.floating) else str(x) for x in row) + "\n")


def _neurons(net: Any, selection: Selection, kind: str) -> np.ndarray:
    """Neuron indices (value or error) of a selection of vertices and positions."""
    if selection is None:
        return np.zeros(0, np.int64)
    lo = net.vertex_lo_v if kind == "value" else net.vertex_lo_e
    sizes = np.diff(np.append(net.vertex_lo_v, net.n_value))
    if isinstance(selection, str) and selection == "all":
        selection = [v for k, v in enumerate(net.vertices) if lo[k] >= 0]
    if not isinstance(selection, Mapping):
        selection = {v: None for v in selection}
    out = []
    for vertex, positions in selection.items():
        if vertex not in net.vertices:
            raise ConfigError(f"cannot trace vertex {vertex!r}: the graph's vertices are {net.vertices}")
        k = net.vertices.index(vertex)
        if lo[k] < 0:
            raise ConfigError(f"vertex {vertex!r} is an input: it has no error neurons to trace")
        size = int(sizes[k])
        pos = np.arange(size) if positions is None else np.asarray(list(positions), np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= size):
            raise ConfigError(f"vertex {vertex!r} has positions 0..{size - 1}; cannot trace {pos.tolist()}")
        out.append(lo[k] + pos)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _jsonable(selection: Selection) -> Any:
    if selection is None or isinstance(selection, str):
        return selection
    if isinstance(selection, Mapping):
        return {str(k): (None if v is None else [int(p) for p in v]) for k, v in selection.items()}
    return [str(v) for v in selection]
