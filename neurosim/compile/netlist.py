"""The neuron-level netlist: every value neuron, error neuron and synapse as rows of arrays.

A compiled model holds no Python objects per neuron. Each *value neuron* ``j`` and
each *error neuron* ``i`` is one row of the arrays below. An error neuron has one or
more *compartments* (dendritic branches) ``c`` in ``e_comp_ptr[i]..e_comp_ptr[i+1]``;
compartment ``c`` sums its synapses, ``a_c = sum_b theta[bias] + sum_s w_s x_s``, and
the neuron's prediction combines its compartments by its kind ``e_kind[i]``:

- ``KIND_SINGLE``: ``mu = f_c(a_c)`` (dense, conv, pooling by average, activation,
  sum, concat, split: one compartment);
- ``KIND_PRODUCT``: ``mu = sum_k f_{2k}(a_{2k}) f_{2k+1}(a_{2k+1})`` (products; the LSTM
  cell ``c = sigma(a_f) c_prev + sigma(a_i) tanh(a_g)``);
- ``KIND_MAX``: ``mu = max_c f_c(a_c)`` (max pooling, alone or at the end of a chain
  such as conv, relu, maxpool; the first maximal compartment wins);
- ``KIND_MEAN``: ``mu = 1/n sum_c f_c(a_c)`` over its ``n`` compartments (average pooling
  at the end of a chain such as conv, tanh, avgpool);
- ``KIND_LSTM_H``: ``mu = f_o(a_o) tanh(C)`` with ``C`` the pair products of the other
  compartments (the LSTM output ``h = sigma(o) tanh(c)``).

``f_c`` is the compartment's activation ``c_act[c]``. The error neuron sends each
compartment's ``g_c = dmu/da_c * eps`` back over that compartment's synapses, so a
parent receives ``w_s g_c``: the local Jacobian ``d mu / d x_s`` times the error.

Each *synapse* ``s`` connects a presynaptic value neuron ``s_pre[s]`` to a compartment
``s_post[s]`` and reads its weight from the flat parameter vector: ``theta[s]``
(weights laid out in synapse order), or ``theta[s_param[s]]`` when ``s_param`` is not
empty. Several synapses may share one entry: a convolution kernel across positions, a
recurrent weight across time steps, the constant weights (1, or ``1/k`` for average
pooling) of the ops that have no parameters, stored after the ``n_params`` learnable
entries. Sharing a *learnable* entry is the one non-local step: the changes of many
synapses meet in it.

Value neuron ``j`` and error neuron ``v_err[j]`` form a pair (Song et al. 2020, Fig. 1);
the pair talks over a private link with delay ``own_delay`` in both directions.
Synapses are stored as runs (:mod:`neurosim.compile.runs`) by target (synapses
``in_ptr[c]..in_ptr[c+1]`` arrive at compartment ``c``) and by source, each with an
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
KIND_SINGLE, KIND_PRODUCT, KIND_MAX, KIND_LSTM_H, KIND_MEAN = 0, 1, 2, 3, 4


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
    e_kind: np.ndarray  # how the compartments combine (KIND_*)
    e_comp_ptr: np.ndarray  # compartments e_comp_ptr[i]..e_comp_ptr[i+1]
    e_loss: np.ndarray
    e_group_lo: np.ndarray  # softmax group of a ce output (else i, i+1)
    e_group_hi: np.ndarray
    e_trigger: np.ndarray  # Z-IL trigger step (path length to the outputs), -1 if none
    e_plastic: np.ndarray  # 1 where some compartment learns (phi's firings are recorded only there)
    e_share_group: np.ndarray  # group of error neurons sharing learnable parameters with it, or -1
    sg_ptr: np.ndarray  # members sg_members[sg_ptr[g]:sg_ptr[g+1]] of share group g
    sg_members: np.ndarray
    # compartments
    c_err: np.ndarray  # owning error neuron
    c_act: np.ndarray  # activation applied to the compartment's sum (identity for 'pre')
    c_plastic: np.ndarray  # 1 where the synapses and biases learn
    c_bias_ptr: np.ndarray  # biases c_bias[c_bias_ptr[c]:c_bias_ptr[c+1]] (indices in theta)
    c_bias: np.ndarray
    # synapses, as runs (see neurosim.compile.runs)
    s_param: np.ndarray  # empty when synapse s reads theta[s]
    in_ptr: np.ndarray  # synapses in_ptr[c]..in_ptr[c+1] arrive at compartment c
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
    # parameters: theta = [n_params learnable entries, then the constants]
    n_params: int
    param_index: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    constants: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shares_params: bool = False  # some learnable entry is read by several synapses or biases
    triggers_defined: bool = True  # Z-IL's trigger steps exist on this graph
    # per parameter (in param_index order): first and last Z-IL trigger of the vertices
    # that read it (-1: none) and how many vertices read it
    param_trigger_lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    param_trigger_hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    param_vertices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
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
    def n_compartments(self) -> int:
        """Number of compartments (one per error neuron, except for products, max-pooling and LSTMs)."""
        return len(self.c_err)

    def per_entry(self, values: np.ndarray, constants: int) -> np.ndarray:
        """A per-parameter array spread over the entries of theta (``constants`` for the constants)."""
        sizes = [int(np.prod(shape)) for _, shape in self.param_index.values()]
        return np.concatenate([np.repeat(values, sizes), np.full(len(self.constants), constants, values.dtype)])

    @property
    def n_theta(self) -> int:
        """Length of the flat parameter vector: learnable entries, then constants."""
        return self.n_params + len(self.constants)

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
        """Postsynaptic compartment of every synapse."""
        return np.repeat(np.arange(self.n_compartments, dtype=np.int32), np.diff(self.in_ptr))

    @property
    def s_error(self) -> np.ndarray:
        """Postsynaptic error neuron of every synapse."""
        return self.c_err[self.s_post]

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

    def pack_params(self, params: dict[str, np.ndarray], dtype: type) -> np.ndarray:
        """The flat parameter vector ``theta`` from a dict in PyTorch layout (constants appended)."""
        theta = np.zeros(self.n_theta, dtype=dtype)
        theta[self.n_params :] = self.constants
        for name, (offset, shape) in self.param_index.items():
            theta[offset : offset + int(np.prod(shape))] = np.asarray(params[name], dtype=dtype).ravel()
        return theta

    def unpack_params(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """A dict in PyTorch layout (copies) from the flat parameter vector."""
        return {
            name: theta[offset : offset + int(np.prod(shape))].reshape(shape).copy()
            for name, (offset, shape) in self.param_index.items()
        }
