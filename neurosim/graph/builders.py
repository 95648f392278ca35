"""Builders for the usual models, returning validated ``networkx.DiGraph`` objects.

Vertex names are stable (``conv1``, ``pool1``, ``fc1``; ``x1..xT``, ``h1..hT``) and the
parameter names and layouts are PyTorch's, so a ``state_dict`` of the matching PyTorch
module loads as it is: ``cnn`` uses the attribute names ``conv<k>``/``fc<m>``, ``rnn``
those of ``nn.RNN`` (``rnn.weight_ih_l0``...) plus ``nn.Linear`` ``fc``, ``lstm`` those
of ``nn.LSTM`` plus ``fc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx

from neurosim.errors import GraphError
from neurosim.graph.spec import CONVENTIONS, LOSSES, param_shapes
from neurosim.graph.validate import validate_graph

#: where the loss of a recurrent model sits: after the last step, or after every step
LOSS_ON = ("last", "every")
#: granularities of the LSTM builder
LSTM_GRANULARITIES = ("gate", "cell")
#: granularities of the CNN builder: one vertex per op, or Torch2PC's blocks
CNN_GRANULARITIES = ("op", "block")
#: how the cell-level LSTM's readout reads h_t: a split vertex, or an edge slice
LSTM_READOUTS = ("split", "slice")
#: bias layouts of the recurrent builders: PyTorch's pair, one bias per gate row, none
RECURRENT_BIASES = ("pair", "single", "none")
#: the LSTM gates in PyTorch's row order, with their activations
LSTM_GATES = (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid"))


def mlp(
    sizes: Sequence[int],
    activation: str | Sequence[str] = "sigmoid",
    convention: str = "post",
    bias: bool = True,
    loss: str = "mse",
    output_activation: str | None = None,
) -> nx.DiGraph:
    """A multilayer perceptron as a chain ``input -> layer1 -> ... -> layerL``.

    Parameters
    ----------
    sizes
        Widths ``[n_in, n_1, ..., n_L]``; ``L = len(sizes) - 1`` dense layers.
    activation
        One name for every layer, or one per dense layer. In the **post** convention
        layer ``k`` computes ``act_k(W_k v_{k-1} + b_k)``; in the **pre** convention
        ``W_k act_k(v_{k-1}) + b_k`` (so the input passes through ``act_1`` and the
        output is linear, as in Whittington and Bogacz 2017 and Song et al. 2020).
    convention
        ``"post"`` or ``"pre"``.
    bias
        Whether every dense layer has a bias.
    loss
        ``"mse"`` or ``"ce"`` (softmax cross-entropy), on the output vertex.
    output_activation
        Post convention only: the last layer's activation (default: the same as
        ``activation``). Use ``"linear"`` for an unsquashed output. In the **pre**
        convention the output is linear and the last layer's activation is the one it
        applies to its *input*, so giving ``output_activation`` there raises a
        :class:`~neurosim.errors.GraphError` (as :func:`cnn` does); set the last entry
        of ``activation`` instead.

    Examples
    --------
    >>> g = mlp([4, 3, 2], activation="tanh", convention="pre", loss="ce")
    >>> list(g.nodes)
    ['input', 'layer1', 'layer2']
    """
    n_layers = len(sizes) - 1
    _refuse_pre_output_activation(convention, output_activation)
    if isinstance(activation, str):
        acts = [activation] * n_layers
    else:
        acts = list(activation)
    if output_activation is not None and acts:
        acts[-1] = output_activation
    g = nx.DiGraph(name=f"mlp-{'-'.join(str(s) for s in sizes)}")
    g.add_node("input", op="input", size=sizes[0] if sizes else 0)
    prev = "input"
    for k in range(1, n_layers + 1):
        name = f"layer{k}"
        attrs = dict(op="dense", size=sizes[k], activation=acts[k - 1] if k - 1 < len(acts) else None,
                     convention=convention, bias=bias)
        if k == n_layers:
            attrs["loss"] = loss
        g.add_node(name, **attrs)
        g.add_edge(prev, name)
        prev = name
    validate_graph(g)
    return g


def _require_count(what: str, value: object, least: int = 1) -> int:
    """``value`` if it is an int ``>= least``; a GraphError naming the argument otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise GraphError(f"{what} must be an int >= {least}, got {value!r}")
    return value


