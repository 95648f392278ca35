"""Allocation of the event loop's state for a netlist and a mini-batch size."""

from __future__ import annotations

import numpy as np

from neurosim.compile.netlist import Netlist
from neurosim.engine.bundles import NetArrays, StateArrays


def net_arrays(net: Netlist) -> NetArrays:
    """The netlist's arrays the kernels read, bundled (the fields of :class:`NetArrays`)."""
    return NetArrays(**{name: getattr(net, name) for name in NetArrays._fields})


def state_bytes(net: Netlist, lanes: int, itemsize: int) -> int:
    """Bytes of the per-sample arrays :func:`allocate_state` allocates for ``lanes`` samples
    (floats of ``itemsize`` bytes; the per-network arrays are left out)."""
    n_v, n_e, n_c, D = net.n_value, net.n_error, net.n_compartments, net.max_delay + 1
    floats = 3 * n_v + 3 * n_c + 3 * n_e + D * (2 * n_v + 2 * n_e + n_c)
    return lanes * (itemsize * floats + 10 * n_e)


def allocate_state(net: Netlist, lanes: int, theta: np.ndarray) -> StateArrays:
    """Fresh state for ``lanes`` samples: every neuron at 0, no message in flight.

    The message lines hold ``D = max_delay + 1`` slots, enough for a receiver to read
    the emission of ``max_delay`` ticks ago while the current tick writes its own slot.
    """
    dtype = theta.dtype
    n_v, n_e, n_c, D = net.n_value, net.n_error, net.n_compartments, net.max_delay + 1
    return StateArrays(
        v=np.zeros((n_v, lanes), dtype), vhat=np.zeros((n_v, lanes), dtype),
        a=np.zeros((n_c, lanes), dtype), mu=np.zeros((n_e, lanes), dtype),
        eps=np.zeros((n_e, lanes), dtype), g=np.zeros((n_c, lanes), dtype),
        last_change=np.zeros((n_e, lanes), np.int64), mu0=np.zeros((n_e, lanes), dtype),
        spent=np.zeros((n_e, lanes), np.uint8),
        v_line=np.zeros((D, n_v, lanes), dtype), x_line=np.zeros((D, n_v, lanes), dtype),
        mu_line=np.zeros((D, n_e, lanes), dtype), e_line=np.zeros((D, n_e, lanes), dtype),
        g_line=np.zeros((D, n_c, lanes), dtype),
        err_wake_in=np.zeros((D, n_e), np.uint8), err_wake_own=np.zeros((D, n_e), np.uint8),
        val_wake=np.zeros((D, n_v), np.uint8),
        eg_marked=np.zeros((D, len(net.eg_ptr) - 1), np.uint8),
        vg_marked=np.zeros((D, len(net.vg_ptr) - 1), np.uint8),
        theta=theta, theta_saved=np.zeros_like(theta), saved=np.zeros(len(theta), np.uint8),
        e_saved=np.zeros(n_e, np.uint8),
        applied=np.zeros_like(theta), deferred=np.zeros(len(theta) if net.shares_params else 0, dtype), pending=np.zeros((n_c, lanes), dtype),
        learning=np.zeros(n_e, np.uint8), sg_marked=np.zeros(len(net.sg_ptr) - 1, np.uint8), fired=np.zeros((n_e, lanes), np.uint8),
        v_next=np.zeros((n_v, lanes), dtype),
        back=np.zeros(D + 1, np.int64), ahead=np.zeros(D + 1, np.int64),
    )
