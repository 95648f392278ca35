"""Shared checks of user input, and the budgets that bound every count.

Numbers. A *real number* is a Python or numpy int or float (``np.float32(0.1)`` is one);
bools and complex numbers are not. A *count* is a Python or numpy int, never a bool.
Numpy scalars are converted to the Python number they hold, so that a rule or a
configuration stores plain ``float`` and ``int`` values (and writes them as JSON).

Arrays. Data and parameters are arrays of real numbers: integer or floating dtypes.
Strings, objects, complex numbers and bools are refused (a bool array of 0/1 targets
must be converted with ``.astype(float)``), never cast silently.

Budgets. Every count that sizes a buffer or a loop is bounded, so that no input makes
neurosim allocate without end or run a kernel call that cannot be interrupted
(``Ctrl-C`` reaches Python only between kernel calls):

- :data:`MAX_STEPS`: inference steps (learning ticks) of one presentation, and the
  counts that index them (``IL.t_c``, ``StrictPC.n``, ``FixedPred.n``,
  ``FaZIL.ticks``, ``FaZIL.t_d``, ``ZIL.update_step``);
- :data:`MAX_EPOCHS`: epochs of a training run;
- :data:`MAX_NEURONS`, :data:`MAX_SYNAPSES`, :data:`MAX_PARAMETERS`: the size of a
  model graph (compiling costs about 0.1 ms per neuron and 12 us per synapse on CI's
  2 cores, so the largest graph compiles in a few minutes);
- :data:`MEMORY_BUDGET`: bytes of event-loop state for one mini-batch;
- :data:`WORK_BUDGET`: synapse and neuron updates of one presentation (ticks times
  samples times synapses plus neurons);
- :data:`CHUNK_WORK` and :data:`CHUNK_BYTES`: a presentation runs in kernel calls of at
  most this much work and record-buffer memory, so its memory is bounded and an
  interrupt is served within about a second;
- synaptic delays are at most :data:`neurosim.compile.compiler.MAX_DELAY` ticks.

A budget is a module attribute: a user with a larger machine may raise it
(``neurosim.validation.MEMORY_BUDGET = 32 * 2**30``) before building a simulator.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any

import networkx as nx
import numpy as np

#: inference steps (learning ticks) of one presentation
MAX_STEPS = 1_000_000
#: epochs of one training run (each is a loop that can be interrupted)
MAX_EPOCHS = 1_000_000
#: value plus error neurons of a compiled graph
MAX_NEURONS = 1_000_000
#: synapses of a compiled graph (weights read, a convolution's at every position)
MAX_SYNAPSES = 20_000_000
#: learnable parameters of a graph
MAX_PARAMETERS = 20_000_000
#: bytes of event-loop state for one mini-batch
MEMORY_BUDGET = 4 * 2**30
#: synapse and neuron updates of one presentation (ticks x samples x (synapses + neurons))
WORK_BUDGET = 10**12
#: most work done by one kernel call of a presentation (about 0.1 to 1 s)
CHUNK_WORK = 10**8
#: most bytes of record buffers allocated for one kernel call
CHUNK_BYTES = 64 * 2**20


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number: a Python or numpy int or float, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_count(value: object) -> bool:
    """Whether ``value`` is an integer count: a Python or numpy int, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def real_array(value: object, what: str, error: type[Exception], dtype: Any = np.float64) -> np.ndarray:
    """``value`` as an array of ``dtype``, or ``error`` naming ``what`` and why not.

    Refused: ragged nesting, and dtypes other than integers and floats (strings,
    objects, complex numbers, bools), which would fail deep inside or lose information.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not an array of numbers: {' '.join(str(exc).split())}") from None
    kind = arr.dtype.kind
    if kind == "b":
        raise error(f"{what} is a bool array; bools are not numbers, convert with .astype(float)")
    if kind not in "iuf":
        raise error(f"{what} must hold real numbers (ints or floats), got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def suggestion(name: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the valid choice nearest to ``name`` (or ``""``)."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def graph_fingerprint(graph: nx.DiGraph) -> str:
    """A text that changes when a vertex, an edge, or an attribute of either changes."""
    nodes = [(repr(v), sorted((str(k), repr(a)) for k, a in d.items())) for v, d in graph.nodes(data=True)]
    edges = [(repr(u), repr(v), sorted((str(k), repr(a)) for k, a in d.items())) for u, v, d in graph.edges(data=True)]
    return repr((nodes, edges))


def require_budget(amount: float, budget: float, what: str, hint: str, error: type[Exception], name: str) -> None:
    """Raise ``error`` when ``amount`` passes ``budget`` (the budget named ``name``)."""
    if amount > budget:
        raise error(
            f"{what} is {amount:.3g}, over the budget of {budget:.3g} (neurosim.validation.{name}); {hint}"
        )
