"""Elementwise activation functions and their derivatives.

Each activation has a name (used in graphs and configs) and an integer code (used
inside numba kernels, which cannot dispatch on strings). The vectorized versions
(``apply``, ``derivative``: any array namespace ``xp``, see :mod:`neurosim.arrays`) and
the scalar numba versions (``act_scalar``, ``dact_scalar``) implement the same formulas:

- ``linear``:  f(a) = a,                       f'(a) = 1
- ``sigmoid``: f(a) = 1 / (1 + exp(-a)),       f'(a) = f(a) (1 - f(a))
- ``tanh``:    f(a) = tanh(a),                 f'(a) = 1 - tanh(a)^2
- ``relu``:    f(a) = max(a, 0),               f'(a) = 1 if a > 0 else 0 (PyTorch's choice at 0)
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from neurosim.arrays import namespace
from neurosim.errors import GraphError

ACTIVATIONS: dict[str, int] = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3}


def activation_code(name: str, where: str = "") -> int:
    """Return the kernel code of activation ``name``; raise a GraphError naming ``where`` if unknown."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        at = f" at {where}" if where else ""
        raise GraphError(
            f"unknown activation {name!r}{at}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


def apply(name: str, a: Any, xp: Any = None) -> Any:
    """f(a) for activation ``name``, elementwise, in array namespace ``xp`` (None: numpy)."""
    code = activation_code(name)
    if code == 0:
        return a.copy()
    xp = namespace(xp)
    if code == 1:
        return 1.0 / (1.0 + xp.exp(-a))
    if code == 2:
        return xp.tanh(a)
    return xp.maximum(a, 0.0)


def derivative(name: str, a: Any, xp: Any = None) -> Any:
    """f'(a) for activation ``name``, elementwise, in array namespace ``xp`` (None: numpy)."""
    code = activation_code(name)
    xp = namespace(xp)
    if code == 0:
        return xp.ones_like(a)
    if code == 1:
        s = 1.0 / (1.0 + xp.exp(-a))
        return s * (1.0 - s)
    if code == 2:
        t = xp.tanh(a)
        return 1.0 - t * t
    return (a > 0).astype(a.dtype)


@numba.njit(cache=True, inline="always")
def act_scalar(code: int, a: float) -> float:
    """f(a) for the activation with kernel ``code`` (numba scalar version)."""
    if code == 0:
        return a
    if code == 1:
        return 1.0 / (1.0 + np.exp(-a))
    if code == 2:
        return np.tanh(a)
    return a if a > 0.0 else 0.0 * a


@numba.njit(cache=True, inline="always")
def dact_scalar(code: int, a: float) -> float:
    """f'(a) for the activation with kernel ``code`` (numba scalar version)."""
    if code == 0:
        return 1.0 + 0.0 * a
    if code == 1:
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if code == 2:
        t = np.tanh(a)
        return 1.0 - t * t
    return 1.0 + 0.0 * a if a > 0.0 else 0.0 * a
