"""Training: Fa-Z-IL on the event loop beside backprop, from the same weights.

Expectations come from independent computations: the reference backprop run by hand
on the documented schedule (``default_rng(seed).permutation`` per epoch, consecutive
mini-batches), its loss and predictions, and the papers' claims (Fa-Z-IL equals
backprop to round-off where every backprop error is nonzero; it does not with ReLU in
the pre convention once it runs past the trigger steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurosim.data import load_dataset, one_hot
from neurosim.errors import ConfigError, DataError, DivergenceError
from neurosim.graph import mlp
from neurosim.params import init_params
from neurosim.recording import load_params, read_metrics
from neurosim.reference import backprop
from neurosim.training import DEFAULT_EPOCHS, DEFAULT_LR, TrainConfig, train


def _run(**kw) -> object:
    return train(TrainConfig(**kw), progress=False, log=None, baseline=False)


#: Song et al.'s setting (the default before issue 10): sigmoid, pre convention, squared error.
SONG = {"activation": "sigmoid", "convention": "pre", "loss": "mse"}


def _max_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def _backprop_by_hand(config: TrainConfig) -> tuple[dict, list[dict]]:
    """Backprop SGD on the schedule documented in neurosim.training, with its metrics."""
    graph = mlp(config.sizes(), activation=config.activation, convention=config.convention, loss=config.loss)
    x, labels = load_dataset(config.dataset, config.data_dir, "train")
    xt, lt = load_dataset(config.dataset, config.data_dir, "test")
    if config.limit:
        x, labels, xt, lt = x[: config.limit], labels[: config.limit], xt[: config.limit], lt[: config.limit]
    y = one_hot(labels, 10)
    params = init_params(graph, config.seed)
    rng = np.random.default_rng(config.seed)
    rows = []
    for _ in range(config.epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(labels), config.batch):
            idx = order[start : start + config.batch]
            params = backprop.sgd_step(graph, params, x[idx], y[idx], config.lr)
        acc = float(np.mean(np.argmax(backprop.predict(graph, params, xt), axis=1) == lt))
        rows.append({"loss": backprop.loss(graph, params, x, y) / len(labels), "acc": acc})
    return params, rows


@pytest.mark.parametrize("limit, batch", [(100, 20), (50, 20)])  # 50: a last, smaller batch of 10
def test_fazil_equals_backprop_on_the_documented_schedule(limit: int, batch: int) -> None:
    config = TrainConfig(hidden=(16,), epochs=3, limit=limit, batch=batch, lr=0.05)
    result = train(config, progress=False, log=None)
    expected, rows = _backprop_by_hand(config)
    graph = mlp([64, 16, 10], convention="pre")
    assert all(np.array_equal(result.params_init[k], v) for k, v in init_params(graph, 0).items())
    assert all(np.array_equal(result.params_bp[k], expected[k]) for k in expected)
    assert _max_diff(result.params_init, expected) > 1e-3  # training moved the weights
    assert _max_diff(result.params_pc, expected) < 1e-13
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for got, want in zip(result.history, rows):
        assert got["train_loss_bp"] == pytest.approx(want["loss"], rel=1e-12)
        assert got["train_loss_pc"] == pytest.approx(want["loss"], rel=1e-10)
        assert got["test_acc_bp"] == want["acc"] and got["test_acc_pc"] == want["acc"]
        assert got["max_weight_diff"] < 1e-13 and got["late_firings"] == 0
    assert result.run_dir is None


def test_run_directory_of_a_training_run(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "first"
    result = _run(epochs=2, limit=60, seed=3, out=str(out))
    assert result.run_dir == out
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "metrics.csv", "params_backprop.npz", "params_fazil.npz", "params_init.npz",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["config"]["seed"] == 3
    assert config["rule"] == {"rule": "fazil", "alpha": DEFAULT_LR, "t_d": 4, "ticks": None, "gamma": 1.0, "detector": "song",
                              "max_energy_ratio": 1e12}
    assert config["model"]["sizes"] == [64, 32, 10] and config["data"]["n_train"] == 60
    assert {"python", "numpy", "numba", "platform", "neurosim"} <= set(config["environment"])
    metrics = read_metrics(out)
    assert len(metrics) == 2
    assert [m["test_acc_pc"] for m in metrics] == [h["test_acc_pc"] for h in result.history]
    assert [m["max_weight_diff"] for m in metrics] == [h["max_weight_diff"] for h in result.history]
    for name, params in (("fazil", result.params_pc), ("backprop", result.params_bp), ("init", result.params_init)):
        saved = load_params(out, name)
        assert all(np.array_equal(saved[k], params[k]) for k in params)


def test_divergence_raises_and_writes_no_run(tmp_path: Path) -> None:
    with pytest.raises(DivergenceError, match=r"fazil diverged .* epoch 1, mini-batch \d+: .*smaller --lr"):
        _run(lr=5.0, epochs=2, out=str(tmp_path / "runs" / "r"), **SONG)
    assert list(tmp_path.iterdir()) == []


def test_backprop_divergence_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_step(graph, params, x, y, alpha):
        return {k: np.full_like(v, np.nan) for k, v in params.items()}

    monkeypatch.setattr(backprop, "sgd_step", nan_step)
    with pytest.raises(DivergenceError, match="backprop diverged at epoch 1, mini-batch 1"):
        _run(limit=40, epochs=1, out=str(tmp_path / "r"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "rule, options",
    [("zil", {}), ("fixedpred", {}), ("fazil", {"loss": "ce"}), ("fazil", {"convention": "post"}),
     ("fazil", {"hidden": (16, 16), "activation": "tanh"}), ("fazil", {"ticks": 6})],
)
def test_exact_rules_match_backprop(rule: str, options: dict) -> None:
    result = _run(rule=rule, epochs=2, limit=80, **options)
    assert result.max_weight_diff < 1e-13
    assert all(h["late_firings"] == 0 for h in result.history)


def test_inexact_rule_is_measured_as_such() -> None:
    result = _run(rule="il", epochs=1, limit=80, lr=0.05)
    assert result.max_weight_diff > 1e-4


def test_late_firings_with_relu_in_the_pre_convention() -> None:
    # A ReLU neuron whose backprop error is 0 does not fire at its trigger step; with
    # ticks past the triggers it fires later and Fa-Z-IL leaves backprop.
    late = _run(activation="relu", convention="pre", loss="mse", ticks=6, epochs=1, limit=80, lr=0.01)
    assert late.history[0]["late_firings"] > 0 and late.max_weight_diff > 1e-6
    exact = _run(activation="relu", convention="pre", loss="mse", epochs=1, limit=80, lr=0.01)  # one tick per layer
    assert exact.history[0]["late_firings"] == 0 and exact.max_weight_diff < 1e-13


def test_float32_run() -> None:
    result = _run(dtype="float32", epochs=1, limit=60)
    assert all(v.dtype == np.float32 for v in (*result.params_pc.values(), *result.params_bp.values()))
    assert 0 < result.max_weight_diff < 1e-5


def test_epoch_lines_are_logged() -> None:
    lines: list[str] = []
    result = train(TrainConfig(epochs=2, limit=40), progress=False, log=lines.append)
    assert lines[0].startswith("training a 64-32-10 tanh MLP")
    assert lines[1] == (f"baseline: sklearn LogisticRegression(max_iter=1000) on the same split, test accuracy "
                        f"{result.baseline['test_acc']:.2%}")
    assert lines[2].startswith("epoch 1/2: ") and lines[3].startswith("epoch 2/2: ")
    assert "test acc fazil" in lines[2] and "late firings 0" in lines[2]
    assert lines[-1].startswith("done in ")


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"batch": 2.5}, "batch must be an int"),
        ({"lr": -1.0}, "lr must be a positive"),
        ({"lr": float("nan")}, "lr must be a positive"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"hidden": (32, 0)}, "hidden layer width must be an int >= 1"),
        ({"hidden": "32"}, "hidden must be a list"),
        ({"limit": 0}, "limit must be an int >= 1"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"lr": True}, "lr must be a number, got True"),
        ({"gamma": np.True_}, "gamma must be a number"),
        ({"threads": 0}, "threads must be an int >= 1"),
        ({"model": {"builder": "rnn"}, "activation": "relu"}, r"activation do\(es\) not apply"),
    ],
)
def test_bad_config_values(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kw)


def test_config_dict_round_trip_and_unknown_keys() -> None:
    config = TrainConfig(hidden=[8, 4], rule="zil", epochs=3)
    assert config.hidden == (8, 4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['hiden'\]"):
        TrainConfig.from_dict({"hiden": [3]}, source="models/x.toml")


def test_rule_options_are_checked_before_loading_data(no_data_env: None) -> None:
    with pytest.raises(ConfigError, match="rule 'zil' takes no option"):
        _run(rule="zil", t_d=4, dataset="mnist")
    with pytest.raises(ConfigError, match="unknown rule 'nope'"):
        _run(rule="nope", dataset="mnist")
    with pytest.raises(DataError, match="needs a data directory"):
        _run(dataset="mnist")


def test_defaults() -> None:
    config = TrainConfig()
    assert (config.dataset, config.rule, config.hidden, config.activation, config.convention, config.loss) == (
        "digits", "fazil", (32,), "tanh", "post", "ce")
    assert (config.batch, config.epochs, config.lr, config.seed) == (20, DEFAULT_EPOCHS, DEFAULT_LR, 0)
    assert config.make_rule().t_d == 4


# ---- long runs -----------------------------------------------------------------------------
@pytest.mark.slow
def test_default_run_learns_and_equals_backprop() -> None:
    # Issue 10: the default run is at least as accurate as a logistic regression on the same split.
    result = train(TrainConfig(), progress=False, log=None)
    assert result.test_acc_pc >= result.baseline["test_acc"] > 0.95
    assert result.test_acc_bp == result.test_acc_pc
    assert result.max_weight_diff < 1e-10
    assert sum(h["late_firings"] for h in result.history) == 0


@pytest.mark.slow
def test_mnist_song2020_setup(data_dir: Path) -> None:
    # Song et al. (2020) 5.1: 784-32-10 sigmoid, batch 20, alpha 0.001 (first seed of the
    # paper), for 3 epochs on the first 20,000 training images; chance is 10%.
    config = TrainConfig(dataset="mnist", data_dir=str(data_dir), epochs=3, batch=20, lr=0.001, limit=20000,
                         seed=1482555873, **SONG)
    result = train(config, progress=False, log=None, baseline=False)
    graph = mlp([784, 32, 10], convention="pre")
    x, labels = load_dataset("mnist", data_dir, "train")
    initial = backprop.loss(graph, result.params_init, x[:20000], one_hot(labels[:20000], 10)) / 20000
    losses = [h["train_loss_bp"] for h in result.history]
    assert initial > losses[0] > losses[1] > losses[2] and losses[2] < 0.85 * initial
    assert result.test_acc_bp > 0.4 and result.test_acc_pc == result.test_acc_bp
    assert max(h["max_weight_diff"] for h in result.history) < 1e-12
    assert sum(h["late_firings"] for h in result.history) == 0


def test_package_import_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, neurosim; heavy = [m for m in sys.modules if m.startswith(('neurosim.engine', "
            "'neurosim.reference', 'neurosim.compile', 'sklearn', 'tqdm'))]; print(heavy)")
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"
