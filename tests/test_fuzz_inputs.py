"""Fuzz: malformed parameters, data sets and rule settings never crash neurosim.

Parameters and data go through every door a user has: ``check_params``,
``Simulator.set_params``, ``Simulator.predict`` and ``learn``, the vectorized reference
(``backprop.gradients``, ``sgd_step``, ``reference.rules.run_rule``), the IDX parser and
the data set loaders. Rules are built by ``make_rule`` and by their constructors with
junk options, and every accepted rule runs on a small network. Besides "only neurosim
errors": complex numbers, strings, bools as numbers and empty batches are never accepted,
and numpy scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graph_cases as gc
from fuzz_support import warm_engine  # noqa: F401 - the fixture, used below
from fuzz_support import counts, fuzz_settings, junk, reals, run_case, typo, valid_batch
from neurosim.data import load_dataset, load_names, load_shakespeare, one_hot, parse_idx, read_idx
from neurosim.engine import Simulator
from neurosim.graph import mlp
from neurosim.params import check_params, from_sequential, init_params
from neurosim.reference import backprop
from neurosim.reference.rules import run_rule
from neurosim.rules import BP, IL, IPC, RULES, ZIL, FaZIL, FixedPred, StrictPC, make_rule

GRAPHS = {"mlp": lambda: mlp([3, 4, 2]), "mlp-ce": lambda: mlp([3, 4, 3], loss="ce", convention="pre"),
          "cnn": gc.cnn, "every-op": gc.every_op_dag}
OPTION_NAMES = sorted({"alpha", "gamma", "t_c", "t_d", "ticks", "eta", "n", "detector", "shared_updates",
                       "update_step", "init_noise", "noise_seed", "max_energy_ratio"})

pytestmark = pytest.mark.usefixtures("warm_engine")


@functools.lru_cache(maxsize=None)
def _setup(name: str) -> tuple:
    """A graph, its parameters, a simulator on it and a valid batch (built once per name)."""
    g = GRAPHS[name]()
    params = init_params(g, seed=0)
    sim = Simulator(g, params)
    x, y = valid_batch(g, sim, hot=1)
    return g, params, sim, x, y


def _one(batch: dict) -> object:
    """A single-vertex batch as the plain array a user passes."""
    return next(iter(batch.values())) if len(batch) == 1 else batch


def _bad_array(arr: np.ndarray, data: st.DataObject) -> object:
    """``arr`` spoiled in one way (or left valid, in another valid form)."""
    how = data.draw(st.sampled_from(["complex", "str", "bool", "object", "nan", "inf", "shape", "transpose",
                                     "empty", "ragged", "scalar", "none", "junk", "float32", "int", "list",
                                     "np-scalar-list", "3d", "1d"]))
    if how == "complex":
        return arr + 1j
    if how == "str":
        return arr.astype(str)
    if how == "bool":
        return arr > 0.5
    if how == "object":
        return arr.astype(object)
    if how in ("nan", "inf"):
        out = np.array(arr, dtype=float)
        out.flat[data.draw(st.integers(0, out.size - 1))] = np.nan if how == "nan" else -np.inf
        return out
    if how == "shape":
        return np.ones(tuple(s + data.draw(st.integers(-1, 2)) for s in arr.shape))
    if how == "transpose":
        return arr.T
    if how == "empty":
        return np.zeros((0,) + arr.shape[1:])
    if how == "ragged":
        return [list(row) for row in arr.reshape(arr.shape[0], -1)] + [[1.0]]
    if how == "scalar":
        return data.draw(st.one_of(reals, counts))
    if how == "none":
        return None
    if how == "junk":
        return data.draw(junk)
    if how == "float32":
        return arr.astype(np.float32)
    if how == "int":
        return (arr > 0.5).astype(np.int64)
    if how == "list":
        return arr.tolist()
    if how == "np-scalar-list":
        return [[np.float32(v) for v in row] for row in arr.reshape(arr.shape[0], -1)]
    if how == "3d":
        return arr[None]
    return arr.ravel()


# ---- parameters -------------------------------------------------------------------------


@fuzz_settings(150)
@given(name=st.sampled_from(sorted(GRAPHS)), data=st.data())
def test_fuzz_parameters(name: str, data: st.DataObject) -> None:
    g, params, sim, x, y = _setup(name)
    bad: object = dict(params)
    how = data.draw(st.sampled_from(["value", "value", "value", "drop", "extra", "container"]))
    key = data.draw(st.sampled_from(sorted(params)))
    if how == "value":
        bad[key] = _bad_array(params[key], data)
    elif how == "drop":
        del bad[key]
    elif how == "extra":
        bad[data.draw(st.one_of(st.just(typo(key, data)), st.integers(), st.just(("a", 1))))] = params[key]
    else:
        bad = data.draw(junk)
    spoiled = isinstance(bad, dict) and any(isinstance(v, np.ndarray) and v.dtype.kind in "bcUSO" for v in bad.values())
    door = data.draw(st.sampled_from(["check", "set", "gradients", "sgd", "rule"]))
    calls = {
        "check": lambda: check_params(g, bad),
        "set": lambda: sim.set_params(bad),
        "gradients": lambda: backprop.gradients(g, bad, _one(x), _one(y)),
        "sgd": lambda: backprop.sgd_step(g, bad, _one(x), _one(y), data.draw(st.one_of(reals, junk))),
        "rule": lambda: run_rule(g, bad, _one(x), _one(y), IL(alpha=0.01, t_c=2)),
    }
    outcome = run_case("parameters", calls[door])
    if spoiled:
        assert outcome == "ParameterError", (door, bad)
    if door == "set":
        sim.set_params(params)  # leave the shared simulator as it was


@fuzz_settings(40)
@given(state=st.dictionaries(st.one_of(st.sampled_from(["0.weight", "0.bias", "2.weight", "2.bias"]), st.text(max_size=6),
                                       st.integers()), st.one_of(junk, st.just(np.ones((4, 3)))), max_size=5))
def test_fuzz_state_dicts(state: dict) -> None:
    run_case("parameters", lambda: from_sequential(mlp([3, 4, 2]), state))


# ---- data ------------------------------------------------------------------------------


@fuzz_settings(200)
@given(name=st.sampled_from(sorted(GRAPHS)), data=st.data())
def test_fuzz_data(name: str, data: st.DataObject) -> None:
    g, params, sim, x, y = _setup(name)
    which = data.draw(st.sampled_from(["x", "y"]))
    batch = dict(x if which == "x" else y)
    how = data.draw(st.sampled_from(["array", "array", "array", "keys", "plain"]))
    if how == "array":
        v = data.draw(st.sampled_from(sorted(batch)))
        batch[v] = _bad_array(batch[v], data)
        bad = _one(batch) if len(batch) == 1 and data.draw(st.booleans()) else batch
    elif how == "keys":
        bad = {data.draw(st.one_of(st.text(max_size=3), st.integers())): np.zeros((2, 3)), **batch}
        if data.draw(st.booleans()):
            bad.pop(next(iter(batch)))
    else:
        bad = data.draw(junk)
    empty = isinstance(bad, dict) and any(np.asarray(a, dtype=object).shape[:1] == (0,)
                                          for a in bad.values() if isinstance(a, np.ndarray))
    empty = empty or (isinstance(bad, np.ndarray) and bad.shape[:1] == (0,))
    xs, ys = (bad, _one(y)) if which == "x" else (_one(x), bad)
    door = data.draw(st.sampled_from(["predict", "learn", "gradients", "rule"]))
    calls = {
        "predict": lambda: sim.predict(xs if which == "x" else _one(x)),
        "learn": lambda: sim.learn(xs, ys, ZIL(alpha=0.01) if name != "every-op" else IL(alpha=0.01, t_c=2)),
        "gradients": lambda: backprop.gradients(g, params, xs, ys),
        "rule": lambda: run_rule(g, params, xs, ys, StrictPC(alpha=0.01, n=2)),
    }
    outcome = run_case("data", calls[door])
    if empty and (which == "x" or door != "predict"):
        assert outcome == "DataError"
    sim.set_params(params)


@fuzz_settings(40)
@given(labels=st.one_of(junk, st.lists(st.integers(-2, 12), max_size=4).map(np.array)), n=st.one_of(counts, junk))
def test_fuzz_one_hot(labels: object, n: object) -> None:
    run_case("data", lambda: one_hot(labels, n))


def _idx(arr: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes() + arr.tobytes()


@fuzz_settings(120)
@given(data=st.data())
def test_fuzz_idx_bytes(data: st.DataObject) -> None:
    """Random and damaged IDX files (header fields, sizes, truncation, gzip streams)."""
    base = _idx(np.arange(12, dtype=">u1").reshape(3, 4), 0x08)
    how = data.draw(st.sampled_from(["random", "flip", "cut", "append", "huge", "gzip-cut"]))
    if how == "random":
        raw = data.draw(st.binary(max_size=40))
    elif how == "flip":
        raw = bytearray(base)
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw)
    elif how == "cut":
        raw = base[: data.draw(st.integers(0, len(base) - 1))]
    elif how == "append":
        raw = base + data.draw(st.binary(min_size=1, max_size=8))
    elif how == "huge":  # sizes whose product would be terabytes
        dims = data.draw(st.integers(1, 4))
        raw = bytes([0, 0, data.draw(st.sampled_from([8, 9, 11, 12, 13, 14])), dims])
        raw += np.asarray([data.draw(st.sampled_from([0, 1, 2**16, 2**32 - 1])) for _ in range(dims)], ">u4").tobytes()
    else:
        raw = gzip.compress(base)[: data.draw(st.integers(0, 30))]
    ndim = data.draw(st.one_of(st.none(), st.integers(1, 3)))
    run_case("data", lambda: parse_idx(raw, ndim=ndim) if how != "gzip-cut" else _read_raw(raw))


def _read_raw(raw: bytes) -> object:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x-idx1-ubyte.gz"
        path.write_bytes(raw)
        return read_idx(path)


@fuzz_settings(60)
@given(data=st.data())
def test_fuzz_dataset_loaders(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The loaders with junk arguments, over a data folder of small (sometimes broken) files."""
    root = tmp_path_factory.mktemp("data")
    (root / "names").mkdir()
    (root / "names" / "A.txt").write_bytes(data.draw(st.sampled_from([b"Abe\nBo\nCy\nDee\nEd\n", b"\xff\xfe", b"", b"\xc5\x9alusarski\n123\n"])))
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_bytes(data.draw(st.sampled_from([b"First Citizen: speak.\n" * 3, b"", b"\xff"])))
    arg = st.one_of(junk, counts)
    which = data.draw(st.sampled_from(["dataset", "names", "shakespeare"]))
    if which == "dataset":
        call = lambda: load_dataset(data.draw(st.one_of(st.sampled_from(["digits", "mnist", "fashion"]), junk)),  # noqa: E731
                                    data_dir=str(root), split=data.draw(st.one_of(st.sampled_from(["train", "test"]), junk)))
    elif which == "names":
        call = lambda: load_names(root, split=data.draw(st.sampled_from(["train", "test", "dev"])),  # noqa: E731
                                  steps=data.draw(arg), seed=data.draw(st.one_of(st.just(0), arg)),
                                  test_fraction=data.draw(st.one_of(st.just(0.2), arg)), limit=data.draw(st.one_of(st.none(), arg)))
    else:
        call = lambda: load_shakespeare(root, steps=data.draw(arg), stride=data.draw(st.one_of(st.none(), arg)),  # noqa: E731
                                        limit=data.draw(st.one_of(st.none(), arg)))
    run_case("data", call)


