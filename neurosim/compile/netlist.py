"""The neuron-level netlist: every value neuron, error neuron and synapse as rows of arrays.

A compiled model holds no Python objects per neuron. Each *value neuron* ``j`` and
each *error neuron* ``i`` is one row of the arrays below; each *synapse* ``s`` connects
a presynaptic value neuron ``s_pre[s]`` to a postsynaptic error neuron ``s_post[s]`` and
reads its weight from the flat parameter vector: ``theta[s]`` (weights are laid out
in synapse order), or ``theta[s_param[s]]`` when ``s_param`` is not empty (several
synapses may then share one entry: that is weight sharing, the one non-local step).

Value neuron ``j`` and error neuron ``v_err[j]`` form a pair (Song et al. 2020, Fig. 1);
the pair talks over a private link with delay ``own_delay`` in both directions.
Synapses are stored as runs (:mod:`neurosim.compile.runs`) by target (synapses
``in_ptr[i]..in_ptr[i+1]`` arrive at error neuron ``i``) and by source, each with an
integer delay of at least one tick; per-synapse views (``s_pre``, ``s_post``,
``s_delay``, ``out_ptr``/``out_syn``) are expanded on request. *Wake groups* list, for
every neuron, the sets of neurons its messages reach (one set per delay), shared
between neurons that reach the same set, so that a tick wakes each set once.

Codes used by the kernels:

- ``v_role``: ``ROLE_FREE`` (relaxes), ``ROLE_INPUT`` (clamped to the data),
  ``ROLE_OUTPUT`` (free while predicting, clamped to the target while learning).
- ``e_loss``: ``LOSS_NONE`` (hidden error ``v - mu``), ``LOSS_MSE`` (``y - mu``),
  ``LOSS_CE`` (``y - softmax(mu)`` over the error neurons ``e_group_lo..e_group_hi``).
- activation codes: see :mod:`neurosim.activations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROLE_FREE, ROLE_INPUT, ROLE_OUTPUT = 0, 1, 2
LOSS_NONE, LOSS_MSE, LOSS_CE = 0, 1, 2


@dataclass
class Netlist:
    """Flat arrays describing every neuron and synapse of a compiled graph.

    Attributes are grouped by the actor they belong to: ``v_*`` value neurons,
    ``e_*`` error neurons, ``s_*`` synapses. ``vertices`` lists the graph's vertices in
    the (stable, topological) order used for the ``*_vertex`` ids, and
    ``param_index`` maps each parameter name to its ``(offset, shape)`` in ``theta``.
    """

    vertices: list[str]
    vertex_lo_v: np.ndarray  # first value neuron of each vertex
    vertex_lo_e: np.ndarray  # first error neuron of each vertex (-1 for inputs)
    # value neurons
    v_vertex: np.ndarray
    v_pos: np.ndarray
    v_role: np.ndarray
    v_out_act: np.ndarray  # activation applied to v in the signal x sent to children
    v_err: np.ndarray  # own error neuron (-1 for inputs)
    # error neurons
    e_vertex: np.ndarray
    e_pos: np.ndarray
    e_value: np.ndarray  # own value neuron
    e_act: np.ndarray  # activation applied to the weighted sum (identity for 'pre')
    e_loss: np.ndarray
    e_bias: np.ndarray  # parameter index of the bias, or -1
    e_group_lo: np.ndarray  # softmax group of a ce output (else i, i+1)
    e_group_hi: np.ndarray
    e_trigger: np.ndarray  # Z-IL trigger step (path length to the outputs)
    # synapses, as runs (see neurosim.compile.runs)
    s_param: np.ndarray  # empty unless weights are shared
    in_ptr: np.ndarray  # synapses in_ptr[i]..in_ptr[i+1] arrive at error neuron i
    fr_ptr: np.ndarray
    fr_syn: np.ndarray
    fr_pre: np.ndarray
    fr_len: np.ndarray
    fr_delay: np.ndarray
    br_ptr: np.ndarray
    br_syn: np.ndarray
    br_stride: np.ndarray
    br_post: np.ndarray
    br_len: np.ndarray
    br_delay: np.ndarray
    own_delay: np.ndarray  # delay of the pair link, per error neuron
    # parameters
    n_params: int
    param_index: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    # wake groups (see compiler.receiver_groups): value-neuron groups reached by error
    # neurons' feedback, error-neuron groups reached by value neurons' signals
    vg_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    vg_members: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    e_vg_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    e_vg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    e_vg_delay: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    eg_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    eg_members: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    v_eg_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    v_eg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    v_eg_delay: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @property
    def n_value(self) -> int:
        """Number of value neurons."""
        return len(self.v_vertex)

    @property
    def n_error(self) -> int:
        """Number of error neurons."""
        return len(self.e_vertex)

    @property
    def n_synapses(self) -> int:
        """Number of synapses."""
        return int(self.in_ptr[-1])

    # Per-synapse views, expanded from the runs on request (for inspection and tests).
    @property
    def s_pre(self) -> np.ndarray:
        """Presynaptic value neuron of every synapse."""
        start = np.repeat(self.fr_pre.astype(np.int64) - self.fr_syn, self.fr_len)
        return (start + np.arange(self.n_synapses)).astype(np.int32)

    @property
    def s_post(self) -> np.ndarray:
        """Postsynaptic error neuron of every synapse."""
        return np.repeat(np.arange(self.n_error, dtype=np.int32), np.diff(self.in_ptr))

    @property
    def s_delay(self) -> np.ndarray:
        """Delay of every synapse, in ticks."""
        return np.repeat(self.fr_delay, self.fr_len)

    @property
    def out_ptr(self) -> np.ndarray:
        """Synapses ``out_syn[out_ptr[j]:out_ptr[j+1]]`` leave value neuron ``j``."""
        ends = np.concatenate([[0], np.cumsum(self.br_len, dtype=np.int64)])
        return ends[self.br_ptr]

    @property
    def out_syn(self) -> np.ndarray:
        """Synapses grouped by presynaptic value neuron (CSR by source)."""
        if not len(self.br_len):
            return np.zeros(0, np.int64)
        q = np.arange(int(self.br_len.sum())) - np.repeat(np.cumsum(self.br_len) - self.br_len, self.br_len)
        return np.repeat(self.br_syn, self.br_len) + q * np.repeat(self.br_stride, self.br_len)

    @property
    def synapse_params(self) -> np.ndarray:
        """Index in ``theta`` of every synapse's weight."""
        return self.s_param if len(self.s_param) else np.arange(self.n_synapses)

    @property
    def nbytes(self) -> int:
        """Memory held by the netlist's arrays."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    @property
    def max_delay(self) -> int:
        """Largest delay of any link, in ticks."""
        d = int(self.fr_delay.max()) if len(self.fr_delay) else 1
        return max(d, int(self.own_delay.max()) if self.n_error else 1)

    def value_neuron(self, vertex: str, pos: int) -> int:
        """Index of the value neuron at ``pos`` of ``vertex``."""
        return int(self.vertex_lo_v[self.vertices.index(vertex)]) + pos

    def error_neuron(self, vertex: str, pos: int) -> int:
        """Index of the error neuron at ``pos`` of ``vertex``."""
        lo = int(self.vertex_lo_e[self.vertices.index(vertex)])
        if lo < 0:
            raise KeyError(f"vertex {vertex!r} is an input and has no error neurons")
        return lo + pos

    def where(self, kind: str, index: int) -> tuple[str, int]:
        """Map a neuron index back to ``(vertex, position)``; ``kind`` is ``"value"`` or ``"error"``."""
        if kind == "value":
            return self.vertices[int(self.v_vertex[index])], int(self.v_pos[index])
        if kind == "error":
            return self.vertices[int(self.e_vertex[index])], int(self.e_pos[index])
        raise ValueError(f"kind must be 'value' or 'error', got {kind!r}")

    def params_of(self, neurons: np.ndarray) -> np.ndarray:
        """Boolean mask over ``theta``: the weights and biases of the error neurons in ``neurons`` (a mask)."""
        mask = np.zeros(self.n_params, bool)
        mask[self.synapse_params[np.repeat(neurons, np.diff(self.in_ptr))]] = True
        biases = self.e_bias[neurons]
        mask[biases[biases >= 0]] = True
        return mask

    def pack_params(self, params: dict[str, np.ndarray], dtype: type) -> np.ndarray:
        """The flat parameter vector ``theta`` from a dict in PyTorch layout."""
        theta = np.zeros(self.n_params, dtype=dtype)
        for name, (offset, shape) in self.param_index.items():
            theta[offset : offset + int(np.prod(shape))] = np.asarray(params[name], dtype=dtype).ravel()
        return theta

    def unpack_params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """A dict in PyTorch layout (copies) from the flat parameter vector."""
        return {
            name: theta[offset : offset + int(np.prod(shape))].reshape(shape).copy()
            for name, (offset, shape) in self.param_index.items()
        }
