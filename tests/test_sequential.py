"""PyTorch ``nn.Sequential`` layouts with nested blocks, in and out, without torch.

The state dicts here are written by hand with the keys and shapes PyTorch gives
``Sequential(Sequential(Conv2d, ReLU, MaxPool2d), Sequential(Conv2d, Tanh, AvgPool2d),
Sequential(Flatten, Linear))``; the expected outputs come from a forward pass of that
module written below with numpy loops, independent of neurosim.
"""

from __future__ import annotations

import numpy as np
import pytest

import graph_cases as gc
from neurosim.errors import GraphError, ParameterError
from neurosim.graph import cnn, exact_steps, sequential, trigger_steps
from neurosim.params import from_sequential, sequential_modules, to_sequential
from neurosim.reference import gradients
from neurosim.reference.backprop import predict

LAYERS = [
    [dict(op="conv2d", out_channels=2, kernel_size=3), dict(op="activation", activation="relu"),
     dict(op="maxpool", kernel_size=2)],
    [dict(op="conv2d", out_channels=3, kernel_size=2, padding=1), dict(op="activation", activation="tanh"),
     dict(op="avgpool", kernel_size=2)],
    [dict(op="flatten"), dict(op="dense", size=4)],
]


def _state_dict(rng):
    shapes = {"0.0.weight": (2, 1, 3, 3), "0.0.bias": (2,), "1.0.weight": (3, 2, 2, 2), "1.0.bias": (3,),
              "2.1.weight": (4, 12), "2.1.bias": (4,)}
    return {k: rng.uniform(-0.5, 0.5, size=s) for k, s in shapes.items()}


def _conv(x, w, b, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    _, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    out = np.zeros((x.shape[0], w.shape[0], h - kh + 1, wd - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.einsum("bcij,ocij->bo", x[:, :, i:i + kh, j:j + kw], w) + b
    return out


def _pool(x, how):
    b, c, h, w = x.shape
    windows = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2)
    return windows.max(axis=(3, 5)) if how == "max" else windows.mean(axis=(3, 5))


def _torch_like_forward(sd, x):
    a = _pool(np.maximum(_conv(x, sd["0.0.weight"], sd["0.0.bias"], 0), 0), "max")
    a = _pool(np.tanh(_conv(a, sd["1.0.weight"], sd["1.0.bias"], 1)), "avg")
    return a.reshape(len(x), -1) @ sd["2.1.weight"].T + sd["2.1.bias"]


def test_a_handwritten_state_dict_of_nested_blocks_loads_and_saves():
    rng = np.random.default_rng(0)
    graph = sequential(LAYERS, input_shape=(1, 8, 8), loss="ce")
    assert list(graph) == ["input", "0", "1", "2"]
    assert exact_steps(graph) == 3 and trigger_steps(graph) == {"2": 0, "1": 1, "0": 2}
    sd = _state_dict(rng)
    params = from_sequential(graph, sd)
    assert sorted(params) == sorted(sd)  # the graph's names are the torch keys
    x = rng.normal(size=(3, 64))
    np.testing.assert_allclose(predict(graph, params, x), _torch_like_forward(sd, x.reshape(3, 1, 8, 8)),
                               rtol=1e-13, atol=1e-13)
    back = to_sequential(graph, params)
    assert sorted(back) == sorted(sd) and all(np.array_equal(back[k], sd[k]) for k in sd)


def test_block_cnn_builder_reads_the_same_state_dict():
    """cnn(granularity="block") names its parameters conv<k>/fc<m>: from_sequential maps the
    torch keys onto them in order, to_sequential maps them back."""
    rng = np.random.default_rng(1)
    graph = cnn((1, 8, 8), channels=(2,), kernel_size=3, pool="max", pool_size=2, activation="relu", n_out=4,
                granularity="block")
    sd = {"0.0.weight": rng.normal(size=(2, 1, 3, 3)), "0.0.bias": rng.normal(size=2),
          "1.1.weight": rng.normal(size=(4, 18)), "1.1.bias": rng.normal(size=4)}
    params = from_sequential(graph, sd)
    assert sorted(params) == ["conv1.bias", "conv1.weight", "fc1.bias", "fc1.weight"]
    assert [w for w, _ in sequential_modules(graph)] == ["conv1.weight", "fc1.weight"]
    x = rng.normal(size=(2, 64))
    a = _pool(np.maximum(_conv(x.reshape(2, 1, 8, 8), sd["0.0.weight"], sd["0.0.bias"], 0), 0), "max")
    np.testing.assert_allclose(predict(graph, params, x), a.reshape(2, -1) @ sd["1.1.weight"].T + sd["1.1.bias"],
                               rtol=1e-13, atol=1e-13)
    back = to_sequential(graph, params, ["0.0", "1.1"])
    assert all(np.array_equal(back[k], sd[k]) for k in sd)


def test_sequential_gradients_match_finite_differences():
    graph = sequential(LAYERS, input_shape=(1, 6, 6), loss="mse")
    params, x, y = gc.random_case(graph, seed=3, batch=2)
    assert gc.overall_error(gradients(graph, params, x, y), gc.fd_gradients(graph, params, x, y)) <= 1e-7


def test_sequential_errors_are_named():
    with pytest.raises(GraphError, match="layers\\[1\\]"):
        sequential([dict(op="dense", size=3), 5], input_shape=4)
    with pytest.raises(ParameterError, match="weight matrices"):
        from_sequential(sequential(LAYERS, input_shape=(1, 8, 8)), {"0.weight": np.zeros((2, 2))})