# ---- rule settings ---------------------------------------------------------------------


def _option_value(data: st.DataObject) -> object:
    return data.draw(st.one_of(junk, counts, reals, st.sampled_from(["song", "feedback", "deferred", "immediate",
                                                                      np.float32(0.5), np.int64(2)])))


@fuzz_settings(200)
@given(data=st.data())
def test_fuzz_rule_settings(data: st.DataObject) -> None:
    """``make_rule`` and the constructors with junk options; accepted rules run on the event
    loop and in the reference."""
    name = data.draw(st.one_of(st.sampled_from(sorted(RULES) + ["backprop", "Strict-PC", "modpc"]), st.text(max_size=5)))
    keys = data.draw(st.lists(st.one_of(st.sampled_from(OPTION_NAMES), st.text(min_size=1, max_size=5)), max_size=3))
    options = {k: _option_value(data) for k in keys}
    options.setdefault("alpha", data.draw(st.one_of(st.just(0.01), st.just(np.float32(0.01)))))
    direct = data.draw(st.sampled_from([None, IL, ZIL, FaZIL, StrictPC, FixedPred, IPC, BP]))
    g, params, sim, x, y = _setup("mlp")
    built: list = []

    def build_and_run() -> None:
        if direct is None:
            rule = make_rule(name, **options)
        else:  # a keyword the class does not have is Python's TypeError, as for any call
            rule = direct(**{k: v for k, v in options.items() if k in {f.name for f in dataclasses.fields(direct)}})
        built.append(rule)
        if isinstance(rule, BP):
            return
        sim.learn(_one(x), _one(y), rule)
        run_rule(g, params, _one(x), _one(y), rule)

    run_case("rule settings", build_and_run)
    if built:  # what a rule accepted is stored as plain numbers: never a bool, complex or numpy scalar
        for f in dataclasses.fields(built[0]):
            value = getattr(built[0], f.name)
            assert not isinstance(value, (complex, np.generic)), (f.name, value)
            assert isinstance(f.default, bool) or not isinstance(value, bool), (f.name, value)
    sim.set_params(params)