def _require_counts(what: str, values: Sequence[int] | int, least: int = 1) -> list[int]:
    """A list of ints ``>= least`` (one int is a list of one)."""
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise GraphError(f"{what} must be a list of ints, got {values!r}")
    return [_require_count(f"each entry of {what}", v, least) for v in values]


def _require_choice(what: str, value: object, choices: Sequence[object]) -> None:
    if value not in choices:
        raise GraphError(f"unknown {what} {value!r}; choose one of {list(choices)}")


def _refuse_pre_output_activation(convention: str, output_activation: str | None) -> None:
    """mlp and cnn alike: ``output_activation`` has no meaning in the pre convention."""
    if convention == "pre" and output_activation is not None:
        raise GraphError(
            "output_activation applies to the 'post' convention only; in 'pre' the output is linear "
            "and every vertex applies `activation` to its input (give the last layer's input "
            "activation as the last entry of `activation`)"
        )


def cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    channels: Sequence[int] | int = (4,),
    kernel_size: int | Sequence[int] = 5,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    pool: str | None = "max",
    pool_size: int | Sequence[int] = 2,
    activation: str = "relu",
    hidden: Sequence[int] | int = (),
    n_out: int = 10,
    loss: str = "ce",
    convention: str = "post",
    bias: bool = True,
    output_activation: str | None = None,
    granularity: str = "op",
) -> nx.DiGraph:
    """A convolutional network: ``(conv -> pool) x K -> flatten -> dense x M -> output``.

    Vertices, in order: ``input`` (shape ``input_shape = (C, H, W)``); for each entry
    ``c_k`` of ``channels`` a ``conv2d`` vertex ``conv<k>`` with ``c_k`` output channels
    and, unless ``pool`` is ``None``, a pooling vertex ``pool<k>``; ``flatten``; one
    dense vertex ``fc<m>`` per entry of ``hidden``, then the output ``fc<M+1>`` with
    ``n_out`` neurons and the ``loss``. Parameter names are PyTorch's for a module with
    attributes ``conv1, conv2, ..., fc1, fc2, ...``: ``conv<k>.weight``
    ``(c_k, c_{k-1}, kh, kw)``, ``conv<k>.bias`` ``(c_k,)``, ``fc<m>.weight``
    ``(out, in)``, ``fc<m>.bias`` ``(out,)``.

    The activation is each conv and dense vertex's own (no separate activation
    vertex). In the **post** convention (PyTorch's ``Sequential(Conv2d, ReLU,
    MaxPool2d, ..., Flatten, Linear)``)::

        conv_k = act(W_k * pool_{k-1} + b_k)      (* : cross-correlation, nn.Conv2d)
        pool_k = pool(conv_k)                     (windows pool_size, stride pool_size)
        fc_m   = act(W_m fc_{m-1} + b_m),   output = out_act(W fc_M + b)

    with ``out_act = output_activation`` (default ``linear``: logits for ``ce``). In the
    **pre** convention (Whittington and Bogacz 2017, Song et al. 2020) each conv and
    dense vertex applies ``act`` to its input, ``conv_k = W_k * act(pool_{k-1}) + b_k``,
    so the image itself passes through ``act`` and the output is linear. Spatial sizes
    follow ``nn.Conv2d``: ``H' = (H + 2 padding - kh) // stride + 1``, and pooling
    ``H'' = (H' - pool_size) // pool_size + 1``. Predictive coding on such graphs:
    Millidge, Tschantz and Buckley (2020), "Predictive coding approximates backprop
    along arbitrary computation graphs", arXiv:2006.04182.

    Parameters
    ----------
    input_shape
        ``(channels, height, width)`` of the input.
    channels
        Output channels of each conv layer (at least one layer).
    kernel_size, stride, padding
        Of every conv layer: an int or an ``(h, w)`` pair (PyTorch's meaning).
    pool
        ``"max"``, ``"avg"`` or ``None`` (no pooling).
    pool_size
        Window (and stride) of every pooling vertex: int or pair.
    activation
        Of every conv and hidden dense vertex (``relu``, ``tanh``, ``sigmoid``, ``linear``).
    hidden
        Widths of the dense layers between ``flatten`` and the output (may be empty).
    n_out
        Output width (number of classes).
    loss
        ``"ce"`` (softmax cross-entropy) or ``"mse"``.
    convention
        ``"post"`` or ``"pre"``.
    bias
        Whether every conv and dense vertex has a bias.
    output_activation
        Post convention only: the output's activation (default ``"linear"``).

    granularity
        ``"op"``: every op is a vertex, as above. ``"block"``: Torch2PC's granularity for
        ``Sequential(Sequential(Conv2d, act, Pool), ..., Sequential(Flatten, Linear),
        ...)``: each conv, its activation and its pooling form one ``chain`` vertex
        ``conv<k>`` (:mod:`neurosim.graph.chain`), the flatten and the first dense layer
        the chain vertex ``fc1``, and the later dense layers stay dense vertices. The
        parameter names are the same at both granularities, so one parameter dict
        serves both; ``n_exact`` and Z-IL's trigger steps count the blocks
        (``n_exact = K + M + 1`` instead of ``2K + M + 2`` with pooling).

    Examples
    --------
    >>> g = cnn(channels=(4,), kernel_size=5, pool="max", pool_size=2, n_out=10)
    >>> list(g.nodes)
    ['input', 'conv1', 'pool1', 'flatten', 'fc1']
    >>> g.nodes["conv1"]["shape"], g.nodes["pool1"]["shape"], g.nodes["flatten"]["size"]
    ((4, 24, 24), (4, 12, 12), 576)
    >>> b = cnn(channels=(4,), kernel_size=5, pool="max", pool_size=2, n_out=10, granularity="block")
    >>> list(b.nodes), b.nodes["conv1"]["shape"]
    (['input', 'conv1', 'fc1'], (4, 12, 12))
    """
    shape = _require_counts("input_shape", input_shape)
    if len(shape) != 3:
        raise GraphError(f"input_shape must be (channels, height, width), got {tuple(input_shape)!r}")
    convs = _require_counts("channels", channels)
    if not convs:
        raise GraphError("channels is empty; a CNN needs at least one conv layer (use mlp(...) otherwise)")
    widths = _require_counts("hidden", hidden)
    _require_count("n_out", n_out)
    _require_choice("pool", pool, ("max", "avg", None))
    _require_choice("convention", convention, CONVENTIONS)
    _refuse_pre_output_activation(convention, output_activation)
    _require_choice("granularity", granularity, CNN_GRANULARITIES)
    out_act = output_activation if output_activation is not None else (
        "linear" if convention == "post" else activation
    )
    suffix = "" if granularity == "op" else "-blocks"
    g = nx.DiGraph(name=f"cnn-{'x'.join(map(str, shape))}-c{'-'.join(map(str, convs))}-{n_out}{suffix}")
    g.add_node("input", op="input", shape=tuple(shape))
    prev = "input"
    for k, c in enumerate(convs, start=1):
        conv = dict(op="conv2d", out_channels=c, kernel_size=kernel_size, stride=stride,
                    padding=padding, activation=activation, convention=convention, bias=bias)
        pooling = dict(op=f"{pool}pool", kernel_size=pool_size) if pool is not None else None
        if granularity == "block":
            names = dict(weights={prev: f"conv{k}.weight"}, biases=[f"conv{k}.bias"] if bias else [])
            g.add_node(f"conv{k}", op="chain", ops=[{**conv, **names}] + ([pooling] if pooling else []))
            g.add_edge(prev, f"conv{k}")
            prev = f"conv{k}"
            continue
        g.add_node(f"conv{k}", **conv)
        g.add_edge(prev, f"conv{k}")
        prev = f"conv{k}"
        if pooling is not None:
            g.add_node(f"pool{k}", **pooling)
            g.add_edge(prev, f"pool{k}")
            prev = f"pool{k}"
    if granularity == "op":
        g.add_node("flatten", op="flatten")
        g.add_edge(prev, "flatten")
        prev = "flatten"
    for m, width in enumerate([*widths, n_out], start=1):
        last = m == len(widths) + 1
        attrs = dict(op="dense", size=width, activation=out_act if last else activation,
                     convention=convention, bias=bias)
        if granularity == "block" and m == 1:  # Sequential(Flatten, Linear): one vertex
            names = dict(weights={"fc1.0": "fc1.weight"}, biases=["fc1.bias"] if bias else [])
            attrs = dict(op="chain", ops=[dict(op="flatten"), {**attrs, **names}])
        if last:
            attrs["loss"] = loss
        g.add_node(f"fc{m}", **attrs)
        g.add_edge(prev, f"fc{m}")
        prev = f"fc{m}"
    validate_graph(g)
    return g


