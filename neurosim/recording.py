"""Run directories: what a training run leaves on disk.

A run directory holds

``config.json``
    The full configuration (data set, model, rule and its options, seed, dtype...) and
    the environment: versions of Python, numpy, numba and neurosim, and the platform.
``metrics.csv``
    One row per epoch, with a header line.
``params_<name>.npz``
    One file per weight set (e.g. ``params_init.npz``, ``params_fazil.npz``,
    ``params_bp.npz``), keyed by parameter name in PyTorch's layout
    (``layer1.weight`` of shape ``(out, in)``...); load with ``numpy.load``.

It is written atomically: :class:`RunDirectory` builds everything in a hidden temporary
folder beside the target and renames it into place only when the run succeeds, so an
error never leaves a half-written run directory (the temporary folder, and any parent
folder created for it, are removed).

A *resumable* run directory (``RunDirectory(target, resumable=True)``, used by
``neurosim train``) is built in ``.<name>.partial`` beside the target. When the run is
interrupted (Ctrl-C, SIGTERM) after writing a checkpoint, that folder is kept and
``neurosim train --resume <target>`` continues it (:meth:`RunDirectory.resume`).

Every partial folder holds ``.owner`` (the writing process's id and host). A folder
whose owner is gone (a run killed by SIGKILL, a power cut) is never left silently: the
next run directory opened beside it prints a note, saying how to resume it when it
holds a checkpoint, and removing it when it does not.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with RunDirectory(root / "run") as run:
...     run.write_config({"seed": 0})
...     run.log_metrics({"epoch": 1, "loss": 0.5})
>>> sorted(p.name for p in (root / "run").iterdir())
['config.json', 'metrics.csv']
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_OWNER = ".owner"
#: A partial folder without an owner file younger than this is taken as being set up.
_SETUP_GRACE_S = 60.0


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _owner_alive(folder: Path) -> int | None:
    """The pid of the live process writing ``folder``, or None when it is gone."""
    try:
        owner = json.loads((folder / _OWNER).read_text())
    except (OSError, ValueError):
        try:
            young = time.time() - folder.stat().st_mtime < _SETUP_GRACE_S
        except OSError:
            return None
        return -1 if young else None
    if owner.get("stopped"):
        return None
    if owner.get("host") != socket.gethostname():
        return int(owner.get("pid", -1))  # another machine's run: assume it is alive
    pid = int(owner.get("pid", -1))
    if pid == os.getpid():
        return pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except (PermissionError, OSError):
        return pid
    return pid


def _resumable(folder: Path) -> bool:
    from neurosim.checkpoint import CHECKPOINT

    return (folder / CHECKPOINT).is_file() and (folder / "config.json").is_file()


def partial_folder(target: str | os.PathLike) -> Path:
    """The folder a resumable run of ``target`` is written in: ``.<name>.partial`` beside it."""
    target = Path(target)
    return target.parent / f".{target.name}.partial"


def target_of(partial: Path) -> Path:
    """The run directory a partial folder ``.<name>[.XXXX].partial`` is written for."""
    name = partial.name[1:-len(".partial")]
    if not (partial / "checkpoint.npz").exists() and "." in name:
        name = name.rsplit(".", 1)[0]  # a temporary folder's random suffix
    return partial.parent / name


def sweep_stale_partials(parent: Path, notify=_note) -> None:
    """Report or remove the partial folders in ``parent`` whose writer is gone (see the module docstring)."""
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith(".partial")]
    except OSError:
        return
    for folder in sorted(candidates):
        if not folder.is_dir() or _owner_alive(folder) is not None:
            continue
        if _resumable(folder):
            notify(f"{folder} is an interrupted run; resume it with: neurosim train --resume {target_of(folder)}"
                   f"  (or remove the folder)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            notify(f"removed {folder}, left by a run that stopped before saving anything it could resume from")


def environment() -> dict[str, str]:
    """Versions of Python, numpy, numba and neurosim, and the platform, as strings."""
    import numba

    from neurosim import __version__

    return {
        "neurosim": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executable": sys.executable,
    }


def default_run_dir(label: str, root: str | os.PathLike = "runs") -> Path:
    """A fresh path ``<root>/<YYYYmmdd-HHMMSS>-<label>`` (with ``-2``, ``-3``... if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{label}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, type):
        return obj.__name__
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class RunDirectory:
    """A run directory built in a temporary folder and renamed into place on success.

    Use it as a context manager: leaving the ``with`` block normally calls
    :meth:`commit`; leaving it by an exception calls :meth:`abort`, which deletes
    everything written. ``target`` must not exist yet (:class:`ConfigError` otherwise,
    raised on construction, before any work is done).
    """

    def __init__(self, target: str | os.PathLike, resumable: bool = False) -> None:
        self.target = Path(target)
        if self.target.exists():
            raise ConfigError(
                f"run directory {self.target} already exists; choose another --out or remove it"
            )
        self.resumable = resumable
        self._tmp: Path | None = None
        self._made_parents: list[Path] = []
        self._metric_keys: list[str] | None = None
        self.committed = False
        self.kept = False
        if resumable:
            partial = partial_folder(self.target)
            if partial.exists():
                pid = _owner_alive(partial)
                if pid is not None:
                    raise ConfigError(f"run directory {self.target} is being written by another process "
                                      f"(pid {pid}, in {partial})")
                if _resumable(partial):
                    raise ConfigError(f"an interrupted run of {self.target} is in {partial}: resume it with "
                                      f"'neurosim train --resume {self.target}', or remove that folder")
                shutil.rmtree(partial, ignore_errors=True)
                _note(f"removed {partial}, left by a run that stopped before saving anything it could resume from")

    @classmethod
    def resume(cls, path: str | os.PathLike) -> RunDirectory:
        """Reopen the partial folder of an interrupted resumable run (``path``: the target or the folder)."""
        path = Path(path)
        partial = path if path.name.endswith(".partial") else partial_folder(path)
        target = target_of(partial) if path.name.endswith(".partial") else path
        if not partial.is_dir():
            if target.is_dir():
                raise ConfigError(f"run {target} is finished; nothing to resume")
            raise ConfigError(f"no interrupted run of {target} (no folder {partial})")
        pid = _owner_alive(partial)
        if pid is not None:
            raise ConfigError(f"run {target} is being written by another process (pid {pid}, in {partial})")
        if not _resumable(partial):
            raise ConfigError(f"{partial} holds no checkpoint and cannot be resumed; remove it")
        if target.exists():
            raise ConfigError(f"run directory {target} already exists beside {partial}; move one of them away")
        run = cls.__new__(cls)
        run.target, run.resumable, run._tmp, run._made_parents = target, True, partial, []
        run._metric_keys, run.committed, run.kept = None, False, False
        run._write_owner()
        return run

    def _write_owner(self) -> None:
        assert self._tmp is not None
        (self._tmp / _OWNER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))

    def keep(self) -> Path:
        """Leave the partial folder in place (an interrupted resumable run); return it."""
        assert self._tmp is not None
        (self._tmp / _OWNER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "stopped": True}))
        self.kept = True
        return self._tmp

    # -- life cycle --------------------------------------------------------------
    def open(self) -> RunDirectory:
        """Create the temporary folder beside the target (and the target's missing parents)."""
        if self._tmp is not None:
            return self
        parent = self.target.parent
        missing = []
        p = parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._made_parents = missing  # deepest first
            sweep_stale_partials(parent)
            if self.resumable:
                self._tmp = partial_folder(self.target)
                self._tmp.mkdir()
            else:
                self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".partial", dir=parent))
            self._write_owner()
        except FileExistsError:
            self._remove_parents()
            raise ConfigError(f"run directory {self.target} is being written by another process") from None
        except OSError as exc:
            self._remove_parents()
            raise ConfigError(f"cannot create run directory {self.target}: {exc.strerror or exc}") from None
        return self

    @property
    def path(self) -> Path:
        """The temporary folder being written (the target once committed)."""
        if self.committed:
            return self.target
        if self._tmp is None:
            self.open()
        assert self._tmp is not None
        return self._tmp

    def commit(self) -> Path:
        """Rename the temporary folder to the target; return the target."""
        tmp = self.path
        (tmp / _OWNER).unlink(missing_ok=True)
        try:
            os.rename(tmp, self.target)
        except OSError as exc:
            self.abort()
            raise ConfigError(f"cannot move the finished run to {self.target}: {exc.strerror or exc}") from None
        self._tmp = None
        self.committed = True
        return self.target

    def abort(self) -> None:
        """Delete everything written so far, and the parent folders this run created."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._remove_parents()

    def _remove_parents(self) -> None:
        for p in self._made_parents:
            try:
                p.rmdir()
            except OSError:
                break
        self._made_parents = []

    def __enter__(self) -> RunDirectory:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.kept:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- content -----------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> Path:
        """Write ``config.json`` (sorted keys, indented); Paths, tuples and numpy scalars are converted."""
        path = self.path / "config.json"
        path.write_text(json.dumps(dict(config), indent=2, sort_keys=True, default=_jsonable) + "\n")
        return path

    def rewrite_metrics(self, rows: list[Mapping[str, Any]]) -> None:
        """Replace ``metrics.csv`` by ``rows`` (a resumed run, from its checkpoint)."""
        (self.path / "metrics.csv").unlink(missing_ok=True)
        self._metric_keys = None
        for row in rows:
            self.log_metrics(row)

    def log_metrics(self, row: Mapping[str, Any]) -> Path:
        """Append one row to ``metrics.csv``; the first row fixes the columns."""
        path = self.path / "metrics.csv"
        keys = list(row)
        if self._metric_keys is None:
            self._metric_keys = keys
            with open(path, "w", newline="") as fh:
                csv.writer(fh).writerow(keys)
        elif keys != self._metric_keys:
            raise ValueError(f"metrics row has columns {keys}, expected {self._metric_keys}")
        with open(path, "a", newline="") as fh:
            csv.writer(fh).writerow([_cell(row[k]) for k in keys])
        return path

    def save_params(self, name: str, params: Mapping[str, np.ndarray]) -> Path:
        """Write ``params_<name>.npz`` with one array per parameter name."""
        if not _NAME.match(name):
            raise ValueError(f"weight-set name {name!r} must match {_NAME.pattern}")
        path = self.path / f"params_{name}.npz"
        with open(path, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in params.items()})
        return path


def _cell(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` (or of the one inside run directory ``path``) as dicts of floats."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def load_params(path: str | os.PathLike, name: str | None = None) -> dict[str, np.ndarray]:
    """A weight set saved by :meth:`RunDirectory.save_params` (``path`` a file, or a run dir and ``name``)."""
    path = Path(path)
    if name is not None:
        path = path / f"params_{name}.npz"
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
