"""Sequence data sets for the recurrent models: ``names`` and ``tinyshakespeare``.

Both loaders return a :class:`Sequences`: symbol indices ``ids`` of shape ``(N, T)``
(``-1`` marks padding), one-hot encoded on demand as the inputs ``x1..xT`` of
:func:`neurosim.graph.rnn` / :func:`neurosim.graph.lstm`, and integer ``labels``.
Files are read from the data directory exactly as for MNIST: the ``data_dir`` argument,
else the environment variable ``NEUROSIM_DATA_DIR`` (``--data-dir`` on the command line).

``names`` (``<data_dir>/names/<Language>.txt``)
    Sequence classification as in the PyTorch tutorial "Classifying Names with a
    Character-Level RNN" and Millidge, Tschantz and Buckley (2020, section 4,
    arXiv:2006.04182): one surname per line, the class is the language, classes are the
    files sorted by name (18 in the stored data: Arabic ... Vietnamese). Each name is
    turned into ASCII as the tutorial does (Unicode NFD decomposition, combining marks
    dropped, then every character outside :data:`NAMES_ALPHABET` dropped:
    ``"Ślusarski" -> "Slusarski"``, ``"Jean-Luc" -> "JeanLuc"``), and encoded one-hot
    over the 57 symbols of :data:`NAMES_ALPHABET` (``string.ascii_letters + " .,;'"``).
    Names are fitted to ``T = steps`` time steps by keeping their **last** ``T``
    characters and **left**-padding shorter ones with zero vectors, so the final step
    always reads the last letter (the suffix, most telling of the language) and the
    readout at ``h_T`` follows the name directly. The split is random but fixed:
    ``numpy.random.default_rng(seed).permutation(N)`` over all names (files in sorted
    order, lines in file order); its first ``round(test_fraction N)`` form the test
    split, the rest the train split, in that shuffled order.
``tinyshakespeare`` (``<data_dir>/tinyshakespeare/input.txt``)
    Next-character prediction on Karpathy's char-rnn corpus. The vocabulary is the
    sorted set of the file's characters (65 in the stored file); the first
    ``int(0.9 n)`` characters are the train split and the rest the test split (the
    nanoGPT convention). Window ``k`` of a split starts at character ``s = k stride``
    (``stride`` defaults to ``steps``: non-overlapping windows): inputs are the ``T``
    characters ``s .. s+T-1``; ``labels`` is the next character ``s+T`` (for a loss on
    the last step) and ``targets`` the shifted sequence ``s+1 .. s+T`` (for a loss on
    every step; ``targets[:, -1] == labels``).

Missing folders or files, undecodable, empty or malformed files raise
:class:`~neurosim.errors.DataError` naming the path and how to fix it; bad arguments
(``steps``, ``stride``, ``test_fraction``, ``limit``) raise
:class:`~neurosim.errors.ConfigError`.
"""

from __future__ import annotations

import os
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.data.datasets import DATA_DIR_ENV, SPLITS, resolve_data_dir
from neurosim.errors import ConfigError, DataError

#: The symbols of the names data set (the PyTorch tutorial's ``all_letters``).
NAMES_ALPHABET = string.ascii_letters + " .,;'"
#: Seed of the fixed permutation that splits ``names`` into train and test.
NAMES_SPLIT_SEED = 20200
#: Fraction of ``names`` held out as the test split.
NAMES_TEST_FRACTION = 0.2
#: Fraction of tiny-shakespeare's characters (from the start) in the train split.
SHAKESPEARE_TRAIN_FRACTION = 0.9
#: Where tiny-shakespeare lives under the data directory.
SHAKESPEARE_FILE = Path("tinyshakespeare") / "input.txt"


