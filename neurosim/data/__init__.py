"""Data sets and file formats: :func:`load_dataset`, :func:`one_hot`, the IDX reader, and the
sequence data sets of the recurrent models (:func:`load_names`, :func:`load_shakespeare`)."""

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
from neurosim.data.sequences import (
    NAMES_ALPHABET,
    NAMES_SPLIT_SEED,
    SEQUENCE_DATASETS,
    Sequences,
    encode_names,
    load_names,
    load_sequences,
    load_shakespeare,
    to_ascii,
)

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DIGITS_SPLIT_SEED",
    "NAMES_ALPHABET",
    "NAMES_SPLIT_SEED",
    "SEQUENCE_DATASETS",
    "Sequences",
    "dataset_info",
    "encode_names",
    "load_dataset",
    "load_names",
    "load_sequences",
    "load_shakespeare",
    "one_hot",
    "parse_idx",
    "read_idx",
    "resolve_data_dir",
    "to_ascii",
    "write_idx",
]