def _check_recurrent_args(n_in: int, hidden: int, n_out: int, steps: int, loss: str, loss_on: str,
                          bias: str, initial_state: bool) -> None:
    _require_count("n_in", n_in)
    _require_count("hidden", hidden)
    _require_count("n_out", n_out)
    _require_count("steps", steps)
    _require_choice("loss", loss, LOSSES)
    _require_choice("loss_on", loss_on, LOSS_ON)
    _require_choice("bias", bias, RECURRENT_BIASES)
    _require_choice("initial_state", initial_state, (False, True))


def _bias_names(module: str, bias: str) -> list[str]:
    """The bias parameters of a recurrent module: PyTorch's pair, one bias, or none."""
    return {"pair": [f"{module}.bias_ih_l0", f"{module}.bias_hh_l0"], "single": [f"{module}.bias_l0"],
            "none": []}[bias]


def _add_inputs(g: nx.DiGraph, n_in: int, steps: int) -> list[str]:
    """Input vertices ``x1..xT`` of size ``n_in``."""
    names = [f"x{t}" for t in range(1, steps + 1)]
    for x in names:
        g.add_node(x, op="input", size=n_in)
    return names


def _add_initial(g: nx.DiGraph, names: Sequence[str], hidden: int) -> None:
    """Clamped initial-state inputs (``h0``, ``c0``), zero when the data leave them out."""
    for name in names:
        g.add_node(name, op="input", size=hidden, default=0.0)


