"""Hand-built graphs of every op, and an independent forward pass to check the reference against.

``naive_vertex`` computes one vertex the slow, obvious way (a conv and a pooling window
per output position, the LSTM cell written out, a max by ``np.max``), from the spec's
words in ``neurosim/graph/spec.py`` and ``shared/design/equations.md``; it shares no
code with ``neurosim.reference``. Finite differences of ``naive_loss`` are what the
reference's gradients and VJPs are measured against.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.special import log_softmax

from neurosim.graph import validate_graph
from neurosim.graph.spec import bias_refs, inputs_of, param_specs, weight_refs

FD_STEP = 1e-6
F = {
    "linear": lambda a: a,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "relu": lambda a: np.where(a > 0, a, 0.0),
}


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _rows(params, ref, n):
    name, offset = (ref, 0) if isinstance(ref, str) else (ref.name, ref.row_offset)
    return params[name][offset : offset + n]


def naive_vertex(graph, v, params, xs):
    """The value of vertex ``v`` (flat ``(B, size)``) from its parents' flat values ``xs``."""
    node = graph.nodes[v]
    op, batch = node["op"], xs[0].shape[0]
    parents = inputs_of(graph, v)
    if op in ("dense", "conv2d"):
        act = F[node["activation"]]
        sig = (lambda x: x) if node["convention"] == "post" else act
    if op == "dense":
        refs = weight_refs(graph, v)
        total = sum(np.einsum("bi,oi->bo", sig(x), _rows(params, refs[p], node["size"])) for p, x in zip(parents, xs))
        total = total + sum(_rows(params, b, node["size"]) for b in bias_refs(graph, v))
        return act(total) if node["convention"] == "post" else total
    if op in ("conv2d", "avgpool", "maxpool"):
        c, h, w = graph.nodes[parents[0]]["shape"]
        kh, kw = _pair(node["kernel_size"])
        sh, sw = _pair(node.get("stride", 1 if op == "conv2d" else (kh, kw)))
        ph, pw = _pair(node.get("padding", 0))
        img = xs[0].reshape(batch, c, h, w)
        if op == "conv2d":
            img = sig(img)
        img = np.pad(img, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        out_c, oh, ow = node["shape"]
        out = np.zeros((batch, out_c, oh, ow))
        if op == "conv2d":
            weight = params[weight_refs(graph, v)[parents[0]].name]
            bias = sum(params[b.name] for b in bias_refs(graph, v)) if bias_refs(graph, v) else 0.0
        for y in range(oh):
            for z in range(ow):
                patch = img[:, :, y * sh : y * sh + kh, z * sw : z * sw + kw]
                if op == "conv2d":
                    out[:, :, y, z] = np.tensordot(patch, weight, axes=([1, 2, 3], [1, 2, 3])) + bias
                elif op == "avgpool":
                    out[:, :, y, z] = patch.mean(axis=(2, 3))
                else:
                    out[:, :, y, z] = patch.max(axis=(2, 3))
        out = out.reshape(batch, -1)
        return act(out) if op == "conv2d" and node["convention"] == "post" else out
    if op == "flatten":
        return xs[0]
    if op == "activation":
        return F[node["activation"]](xs[0])
    if op == "sum":
        return F[node.get("activation", "linear")](sum(xs))
    if op == "product":
        acts = node.get("activations") or ["linear"] * len(xs)
        fs = [F[a](x) for a, x in zip(acts, xs)]
        return sum(fs[m] * fs[m + 1] for m in range(0, len(fs), 2))
    if op == "concat":
        return np.concatenate(xs, axis=1)
    if op == "split":
        return xs[0][:, node["start"] : node["stop"]]
    if op == "chain":  # the ops in turn, each as a vertex of its own small graph
        names, shapes = list(parents), [graph.nodes[p]["shape"] for p in parents]
        for k, member in enumerate(node["ops"]):
            sub = nx.DiGraph()
            for name, shape in zip(names, shapes):
                sub.add_node(name, op="input", shape=tuple(shape))
            attrs = dict(member)
            if attrs["op"] in ("dense", "conv2d"):
                attrs.setdefault("activation", "linear")
                attrs.setdefault("convention", "post")
            sub.add_node(f"{v}.{k}", **attrs, inputs=list(names), loss="mse")
            sub.add_edges_from((name, f"{v}.{k}") for name in names)
            validate_graph(sub)  # for the shapes only
            xs = [naive_vertex(sub, f"{v}.{k}", params, xs)]
            names, shapes = [f"{v}.{k}"], [sub.nodes[f"{v}.{k}"]["shape"]]
        return xs[0]
    if op == "lstm":
        hidden = node["hidden"]
        refs = weight_refs(graph, v)
        x = xs[0]
        prev = np.concatenate(xs[1:], axis=1) if len(xs) > 1 else np.zeros((batch, 2 * hidden))
        h_prev, c_prev = prev[:, :hidden], prev[:, hidden:]
        gates = x @ params[refs[parents[0]].name].T + sum(params[b.name] for b in bias_refs(graph, v))
        if len(xs) > 1:
            gates = gates + h_prev @ params[refs[parents[1]].name].T
        sigmoid = F["sigmoid"]
        i, f = sigmoid(gates[:, :hidden]), sigmoid(gates[:, hidden : 2 * hidden])
        g, o = np.tanh(gates[:, 2 * hidden : 3 * hidden]), sigmoid(gates[:, 3 * hidden :])
        c = f * c_prev + i * g
        return np.concatenate([o * np.tanh(c), c], axis=1)
    raise AssertionError(op)


def parent_values(graph, v, values):
    """What vertex ``v`` reads from each parent in ``values``: the whole value, or
    ``value[:, start:stop]`` over an edge slice."""
    xs = []
    for p in inputs_of(graph, v):
        start, stop = graph.edges[p, v].get("slice", (0, values[p].shape[1]))
        xs.append(values[p][:, start:stop])
    return xs


def naive_forward(graph, params, x, nudge=None):
    """Every vertex's value; ``nudge[v]`` is added to vertex ``v``'s value (so d loss/d nudge = dL/dv)."""
    values = {}
    for v in nx.topological_sort(graph):
        if graph.nodes[v]["op"] == "input":
            out = np.asarray(x[v], dtype=np.float64)
        else:
            out = naive_vertex(graph, v, params, parent_values(graph, v, values))
        if nudge is not None and v in nudge:
            out = out + nudge[v]
        values[v] = out
    return values


def naive_loss(graph, params, x, y, nudge=None):
    """``sum_outputs`` mse ``1/2 sum (mu-y)^2`` or ce ``-sum y log_softmax(mu)``."""
    values = naive_forward(graph, params, x, nudge)
    total = 0.0
    for v in graph:
        kind = graph.nodes[v].get("loss")
        if kind == "mse":
            total += 0.5 * np.sum((values[v] - y[v]) ** 2)
        elif kind == "ce":
            total += -np.sum(y[v] * log_softmax(values[v], axis=1))
    return total


def fd_gradients(graph, params, x, y, loss=None):
    """Central finite differences of ``loss(graph, params, x, y)`` (default
    :func:`naive_loss`) for every parameter entry."""
    loss = naive_loss if loss is None else loss
    return fd_param_gradients(lambda p: loss(graph, p, x, y), params)


def fd_param_gradients(f, params, step=FD_STEP):
    """``d f(params) / d params``, by central differences, entry by entry."""
    out = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = dict(params), dict(params)
            plus[name], minus[name] = value.copy(), value.copy()
            plus[name][idx] += step
            minus[name][idx] -= step
            grad[idx] = (f(plus) - f(minus)) / (2 * step)
        out[name] = grad
    return out


def fd_vertex_vjp(graph, v, params, xs, e):
    """``d/dx_p sum(e * naive_vertex(x))`` for every parent ``p``, by central differences."""
    out = []
    for k, x in enumerate(xs):
        grad = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            shifted = []
            for sign in (1.0, -1.0):
                moved = list(xs)
                moved[k] = x.copy()
                moved[k][idx] += sign * FD_STEP
                shifted.append(np.sum(e * naive_vertex(graph, v, params, moved)))
            grad[idx] = (shifted[0] - shifted[1]) / (2 * FD_STEP)
        out.append(grad)
    return out


def relative_error(u, r):
    """``||u - r|| / ||r||``."""
    return float(np.linalg.norm(np.asarray(u) - np.asarray(r)) / np.linalg.norm(np.asarray(r)))


def overall_error(u, r):
    """Relative error of two parameter dicts, concatenated."""
    names = sorted(r)
    flat = [np.concatenate([np.ravel(d[n]) for n in names]) for d in (u, r)]
    return relative_error(*flat)


def random_case(graph, seed, batch=2, scale=2.0):
    """Parameters uniform in ``scale`` times PyTorch's init bound, inputs ``N(0, 1)``, targets
    ``N(0, 1)`` (mse) or one-hot (ce), all dicts by name / vertex."""
    rng = np.random.default_rng(seed)
    params = {
        name: rng.uniform(-scale * spec.init_bound, scale * spec.init_bound, size=spec.shape)
        for name, spec in param_specs(graph).items()
    }
    x = {v: rng.normal(size=(batch, graph.nodes[v]["size"])) for v in graph if graph.nodes[v]["op"] == "input"}
    y = {}
    for v in graph:
        kind, size = graph.nodes[v].get("loss"), graph.nodes[v]["size"]
        if kind == "mse":
            y[v] = rng.normal(size=(batch, size))
        elif kind == "ce":
            y[v] = np.eye(size)[rng.integers(0, size, size=batch)]
    return params, x, y


# --- graphs -----------------------------------------------------------------------------


def _done(g):
    validate_graph(g)
    return g


def cnn(act="tanh", pool="avg", convention="post", stride=1, padding=0, separate_act=False, loss="ce"):
    """``x (2,7,7) -> conv2d(3, k3) [-> activation] -> {avg,max}pool(k2) -> flatten -> dense(3)``."""
    g = nx.DiGraph(name="cnn")
    g.add_node("x", op="input", shape=(2, 7, 7))
    g.add_node("conv", op="conv2d", out_channels=3, kernel_size=3, stride=stride, padding=padding,
               activation="linear" if separate_act else act, convention=convention)
    g.add_edge("x", "conv")
    last = "conv"
    if separate_act:
        g.add_node("act", op="activation", activation=act)
        g.add_edge("conv", "act")
        last = "act"
    g.add_node("pool", op=f"{pool}pool", kernel_size=2)
    g.add_node("flat", op="flatten")
    g.add_node("out", op="dense", size=3, activation="linear", convention="post", loss=loss)
    g.add_edges_from([(last, "pool"), ("pool", "flat"), ("flat", "out")])
    return _done(g)


def deep_cnn(loss="ce"):
    """Two convolutions (post then pre; stride 2 and padding 1; bias-free second), an
    overlapping average pool, an activation vertex, a max pool, flatten, dense."""
    g = nx.DiGraph(name="deep-cnn")
    g.add_node("x", op="input", shape=(2, 8, 8))
    g.add_node("conv1", op="conv2d", out_channels=3, kernel_size=3, stride=2, padding=1, activation="tanh",
               convention="post")  # (3, 4, 4)
    g.add_node("avg", op="avgpool", kernel_size=2, stride=1)  # (3, 3, 3)
    g.add_node("act", op="activation", activation="sigmoid")
    g.add_node("conv2", op="conv2d", out_channels=2, kernel_size=(2, 1), activation="tanh", convention="pre",
               bias=False)  # (2, 2, 3)
    g.add_node("max", op="maxpool", kernel_size=(2, 2), stride=(1, 1))  # (2, 1, 2)
    g.add_node("flat", op="flatten")
    g.add_node("out", op="dense", size=3, activation="linear", convention="post", loss=loss)
    g.add_edges_from([("x", "conv1"), ("conv1", "avg"), ("avg", "act"), ("act", "conv2"), ("conv2", "max"),
                      ("max", "flat"), ("flat", "out")])
    return _done(g)


def rnn(steps=3, n_in=2, hidden=3, n_out=2, act="tanh", loss_every=False, loss="mse"):
    """Elman RNN unrolled: ``h_t = act(W_ih x_t + W_hh h_{t-1} + b_ih + b_hh)`` (``h_0 = 0``),
    readout ``y_t = W_out h_t + b_out`` at the last step or at every step (shared)."""
    g = nx.DiGraph(name="rnn")
    for t in range(1, steps + 1):
        g.add_node(f"x{t}", op="input", size=n_in)
        parents = [f"x{t}"] + ([f"h{t - 1}"] if t > 1 else [])
        weights = {f"x{t}": "rnn.weight_ih"}
        if t > 1:
            weights[f"h{t - 1}"] = "rnn.weight_hh"
        g.add_node(f"h{t}", op="dense", size=hidden, activation=act, convention="post", inputs=parents,
                   weights=weights, biases=["rnn.bias_ih", "rnn.bias_hh"])
        g.add_edges_from((p, f"h{t}") for p in parents)
        if loss_every or t == steps:
            g.add_node(f"y{t}", op="dense", size=n_out, activation="linear", convention="post", loss=loss,
                       weights={f"h{t}": "out.weight"}, biases=["out.bias"])
            g.add_edge(f"h{t}", f"y{t}")
    return _done(g)


_GATES = (("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid"))


def lstm_gates(steps=2, n_in=2, hidden=2, n_out=2, loss="mse"):
    """Gate-level LSTM: dense gates ``i, f, g, o`` reading rows ``r H ...`` of the shared
    ``lstm.*`` parameters, ``c_t = product(f, c_{t-1}, i, g)``, ``h_t = product(o, c_t)``
    with ``tanh`` on ``c_t``; readout from ``h_T``."""
    g = nx.DiGraph(name="lstm-gates")
    for t in range(1, steps + 1):
        g.add_node(f"x{t}", op="input", size=n_in)
        parents = [f"x{t}"] + ([f"h{t - 1}"] if t > 1 else [])
        for r, (gate, act) in enumerate(_GATES):
            if gate == "f" and t == 1:
                continue  # c_0 = 0: no forget gate at the first step
            weights = {f"x{t}": ("lstm.weight_ih", r * hidden)}
            if t > 1:
                weights[f"h{t - 1}"] = ("lstm.weight_hh", r * hidden)
            g.add_node(f"{gate}{t}", op="dense", size=hidden, activation=act, convention="post", inputs=parents,
                       weights=weights, biases=[("lstm.bias_ih", r * hidden), ("lstm.bias_hh", r * hidden)])
            g.add_edges_from((p, f"{gate}{t}") for p in parents)
        cell = [f"f{t}", f"c{t - 1}", f"i{t}", f"g{t}"] if t > 1 else [f"i{t}", f"g{t}"]
        g.add_node(f"c{t}", op="product", inputs=cell)
        g.add_edges_from((p, f"c{t}") for p in cell)
        g.add_node(f"h{t}", op="product", inputs=[f"o{t}", f"c{t}"], activations=("linear", "tanh"))
        g.add_edges_from([(f"o{t}", f"h{t}"), (f"c{t}", f"h{t}")])
    g.add_node("out", op="dense", size=n_out, activation="linear", convention="post", loss=loss,
               weights={f"h{steps}": "out.weight"}, biases=["out.bias"])
    g.add_edge(f"h{steps}", "out")
    return _done(g)


def lstm_cells(steps=3, n_in=2, hidden=2, n_out=2, loss="mse"):
    """Cell-level LSTM: a chain of ``lstm`` vertices sharing the ``lstm.*`` parameters,
    readout through ``split`` (the ``h`` part of the last state)."""
    g = nx.DiGraph(name="lstm-cells")
    for t in range(1, steps + 1):
        g.add_node(f"x{t}", op="input", size=n_in)
        parents = [f"x{t}"] + ([f"s{t - 1}"] if t > 1 else [])
        weights = {f"x{t}": "lstm.weight_ih"}
        if t > 1:
            weights[f"s{t - 1}"] = "lstm.weight_hh"
        g.add_node(f"s{t}", op="lstm", hidden=hidden, inputs=parents, weights=weights,
                   biases=["lstm.bias_ih", "lstm.bias_hh"])
        g.add_edges_from((p, f"s{t}") for p in parents)
    g.add_node("h", op="split", start=0, stop=hidden)
    g.add_node("out", op="dense", size=n_out, activation="linear", convention="post", loss=loss,
               weights={"h": "out.weight"}, biases=["out.bias"])
    g.add_edges_from([(f"s{steps}", "h"), ("h", "out")])
    return _done(g)


def block_cnn(act="relu", pool="max", loss="ce", convention="post", separate_act=True, act_after_pool=False):
    """Torch2PC's blocks: ``x (2,8,8) -> [conv(3, k3, pad 1) -> act -> pool(k2)] -> [conv(2, k2)
    -> act -> pool(k2, stride 1)] -> [flatten -> dense(3)]``, three chain vertices (the
    activation a member of its own, after the pooling with ``act_after_pool``, or, without
    ``separate_act``, the conv's)."""
    def conv(c, k, **kw):
        return dict(op="conv2d", out_channels=c, kernel_size=k, convention=convention,
                    activation="linear" if separate_act else act, **kw)

    def block(c, k, stride=None, **kw):
        acts = [dict(op="activation", activation=act)] if separate_act else []
        pooling = [dict(op=f"{pool}pool", kernel_size=2, **({} if stride is None else {"stride": stride}))]
        return [conv(c, k, **kw)] + (pooling + acts if act_after_pool else acts + pooling)

    g = nx.DiGraph(name="block-cnn")
    g.add_node("x", op="input", shape=(2, 8, 8))
    g.add_node("b1", op="chain", ops=block(3, 3, padding=1))  # (3, 4, 4)
    g.add_node("b2", op="chain", ops=block(2, 2, stride=1))  # (2, 3, 3) -> (2, 2, 2)
    g.add_node("b3", op="chain", ops=[dict(op="flatten"), dict(op="dense", size=3)], loss=loss)
    g.add_edges_from([("x", "b1"), ("b1", "b2"), ("b2", "b3")])
    return _done(g)


def unfused(graph):
    """The same function as a graph of chains, one vertex per op, reading the same
    parameters (the chains' ``<v>.<k>.weight`` names): an independent path through the
    plain ops."""
    g = nx.DiGraph(name=graph.name + "-unfused")
    last = {}
    for v in nx.topological_sort(graph):
        node = graph.nodes[v]
        parents = [last[p] for p in inputs_of(graph, v)]
        if node["op"] != "chain":
            keep = {"input": ("size", "shape"), "dense": ("size",)}.get(node["op"], ())
            attrs = {k: val for k, val in node.items() if k not in ("shape", "size") or k in keep}
            g.add_node(v, **attrs)
            g.add_edges_from((p, v) for p in parents)
            last[v] = v
            continue
        prev = parents
        renamed = {p: last[p] for p in inputs_of(graph, v)}
        for k, member in enumerate(node["ops"]):
            name = f"{v}.{k}"
            attrs = dict(member)
            if attrs["op"] in ("dense", "conv2d"):  # the chain's default names, or the op's own
                attrs.setdefault("activation", "linear")
                attrs.setdefault("convention", "post")
                given = attrs.get("weights") or {}
                attrs["weights"] = {renamed.get(p, p): ref for p, ref in given.items()} or {
                    p: f"{name}.weight" for p in prev}
                if "biases" not in attrs:
                    attrs["biases"] = [f"{name}.bias"] if attrs.get("bias", True) else []
                attrs.pop("bias", None)
            g.add_node(name, **attrs, inputs=list(prev))
            g.add_edges_from((p, name) for p in prev)
            prev = [name]
        g.nodes[prev[0]]["loss"] = node.get("loss")
        if node.get("loss") is None:
            del g.nodes[prev[0]]["loss"]
        last[v] = prev[0]
    return _done(g), last


def residual(skip=False):
    """``x -> h -> {a, b} -> s = sum(a, b) -> out``; with ``skip`` the block is
    ``s = sum(a, h)``, a skip connection one edge shorter than the branch through ``a``."""
    g = nx.DiGraph(name="residual")
    g.add_node("x", op="input", size=3)
    g.add_node("h", op="dense", size=4, activation="tanh", convention="post")
    g.add_node("a", op="dense", size=4, activation="tanh", convention="post")
    g.add_node("s", op="sum", activation="tanh")
    g.add_node("out", op="dense", size=2, activation="linear", convention="post", loss="mse")
    g.add_edges_from([("x", "h"), ("h", "a"), ("a", "s"), ("s", "out")])
    if skip:
        g.add_edge("h", "s")
    else:
        g.add_node("b", op="dense", size=4, activation="sigmoid", convention="post")
        g.add_edges_from([("h", "b"), ("b", "s")])
    return _done(g)


def every_op_dag():
    """A branching two-input, two-output DAG with multi-parent dense vertices, row
    references into one shared matrix, sum, product, activation, concat, split and
    pre-convention outputs sharing one weight."""
    g = nx.DiGraph(name="every-op")
    g.add_node("x", op="input", size=4)
    g.add_node("z", op="input", size=3)
    g.add_node("h1", op="dense", size=5, activation="tanh", convention="post", inputs=["x", "z"],
               weights={"x": ("wx", 0), "z": "wz"}, biases=[("bx", 0), "b1"])
    g.add_node("h2", op="dense", size=5, activation="sigmoid", convention="post",
               weights={"x": ("wx", 5)}, biases=[("bx", 5)])
    g.add_node("s", op="sum", activation="tanh", inputs=["h1", "h2"])
    g.add_node("q", op="activation", activation="sigmoid")
    g.add_node("p", op="product", inputs=["h1", "s", "h2", "q"], activations=("tanh", "linear", "sigmoid", "linear"))
    g.add_node("c", op="concat", inputs=["p", "z", "s"])
    g.add_node("sp", op="split", start=2, stop=11)
    g.add_node("o1", op="dense", size=3, activation="tanh", convention="pre", loss="ce",
               weights={"sp": ("wo", 0)}, biases=["o1.bias"])
    g.add_node("o2", op="dense", size=2, activation="tanh", convention="pre", loss="mse",
               weights={"sp": ("wo", 3)}, bias=False)
    g.add_edges_from([("x", "h1"), ("z", "h1"), ("x", "h2"), ("h1", "s"), ("h2", "s"), ("h1", "q"), ("h1", "p"),
                      ("s", "p"), ("h2", "p"), ("q", "p"), ("p", "c"), ("z", "c"), ("s", "c"), ("c", "sp"),
                      ("sp", "o1"), ("sp", "o2")])
    return _done(g)


def sliced_dag(loss="mse"):
    """``x(6) -> h = tanh dense(5) -> {a reads h[1:4], b reads h[0:2] (pre, tanh)} -> sum -> out``."""
    g = nx.DiGraph(name="sliced")
    g.add_node("x", op="input", size=6)
    g.add_node("h", op="dense", size=5, activation="tanh", convention="post")
    g.add_node("a", op="dense", size=3, activation="sigmoid", convention="post")
    g.add_node("b", op="dense", size=3, activation="linear", convention="post", inputs=["h", "x"])
    g.add_node("s", op="sum")
    g.add_node("out", op="dense", size=2, activation="linear", convention="post", loss=loss)
    g.add_edge("x", "h")
    g.add_edge("h", "a", slice=(1, 4))
    g.add_edge("h", "b", slice=(0, 2))
    g.add_edge("x", "b", slice=(3, 6))
    g.add_edges_from([("a", "s"), ("b", "s"), ("s", "out")])
    return _done(g)