@dataclass(frozen=True)
class Sequences:
    """One split of a sequence data set.

    Attributes
    ----------
    ids
        int64 ``(N, T)``: the symbol index of every step, ``-1`` for padding.
    labels
        int64 ``(N,)``: the class of each sequence (names: the language; tiny-shakespeare:
        the character after the window).
    targets
        int64 ``(N, T)``, the next symbol after every step (tiny-shakespeare), or
        ``None`` (names).
    symbols
        The input alphabet: ``ids`` index it.
    classes
        The class names: ``labels`` index it (tiny-shakespeare: the vocabulary again).
    """

    ids: np.ndarray
    labels: np.ndarray
    targets: np.ndarray | None
    symbols: tuple[str, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def steps(self) -> int:
        """``T``, the number of time steps."""
        return int(self.ids.shape[1])

    @property
    def n_symbols(self) -> int:
        """The width of every one-hot input vector (the ``n_in`` of the model)."""
        return len(self.symbols)

    @property
    def n_classes(self) -> int:
        """The number of classes (the ``n_out`` of the model)."""
        return len(self.classes)

    def one_hot(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """float64 ``(n, T, n_symbols)``: one-hot symbols, zero vectors for padding."""
        ids = self.ids if rows is None else self.ids[rows]
        out = np.zeros((*ids.shape, self.n_symbols))
        n, t = np.nonzero(ids >= 0)
        out[n, t, ids[n, t]] = 1.0
        return out

    def inputs(self, rows: np.ndarray | slice | None = None, prefix: str = "x") -> dict[str, np.ndarray]:
        """The model inputs ``{"x1": (n, n_symbols), ..., "xT": ...}`` of the given rows.

        >>> seqs = Sequences(np.array([[-1, 0, 1]]), np.array([0]), None, ("a", "b"), ("c",))
        >>> {k: v.tolist() for k, v in seqs.inputs().items()}
        {'x1': [[0.0, 0.0]], 'x2': [[1.0, 0.0]], 'x3': [[0.0, 1.0]]}
        """
        x = self.one_hot(rows)
        return {f"{prefix}{t + 1}": x[:, t] for t in range(self.steps)}


def to_ascii(name: str) -> str:
    """A name in :data:`NAMES_ALPHABET`, as the PyTorch tutorial's ``unicodeToAscii``.

    >>> to_ascii("Ślusarski"), to_ascii("Müller-Lüdenscheidt")
    ('Slusarski', 'MullerLudenscheidt')
    """
    return "".join(
        c for c in unicodedata.normalize("NFD", name)
        if unicodedata.category(c) != "Mn" and c in NAMES_ALPHABET
    )


def encode_names(names: list[str], steps: int) -> np.ndarray:
    """int64 ``(len(names), steps)`` indices into :data:`NAMES_ALPHABET`: the last
    ``steps`` characters of each (ASCII) name, left-padded with ``-1``.

    >>> encode_names(["ab", "abcd"], 3).tolist()
    [[-1, 0, 1], [1, 2, 3]]
    """
    from neurosim import validation

    _require_count("steps", steps)
    validation.require_budget(8 * len(names) * steps, validation.MEMORY_BUDGET,
                              f"the encoded names ({len(names)} names x {steps} steps, bytes)", "use fewer steps",
                              ConfigError, "MEMORY_BUDGET")
    index = {c: k for k, c in enumerate(NAMES_ALPHABET)}
    out = np.full((len(names), steps), -1, dtype=np.int64)
    for row, name in enumerate(names):
        tail = name[-steps:]
        out[row, steps - len(tail):] = [index[c] for c in tail]
    return out


def load_names(
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    steps: int = 8,
    seed: int = NAMES_SPLIT_SEED,
    test_fraction: float = NAMES_TEST_FRACTION,
    limit: int | None = None,
) -> Sequences:
    """One split of the names data set (see the module docstring).

    Parameters
    ----------
    data_dir
        Folder holding ``names/`` (default: ``$NEUROSIM_DATA_DIR``).
    split
        ``"train"`` or ``"test"``.
    steps
        ``T``: names keep their last ``T`` characters, shorter ones are left-padded.
    seed, test_fraction
        The fixed random split.
    limit
        Keep the first ``limit`` sequences of the split (``None``: all).

    Examples
    --------
    >>> test = load_names(split="test", steps=8)  # doctest: +SKIP
    >>> len(test), test.n_symbols, test.n_classes, test.classes[0]  # doctest: +SKIP
    (4015, 57, 18, 'Arabic')
    """
    _check_split(split)
    _require_count("steps", steps)
    _check_limit(limit)
    if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
        raise ConfigError(f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}")
    folder = _folder(data_dir, "names", "names/<Language>.txt")
    files = sorted(p for p in folder.glob("*.txt") if p.is_file())
    if not files:
        raise DataError(
            f"{folder} holds no <Language>.txt files; the names data set is one file of surnames "
            "per language (the PyTorch char-RNN tutorial's data/names/)"
        )
    names: list[str] = []
    labels: list[int] = []
    for k, path in enumerate(files):
        found = _read_names(path)
        names += found
        labels += [k] * len(found)
    order = np.random.default_rng(seed).permutation(len(names))
    n_test = int(round(test_fraction * len(names)))
    chosen = order[:n_test] if split == "test" else order[n_test:]
    if limit is not None:
        chosen = chosen[:limit]
    if chosen.size == 0:
        raise DataError(f"the {split} split of {folder} is empty ({len(names)} names in all); add names or "
                        "change test_fraction")
    ids = encode_names([names[i] for i in chosen], steps)
    return Sequences(ids, np.asarray(labels, dtype=np.int64)[chosen], None, tuple(NAMES_ALPHABET),
                     tuple(p.stem for p in files))


def load_shakespeare(
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    steps: int = 8,
    stride: int | None = None,
    limit: int | None = None,
) -> Sequences:
    """One split of tiny-shakespeare as windows of ``steps`` characters (see the module
    docstring).

    Parameters
    ----------
    data_dir
        Folder holding ``tinyshakespeare/input.txt`` (default: ``$NEUROSIM_DATA_DIR``).
    split
        ``"train"`` (first 90% of the characters) or ``"test"`` (the rest).
    steps
        ``T``, the window length.
    stride
        Characters between window starts (default ``steps``: non-overlapping windows).
    limit
        Keep the first ``limit`` windows (``None``: all).

    Examples
    --------
    >>> train = load_shakespeare(split="train", steps=8, limit=2)  # doctest: +SKIP
    >>> "".join(train.symbols[i] for i in train.ids[0]), train.classes[train.labels[0]]  # doctest: +SKIP
    ('First Ci', 't')
    """
    _check_split(split)
    _require_count("steps", steps)
    stride = steps if stride is None else _require_count("stride", stride)
    _check_limit(limit)
    folder = _folder(data_dir, "tinyshakespeare", str(SHAKESPEARE_FILE))
    path = folder / SHAKESPEARE_FILE.name
    text = _read_text(path, "tinyshakespeare/input.txt")
    if not text:
        raise DataError(f"{path} is empty; expected the tiny-shakespeare text (char-rnn's input.txt)")
    vocab = sorted(set(text))
    index = {c: k for k, c in enumerate(vocab)}
    codes = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    n_train = int(SHAKESPEARE_TRAIN_FRACTION * len(codes))
    part = codes[:n_train] if split == "train" else codes[n_train:]
    if len(part) <= steps:
        raise DataError(
            f"the {split} split of {path} has {len(part)} characters, too few for one window of "
            f"steps + 1 = {steps + 1} (inputs and the next character); use fewer steps or a longer text"
        )
    starts = np.arange(0, len(part) - steps, stride)
    if limit is not None:
        starts = starts[:limit]
    from neurosim import validation

    validation.require_budget(3 * 8 * len(starts) * steps, validation.MEMORY_BUDGET,
                              f"the windows ({len(starts)} windows x {steps} steps, bytes)",
                              "use fewer steps, a larger stride or a limit", ConfigError, "MEMORY_BUDGET")
    offsets = starts[:, None] + np.arange(steps)
    targets = part[offsets + 1]
    return Sequences(part[offsets], targets[:, -1].copy(), targets, tuple(vocab), tuple(vocab))


#: Loaders of the sequence data sets, by name.
SEQUENCE_DATASETS: dict[str, Callable[..., Sequences]] = {
    "names": load_names,
    "tinyshakespeare": load_shakespeare,
}


def load_sequences(name: str, data_dir: str | os.PathLike | None = None, split: str = "train",
                   steps: int = 8, **options: object) -> Sequences:
    """Load sequence data set ``name`` (``"names"`` or ``"tinyshakespeare"``, also
    spelled ``"tiny-shakespeare"``/``"shakespeare"``); ``options`` go to its loader."""
    key = str(name).lower().replace("-", "").replace("_", "")
    key = "tinyshakespeare" if key == "shakespeare" else key
    if key not in SEQUENCE_DATASETS:
        raise DataError(f"unknown sequence data set {name!r}; choose one of {sorted(SEQUENCE_DATASETS)}")
    return SEQUENCE_DATASETS[key](data_dir, split=split, steps=steps, **options)


def _require_count(what: str, value: object, least: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{what} must be an int >= {least}, got {value!r}")
    return int(value)


def _check_limit(limit: int | None) -> None:
    if limit is not None:
        _require_count("limit", limit)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")


def _hint(folder_name: str) -> str:
    return (f"point neurosim at the folder holding {folder_name}/ with --data-dir DIR or the "
            f"environment variable {DATA_DIR_ENV}")


def _folder(data_dir: str | os.PathLike | None, folder_name: str, expected: str) -> Path:
    """``<data dir>/<folder_name>``, or a DataError saying how to point at it."""
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(
            f"the {folder_name} data set needs a data directory, which is not set: expected "
            f"DIR/{expected}; {_hint(folder_name)}"
        )
    folder = root / folder_name
    if not folder.is_dir():
        raise DataError(f"data folder {folder} not found (expected {root / expected}); {_hint(folder_name)}")
    return folder


def _read_text(path: Path, expected: str) -> str:
    """The UTF-8 text of ``path`` (universal newlines), or a DataError naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file {path} not found (expected DIR/{expected}); "
                        f"{_hint(expected.split('/')[0])}") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text: byte {exc.start} is {raw[exc.start:exc.start + 1]!r}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_names(path: Path) -> list[str]:
    """The ASCII names of one language file, one per non-blank line."""
    names = []
    for number, line in enumerate(_read_text(path, f"names/{path.name}").split("\n"), start=1):
        if not line.strip():
            continue
        name = to_ascii(line.strip())
        if not name:
            raise DataError(
                f"{path}, line {number}: {line.strip()!r} has no character of the names alphabet "
                f"(ASCII letters and {NAMES_ALPHABET[52:]!r}) once accents are removed"
            )
        names.append(name)
    if not names:
        raise DataError(f"{path} holds no names; each <Language>.txt needs one surname per line")
    return names