def _add_readouts(g: nx.DiGraph, states: list[str], n_out: int, loss: str, loss_on: str,
                  output_activation: str, cut: tuple[int, int] | None = None) -> None:
    """The ``nn.Linear`` readout ``fc`` from the hidden state(s): ``out`` from the last
    state, or ``out1..outT`` from every state, all sharing ``fc.weight``, ``fc.bias``;
    through the edge slice ``cut`` of each state when given."""
    if loss_on == "last":
        pairs = [("out", states[-1])]
    else:
        pairs = [(f"out{t}", h) for t, h in enumerate(states, start=1)]
    for out, h in pairs:
        g.add_node(out, op="dense", size=n_out, activation=output_activation, convention="post",
                   weights={h: "fc.weight"}, biases=["fc.bias"], loss=loss)
        if cut is None:
            g.add_edge(h, out)
        else:
            g.add_edge(h, out, slice=cut)


def rnn(
    n_in: int,
    hidden: int,
    n_out: int,
    steps: int,
    activation: str = "tanh",
    loss: str = "ce",
    loss_on: str = "last",
    output_activation: str = "linear",
    bias: str = "pair",
    initial_state: bool = False,
) -> nx.DiGraph:
    """An Elman RNN unrolled over ``steps = T`` time steps, with a linear readout.

    Vertices: inputs ``x1..xT`` (size ``n_in``), hidden states ``h1..hT`` (dense, size
    ``hidden``) and the readout: ``out`` from ``hT`` (``loss_on="last"``, sequence
    classification as in Millidge et al. 2020, section 4, on the names data set) or
    ``out1..outT`` from every state (``loss_on="every"``, one loss per output)::

        h_t = act(W_ih x_t + W_hh h_{t-1} + b_ih + b_hh),   h_0 = 0 (so h_1 has only x_1)
        out = out_act(W_fc h_T + b_fc)                      (or out_t from h_t)

    The parameters are shared across time by name, with PyTorch's names and layouts for
    ``nn.RNN(n_in, hidden, nonlinearity=activation)`` followed by ``nn.Linear(hidden,
    n_out)`` as attribute ``fc``: ``rnn.weight_ih_l0`` ``(hidden, n_in)``,
    ``rnn.weight_hh_l0`` ``(hidden, hidden)``, ``rnn.bias_ih_l0``, ``rnn.bias_hh_l0``
    ``(hidden,)``, ``fc.weight`` ``(n_out, hidden)``, ``fc.bias`` ``(n_out,)``. With
    ``steps=1`` and no initial-state vertex, no vertex reads ``rnn.weight_hh_l0``
    (``h_0 = 0``), so the graph has no such parameter. Each ``h_t`` reads its parents in
    the order ``[x_t, h_{t-1}]`` (``h0`` the input vertex with ``initial_state``).

    Z-IL needs one trigger step per parametrized vertex: with ``loss_on="last"``,
    ``h_t`` triggers at ``T - t + 1``; with ``loss_on="every"`` the states reach several
    outputs at different distances and :func:`~neurosim.graph.trigger_steps` raises.

    Parameters
    ----------
    n_in, hidden, n_out
        Input, state and output widths.
    steps
        Number of time steps ``T``.
    activation
        Of the state (PyTorch's ``nonlinearity``: ``tanh`` or ``relu``; any neurosim
        activation is accepted).
    loss
        ``"ce"`` or ``"mse"``, on every output vertex.
    loss_on
        ``"last"`` or ``"every"``.
    output_activation
        Of the readout (default ``linear``: logits).
    bias
        ``"pair"`` (default): PyTorch's two biases ``bias_ih_l0`` and ``bias_hh_l0``,
        with PyTorch's names and layout in and out (a ``state_dict`` loads and saves as
        it is). Both are learned, each with the full gradient of their sum, so the
        effective bias moves twice as fast as a single bias would under the same
        learning rate (as in PyTorch). ``"single"``: one bias per gate row,
        ``<module>.bias_l0`` (:func:`neurosim.params.merge_bias_pairs` turns a PyTorch
        pair into it, :func:`neurosim.params.split_bias_pairs` back). ``"none"``:
        ``bias=False`` in PyTorch.
    initial_state
        ``True``: the initial state is clamped input vertices, ``h0`` (LSTM: ``h0`` and
        ``c0``, size ``hidden``), as PyTorch's ``(h_0, c_0)`` arguments: give their data
        like any input's, or leave them out of the data for zeros (their ``default``).
        ``False`` (default): ``h_0 = c_0 = 0`` are constants, with no vertex.

    Examples
    --------
    >>> g = rnn(n_in=57, hidden=32, n_out=18, steps=3)
    >>> list(g.nodes)
    ['x1', 'x2', 'x3', 'h1', 'h2', 'h3', 'out']
    >>> g.nodes["h2"]["inputs"], g.nodes["h2"]["weights"]["h1"]
    (['x2', 'h1'], 'rnn.weight_hh_l0')
    >>> rnn(n_in=57, hidden=32, n_out=18, steps=2, initial_state=True).nodes["h1"]["inputs"]
    ['x1', 'h0']
    """
    _check_recurrent_args(n_in, hidden, n_out, steps, loss, loss_on, bias, initial_state)
    g = nx.DiGraph(name=f"rnn-{n_in}-{hidden}-{n_out}-T{steps}")
    xs = _add_inputs(g, n_in, steps)
    if initial_state:
        _add_initial(g, ["h0"], hidden)
    states: list[str] = ["h0"] if initial_state else []
    for t, x in enumerate(xs, start=1):
        h = f"h{t}"
        parents = [x] + states[-1:]
        weights = {x: "rnn.weight_ih_l0"}
        if states:
            weights[states[-1]] = "rnn.weight_hh_l0"
        g.add_node(h, op="dense", size=hidden, activation=activation, convention="post",
                   inputs=parents, weights=weights, biases=_bias_names("rnn", bias),
                   init_fan_in=hidden)
        g.add_edges_from((p, h) for p in parents)
        states.append(h)
    _add_readouts(g, states[1:] if initial_state else states, n_out, loss, loss_on, output_activation)
    validate_graph(g)
    return g


