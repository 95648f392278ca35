"""An explicit chain-rule backward pass for MLP chains, written out for the tests.

It is deliberately separate from ``neurosim.reference`` and from the event loop, so
that the exactness tests compare against a third, independent computation.
"""

import numpy as np

from neurosim import activations as A


def chain_backprop(graph, params, x, y):
    """Return ``(grads, dL_dv)`` for an ``mlp`` chain: dL/dtheta and dL/dv of every layer.

    Losses are sums over samples: mse ``1/2 sum (v_L - y)^2``, ce ``-sum y log softmax(v_L)``.
    """
    layers = [v for v in graph.nodes if graph.nodes[v]["op"] == "dense"]
    vs, pre_acts = [x], []
    for name in layers:
        at = graph.nodes[name]
        W, b = params[f"{name}.weight"], params.get(f"{name}.bias", 0.0)
        if at["convention"] == "post":
            a = vs[-1] @ W.T + b
            v = A.apply(at["activation"], a)
        else:
            a = A.apply(at["activation"], vs[-1]) @ W.T + b
            v = a
        pre_acts.append(a)
        vs.append(v)
    out = vs[-1]
    if graph.nodes[layers[-1]]["loss"] == "mse":
        d = out - y
    else:
        e = np.exp(out - out.max(axis=1, keepdims=True))
        d = e / e.sum(axis=1, keepdims=True) - y
    grads, dv = {}, {}
    for k in range(len(layers) - 1, -1, -1):
        name, at = layers[k], graph.nodes[layers[k]]
        dv[name] = d
        W = params[f"{name}.weight"]
        if at["convention"] == "post":
            da = d * A.derivative(at["activation"], pre_acts[k])
            grads[f"{name}.weight"] = da.T @ vs[k]
            d = da @ W
        else:
            da = d
            grads[f"{name}.weight"] = da.T @ A.apply(at["activation"], vs[k])
            d = (da @ W) * A.derivative(at["activation"], vs[k])
        if f"{name}.bias" in params:
            grads[f"{name}.bias"] = da.sum(axis=0)
    return grads, dv


def rel_err(u, r):
    """``||u - r|| / ||r||`` (or ``||u||`` when ``r`` is 0)."""
    n = np.linalg.norm(r)
    return float(np.linalg.norm(u - r) / n) if n > 0 else float(np.linalg.norm(u))
