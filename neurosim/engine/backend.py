"""The backend seam: which compiler and arrays run the driver.

:class:`NumbaCPU` is today's backend: it cuts a simulator's netlist and state into the
small bundles (:mod:`neurosim.engine.bundles`), builds the ring transport's inbox views
and calls the serial or parallel instance of the driver (:mod:`neurosim.engine.driver`).
A GPU backend would implement the same three methods (``run``, ``clamp``, ``bundles``)
over device arrays, compiling the same neuron updates (:mod:`neurosim.engine.neurons`,
scalar math on plain arrays) as device functions; see ``docs/architecture.md``.
"""

from __future__ import annotations

import numba
import numpy as np

from neurosim.compile.netlist import Netlist
from neurosim.engine.bundles import (
    Compartments,
    ErrorNet,
    ErrorRing,
    ErrorState,
    Events,
    Inbox,
    Plastic,
    PlasticityLog,
    Record,
    Recorders,
    RuleArrays,
    Schedule,
    StateArrays,
    Traces,
    ValueNet,
    ValueRing,
    ValueState,
    Weights,
    cut,
)
from neurosim.engine.driver import run_ticks, run_ticks_parallel
from neurosim.engine.ring import clamp_values


class NumbaCPU:
    """Run the driver with numba on the CPU, on ``threads`` threads (1: the serial instance).

    The netlist's bundles are cut once; a state's bundles are cut again only when the
    simulator holds a new state object.
    """

    name = "numba-cpu"

    def __init__(self, net: Netlist, threads: int = 1) -> None:
        self.threads = threads
        self.cp = cut(Compartments, net)
        self.en = cut(ErrorNet, net)
        self.vn = cut(ValueNet, net)
        self.pk = cut(Plastic, net)
        has_err = net.v_err >= 0
        own_of_value = np.where(has_err, net.own_delay[np.maximum(net.v_err, 0)] - 1, 0).astype(np.int32)
        err_of_value = np.maximum(net.v_err, 0).astype(np.int32)
        # ring inboxes, less the line and the slot table: (key, base)
        self._views = dict(
            x=(net.fr_delay, net.fr_pre),
            own=(net.own_delay, net.e_value),
            g=((net.br_delay - 1).astype(net.br_delay.dtype), net.br_post),
            mu_in=(own_of_value, err_of_value),
            e_in=(own_of_value, err_of_value),
        )
        self._ring_net = net
        self._state: StateArrays | None = None
        self._cut: tuple = ()

    def bundles(self, st: StateArrays) -> tuple:
        """The state's bundles: own state, weights, the ring's inbox views and its lines."""
        if st is not self._state:
            net, views = self._ring_net, self._views
            lines = dict(x=st.x_line, own=st.v_line, g=st.g_line, mu_in=st.mu_line, e_in=st.e_line)
            inboxes = tuple(Inbox(lines[k], st.back, *views[k]) for k in ("x", "own", "g", "mu_in", "e_in"))
            self._cut = (
                cut(ErrorState, st), cut(ValueState, st), cut(Weights, st), *inboxes,
                cut(ErrorRing, st, net), cut(ValueRing, st, net),
            )
            self._state = st
        return self._cut

    def run(self, st: StateArrays, ra: RuleArrays, sch: Schedule, rec: Recorders) -> tuple[int, int]:
        """Run ``sch.n_ticks`` ticks on ``st``; returns ``(status, ticks done)``."""
        es, vs, w, x, own, g, mu_in, e_in, er, vr = self.bundles(st)
        args = (self.cp, self.en, self.vn, self.pk, es, vs, w, x, own, g, mu_in, e_in, er, vr, ra, sch,
                Record(rec.energy, rec.firings, rec.n_firings, rec.eps_at_trigger, rec.energy0),
                Events(rec.ev, rec.ev_n, rec.reserve), PlasticityLog(rec.pl, rec.pl_delta, rec.pl_n),
                Traces(rec.tr_v_idx, rec.tr_e_idx, rec.tr_tick, rec.tr_v, rec.tr_mu, rec.tr_eps, rec.tr_phi,
                       rec.tr_energy, rec.tr_n))
        if self.threads == 1:
            return run_ticks(*args)
        numba.set_num_threads(self.threads)
        return run_ticks_parallel(*args)

    def clamp(self, st: StateArrays, neurons: np.ndarray, values: np.ndarray, tick: int) -> None:
        """Clamp value neurons to ``values`` ``[len(neurons), lanes]`` at ``tick`` (see
        :func:`neurosim.engine.ring.clamp_values`)."""
        vr = self.bundles(st)[-1]
        clamp_values(self.vn, vr, st.v, neurons, values, tick)
