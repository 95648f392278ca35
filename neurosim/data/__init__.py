"""Data sets and file formats: :func:`load_dataset`, :func:`one_hot`, the IDX reader."""

from neurosim.data.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    DIGITS_SPLIT_SEED,
    dataset_info,
    load_dataset,
    one_hot,
    resolve_data_dir,
)
from neurosim.data.idx import parse_idx, read_idx, write_idx

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DIGITS_SPLIT_SEED",
    "dataset_info",
    "load_dataset",
    "one_hot",
    "parse_idx",
    "read_idx",
    "resolve_data_dir",
    "write_idx",
]
