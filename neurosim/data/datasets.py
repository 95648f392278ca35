"""The data sets neurosim trains on: ``digits`` (bundled), ``mnist`` and ``fashion-mnist``.

:func:`load_dataset` returns ``(x, labels)``: ``x`` a float64 array ``(N, features)``
with values in ``[0, 1]``, ``labels`` an int64 array ``(N,)`` of class indices.

``digits``
    scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features with
    values 0..16, divided by 16 here; no download). They come without a test split,
    so neurosim fixes one: the indices are shuffled by
    ``numpy.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797)``, the first
    ``round(0.2 * 1797) = 359`` form the test split and the other 1,438 the train split,
    identically on every machine.
``mnist``, ``fashion-mnist``
    The original IDX files, read from ``<data_dir>/<name>/``:
    ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz`` (split ``"train"``,
    60,000 images) and ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``
    (split ``"test"``, 10,000 images); the uncompressed files (without ``.gz``) are
    accepted too. 28x28 uint8 pixels are flattened row-major and divided by 255.

The data directory is the ``data_dir`` argument, else the environment variable
``NEUROSIM_DATA_DIR``. Missing, corrupt or non-finite data raise
:class:`~neurosim.errors.DataError` saying which file and how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.data.idx import read_idx
from neurosim.errors import DataError

#: Environment variable naming the data directory.
DATA_DIR_ENV = "NEUROSIM_DATA_DIR"
#: Seed of the fixed permutation that splits ``digits`` into train and test.
DIGITS_SPLIT_SEED = 20200
#: Fraction of ``digits`` held out as the test split.
DIGITS_TEST_FRACTION = 0.2

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set: input width and number of classes."""

    name: str
    n_features: int
    n_classes: int
    needs_data_dir: bool


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", 64, 10, False),
    "mnist": DatasetInfo("mnist", 784, 10, True),
    "fashion-mnist": DatasetInfo("fashion-mnist", 784, 10, True),
}

_IDX_PREFIX = {"train": "train", "test": "t10k"}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of data set ``name``; DataError listing the known ones otherwise."""
    key = str(name).lower().replace("_", "-")
    if key == "fashion":
        key = "fashion-mnist"
    if key not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[key]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data directory: ``data_dir`` if given, else ``$NEUROSIM_DATA_DIR``, else ``None``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    return Path(env).expanduser() if env else None


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a data set as ``(x, labels)``.

    Parameters
    ----------
    name
        ``"digits"``, ``"mnist"`` or ``"fashion-mnist"``.
    data_dir
        Folder holding ``mnist/`` and ``fashion-mnist/`` (default: ``$NEUROSIM_DATA_DIR``).
        Not needed for ``digits``.
    split
        ``"train"`` or ``"test"``.

    Returns
    -------
    x : ndarray, float64, shape (N, features), values in [0, 1]
    labels : ndarray, int64, shape (N,)

    Examples
    --------
    >>> x, labels = load_dataset("digits", split="test")
    >>> x.shape, labels.shape, float(x.max())
    ((359, 64), (359,), 1.0)
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")
    if info.name == "digits":
        x, labels = _load_digits(split)
    else:
        x, labels = _load_idx_pair(info, resolve_data_dir(data_dir), split)
    _check(x, labels, info, f"{info.name} ({split})")
    return x, labels


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    n_test = int(round(DIGITS_TEST_FRACTION * len(labels)))
    idx = order[:n_test] if split == "test" else order[n_test:]
    return x[idx], labels[idx]


def _idx_file(folder: Path, stem: str) -> Path:
    """``folder/stem.gz`` if it exists, else ``folder/stem`` if that exists, else the ``.gz`` name."""
    gz = folder / f"{stem}.gz"
    raw = folder / stem
    if not gz.exists() and raw.exists():
        return raw
    return gz


def _load_idx_pair(info: DatasetInfo, data_dir: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = _IDX_PREFIX[split]
    image_stem, label_stem = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    hint = (f"point neurosim at the folder holding {info.name}/ with --data-dir DIR or the environment "
            f"variable {DATA_DIR_ENV}")
    if data_dir is None:
        raise DataError(
            f"the {info.name} data set needs a data directory, which is not set: expected "
            f"DIR/{info.name}/{image_stem}.gz; {hint}"
        )
    folder = data_dir / info.name
    images_path, labels_path = _idx_file(folder, image_stem), _idx_file(folder, label_stem)
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"data file {path} not found; {hint}")
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    x = images.reshape(images.shape[0], -1)
    if x.shape[1] != info.n_features:
        raise DataError(
            f"{images_path} holds images of shape {images.shape[1:]}, expected {info.n_features} pixels"
        )
    if x.dtype == np.uint8:
        x = x.astype(np.float64) / 255.0
    elif x.dtype.kind == "f":
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{images_path} contains NaN or infinite pixel values")
    else:
        raise DataError(f"{images_path} holds {x.dtype} pixels; expected uint8 (or float in [0, 1])")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path} holds {labels.dtype} labels; expected integers")
    return x, labels.astype(np.int64)


def _check(x: np.ndarray, labels: np.ndarray, info: DatasetInfo, what: str) -> None:
    """Raise DataError unless x is finite in [0, 1] and labels are class indices."""
    if x.ndim != 2 or x.shape[1] != info.n_features or len(labels) != x.shape[0]:
        raise DataError(f"{what}: inputs of shape {x.shape} and {len(labels)} labels do not fit (N, {info.n_features})")
    if x.shape[0] == 0:
        raise DataError(f"{what} holds no samples")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what} contains NaN or infinite input values")
    if x.min() < 0.0 or x.max() > 1.0:
        raise DataError(f"{what} has input values in [{x.min()}, {x.max()}], outside [0, 1]")
    if labels.min() < 0 or labels.max() >= info.n_classes:
        raise DataError(
            f"{what} has labels in [{labels.min()}, {labels.max()}], outside 0..{info.n_classes - 1}"
        )


def one_hot(labels: np.ndarray, n: int, dtype: type = np.float64) -> np.ndarray:
    """Rows of ``eye(n)`` for integer ``labels``: shape ``(len(labels), n)``.

    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    from neurosim import validation

    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        raise DataError(f"labels must be a 1-d integer array, got {labels!r:.80}") from None
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"labels must be a 1-d integer array, got {labels.dtype} of shape {labels.shape}")
    if not validation.is_count(n) or n < 1:
        raise DataError(f"the number of classes must be an int >= 1, got {n!r}")
    validation.require_budget(labels.shape[0] * n * np.dtype(dtype).itemsize, validation.MEMORY_BUDGET,
                              "the size of the one-hot array (bytes)", "use fewer classes or samples",
                              DataError, "MEMORY_BUDGET")
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise DataError(f"labels in [{labels.min()}, {labels.max()}] do not fit {n} classes")
    out = np.zeros((labels.shape[0], n), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out