@pytest.mark.parametrize("value", [np.float32(0.1), np.float64(0.1), np.int64(1), np.int8(2), 0.1, 1])
def test_numpy_scalars_are_numbers(value: object) -> None:
    rule = IL(alpha=value, gamma=value, t_c=np.int64(3))
    assert type(rule.alpha) in (int, float) and rule.alpha == value and type(rule.t_c) is int
    assert rule.to_dict()["alpha"] == value


@pytest.mark.parametrize("value", [True, np.bool_(True), 1j, np.complex64(1), "0.1", None])
def test_bools_and_complex_are_not_numbers(value: object) -> None:
    from neurosim.errors import ConfigError

    with pytest.raises(ConfigError):
        IL(alpha=value)


# ---- the cases of issue 10, part 6, one by one --------------------------------------------


def _sim() -> tuple:
    g, params, sim, x, y = _setup("mlp")
    return g, params, sim, _one(x), _one(y)


ISSUE_CASES = {
    "string weights": lambda g, p, s, x, y: check_params(g, {**p, "layer1.weight": np.full((4, 3), "a")}),
    "complex weights": lambda g, p, s, x, y: check_params(g, {**p, "layer1.weight": p["layer1.weight"] + 1j}),
    "string data": lambda g, p, s, x, y: s.learn(np.full(x.shape, "a"), y, ZIL(alpha=0.1)),
    "complex data": lambda g, p, s, x, y: s.predict(x + 1j),
    "empty batch": lambda g, p, s, x, y: s.learn(x[:0], y[:0], ZIL(alpha=0.1)),
    "empty batch (predict)": lambda g, p, s, x, y: s.predict(x[:0]),
    "FaZIL ticks 1e9": lambda g, p, s, x, y: s.learn(x, y, FaZIL(alpha=0.1, ticks=10**9)),
    "IL t_c 1e9": lambda g, p, s, x, y: s.learn(x, y, IL(alpha=0.1, t_c=10**9)),
    "IPC ticks 1e9": lambda g, p, s, x, y: s.learn(x, y, IPC(alpha=0.1, ticks=10**9)),
    "own_delay 1e6": lambda g, p, s, x, y: Simulator(g, own_delay=10**6),
    "IDX shape with a zero": lambda g, p, s, x, y: parse_idx(bytes([0, 0, 8, 3]) + np.asarray([0, 2**32 - 1, 9], ">u4").tobytes()),
    "one_hot of 2**64 classes": lambda g, p, s, x, y: one_hot(np.array([1]), 2**64),
}


