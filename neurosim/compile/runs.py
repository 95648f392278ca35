"""Runs: the synapses of a neuron stored as a few arithmetic sequences.

A dense layer connects error neuron ``i`` to a contiguous block of parent value
neurons, and its weights lie contiguously in ``theta``; seen from value neuron ``j``,
its synapses reach a contiguous block of child error neurons, with weights at a
constant stride (a column of ``W``). A *run* stores such a sequence by its first
element, length and stride, so that the kernels loop over plain ranges (which the
compiler vectorizes) instead of gathering through per-synapse index arrays, and the
netlist needs a few numbers per neuron instead of several per synapse. An irregular
graph still compiles: its runs are just short.

Forward runs (by target): error neuron ``i`` has runs ``fr_ptr[i]..fr_ptr[i+1]``; run
``r`` covers synapses ``fr_syn[r] + q`` from value neurons ``fr_pre[r] + q``,
``q < fr_len[r]``, all of delay ``fr_delay[r]``.

Backward runs (by source): value neuron ``j`` has runs ``br_ptr[j]..br_ptr[j+1]``; run
``r`` covers synapses ``br_syn[r] + q * br_stride[r]`` to error neurons
``br_post[r] + q``, ``q < br_len[r]``, all of delay ``br_delay[r]``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def forward_runs(in_ptr: np.ndarray, s_pre: np.ndarray, s_delay: np.ndarray) -> tuple:
    """Runs of the synapses arriving at each error neuron (synapses in target order)."""
    n = in_ptr.shape[0] - 1
    starts = np.empty(s_pre.shape[0], np.int64)
    ptr = np.zeros(n + 1, np.int64)
    r = 0
    for i in range(n):
        for s in range(in_ptr[i], in_ptr[i + 1]):
            if s == in_ptr[i] or s_pre[s] != s_pre[s - 1] + 1 or s_delay[s] != s_delay[s - 1]:
                starts[r] = s
                r += 1
        ptr[i + 1] = r
    syn = starts[:r].copy()
    length = np.empty(r, np.int32)
    for k in range(r):
        i_end = syn[k + 1] if k + 1 < r else s_pre.shape[0]
        length[k] = i_end - syn[k]
    # a run never crosses from one neuron to the next: neuron ends are run starts
    return ptr, syn.astype(np.int64), s_pre[syn].astype(np.int32), length, s_delay[syn].copy()


@numba.njit(cache=True)
def backward_runs(out_ptr: np.ndarray, out_syn: np.ndarray, s_post: np.ndarray, s_delay: np.ndarray) -> tuple:
    """Runs of the synapses leaving each value neuron (``out_syn`` sorted by target)."""
    n = out_ptr.shape[0] - 1
    m = out_syn.shape[0]
    syn = np.empty(m, np.int64)
    stride = np.empty(m, np.int64)
    post = np.empty(m, np.int32)
    length = np.empty(m, np.int32)
    delay = np.empty(m, s_delay.dtype)
    ptr = np.zeros(n + 1, np.int64)
    r = -1
    for j in range(n):
        for q in range(out_ptr[j], out_ptr[j + 1]):
            s = out_syn[q]
            extend = False
            if q > out_ptr[j] and s_post[s] == post[r] + length[r] and s_delay[s] == delay[r]:
                if length[r] == 1:
                    extend = s > syn[r]
                    stride[r] = s - syn[r]
                else:
                    extend = s == syn[r] + length[r] * stride[r]
            if extend:
                length[r] += 1
            else:
                r += 1
                syn[r], stride[r], post[r], length[r], delay[r] = s, 1, s_post[s], 1, s_delay[s]
        ptr[j + 1] = r + 1
    r += 1
    return ptr, syn[:r].copy(), stride[:r].copy(), post[:r].copy(), length[:r].copy(), delay[:r].copy()
