"""Model graphs read from PyTorch modules (torch is optional: imported only when called).

:func:`from_torch` describes an ``nn.Sequential`` as the ``layers`` of
:func:`neurosim.graph.builders.sequential`: each element becomes one vertex, a nested
``nn.Sequential`` one ``chain`` vertex (Torch2PC's granularity, Rosenbaum 2022), so
``Sequential(Sequential(Conv2d, ReLU, MaxPool2d), Sequential(Flatten, Linear))`` has
two predictive-coding layers, as in Torch2PC. The parameter names are the module's
``state_dict`` keys (:func:`neurosim.params.from_sequential`).

Modules understood: ``Linear``, ``Conv2d`` (zero padding given as ints, no dilation,
one group), ``ReLU``, ``Tanh``, ``Sigmoid``, ``Identity``, ``MaxPool2d`` and
``AvgPool2d`` (no padding, dilation, ceil mode or divisor override), ``Flatten`` (from dimension 1 to
the end). Anything else raises a :class:`~neurosim.errors.GraphError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from neurosim.errors import GraphError

_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Identity": "linear"}


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _op(module: Any, where: str) -> dict:
    """The op dict of one torch module."""
    kind = type(module).__name__
    if kind == "Linear":
        return {"op": "dense", "size": module.out_features, "bias": module.bias is not None}
    if kind == "Conv2d":
        if isinstance(module.padding, str) or _pair(module.dilation) not in (1, (1, 1)) or module.groups != 1 \
                or module.padding_mode != "zeros":
            raise GraphError(f"{where}: Conv2d with padding={module.padding!r}, dilation={module.dilation}, "
                             f"groups={module.groups}, padding_mode={module.padding_mode!r} is not supported; "
                             "neurosim's conv2d has int zero padding, dilation 1 and one group")
        return {"op": "conv2d", "out_channels": module.out_channels, "kernel_size": _pair(module.kernel_size),
                "stride": _pair(module.stride), "padding": _pair(module.padding), "bias": module.bias is not None}
    if kind in _ACTIVATIONS:
        return {"op": "activation", "activation": _ACTIVATIONS[kind]}
    if kind in ("MaxPool2d", "AvgPool2d"):
        dilation = _pair(getattr(module, "dilation", 1))
        if _pair(module.padding) not in (0, (0, 0)) or module.ceil_mode or dilation not in (1, (1, 1)) \
                or getattr(module, "divisor_override", None) is not None:
            raise GraphError(f"{where}: {kind} with padding, dilation, ceil_mode or divisor_override is not supported")
        stride = module.stride if module.stride is not None else module.kernel_size
        return {"op": "maxpool" if kind == "MaxPool2d" else "avgpool", "kernel_size": _pair(module.kernel_size),
                "stride": _pair(stride)}
    if kind == "Flatten":
        if module.start_dim != 1 or module.end_dim != -1:
            raise GraphError(f"{where}: Flatten(start_dim={module.start_dim}, end_dim={module.end_dim}); "
                             "neurosim flattens a sample, Flatten(1, -1)")
        return {"op": "flatten"}
    raise GraphError(f"{where}: torch module {kind} has no neurosim op; see neurosim.graph.pytorch for those that do")


def torch_layers(model: Any) -> list:
    """The ``layers`` of :func:`~neurosim.graph.builders.sequential` for an ``nn.Sequential``."""
    if type(model).__name__ != "Sequential":
        raise GraphError(f"from_torch reads an nn.Sequential, got {type(model).__name__}")
    layers: list = []
    for i, child in enumerate(model.children()):
        if type(child).__name__ == "Sequential":
            block = []
            for j, inner in enumerate(child.children()):
                if type(inner).__name__ == "Sequential":
                    raise GraphError(f"module {i}.{j} is a Sequential inside a block; blocks are one level deep")
                block.append(_op(inner, f"module {i}.{j}"))
            layers.append(block)
        else:
            layers.append(_op(child, f"module {i}"))
    return layers


def from_torch(model: Any, input_shape: int | Sequence[int], loss: str = "mse") -> nx.DiGraph:
    """The neurosim graph of the ``nn.Sequential`` ``model`` (one vertex per element, a
    chain per nested block), for inputs of shape ``input_shape`` (without the batch)."""
    from neurosim.graph.builders import sequential

    return sequential(torch_layers(model), input_shape, loss=loss)