@pytest.mark.parametrize("case", sorted(ISSUE_CASES))
def test_issue_cases_are_refused_quickly(case: str) -> None:
    g, params, sim, x, y = _sim()
    assert run_case("issue 10 cases", lambda: ISSUE_CASES[case](g, params, sim, x, y), limit=5.0) != "accepted"


def test_a_long_presentation_runs_in_bounded_kernel_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small kernel calls give the same bits as one (the record buffers stay bounded)."""
    import neurosim.validation as validation

    g, params, _, x, y = _sim()
    rule = FaZIL(alpha=0.1, ticks=40)
    whole = Simulator(g, params).learn(x, y, rule)
    monkeypatch.setattr(validation, "CHUNK_WORK", 1)  # one tick per kernel call
    parts = Simulator(g, params).learn(x, y, rule)
    for name in whole.updates:
        assert np.array_equal(whole.updates[name], parts.updates[name])
    assert np.array_equal(whole.firings, parts.firings) and np.array_equal(whole.energy, parts.energy)


def test_budgets_refuse_with_the_budget_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import neurosim.validation as validation
    from neurosim.errors import ConfigError, DataError, GraphError

    g, params, sim, x, y = _sim()
    with pytest.raises(GraphError, match="MAX_NEURONS"):
        init_params(mlp([3, 10**6, 2]))
    monkeypatch.setattr(validation, "MEMORY_BUDGET", 1000)
    with pytest.raises(DataError, match="MEMORY_BUDGET"):
        sim.predict(np.zeros((50, 3)))
    monkeypatch.setattr(validation, "WORK_BUDGET", 1000)
    with pytest.raises(ConfigError, match="WORK_BUDGET"):
        sim.learn(x, y, IL(alpha=0.1, t_c=100))


def test_sequence_buffers_are_bounded(tmp_path) -> None:
    """Steps that would size a buffer of tens of gigabytes are refused before allocating."""
    from neurosim.data import encode_names
    from neurosim.errors import ConfigError

    with pytest.raises(ConfigError, match="MEMORY_BUDGET"):
        encode_names(["Abe"] * 5, 10**9)
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("ab" * 100_000)
    with pytest.raises(ConfigError, match="MEMORY_BUDGET"):
        load_shakespeare(tmp_path, steps=80_000, stride=1)
