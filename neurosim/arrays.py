"""The array namespace ``xp`` of the vectorized reference: numpy, or cupy on a GPU.

Everything vectorized in neurosim (:mod:`neurosim.activations`' ``apply`` and
``derivative``, :mod:`neurosim.reference`) computes through a namespace ``xp`` passed by
the caller and never calls ``numpy`` on its arrays, so the same code runs on CuPy (or any
module with numpy's names for the functions the reference uses). ``xp=None`` means numpy.
Data cross between the caller's numpy and ``xp`` only at the boundaries: ``xp.asarray``
on the way in, :func:`to_numpy` on the way out (``cupy.asnumpy`` copies from the device).
"""

from __future__ import annotations

from typing import Any

import numpy

from neurosim.errors import ConfigError


def namespace(xp: Any = None) -> Any:
    """``xp`` itself, or numpy for None; ConfigError if ``xp`` is not an array namespace.

    An array namespace is a module (or module-like object) with numpy's names:
    ``asarray``, ``zeros``, ``exp``, ``einsum``...; pass the module, e.g. ``xp=cupy``.
    """
    if xp is None or xp is numpy:
        return numpy
    if isinstance(xp, str) or not all(hasattr(xp, name) for name in ("asarray", "zeros", "exp", "einsum")):
        what = repr(xp) if isinstance(xp, str) else type(xp).__name__
        raise ConfigError(
            f"xp must be an array module such as numpy or cupy (import cupy; xp=cupy), got {what}"
        )
    return xp


def to_numpy(a: Any, xp: Any = None) -> numpy.ndarray:
    """``a`` (an array of namespace ``xp``) as a numpy array on the host.

    Uses ``xp.asnumpy`` where the namespace has one (CuPy: a copy from the device),
    ``numpy.asarray`` otherwise.
    """
    xp = namespace(xp)
    convert = getattr(xp, "asnumpy", None)
    return numpy.asarray(a) if convert is None else convert(a)

