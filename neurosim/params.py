"""Parameters in and out: a dict of numpy arrays in PyTorch's layouts.

Names are ``"<vertex>.weight"`` (dense: ``(out, in)``) and ``"<vertex>.bias"``
(``(out,)``), so a PyTorch ``state_dict`` whose keys are renamed to the vertices of a
neurosim graph can be loaded directly, and neurosim's weights can be copied back.
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


def from_sequential(graph: nx.DiGraph, state_dict: Mapping[str, object], dtype: type = np.float64) -> Params:
    """Parameters from the ``state_dict`` of a PyTorch ``nn.Sequential`` of ``Linear`` layers.

    The k-th ``Linear`` (keys ``"<i>.weight"``/``"<i>.bias"``, in the state dict's order)
    becomes the k-th dense vertex of ``graph`` in topological order. Layouts are the same
    (``(out, in)`` and ``(out,)``), so values are copied as they are. Tensors are
    converted with ``numpy.asarray`` (call ``.detach().cpu()`` on GPU tensors first).
    """
    from neurosim.graph.validate import validate_graph

    validate_graph(graph)
    if not isinstance(state_dict, Mapping):
        raise ParameterError(f"a state dict must be a dict of arrays, got {type(state_dict).__name__}")
    state_dict = {str(k): v for k, v in state_dict.items()}
    dense = [v for v in nx.topological_sort(graph) if graph.nodes[v]["op"] == "dense"]
    prefixes = []
    for key in state_dict:
        prefix, _, leaf = str(key).rpartition(".")
        if leaf == "weight" and prefix not in prefixes:
            prefixes.append(prefix)
    if len(prefixes) != len(dense):
        raise ParameterError(
            f"the state dict has {len(prefixes)} weight matrices {prefixes} but the graph has "
            f"{len(dense)} dense vertices {dense}"
        )
    params: Params = {}
    for prefix, vertex in zip(prefixes, dense):
        params[f"{vertex}.weight"] = state_dict[f"{prefix}.weight"]
        if f"{prefix}.bias" in state_dict:
            params[f"{vertex}.bias"] = state_dict[f"{prefix}.bias"]
    return check_params(graph, params, dtype)


def to_sequential(graph: nx.DiGraph, params: Mapping[str, np.ndarray], indices: list[int]) -> dict[str, np.ndarray]:
    """The inverse of :func:`from_sequential`: keys ``"<indices[k]>.weight"`` for the k-th dense vertex.

    ``indices`` are the positions of the ``Linear`` modules in the ``nn.Sequential``
    (for ``Sequential(Linear, Sigmoid, Linear)`` they are ``[0, 2]``).
    """
    dense = [v for v in nx.topological_sort(graph) if graph.nodes[v]["op"] == "dense"]
    if len(indices) != len(dense):
        raise ParameterError(f"{len(indices)} module indices given for {len(dense)} dense vertices {dense}")
    out: dict[str, np.ndarray] = {}
    for index, vertex in zip(indices, dense):
        for leaf in ("weight", "bias"):
            if f"{vertex}.{leaf}" in params:
                out[f"{index}.{leaf}"] = np.array(params[f"{vertex}.{leaf}"], copy=True)
    return out