def lstm(
    n_in: int,
    hidden: int,
    n_out: int,
    steps: int,
    granularity: str = "gate",
    loss: str = "ce",
    loss_on: str = "last",
    output_activation: str = "linear",
    bias: str = "pair",
    initial_state: bool = False,
    readout: str = "split",
) -> nx.DiGraph:
    """An LSTM unrolled over ``steps = T`` time steps, with a linear readout.

    The equations are PyTorch's ``nn.LSTM`` (gates in the order ``i, f, g, o``), with
    ``h_0 = c_0 = 0`` unless ``initial_state``::

        i_t = sigmoid(W_ii x_t + W_hi h_{t-1} + b_ii + b_hi)
        f_t = sigmoid(W_if x_t + W_hf h_{t-1} + b_if + b_hf)
        g_t = tanh   (W_ig x_t + W_hg h_{t-1} + b_ig + b_hg)
        o_t = sigmoid(W_io x_t + W_ho h_{t-1} + b_io + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)
        out = out_act(W_fc h_T + b_fc)       (loss_on="last"; "every": out_t from h_t)

    Two granularities build the same function from the same parameters:

    ``"gate"``
        Every quantity is its own population, as in Millidge et al. (2020, section 4,
        "LSTM"): per step dense vertices ``i<t>, f<t>, g<t>, o<t>`` (inputs
        ``[x_t, h_{t-1}]``; ``[x_1]`` at ``t = 1``), the product vertex ``c<t>`` (inputs
        ``[f_t, c_{t-1}, i_t, g_t]``; ``[i_1, g_1]`` at ``t = 1``) and the product vertex
        ``h<t>`` (inputs ``[o_t, c_t]``, factor activations ``linear, tanh``); there is no
        ``f1``, since ``c_0 = 0`` (with ``initial_state`` there is, reading ``h0`` and
        multiplying ``c0``). Gate ``k``
        (``i, f, g, o`` = 0..3) reads rows ``k H ... (k+1) H - 1`` of the shared matrices
        and biases, references ``(name, k * hidden)``.
    ``"cell"``
        One ``lstm`` vertex ``s<t>`` per step holding ``[h_t; c_t]`` (inputs
        ``[x_t, s_{t-1}]``; ``[x_1, h0, c0]`` with ``initial_state``). The readout reads
        ``h_t``, the first ``hidden`` values of ``s_t``: through a ``split`` vertex
        ``h<t>`` (``readout="split"``, one more vertex on the way to the loss) or
        directly, through an edge slice ``(0, hidden)`` (``readout="slice"``: the
        readout is one edge from ``s_t``, so ``n_exact`` and Z-IL's trigger steps are
        those of a direct edge).

    Both name the parameters as ``nn.LSTM(n_in, hidden)`` followed by
    ``nn.Linear(hidden, n_out)`` as attribute ``fc``: ``lstm.weight_ih_l0``
    ``(4 hidden, n_in)``, ``lstm.weight_hh_l0`` ``(4 hidden, hidden)``,
    ``lstm.bias_ih_l0``, ``lstm.bias_hh_l0`` ``(4 hidden,)``, ``fc.weight``
    ``(n_out, hidden)``, ``fc.bias`` ``(n_out,)``; one parameter dict serves both
    granularities and a PyTorch ``state_dict`` with those keys loads as it is. With
    ``steps=1`` and no initial state, no vertex reads ``lstm.weight_hh_l0``, so the graph
    has no such parameter.

    Z-IL: the cell granularity with ``loss_on="last"`` has a single trigger step per
    vertex (``s_t`` at ``T - t + 2``, ``T - t + 1`` with ``readout="slice"``); the gate
    granularity (``c_t`` reaches ``h_t`` directly and through ``c_{t+1}``) and
    ``loss_on="every"`` do not, and :func:`~neurosim.graph.trigger_steps` raises for
    them (for ``steps >= 2``).

    Parameters
    ----------
    n_in, hidden, n_out
        Input, state and output widths.
    steps
        Number of time steps ``T``.
    granularity
        ``"gate"`` or ``"cell"``.
    loss
        ``"ce"`` or ``"mse"``, on every output vertex.
    loss_on
        ``"last"`` or ``"every"``.
    output_activation
        Of the readout (default ``linear``: logits).
    bias
        ``"pair"`` (default): PyTorch's two biases ``bias_ih_l0`` and ``bias_hh_l0``,
        with PyTorch's names and layout in and out (a ``state_dict`` loads and saves as
        it is). Both are learned, each with the full gradient of their sum, so the
        effective bias moves twice as fast as a single bias would under the same
        learning rate (as in PyTorch). ``"single"``: one bias per gate row,
        ``<module>.bias_l0`` (:func:`neurosim.params.merge_bias_pairs` turns a PyTorch
        pair into it, :func:`neurosim.params.split_bias_pairs` back). ``"none"``:
        ``bias=False`` in PyTorch.
    initial_state
        ``True``: the initial state is clamped input vertices, ``h0`` (LSTM: ``h0`` and
        ``c0``, size ``hidden``), as PyTorch's ``(h_0, c_0)`` arguments: give their data
        like any input's, or leave them out of the data for zeros (their ``default``).
        ``False`` (default): ``h_0 = c_0 = 0`` are constants, with no vertex.
    readout
        Cell granularity: ``"split"`` (default) or ``"slice"``, see above.

    Examples
    --------
    >>> g = lstm(n_in=65, hidden=32, n_out=65, steps=2, granularity="gate")
    >>> g.nodes["c2"]["inputs"], g.nodes["f2"]["weights"]["h1"]
    (['f2', 'c1', 'i2', 'g2'], ('lstm.weight_hh_l0', 32))
    >>> list(lstm(n_in=65, hidden=32, n_out=65, steps=2, granularity="cell").nodes)
    ['x1', 'x2', 's1', 's2', 'h2', 'out']
    >>> list(lstm(n_in=65, hidden=32, n_out=65, steps=2, granularity="cell", readout="slice").nodes)
    ['x1', 'x2', 's1', 's2', 'out']
    """
    _check_recurrent_args(n_in, hidden, n_out, steps, loss, loss_on, bias, initial_state)
    _require_choice("granularity", granularity, LSTM_GRANULARITIES)
    _require_choice("readout", readout, LSTM_READOUTS)
    g = nx.DiGraph(name=f"lstm-{granularity}-{n_in}-{hidden}-{n_out}-T{steps}")
    xs = _add_inputs(g, n_in, steps)
    biases = _bias_names("lstm", bias)
    if initial_state:
        _add_initial(g, ["h0", "c0"], hidden)
    if granularity == "gate":
        states = _lstm_gates(g, xs, hidden, biases, initial_state)
        cut = None
    elif readout == "split":
        states = _lstm_cells(g, xs, hidden, biases, initial_state, split=True, every=loss_on == "every")
        cut = None
    else:
        states = _lstm_cells(g, xs, hidden, biases, initial_state, split=False, every=True)
        cut = (0, hidden)
    _add_readouts(g, states, n_out, loss, loss_on, output_activation, cut)
    validate_graph(g)
    return g


