"""A strict stand-in for CuPy: numpy's arithmetic behind a wall that numpy cannot cross.

``strict`` is an array namespace (``strict.exp``, ``strict.zeros``, ``strict.einsum``...:
numpy's functions) whose arrays are :class:`StrictArray`, a wrapper that is *not* a numpy
array. It computes exactly what numpy computes (same functions, same order, same bits),
and fails loudly wherever code would break on a GPU or forget its namespace:

- a numpy function on a strict array (``numpy.exp(x)``, ``numpy.sum(x)``,
  ``numpy.concatenate([x])``, ``numpy.asarray(x)``): :class:`LeakError`, through
  ``__array_ufunc__``, ``__array_function__`` and ``__array__``;
- a plain numpy array mixed into the computation (``x + numpy_array``,
  ``strict.exp(numpy_array)``, ``x[...] = numpy_array``): :class:`LeakError`, as CuPy
  refuses host arrays; only ``strict.asarray`` and ``strict.array`` take them in, and
  ``strict.asnumpy`` hands results out, as ``cupy.asarray`` and ``cupy.asnumpy`` do;
- reductions and indexing return 0-d strict arrays, never numpy scalars, as CuPy's do,
  so ``float()``, ``int()`` and ``bool()`` are the only ways back to Python numbers.

Python scalars and numpy scalars (``numpy.float64(2.0)``) mix freely, as with CuPy.
``strict.random`` and the other submodules are absent: draw on the host and convert.
"""

from __future__ import annotations

import operator
import types
from typing import Any

import numpy

__all__ = ["LeakError", "StrictArray", "strict"]


class LeakError(TypeError):
    """A numpy call or a numpy array reached code that must compute through ``xp``."""


