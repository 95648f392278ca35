"""Parameters in and out: a dict of numpy arrays in PyTorch's layouts.

Names are ``"<vertex>.weight"`` (dense: ``(out, in)``) and ``"<vertex>.bias"``
(``(out,)``), so a PyTorch ``state_dict`` whose keys are renamed to the vertices of a
neurosim graph can be loaded directly, and neurosim's weights can be copied back;
:func:`from_sequential` and :func:`to_sequential` do the renaming for an
``nn.Sequential`` (nested blocks included), :func:`merge_bias_pairs` and
:func:`split_bias_pairs` convert recurrent bias pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np

from neurosim.errors import ConfigError, ParameterError
from neurosim.graph.spec import param_shapes, param_specs
from neurosim.validation import is_count, real_array

Params = dict[str, np.ndarray]


def init_params(graph: nx.DiGraph, seed: int = 0, dtype: type = np.float64) -> Params:
    """Random parameters like PyTorch's defaults.

    Every parameter is drawn from ``U(-bound, bound)`` with PyTorch's bound
    (:func:`neurosim.graph.spec.param_specs`: ``1/sqrt(fan_in)`` for dense and conv
    layers, ``1/sqrt(hidden)`` for an LSTM), in topological order of first use from
    one ``numpy.random.default_rng(seed)`` stream, so the same seed gives the same bits.
    """
    from neurosim.graph.validate import validate_graph

    validate_graph(graph)
    if not is_count(seed) or seed < 0:
        raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
    dtype = _float_dtype(dtype)
    rng = np.random.default_rng(seed)
    return {
        name: rng.uniform(-spec.init_bound, spec.init_bound, size=spec.shape).astype(dtype)
        for name, spec in param_specs(graph).items()
    }


def check_params(graph: nx.DiGraph, params: Mapping[str, np.ndarray], dtype: type = np.float64) -> Params:
    """Validated copies of ``params`` as contiguous ``dtype`` arrays.

    Raises :class:`ParameterError` naming the parameter that is missing, unexpected,
    of the wrong shape, or not finite.
    """
    from neurosim.graph.validate import validate_graph

    validate_graph(graph)
    dtype = _float_dtype(dtype)
    expected = param_shapes(graph)
    if not isinstance(params, Mapping):
        raise ParameterError(f"parameters must be a dict of arrays, got {type(params).__name__}")
    unknown = sorted(map(repr, set(params) - set(expected)))
    if unknown:
        raise ParameterError(
            f"unexpected parameters {unknown}; this graph has {sorted(expected)}"
        )
    out: Params = {}
    for name, shape in expected.items():
        if name not in params:
            vertex = name.rsplit(".", 1)[0]
            raise ParameterError(f"missing parameter {name!r} of vertex {vertex!r} (shape {shape})")
        arr = np.ascontiguousarray(real_array(params[name], f"parameter {name!r}", ParameterError, dtype))
        if arr.shape != shape:
            raise ParameterError(
                f"parameter {name!r} has shape {arr.shape}, expected {shape} (PyTorch layout: "
                "(out, in) for dense, (out_c, in_c, kh, kw) for conv2d, (4 hidden, in) for an LSTM)"
            )
        if not np.all(np.isfinite(arr)):
            raise ParameterError(f"parameter {name!r} contains NaN or infinite values")
        out[name] = arr.copy()
    return out


def _float_dtype(dtype: object) -> type:
    """``dtype`` as ``numpy.float64`` or ``numpy.float32``; ConfigError otherwise."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        dt = None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ConfigError(f"dtype must be float64 or float32, got {dtype!r}")
    return dt.type


def sequential_modules(graph: nx.DiGraph) -> list[tuple[str, list[str]]]:
    """The graph's layers as a PyTorch ``nn.Sequential`` holds them: for every dense or
    conv2d vertex, and the parametrized op of every chain, in topological order, the
    name of its weight and of its biases."""
    from neurosim.graph.chain import parametrized_member
    from neurosim.graph.spec import bias_refs, weight_refs

    out = []
    for v in nx.topological_sort(graph):
        op = graph.nodes[v]["op"]
        if op == "chain":
            found = parametrized_member(graph, v)
            if found is None:
                continue
            g, name = found
        elif op in ("dense", "conv2d"):
            g, name = graph, v
        else:
            continue
        refs = list(weight_refs(g, name).values())
        if len(refs) != 1 or refs[0].row_offset:
            raise ParameterError(f"vertex {v!r} reads several weights; an nn.Sequential layer reads one")
        out.append((refs[0].name, [b.name for b in bias_refs(g, name)]))
    return out


