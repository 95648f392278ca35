"""A real PyTorch model with nested blocks, in and out (skipped where torch is not installed).

Expectations come from torch itself: its forward pass, its autograd gradients of the
summed loss, and its ``load_state_dict`` of what :func:`neurosim.params.to_sequential`
returns. The event loop's FixedPred (eta = 1, ``n_exact`` = the number of blocks) must
give torch's gradient, as Torch2PC's ``FixedPred`` does on the same model.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurosim.engine import Simulator  # noqa: E402
from neurosim.graph import exact_steps  # noqa: E402
from neurosim.graph.pytorch import from_torch  # noqa: E402
from neurosim.params import from_sequential, to_sequential  # noqa: E402
from neurosim.reference.backprop import gradients, predict  # noqa: E402
from neurosim.rules import FixedPred  # noqa: E402

ALPHA = 0.1


def _model():
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(3, 2, 2), nn.Tanh(), nn.AvgPool2d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(8, 5)),
    ).double()


def test_a_torch_model_of_blocks_runs_as_composite_vertices():
    model = _model()
    graph = from_torch(model, input_shape=(1, 10, 10), loss="mse")
    assert list(graph) == ["input", "0", "1", "2"] and exact_steps(graph) == 3
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    params = from_sequential(graph, sd)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 100)), rng.normal(size=(4, 5))
    xt = torch.tensor(x).reshape(4, 1, 10, 10)
    out = model(xt)
    np.testing.assert_allclose(predict(graph, params, x), out.detach().numpy(), rtol=1e-12, atol=1e-12)
    loss = 0.5 * ((out - torch.tensor(y)) ** 2).sum()
    loss.backward()
    torch_grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
    ours = gradients(graph, params, x, y)
    for k, g in torch_grads.items():
        np.testing.assert_allclose(ours[k], g, rtol=1e-10, atol=1e-12)
    res = Simulator(graph, params).learn(x, y, FixedPred(alpha=ALPHA, eta=1.0))
    for k, g in torch_grads.items():
        assert np.linalg.norm(res.updates[k] + ALPHA * g) <= 1e-12 * np.linalg.norm(ALPHA * g), k
    fresh = _model()
    fresh.load_state_dict({k: torch.tensor(v) for k, v in to_sequential(graph, params).items()})
    np.testing.assert_array_equal(fresh(xt).detach().numpy(), out.detach().numpy())
