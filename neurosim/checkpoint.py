"""Checkpoints of a training run: what resuming needs to continue bit for bit.

:func:`neurosim.training.train` writes ``checkpoint.npz`` into its (still partial) run
directory before the first epoch and after every epoch. It holds

- ``pc/<name>`` and ``bp/<name>``: both copies' parameters after the last finished epoch;
- ``meta``: JSON text with the number of finished epochs (the data position: the next
  epoch starts with a fresh permutation), the state of the shuffling generator
  (``numpy.random.default_rng(seed).bit_generator.state``, the run's only random
  state once the initial weights are drawn) and the metrics of every finished epoch.

The initial weights are in ``params_init.npz`` beside it. A checkpoint is written to a
temporary file, flushed to disk and renamed over the previous one (``os.replace``), so
an interrupt or a crash at any moment leaves either the old checkpoint or the new one,
never a torn file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import ConfigError

#: The checkpoint's file name inside a run directory.
CHECKPOINT = "checkpoint.npz"
_FORMAT = 1


@dataclass
class Checkpoint:
    """The state of a run after ``epoch`` finished epochs (see the module docstring)."""

    epoch: int
    params_pc: dict[str, np.ndarray]
    params_bp: dict[str, np.ndarray]
    rng_state: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def save_checkpoint(folder: str | os.PathLike, state: Checkpoint) -> Path:
    """Write ``folder/checkpoint.npz`` atomically (temporary file, fsync, rename)."""
    folder = Path(folder)
    meta = {"format": _FORMAT, "epoch": state.epoch, "rng_state": state.rng_state, "history": state.history}
    arrays = {f"pc/{k}": np.asarray(v) for k, v in state.params_pc.items()}
    arrays.update({f"bp/{k}": np.asarray(v) for k, v in state.params_bp.items()})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    final = folder / CHECKPOINT
    tmp = folder / f".{CHECKPOINT}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def load_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """The checkpoint in ``folder``; :class:`ConfigError` when there is none or it is unreadable."""
    path = Path(folder) / CHECKPOINT
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            pc = {k[3:]: data[k] for k in data.files if k.startswith("pc/")}
            bp = {k[3:]: data[k] for k in data.files if k.startswith("bp/")}
    except FileNotFoundError:
        raise ConfigError(f"{folder} holds no checkpoint ({CHECKPOINT}); it cannot be resumed") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"the checkpoint {path} is unreadable ({exc}); it cannot be resumed") from None
    if meta.get("format") != _FORMAT:
        raise ConfigError(f"the checkpoint {path} has format {meta.get('format')!r}, this neurosim reads {_FORMAT}")
    return Checkpoint(int(meta["epoch"]), pc, bp, meta["rng_state"], [dict(r) for r in meta["history"]])


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator continuing exactly where the one whose ``bit_generator.state`` this is stopped."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)