def from_sequential(graph: nx.DiGraph, state_dict: Mapping[str, object], dtype: type = np.float64) -> Params:
    """Parameters from the ``state_dict`` of a PyTorch ``nn.Sequential``.

    The modules with a ``weight`` (``Linear``, ``Conv2d``; inside a nested block too:
    keys ``"<i>.<j>.weight"``), in the state dict's order, become the graph's layers in
    topological order (:func:`sequential_modules`: dense and conv2d vertices, and the
    parametrized op of each chain). Layouts are the same (``(out, in)``,
    ``(out_c, in_c, kh, kw)``, ``(out,)``), so values are copied as they are; a graph
    from :func:`neurosim.graph.sequential` or :func:`neurosim.graph.pytorch.from_torch`
    has the state dict's own keys. Tensors are converted with ``numpy.asarray`` (call
    ``.detach().cpu()`` on GPU tensors first).
    """
    from neurosim.graph.validate import validate_graph

    validate_graph(graph)
    if not isinstance(state_dict, Mapping):
        raise ParameterError(f"a state dict must be a dict of arrays, got {type(state_dict).__name__}")
    state_dict = {str(k): v for k, v in state_dict.items()}
    modules = sequential_modules(graph)
    prefixes = []
    for key in state_dict:
        prefix, _, leaf = str(key).rpartition(".")
        if leaf == "weight" and prefix not in prefixes:
            prefixes.append(prefix)
    if len(prefixes) != len(modules):
        raise ParameterError(
            f"the state dict has {len(prefixes)} weight matrices {prefixes} but the graph has {len(modules)} layers "
            f"with weights {[w for w, _ in modules]}"
        )
    params: Params = {}
    for prefix, (weight, biases) in zip(prefixes, modules):
        params[weight] = state_dict[f"{prefix}.weight"]
        if f"{prefix}.bias" in state_dict:
            if len(biases) != 1:
                raise ParameterError(f"the state dict has {prefix}.bias but the graph's layer {weight!r} has "
                                     f"biases {biases}")
            params[biases[0]] = state_dict[f"{prefix}.bias"]
    return check_params(graph, params, dtype)


def to_sequential(
    graph: nx.DiGraph, params: Mapping[str, np.ndarray], indices: list[int | str] | None = None
) -> dict[str, np.ndarray]:
    """The inverse of :func:`from_sequential`: a ``state_dict`` (numpy arrays) with keys
    ``"<indices[k]>.weight"``/``".bias"`` for the k-th layer of :func:`sequential_modules`.

    ``indices`` are the positions of the modules in the ``nn.Sequential``: ints, or
    ``"i.j"`` for module ``j`` of block ``i`` (for ``Sequential(Linear, Sigmoid, Linear)``
    they are ``[0, 2]``). Omitted, each layer keeps its weight's own prefix (right for
    graphs from :func:`neurosim.graph.sequential`, whose names are the torch keys).
    """
    modules = sequential_modules(graph)
    if indices is None:
        indices = [weight.rpartition(".")[0] for weight, _ in modules]
    if len(indices) != len(modules):
        raise ParameterError(f"{len(indices)} module indices given for {len(modules)} layers "
                             f"{[w for w, _ in modules]}")
    out: dict[str, np.ndarray] = {}
    for index, (weight, biases) in zip(indices, modules):
        out[f"{index}.weight"] = np.array(params[weight], copy=True)
        for b in biases:
            out[f"{index}.bias"] = np.array(params[b], copy=True)
    return out


def merge_bias_pairs(params: Mapping[str, np.ndarray]) -> Params:
    """PyTorch's recurrent bias pairs as single biases: ``<m>.bias_ih<s>`` and ``<m>.bias_hh<s>``
    become ``<m>.bias<s> = bias_ih + bias_hh`` (the layout of ``bias="single"`` in
    :func:`neurosim.graph.rnn` and :func:`neurosim.graph.lstm`); other entries are copied."""
    out: Params = {}
    for name, value in params.items():
        if ".bias_hh" in name and name.replace(".bias_hh", ".bias_ih") in params:
            continue
        if ".bias_ih" in name and name.replace(".bias_ih", ".bias_hh") in params:
            partner = params[name.replace(".bias_ih", ".bias_hh")]
            out[name.replace(".bias_ih", ".bias")] = np.asarray(value) + np.asarray(partner)
        else:
            out[name] = np.array(value, copy=True)
    return out


def split_bias_pairs(params: Mapping[str, np.ndarray], names: list[str]) -> Params:
    """The inverse of :func:`merge_bias_pairs` for the single biases ``names`` (e.g.
    ``["rnn.bias_l0"]``): ``bias_ih = bias``, ``bias_hh = 0``, PyTorch's keys."""
    out: Params = {}
    for name, value in params.items():
        if name in names:
            prefix, _, leaf = name.rpartition(".")
            suffix = leaf[len("bias"):]
            out[f"{prefix}.bias_ih{suffix}"] = np.array(value, copy=True)
            out[f"{prefix}.bias_hh{suffix}"] = np.zeros_like(np.asarray(value))
        else:
            out[name] = np.array(value, copy=True)
    return out
