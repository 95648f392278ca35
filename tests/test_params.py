"""Parameters in and out in PyTorch's layouts."""

import numpy as np
import pytest

from neurosim.engine import Simulator
from neurosim.errors import ParameterError
from neurosim.graph import mlp
from neurosim.params import from_sequential, init_params, to_sequential


def test_pytorch_sequential_round_trip():
    g = mlp([4, 3, 2], activation="sigmoid")
    rng = np.random.default_rng(0)
    # what nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid()).state_dict() holds
    sd = {"0.weight": rng.normal(size=(3, 4)), "0.bias": rng.normal(size=3),
          "2.weight": rng.normal(size=(2, 3)), "2.bias": rng.normal(size=2)}
    p = from_sequential(g, sd)
    assert np.array_equal(p["layer1.weight"], sd["0.weight"]) and np.array_equal(p["layer2.bias"], sd["2.bias"])
    # a forward pass by hand in PyTorch's convention gives the simulator's prediction
    x = rng.normal(size=(5, 4))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    by_hand = sig(sig(x @ sd["0.weight"].T + sd["0.bias"]) @ sd["2.weight"].T + sd["2.bias"])
    np.testing.assert_allclose(Simulator(g, p).predict(x), by_hand, rtol=1e-14)
    back = to_sequential(g, Simulator(g, p).params, [0, 2])
    assert all(np.array_equal(back[k], sd[k]) for k in sd)


def test_mismatched_state_dict_is_named():
    g = mlp([4, 3, 2], bias=False)
    with pytest.raises(ParameterError, match="1 weight matrices"):
        from_sequential(g, {"0.weight": np.zeros((3, 4))})
    with pytest.raises(ParameterError, match="layer2.weight"):
        from_sequential(g, {"0.weight": np.zeros((3, 4)), "1.weight": np.zeros((3, 3))})


def test_init_is_pytorch_like_uniform():
    g = mlp([400, 50, 2])
    w = init_params(g, seed=0)["layer1.weight"]
    bound = 1 / np.sqrt(400)
    assert np.all(np.abs(w) <= bound) and abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