def _lstm_gates(g: nx.DiGraph, xs: list[str], hidden: int, biases: list[str], initial: bool) -> list[str]:
    """Gate-level LSTM steps; returns the vertices ``h1..hT``. Without an initial state,
    step 1 has no forget gate ``f1`` (it would multiply ``c_0 = 0``)."""
    hs: list[str] = []
    for t, x in enumerate(xs, start=1):
        prev_h = hs[-1:] or (["h0"] if initial else [])
        prev_c = f"c{t - 1}" if t > 1 or initial else None
        for k, (gate, act) in enumerate(LSTM_GATES):
            if gate == "f" and prev_c is None:
                continue
            offset = k * hidden
            weights = {x: ("lstm.weight_ih_l0", offset)}
            if prev_h:
                weights[prev_h[0]] = ("lstm.weight_hh_l0", offset)
            g.add_node(f"{gate}{t}", op="dense", size=hidden, activation=act, convention="post",
                       inputs=[x, *prev_h], weights=weights,
                       biases=[(b, offset) for b in biases], init_fan_in=hidden)
            g.add_edges_from((p, f"{gate}{t}") for p in [x, *prev_h])
        cell = [f"f{t}", prev_c, f"i{t}", f"g{t}"] if prev_c is not None else [f"i{t}", f"g{t}"]
        g.add_node(f"c{t}", op="product", inputs=cell)
        g.add_edges_from((p, f"c{t}") for p in cell)
        g.add_node(f"h{t}", op="product", inputs=[f"o{t}", f"c{t}"], activations=("linear", "tanh"))
        g.add_edges_from([(f"o{t}", f"h{t}"), (f"c{t}", f"h{t}")])
        hs.append(f"h{t}")
    return hs


