"""The reference on an array namespace ``xp``: the path CuPy takes, run on the CPU.

Every rule runs on MLP, CNN, RNN and LSTM graphs (and graphs with every other op) three ways: ``xp`` left out (numpy),
``xp=numpy`` and ``xp=strict`` (:mod:`strict_xp`, numpy's arithmetic behind arrays that
numpy refuses to touch, so a ``numpy.exp`` left on an ``xp`` array or a host array mixed
into the computation raises). The three must agree bit for bit: the same functions run in
the same order. The strict namespace is itself tested: it must catch each kind of leak,
including one injected into the reference. The last tests run on CuPy and a real GPU and
are skipped without one.
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_cases import (
    block_cnn,
    cnn,
    deep_cnn,
    every_op_dag,
    lstm_cells,
    lstm_gates,
    random_case,
    rnn,
    sliced_dag,
)
from strict_xp import LeakError, StrictArray, strict

import neurosim.activations
import neurosim.reference.ops
from neurosim.arrays import namespace, to_numpy
from neurosim.errors import ConfigError
from neurosim.graph import mlp
from neurosim.reference import forward, gradients, loss, predict, run_rule, sgd_step
from neurosim.rules import BP, IL, IPC, ZIL, FaZIL, FixedPred, StrictPC

GRAPHS = {
    "mlp-post": lambda: mlp([4, 5, 3, 2], activation="tanh"),
    "mlp-pre-relu-ce": lambda: mlp([4, 5, 3, 3], activation="relu", convention="pre", loss="ce"),
    "cnn-max": lambda: cnn(act="relu", pool="max", padding=1),
    "cnn-deep": deep_cnn,
    "rnn": rnn,
    "lstm-cells": lstm_cells,
    "lstm-gates": lstm_gates,
    # the other ops: chains, concat, split, sum, product, activation, sliced edges
    "block-cnn": block_cnn,
    "every-op": every_op_dag,
    "sliced": sliced_dag,
}
# Z-IL and Fa-Z-IL need one path length per parametrized vertex; these graphs have two
SINGLE_LEVEL = {name for name in GRAPHS if name not in ("lstm-gates", "every-op")}
RULES = {
    "BP": BP(alpha=0.1),
    "IL": IL(alpha=0.1, gamma=0.2, t_c=5),
    "ZIL": ZIL(alpha=0.1),
    "ZIL-noise-gamma": ZIL(alpha=0.1, gamma=0.5, init_noise=0.3, noise_seed=4),
    "FaZIL-song": FaZIL(alpha=0.1),
    "FaZIL-feedback": FaZIL(alpha=0.1, detector="feedback"),
    "FaZIL-immediate": FaZIL(alpha=0.1, t_d=2, ticks=6, shared_updates="immediate"),
    "StrictPC": StrictPC(alpha=0.1, eta=0.2, n=4),
    "FixedPred": FixedPred(alpha=0.1),
    "IPC": IPC(alpha=0.1, gamma=0.2, ticks=4),
}
CASES = [
    (g, r) for g in GRAPHS for r in RULES if g in SINGLE_LEVEL or not r.startswith(("ZIL", "FaZIL"))
]


def _case(graph_name, dtype=np.float64, seed=7):
    graph = GRAPHS[graph_name]()
    params, x, y = random_case(graph, seed, batch=3)
    return graph, {n: p.astype(dtype) for n, p in params.items()}, x, y


def _host(tree, xp):
    """Every xp array in a result field as numpy (dicts of arrays, or an array)."""
    if isinstance(tree, dict):
        return {k: to_numpy(v, xp) for k, v in tree.items()}
    return to_numpy(tree, xp)


def _assert_bitwise(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert type(a) is np.ndarray and type(b) is np.ndarray, what
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert a.tobytes() == b.tobytes(), f"{what}: values differ (max {np.max(np.abs(a - b))})"


def _assert_same_result(ref, other, xp, what):
    for field in ("params", "updates", "eps_at_trigger"):
        got = _host(getattr(other, field), xp)
        want = getattr(ref, field)
        assert got.keys() == want.keys(), f"{what}.{field}"
        for name in want:
            _assert_bitwise(want[name], got[name], f"{what}.{field}[{name}]")
    for field in ("energy", "firings", "late_firings"):
        _assert_bitwise(getattr(ref, field), getattr(other, field), f"{what}.{field}")
    assert (ref.steps, ref.diverged, ref.diverged_at, ref.vertices) == (
        other.steps, other.diverged, other.diverged_at, other.vertices)


# --- the strict namespace catches leaks -------------------------------------------------


def test_strict_arrays_refuse_numpy_functions_and_host_arrays():
    a = strict.asarray(np.array([[0.5, -1.0], [2.0, 3.0]]))
    for leak in (
        lambda: np.exp(a),  # a ufunc
        lambda: np.sum(a),  # an array function
        lambda: np.concatenate([a, a]),
        lambda: np.asarray(a),  # implicit conversion
        lambda: np.array(a),
        lambda: a + np.ones(2),  # a host array in the arithmetic, either side
        lambda: np.ones(2) * a,
        lambda: strict.exp(np.ones(2)),  # a host array into the namespace
        lambda: strict.where(a > 0, np.ones((2, 2)), 0.0),
        lambda: a.__setitem__((0, 0), np.ones(1)),
        lambda: strict.random,
    ):
        with pytest.raises((LeakError, AttributeError)):
            leak()


def test_strict_arrays_compute_what_numpy_computes_bit_for_bit():
    host = np.random.default_rng(0).normal(size=(3, 4))
    a = strict.asarray(host)
    assert type(a) is StrictArray and type(strict.exp(a)) is StrictArray
    _assert_bitwise(strict.asnumpy(1.0 / (1.0 + strict.exp(-a))), 1.0 / (1.0 + np.exp(-host)), "sigmoid")
    _assert_bitwise(strict.asnumpy(a.T @ a), host.T @ host, "matmul")
    _assert_bitwise(strict.asnumpy(strict.einsum("ij,ik->jk", a, a)), np.einsum("ij,ik->jk", host, host), "einsum")
    total = a.sum()  # a 0-d array, as CuPy's reductions give, not a numpy scalar
    assert type(total) is StrictArray and total.shape == () and float(total) == float(host.sum())
    b = strict.zeros((3, 4))
    b[:, 1:3] += a[:, 1:3] * np.float64(2.0)  # numpy scalars mix, as with CuPy
    expected = np.zeros((3, 4))
    expected[:, 1:3] += host[:, 1:3] * 2.0
    _assert_bitwise(strict.asnumpy(b), expected, "in-place on a view")


def test_a_numpy_call_left_in_the_reference_is_caught(monkeypatch):
    """The mutation the strict namespace exists for: an activation computed with numpy."""
    graph, params, x, y = _case("mlp-post")
    run_rule(graph, params, x, y, BP(), xp=strict)  # clean: runs

    def leaky_apply(name, a, xp=None):
        return np.tanh(a) if name == "tanh" else neurosim.activations.apply(name, a, xp)

    monkeypatch.setattr(neurosim.reference.ops, "apply", leaky_apply)
    with pytest.raises(LeakError, match="numpy.tanh"):
        run_rule(graph, params, x, y, BP(), xp=strict)
    # numpy arrays pass through numpy calls silently: only the strict path sees the leak
    run_rule(graph, params, x, y, BP(), xp=np)


def test_a_host_array_mixed_into_the_reference_is_caught(monkeypatch):
    graph, params, x, y = _case("cnn-max")
    original = neurosim.reference.ops.derivative

    def host_derivative(name, a, xp=None):  # a result on the host, as a forgotten asnumpy would give
        return to_numpy(original(name, a, xp), xp)

    monkeypatch.setattr(neurosim.reference.ops, "derivative", host_derivative)
    with pytest.raises(LeakError, match="plain numpy array"):
        run_rule(graph, params, x, y, FixedPred(), xp=strict)


# --- every rule, three ways, bit for bit ------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("graph_name, rule_name", CASES)
def test_every_rule_is_bitwise_the_same_on_numpy_and_the_strict_namespace(graph_name, rule_name, dtype):
    graph, params, x, y = _case(graph_name, dtype)
    rule = RULES[rule_name]
    ref = run_rule(graph, params, x, y, rule)
    assert not ref.diverged
    assert ref.params[next(iter(ref.params))].dtype == dtype
    if rule_name.startswith("FaZIL"):
        assert len(ref.firings) > 0  # the gate and its host copy are exercised
    _assert_same_result(ref, run_rule(graph, params, x, y, rule, xp=np), np, "xp=numpy")
    _assert_same_result(ref, run_rule(graph, params, x, y, rule, xp=strict), strict, "xp=strict")


DIVERGING = {  # the divergence paths of the module docstring of neurosim.reference.rules
    "energy-ratio": (np.float64, 1.0, StrictPC(alpha=0.1, eta=1.0, n=100)),
    "non-finite-errors": (np.float32, 1.0, StrictPC(alpha=0.1, eta=1.0, n=1000, max_energy_ratio=1e300)),
    "non-finite-update": (np.float32, 1e3, StrictPC(alpha=0.1, eta=1e38, n=1)),
    "zil-errors": (np.float64, 1.0, ZIL(alpha=0.1, gamma=1e200, max_energy_ratio=1e300)),
    "zil-update": (np.float64, 1.0, ZIL(alpha=1e308)),
    "fazil-update": (np.float64, 1.0, FaZIL(alpha=1e308)),
}


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_divergence_is_the_same_on_the_strict_namespace(case):
    dtype, y_scale, rule = DIVERGING[case]
    graph = mlp([4, 7, 7, 2], activation="linear")
    params, x, y = random_case(graph, 0)
    params = {n: p.astype(dtype) for n, p in params.items()}
    y = {v: y_scale * t for v, t in y.items()}
    ref = run_rule(graph, params, x, y, rule)
    assert ref.diverged
    _assert_same_result(ref, run_rule(graph, params, x, y, rule, xp=strict), strict, case)


def test_data_already_in_the_namespace_are_taken_as_they_are():
    graph, params, x, y = _case("rnn")
    ref = run_rule(graph, params, x, y, ZIL(alpha=0.1))
    on_device = run_rule(
        graph,
        {n: strict.asarray(p) for n, p in params.items()},
        {v: strict.asarray(a) for v, a in x.items()},
        {v: strict.asarray(a) for v, a in y.items()},
        ZIL(alpha=0.1),
        xp=strict,
    )
    _assert_same_result(ref, on_device, strict, "xp inputs")


@pytest.mark.parametrize("graph_name", ["mlp-pre-relu-ce", "cnn-deep", "lstm-cells"])
def test_backprop_functions_are_bitwise_the_same_on_the_strict_namespace(graph_name):
    graph, params, x, y = _case(graph_name)
    for name, want in gradients(graph, params, x, y).items():
        _assert_bitwise(want, strict.asnumpy(gradients(graph, params, x, y, xp=strict)[name]), name)
    for name, want in sgd_step(graph, params, x, y, 0.1).items():
        _assert_bitwise(want, strict.asnumpy(sgd_step(graph, params, x, y, 0.1, xp=strict)[name]), name)
    on_strict = forward(graph, params, x, xp=strict)
    for v, state in forward(graph, params, x).items():
        for key, want in state.items():
            _assert_bitwise(want, strict.asnumpy(on_strict[v][key]), f"{v}.{key}")
    assert loss(graph, params, x, y) == loss(graph, params, x, y, xp=strict)
    _assert_bitwise(predict(graph, params, x), strict.asnumpy(predict(graph, params, x, xp=strict)), "predict")


@pytest.mark.parametrize("name", sorted(neurosim.activations.ACTIVATIONS))
def test_activations_take_the_namespace(name):
    a = np.linspace(-3.0, 3.0, 13).reshape(1, 13)
    for f in (neurosim.activations.apply, neurosim.activations.derivative):
        _assert_bitwise(f(name, a), strict.asnumpy(f(name, strict.asarray(a), strict)), f"{f.__name__}({name})")


def test_a_bad_namespace_is_a_config_error():
    graph, params, x, y = _case("mlp-post")
    for bad in ("cupy", object()):
        with pytest.raises(ConfigError, match="array module such as numpy or cupy"):
            run_rule(graph, params, x, y, BP(), xp=bad)
    assert namespace(None) is np and namespace(strict) is strict


# --- on a real GPU (skipped without CuPy and a device) -----------------------------------


@pytest.fixture(scope="module")
def cupy():
    cp = pytest.importorskip("cupy")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CuPy installed, no driver or no device
        pytest.skip(f"no CUDA device: {exc}")
    if count < 1:
        pytest.skip("no CUDA device")
    return cp


@pytest.mark.parametrize("graph_name, rule_name", CASES)
def test_every_rule_on_cupy_matches_numpy(cupy, graph_name, rule_name):
    """float64 on the GPU: within 1e-12 relative of the CPU (cuBLAS and the device's exp
    and tanh round differently); Fa-Z-IL's firings, decided by exact comparisons of
    errors that did or did not change, are the same."""
    graph, params, x, y = _case(graph_name)
    rule = RULES[rule_name]
    ref = run_rule(graph, params, x, y, rule)
    got = run_rule(graph, params, x, y, rule, xp=cupy)
    assert isinstance(got.params[next(iter(got.params))], cupy.ndarray)
    for name, want in ref.params.items():
        np.testing.assert_allclose(cupy.asnumpy(got.params[name]), want, rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(got.energy, ref.energy, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got.firings, ref.firings)
    assert (got.steps, got.diverged_at) == (ref.steps, ref.diverged_at)