def _unwrap(value: Any, where: str) -> Any:
    """``value`` with every strict array replaced by its numpy buffer; LeakError on a numpy array."""
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, numpy.ndarray):
        raise LeakError(
            f"a plain numpy array {value.shape} reached {where}: convert it at the boundary with xp.asarray"
        )
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """numpy results as strict arrays (numpy scalars as 0-d arrays), recursively in tuples and lists."""
    if isinstance(value, numpy.ndarray):
        return StrictArray(value)
    if isinstance(value, numpy.generic):
        return StrictArray(numpy.asarray(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _binary(op: Any, reflected: bool = False) -> Any:
    name = op.__name__

    def method(self: StrictArray, other: Any) -> Any:
        b = _unwrap(other, f"the operator {name}")
        return _wrap(op(b, self._a) if reflected else op(self._a, b))

    method.__name__ = f"__r{name}__" if reflected else f"__{name}__"
    return method


def _inplace(op: Any) -> Any:
    def method(self: StrictArray, other: Any) -> StrictArray:
        op(self._a, _unwrap(other, f"the operator {op.__name__}"))  # writes through the view
        return self

    return method


class StrictArray:
    """A numpy array that numpy itself refuses to touch; see the module docstring."""

    __slots__ = ("_a",)

    def __init__(self, a: numpy.ndarray):
        self._a = a

    # numpy's three doors, shut
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        host = [x for x in inputs if isinstance(x, numpy.ndarray)]
        if host:  # numpy_array + strict_array lands here through ndarray.__add__
            raise LeakError(
                f"a plain numpy array {host[0].shape} reached numpy.{ufunc.__name__} with a strict array: "
                "convert it at the boundary with xp.asarray"
            )
        raise LeakError(f"numpy.{ufunc.__name__} ({method}) called on a strict array: use xp.{ufunc.__name__}")

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        raise LeakError(f"numpy.{func.__name__} called on a strict array: use xp.{func.__name__}")

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        raise LeakError("a strict array converted to numpy implicitly: use xp.asnumpy at the boundary")

    # attributes and methods of numpy's arrays (x.shape, x.T, x.sum(axis=0), x.astype(...))
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_a":  # __array_interface__, __dlpack__...; _a unset (copy)
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*_unwrap(args, f"x.{name}"), **_unwrap(kwargs, f"x.{name}")))

        return method

    def __getitem__(self, index: Any) -> Any:
        return _wrap(self._a[_unwrap(index, "an index")])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._a[_unwrap(index, "an index")] = _unwrap(value, "an assignment")

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (_wrap(row) for row in self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __repr__(self) -> str:
        return f"StrictArray({self._a!r})"

    __add__, __radd__ = _binary(operator.add), _binary(operator.add, True)
    __sub__, __rsub__ = _binary(operator.sub), _binary(operator.sub, True)
    __mul__, __rmul__ = _binary(operator.mul), _binary(operator.mul, True)
    __truediv__, __rtruediv__ = _binary(operator.truediv), _binary(operator.truediv, True)
    __floordiv__, __rfloordiv__ = _binary(operator.floordiv), _binary(operator.floordiv, True)
    __mod__, __rmod__ = _binary(operator.mod), _binary(operator.mod, True)
    __pow__, __rpow__ = _binary(operator.pow), _binary(operator.pow, True)
    __matmul__, __rmatmul__ = _binary(operator.matmul), _binary(operator.matmul, True)
    __and__, __rand__ = _binary(operator.and_), _binary(operator.and_, True)
    __or__, __ror__ = _binary(operator.or_), _binary(operator.or_, True)
    __xor__, __rxor__ = _binary(operator.xor), _binary(operator.xor, True)
    __eq__, __ne__ = _binary(operator.eq), _binary(operator.ne)
    __lt__, __le__ = _binary(operator.lt), _binary(operator.le)
    __gt__, __ge__ = _binary(operator.gt), _binary(operator.ge)
    __iadd__, __isub__ = _inplace(operator.iadd), _inplace(operator.isub)
    __imul__, __itruediv__ = _inplace(operator.imul), _inplace(operator.itruediv)
    __iand__, __ior__ = _inplace(operator.iand), _inplace(operator.ior)
    __hash__ = None  # type: ignore[assignment]

    def __neg__(self) -> StrictArray:
        return _wrap(-self._a)

    def __pos__(self) -> StrictArray:
        return _wrap(+self._a)

    def __abs__(self) -> StrictArray:
        return _wrap(abs(self._a))

    def __invert__(self) -> StrictArray:
        return _wrap(~self._a)


class _Strict(types.ModuleType):
    """The namespace: numpy's functions on strict arrays, numpy's dtypes and constants as they are."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(numpy, name)
        if isinstance(value, (type, numpy.dtype)) or not callable(value):
            if isinstance(value, types.ModuleType):
                raise AttributeError(f"the strict namespace has no submodule {name!r} (numpy.{name}): use the host")
            return value  # dtypes (xp.int64, xp.float64), constants (xp.inf)

        def function(*args: Any, **kwargs: Any) -> Any:
            where = f"xp.{name}"
            return _wrap(value(*_unwrap(args, where), **_unwrap(kwargs, where)))

        function.__name__ = name
        return function

    @staticmethod
    def asarray(obj: Any, dtype: Any = None) -> StrictArray:
        """Host data (numpy, lists, scalars) or a strict array in, a strict array out (``cupy.asarray``)."""
        return StrictArray(numpy.asarray(obj._a if isinstance(obj, StrictArray) else obj, dtype=dtype))

    @staticmethod
    def array(obj: Any, dtype: Any = None, copy: bool = True) -> StrictArray:
        """As :meth:`asarray`, copying by default (``cupy.array``)."""
        data = obj._a if isinstance(obj, StrictArray) else obj
        return StrictArray(numpy.array(data, dtype=dtype, copy=copy))

    @staticmethod
    def asnumpy(a: Any) -> numpy.ndarray:
        """A strict array (or host data) as a numpy array on the host (``cupy.asnumpy``)."""
        return numpy.array(a._a if isinstance(a, StrictArray) else a, copy=True)


strict = _Strict("strict_xp.strict", __doc__)