def _lstm_cells(g: nx.DiGraph, xs: list[str], hidden: int, biases: list[str], initial: bool, split: bool,
                every: bool) -> list[str]:
    """Cell-level LSTM steps; returns what the readout reads: the split vertices ``h<t>``
    (every step's for ``every``, else only the last one) or, without ``split``, the cells."""
    cells: list[str] = []
    for t, x in enumerate(xs, start=1):
        s = f"s{t}"
        prev = cells[-1:] or (["h0", "c0"] if initial else [])
        weights = {x: "lstm.weight_ih_l0"}
        if prev:
            weights[prev[0]] = "lstm.weight_hh_l0"
        g.add_node(s, op="lstm", hidden=hidden, inputs=[x, *prev], weights=weights, biases=biases)
        g.add_edges_from((p, s) for p in [x, *prev])
        cells.append(s)
    if not split:
        return cells
    read = cells if every else cells[-1:]
    hs = []
    for s in read:
        h = "h" + s[1:]
        g.add_node(h, op="split", start=0, stop=hidden)
        g.add_edge(s, h)
        hs.append(h)
    return hs


def sequential(
    layers: Sequence[Mapping | Sequence[Mapping]],
    input_shape: int | Sequence[int],
    loss: str = "mse",
) -> nx.DiGraph:
    """A chain of vertices with the layout of a PyTorch ``nn.Sequential``, block by block.

    Element ``i`` of ``layers`` becomes vertex ``"i"``: an op attribute dict (``{"op":
    "dense", "size": 10}``, ``{"op": "activation", "activation": "relu"}``...) gives a
    vertex of that op; a list of such dicts (a nested ``nn.Sequential``) gives one
    ``chain`` vertex (:mod:`neurosim.graph.chain`), which is how Torch2PC (Rosenbaum
    2022) sees a block: one predictive-coding layer. ``dense`` and ``conv2d`` ops default
    to ``activation="linear"``, ``convention="post"`` (``nn.Linear``, ``nn.Conv2d``).
    The input vertex is ``"input"`` (an int ``input_shape`` is a flat size), and the last
    vertex carries ``loss``.

    Parameter names are the ``state_dict`` keys of the matching ``nn.Sequential``:
    ``"<i>.weight"`` for a layer at position ``i``, ``"<i>.<j>.weight"`` for the ``j``-th
    module of the block at position ``i`` (likewise ``bias``), in PyTorch's layouts, so
    :func:`neurosim.params.from_sequential` loads such a ``state_dict`` as it is and
    :func:`neurosim.params.to_sequential` writes one back.
    :func:`neurosim.graph.pytorch.from_torch` builds ``layers`` from a torch module.

    Examples
    --------
    >>> g = sequential([[{"op": "conv2d", "out_channels": 2, "kernel_size": 3},
    ...                  {"op": "activation", "activation": "relu"}, {"op": "maxpool", "kernel_size": 2}],
    ...                 [{"op": "flatten"}, {"op": "dense", "size": 3}]], input_shape=(1, 6, 6), loss="ce")
    >>> list(g.nodes), sorted(param_shapes(g))
    (['input', '0', '1'], ['0.0.bias', '0.0.weight', '1.1.bias', '1.1.weight'])
    """
    _require_choice("loss", loss, LOSSES)
    if isinstance(layers, (str, Mapping)) or not isinstance(layers, Sequence) or not layers:
        raise GraphError("layers must be a non-empty list of op dicts or lists of op dicts (nested blocks)")
    shape = _require_counts("input_shape", input_shape)
    g = nx.DiGraph(name=f"sequential-{len(layers)}")
    g.add_node("input", op="input", shape=tuple(shape))
    prev = "input"
    for i, layer in enumerate(layers):
        name = str(i)
        if isinstance(layer, Mapping):
            attrs = dict(layer)
            if attrs.get("op") in ("dense", "conv2d"):
                attrs.setdefault("activation", "linear")
                attrs.setdefault("convention", "post")
        elif isinstance(layer, Sequence) and not isinstance(layer, str):
            attrs = dict(op="chain", ops=[dict(m) if isinstance(m, Mapping) else m for m in layer])
        else:
            raise GraphError(f"layers[{i}] is {layer!r}; give an op dict or a list of op dicts")
        if i == len(layers) - 1:
            attrs["loss"] = loss
        g.add_node(name, **attrs)
        g.add_edge(prev, name)
        prev = name
    validate_graph(g)
    return g
