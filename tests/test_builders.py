"""The CNN, RNN and LSTM builders: vertices, shapes, PyTorch's parameter names and layouts,
Z-IL trigger steps, and clear errors for bad arguments.

The expected parameter shapes are hard-coded from PyTorch's documentation (torch is not
installed here): ``nn.Conv2d.weight`` ``(out_c, in_c, kh, kw)``, ``nn.Linear.weight``
``(out, in)``, ``nn.RNN`` ``weight_ih_l0`` ``(H, in)``, ``weight_hh_l0`` ``(H, H)``,
biases ``(H,)``; ``nn.LSTM`` the same with ``4H`` rows (gates ``i, f, g, o``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosim.errors import GraphError
from neurosim.graph import cnn, lstm, param_shapes, rnn, trigger_steps
from neurosim.graph.spec import bias_refs, inputs_of, weight_refs


# ---- CNN --------------------------------------------------------------------------------
def test_cnn_default_mnist_shapes_and_params() -> None:
    g = cnn()
    assert list(g.nodes) == ["input", "conv1", "pool1", "flatten", "fc1"]
    # 28 - 5 + 1 = 24, pooled by 2: 12; 4 * 12 * 12 = 576
    shapes = {v: g.nodes[v]["shape"] for v in g}
    assert shapes == {"input": (1, 28, 28), "conv1": (4, 24, 24), "pool1": (4, 12, 12),
                      "flatten": (576,), "fc1": (10,)}
    assert g.nodes["pool1"]["op"] == "maxpool" and g.nodes["fc1"]["loss"] == "ce"
    assert g.nodes["conv1"]["activation"] == "relu" and g.nodes["fc1"]["activation"] == "linear"
    assert param_shapes(g) == {"conv1.weight": (4, 1, 5, 5), "conv1.bias": (4,),
                               "fc1.weight": (10, 576), "fc1.bias": (10,)}
    assert trigger_steps(g) == {"fc1": 0, "flatten": 1, "pool1": 2, "conv1": 3}


def test_cnn_two_conv_layers_padding_stride_avgpool_hidden() -> None:
    g = cnn(input_shape=(3, 32, 32), channels=(6, 16), kernel_size=5, stride=1, padding=2,
            pool="avg", pool_size=2, activation="tanh", hidden=(120, 84), n_out=10, loss="mse")
    # (32 + 4 - 5) + 1 = 32 -> pool 16 -> conv 16 -> pool 8; 16 * 8 * 8 = 1024
    assert g.nodes["conv1"]["shape"] == (6, 32, 32) and g.nodes["pool1"]["shape"] == (6, 16, 16)
    assert g.nodes["conv2"]["shape"] == (16, 16, 16) and g.nodes["pool2"]["shape"] == (16, 8, 8)
    assert g.nodes["flatten"]["size"] == 1024 and g.nodes["pool2"]["op"] == "avgpool"
    assert param_shapes(g) == {
        "conv1.weight": (6, 3, 5, 5), "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
        "fc1.weight": (120, 1024), "fc1.bias": (120,),
        "fc2.weight": (84, 120), "fc2.bias": (84,),
        "fc3.weight": (10, 84), "fc3.bias": (10,),
    }
    assert g.nodes["fc3"]["loss"] == "mse" and g.nodes["fc2"]["activation"] == "tanh"
    steps = trigger_steps(g)
    assert [steps[v] for v in ["fc3", "fc2", "fc1", "flatten", "pool2", "conv2", "pool1", "conv1"]] == list(range(8))


def test_cnn_stride_no_pool_no_bias_pre_convention() -> None:
    g = cnn(input_shape=(1, 28, 28), channels=(2,), kernel_size=(4, 3), stride=2, pool=None,
            convention="pre", bias=False, activation="sigmoid")
    # (28 - 4) // 2 + 1 = 13, (28 - 3) // 2 + 1 = 13
    assert list(g.nodes) == ["input", "conv1", "flatten", "fc1"]
    assert g.nodes["conv1"]["shape"] == (2, 13, 13)
    assert param_shapes(g) == {"conv1.weight": (2, 1, 4, 3), "fc1.weight": (10, 338)}
    # pre: every vertex applies the activation to its input, the output is linear
    assert {g.nodes[v]["convention"] for v in ("conv1", "fc1")} == {"pre"}
    assert g.nodes["fc1"]["activation"] == "sigmoid"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(input_shape=(28, 28)), ["input_shape", "(channels, height, width)"]),
        (dict(channels=()), ["channels is empty", "mlp"]),
        (dict(channels=(4, 0)), ["channels", ">= 1", "0"]),
        (dict(pool="median"), ["pool", "'median'", "'max'", "'avg'"]),
        (dict(n_out=0), ["n_out"]),
        (dict(hidden="32"), ["hidden", "list of ints"]),
        (dict(convention="sideways"), ["convention", "'sideways'"]),
        (dict(convention="pre", output_activation="linear"), ["output_activation", "'post'"]),
        (dict(kernel_size=30), ["'conv1'", "does not fit"]),
        (dict(activation="swish"), ["'conv1'", "activation", "'swish'"]),
        (dict(loss="hinge"), ["'fc1'", "loss", "'hinge'"]),
    ],
)
def test_cnn_bad_arguments(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(GraphError) as err:
        cnn(**kwargs)
    for w in words:
        assert w in str(err.value)


# ---- RNN --------------------------------------------------------------------------------
RNN_SHAPES = {  # nn.RNN(57, 32) + nn.Linear(32, 18)
    "rnn.weight_ih_l0": (32, 57), "rnn.weight_hh_l0": (32, 32),
    "rnn.bias_ih_l0": (32,), "rnn.bias_hh_l0": (32,),
    "fc.weight": (18, 32), "fc.bias": (18,),
}


def test_rnn_last_step_layout() -> None:
    g = rnn(n_in=57, hidden=32, n_out=18, steps=4)
    assert list(g.nodes) == ["x1", "x2", "x3", "x4", "h1", "h2", "h3", "h4", "out"]
    assert all(g.nodes[f"x{t}"]["op"] == "input" and g.nodes[f"x{t}"]["size"] == 57 for t in range(1, 5))
    assert inputs_of(g, "h1") == ["x1"] and inputs_of(g, "h3") == ["x3", "h2"]
    assert weight_refs(g, "h3")["h2"].name == "rnn.weight_hh_l0"
    assert [b.name for b in bias_refs(g, "h1")] == ["rnn.bias_ih_l0", "rnn.bias_hh_l0"]
    assert g.nodes["h2"]["activation"] == "tanh" and g.nodes["out"]["activation"] == "linear"
    assert g.nodes["out"]["loss"] == "ce" and list(g.predecessors("out")) == ["h4"]
    assert param_shapes(g) == RNN_SHAPES
    assert trigger_steps(g) == {"out": 0, "h4": 1, "h3": 2, "h2": 3, "h1": 4}


def test_rnn_every_step_shares_the_readout_and_has_no_trigger_steps() -> None:
    g = rnn(n_in=57, hidden=32, n_out=18, steps=3, loss_on="every", loss="mse", activation="relu")
    outs = [v for v in g if g.nodes[v].get("loss")]
    assert outs == ["out1", "out2", "out3"] and {g.nodes[v]["loss"] for v in outs} == {"mse"}
    assert all(list(g.predecessors(f"out{t}")) == [f"h{t}"] for t in (1, 2, 3))
    assert param_shapes(g) == RNN_SHAPES  # one fc shared by every output
    with pytest.raises(GraphError, match=r"'h\d' reaches the outputs along paths of lengths"):
        trigger_steps(g)


def test_rnn_one_step_has_no_recurrent_weight() -> None:
    g = rnn(n_in=5, hidden=3, n_out=2, steps=1)
    assert param_shapes(g) == {"rnn.weight_ih_l0": (3, 5), "rnn.bias_ih_l0": (3,), "rnn.bias_hh_l0": (3,),
                               "fc.weight": (2, 3), "fc.bias": (2,)}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(steps=0), ["steps", ">= 1", "0"]),
        (dict(hidden=2.5), ["hidden", "int"]),
        (dict(n_in=True), ["n_in"]),
        (dict(loss_on="first"), ["loss_on", "'first'", "'last'", "'every'"]),
        (dict(loss="hinge"), ["loss", "'hinge'", "'ce'"]),
        (dict(activation="swish"), ["'h1'", "'swish'"]),
    ],
)
def test_rnn_bad_arguments(kwargs: dict, words: list[str]) -> None:
    args = dict(n_in=4, hidden=3, n_out=2, steps=3) | kwargs
    with pytest.raises(GraphError) as err:
        rnn(**args)
    for w in words:
        assert w in str(err.value)


# ---- LSTM -------------------------------------------------------------------------------
def _lstm_shapes(n_in: int, hidden: int, n_out: int) -> dict[str, tuple[int, ...]]:
    """nn.LSTM(n_in, hidden) + nn.Linear(hidden, n_out), as PyTorch documents them."""
    return {
        "lstm.weight_ih_l0": (4 * hidden, n_in), "lstm.weight_hh_l0": (4 * hidden, hidden),
        "lstm.bias_ih_l0": (4 * hidden,), "lstm.bias_hh_l0": (4 * hidden,),
        "fc.weight": (n_out, hidden), "fc.bias": (n_out,),
    }


@pytest.mark.parametrize("loss_on", ["last", "every"])
@pytest.mark.parametrize("steps", [2, 5])
def test_lstm_granularities_have_identical_parameters(steps: int, loss_on: str) -> None:
    gate = lstm(n_in=65, hidden=32, n_out=65, steps=steps, granularity="gate", loss_on=loss_on)
    cell = lstm(n_in=65, hidden=32, n_out=65, steps=steps, granularity="cell", loss_on=loss_on)
    assert param_shapes(gate) == param_shapes(cell) == _lstm_shapes(65, 32, 65)


def test_lstm_gate_level_vertices() -> None:
    H = 6
    g = lstm(n_in=4, hidden=H, n_out=3, steps=3, granularity="gate")
    step2 = ["i2", "f2", "g2", "o2", "c2", "h2"]
    assert set(step2) <= set(g) and "f1" not in g  # c_0 = 0: no forget gate at step 1
    assert {v: g.nodes[v]["activation"] for v in step2[:4]} == {
        "i2": "sigmoid", "f2": "sigmoid", "g2": "tanh", "o2": "sigmoid"}
    for k, gate in enumerate("ifgo"):
        refs = weight_refs(g, f"{gate}3")
        assert inputs_of(g, f"{gate}3") == ["x3", "h2"]
        assert (refs["x3"].name, refs["x3"].row_offset) == ("lstm.weight_ih_l0", k * H)
        assert (refs["h2"].name, refs["h2"].row_offset) == ("lstm.weight_hh_l0", k * H)
        assert [(b.name, b.row_offset) for b in bias_refs(g, f"{gate}3")] == [
            ("lstm.bias_ih_l0", k * H), ("lstm.bias_hh_l0", k * H)]
    assert inputs_of(g, "c1") == ["i1", "g1"] and inputs_of(g, "c3") == ["f3", "c2", "i3", "g3"]
    assert inputs_of(g, "h3") == ["o3", "c3"] and tuple(g.nodes["h3"]["activations"]) == ("linear", "tanh")
    assert all(g.nodes[v]["size"] == H for v in step2)
    assert list(g.predecessors("out")) == ["h3"] and g.nodes["out"]["size"] == 3
    with pytest.raises(GraphError, match="reaches the outputs along paths of lengths"):
        trigger_steps(g)


def test_lstm_cell_level_vertices_and_trigger_steps() -> None:
    g = lstm(n_in=4, hidden=6, n_out=3, steps=3, granularity="cell")
    assert list(g.nodes) == ["x1", "x2", "x3", "s1", "s2", "s3", "h3", "out"]
    assert inputs_of(g, "s1") == ["x1"] and inputs_of(g, "s3") == ["x3", "s2"]
    assert all(g.nodes[f"s{t}"]["size"] == 12 for t in (1, 2, 3))  # [h; c]
    assert (g.nodes["h3"]["op"], g.nodes["h3"]["start"], g.nodes["h3"]["stop"], g.nodes["h3"]["size"]) == (
        "split", 0, 6, 6)
    assert trigger_steps(g) == {"out": 0, "h3": 1, "s3": 2, "s2": 3, "s1": 4}
    every = lstm(n_in=4, hidden=6, n_out=3, steps=3, granularity="cell", loss_on="every")
    assert [v for v in every if every.nodes[v].get("loss")] == ["out1", "out2", "out3"]
    with pytest.raises(GraphError, match="'s2' reaches the outputs"):
        trigger_steps(every)


def test_lstm_granularities_initialise_in_the_same_order() -> None:
    from neurosim.graph.spec import param_specs

    gate, cell = (lstm(n_in=65, hidden=32, n_out=65, steps=3, granularity=k) for k in ("gate", "cell"))
    assert list(param_specs(gate)) == list(param_specs(cell))  # init_params draws in this order


@pytest.mark.parametrize("builder", ["rnn", "gate"])
def test_recurrent_init_bounds_are_pytorchs(builder: str) -> None:
    from neurosim.graph.spec import param_specs

    g = rnn(57, 32, 18, 3) if builder == "rnn" else lstm(65, 32, 65, 3, granularity="gate")
    bounds = {name: spec.init_bound for name, spec in param_specs(g).items() if not name.startswith("fc.")}
    assert bounds == pytest.approx({name: 1 / np.sqrt(32) for name in bounds})


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(granularity="neuron"), ["granularity", "'neuron'", "'gate'", "'cell'"]),
        (dict(steps=-1), ["steps", ">= 1"]),
        (dict(loss_on="all"), ["loss_on", "'all'"]),
        (dict(n_out=0), ["n_out"]),
    ],
)
def test_lstm_bad_arguments(kwargs: dict, words: list[str]) -> None:
    args = dict(n_in=4, hidden=3, n_out=2, steps=3) | kwargs
    with pytest.raises(GraphError) as err:
        lstm(**args)
    for w in words:
        assert w in str(err.value)


# ---- the builders compute PyTorch's functions ----------------------------------------------
# A direct evaluation of the graph, following neurosim.graph.spec's definitions of the ops
# the recurrent builders use, checked against the equations of nn.RNN and nn.LSTM written
# out by hand below. It tests the wiring: parent order, row offsets, activations.
_ACT = {"linear": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
        "sigmoid": lambda z: 1 / (1 + np.exp(-z))}


def _evaluate(g, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import networkx as nx

    val = dict(inputs)
    for v in nx.topological_sort(g):
        a = g.nodes[v]
        parents = inputs_of(g, v)
        if a["op"] == "input":
            continue
        if a["op"] == "dense":
            n = a["size"]
            z = sum(params[r.name][r.row_offset:r.row_offset + n] @ val[p] for p, r in weight_refs(g, v).items())
            z = z + sum(params[b.name][b.row_offset:b.row_offset + n] for b in bias_refs(g, v))
            val[v] = _ACT[a["activation"]](z)
        elif a["op"] == "product":
            acts = a.get("activations") or ["linear"] * len(parents)
            f = [_ACT[act](val[p]) for act, p in zip(acts, parents)]
            val[v] = sum(f[k] * f[k + 1] for k in range(0, len(f), 2))
        elif a["op"] == "split":
            val[v] = val[parents[0]][a["start"]:a["stop"]]
        elif a["op"] == "lstm":
            H = a["hidden"]
            refs = weight_refs(g, v)
            gates = sum(params[b.name] for b in bias_refs(g, v)) + params[refs[parents[0]].name] @ val[parents[0]]
            h, c = np.zeros(H), np.zeros(H)
            if len(parents) > 1:
                h, c = val[parents[1]][:H], val[parents[1]][H:]
                gates = gates + params[refs[parents[1]].name] @ h
            i, f, gg, o = (gates[k * H:(k + 1) * H] for k in range(4))
            c = _ACT["sigmoid"](f) * c + _ACT["sigmoid"](i) * np.tanh(gg)
            val[v] = np.concatenate([_ACT["sigmoid"](o) * np.tanh(c), c])
        else:  # pragma: no cover - the builders under test use no other op
            raise AssertionError(a["op"])
    return val


def _random_params(g, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {name: rng.normal(size=shape) for name, shape in param_shapes(g).items()}


def test_rnn_computes_elman_recurrence() -> None:
    rng = np.random.default_rng(1)
    T, n_in, H = 4, 3, 5
    g = rnn(n_in=n_in, hidden=H, n_out=2, steps=T, loss_on="every")
    p = _random_params(g, rng)
    xs = {f"x{t}": rng.normal(size=n_in) for t in range(1, T + 1)}
    val = _evaluate(g, p, xs)
    h = np.zeros(H)
    for t in range(1, T + 1):
        h = np.tanh(p["rnn.weight_ih_l0"] @ xs[f"x{t}"] + p["rnn.bias_ih_l0"]
                    + p["rnn.weight_hh_l0"] @ h + p["rnn.bias_hh_l0"])
        np.testing.assert_allclose(val[f"out{t}"], p["fc.weight"] @ h + p["fc.bias"], rtol=1e-12)


@pytest.mark.parametrize("loss_on", ["last", "every"])
def test_lstm_granularities_compute_torch_lstm(loss_on: str) -> None:
    rng = np.random.default_rng(2)
    T, n_in, H, n_out = 4, 3, 5, 2
    gate = lstm(n_in=n_in, hidden=H, n_out=n_out, steps=T, granularity="gate", loss_on=loss_on)
    cell = lstm(n_in=n_in, hidden=H, n_out=n_out, steps=T, granularity="cell", loss_on=loss_on)
    p = _random_params(gate, rng)
    xs = {f"x{t}": rng.normal(size=n_in) for t in range(1, T + 1)}
    by_gate, by_cell = _evaluate(gate, p, xs), _evaluate(cell, p, xs)
    sig = _ACT["sigmoid"]
    h, c, expected = np.zeros(H), np.zeros(H), {}
    for t in range(1, T + 1):  # torch.nn.LSTM's equations, gates stacked i, f, g, o
        z = (p["lstm.weight_ih_l0"] @ xs[f"x{t}"] + p["lstm.bias_ih_l0"]
             + p["lstm.weight_hh_l0"] @ h + p["lstm.bias_hh_l0"])
        i, f, gg, o = sig(z[:H]), sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sig(z[3 * H:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        expected[f"out{t}"] = p["fc.weight"] @ h + p["fc.bias"]
    outs = [f"out{t}" for t in range(1, T + 1)] if loss_on == "every" else ["out"]
    for out in outs:
        want = expected[out] if loss_on == "every" else expected[f"out{T}"]
        np.testing.assert_allclose(by_gate[out], want, rtol=1e-12)
        np.testing.assert_allclose(by_cell[out], want, rtol=1e-12)


# ---- the model files --------------------------------------------------------------------
MODELS = Path(__file__).resolve().parents[1] / "models"
BUILDER_MODELS = ["cnn_mnist.toml", "cnn_fashion_mnist.toml", "rnn_names.toml", "lstm_shakespeare.toml"]
# Input width and classes of each data set (shared/data/README.md, the names alphabet).
DATA_SIZES = {"mnist": (784, 10), "fashion-mnist": (784, 10), "names": (57, 18), "tinyshakespeare": (65, 65)}


@pytest.mark.parametrize("name", BUILDER_MODELS)
def test_builder_model_files(name: str) -> None:
    import math
    import tomllib

    import neurosim.graph
    from neurosim.rules import make_rule

    config = tomllib.loads((MODELS / name).read_text())
    args = dict(config["model"])
    g = getattr(neurosim.graph, args.pop("builder"))(**args)
    n_in, n_classes = DATA_SIZES[config["dataset"]]
    inputs = [v for v in g if g.nodes[v]["op"] == "input"]
    assert {math.prod(g.nodes[v]["shape"]) for v in inputs} == {n_in}
    assert len(inputs) == args.get("steps", 1)
    assert {g.nodes[v]["size"] for v in g if g.nodes[v].get("loss")} == {n_classes}
    rule = make_rule(config["rule"], alpha=config["lr"])
    if rule.name in ("zil", "fazil"):
        trigger_steps(g)  # raises where Z-IL is not defined
    for key in ("epochs", "batch", "seed"):
        assert isinstance(config[key], int)
