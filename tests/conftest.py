"""Shared fixtures.

The real data sets live in ``<repo>/../shared/data`` in a developer checkout and on
CI. When ``NEUROSIM_DATA_DIR`` is unset and that folder exists, it is exported here,
so that every test (and every ``neurosim`` command a test runs) finds it. Tests that
need MNIST or Fashion-MNIST take the ``mnist_dir``/``fashion_dir`` fixtures, which skip
cleanly when the files are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neurosim.data import DATA_DIR_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

if not os.environ.get(DATA_DIR_ENV) and SHARED_DATA.is_dir():
    os.environ[DATA_DIR_ENV] = str(SHARED_DATA)


def _idx_dir(name: str) -> Path:
    root = os.environ.get(DATA_DIR_ENV)
    folder = Path(root) / name if root else None
    if folder is None or not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{name} idx files not found (set {DATA_DIR_ENV} or put shared/ beside the checkout)")
    return folder


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data directory (its parent of mnist/ and fashion-mnist/); skips if absent."""
    return _idx_dir("mnist").parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """``<data dir>/mnist``; skips the test if the MNIST files are absent."""
    return _idx_dir("mnist")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """``<data dir>/fashion-mnist``; skips the test if the files are absent."""
    return _idx_dir("fashion-mnist")


@pytest.fixture
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset NEUROSIM_DATA_DIR for one test."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


@pytest.fixture
def fake_idx_data(tmp_path: Path):
    """Make a small data directory ``root/<name>/`` of IDX files; returns a factory.

    ``make(name="mnist", n_train=40, n_test=20, float_images=False, nan=False)``
    writes the four gzip files with random 28x28 images and labels 0..9 and returns
    the data directory (the parent of ``<name>/``). ``float_images`` stores float64
    pixels in [0, 1]; ``nan`` puts a NaN in the first training image.
    """
    import numpy as np

    from neurosim.data import write_idx

    def make(name: str = "mnist", n_train: int = 40, n_test: int = 20, float_images: bool = False,
             nan: bool = False, root: Path | None = None) -> Path:
        root = root if root is not None else tmp_path / "data"
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            if float_images:
                images = images / 255.0
                if nan and prefix == "train":
                    images[0, 3, 5] = np.nan
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
        return root

    return make
