"""The sequence data sets: names by language and tiny-shakespeare, on tiny hand-made files
and on the real data (skipped when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from neurosim.data import (
    DATA_DIR_ENV,
    NAMES_ALPHABET,
    encode_names,
    load_names,
    load_sequences,
    load_shakespeare,
    to_ascii,
)
from neurosim.errors import ConfigError, DataError

# Lines per file of names/, from shared/data/README.md, in sorted file order.
NAMES_LINES = {
    "Arabic": 2000, "Chinese": 268, "Czech": 519, "Dutch": 297, "English": 3668, "French": 277,
    "German": 724, "Greek": 203, "Irish": 232, "Italian": 709, "Japanese": 991, "Korean": 94,
    "Polish": 139, "Portuguese": 74, "Russian": 9408, "Scottish": 100, "Spanish": 298, "Vietnamese": 73,
}
SHAKESPEARE_CHARS = 1_115_394


def _real(sub: str) -> Path:
    root = os.environ.get(DATA_DIR_ENV)
    if not root or not (Path(root) / sub).exists():
        pytest.skip(f"{sub} not found (set {DATA_DIR_ENV} or put shared/ beside the checkout)")
    return Path(root)


def _decode(seqs, row: int) -> str:
    return "".join(seqs.symbols[i] for i in seqs.ids[row] if i >= 0)


@pytest.fixture
def names_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "Polish.txt").write_text("Ślusarski\nNowak\n", encoding="utf-8")
    (folder / "German.txt").write_text("Müller\r\n\r\nSchmidt\r\nHeß\r\n", encoding="utf-8")  # CRLF, blank line
    (folder / "English.txt").write_text("Smith\nO'Neill\nJean-Luc\nAb\nLongfellowshire\n", encoding="utf-8")
    return tmp_path


# ---- encoding ---------------------------------------------------------------------------
def test_alphabet_and_ascii_folding() -> None:
    assert len(NAMES_ALPHABET) == 57 and NAMES_ALPHABET.endswith(" .,;'")  # the tutorial's n_letters
    assert to_ascii("Ślusarski") == "Slusarski" and to_ascii("Müller") == "Muller"
    assert to_ascii("Jean-Luc") == "JeanLuc" and to_ascii("Heß") == "He"  # characters outside are dropped
    assert to_ascii("O'Neill") == "O'Neill"


def test_names_keep_the_last_characters_and_pad_on_the_left() -> None:
    ids = encode_names(["Ab", "Abcde"], 4)
    a, b, c, d, e = (NAMES_ALPHABET.index(ch) for ch in "Abcde")
    assert ids.tolist() == [[-1, -1, a, b], [b, c, d, e]]
    assert ids.dtype == np.int64


# ---- names on a hand-made folder ----------------------------------------------------------
def test_load_names_fixture(names_dir: Path) -> None:
    train = load_names(names_dir, "train", steps=6, test_fraction=0.3)
    test = load_names(names_dir, "test", steps=6, test_fraction=0.3)
    assert train.classes == test.classes == ("English", "German", "Polish")  # files sorted by name
    assert (len(train), len(test)) == (7, 3)  # 10 names (blank line skipped), round(0.3 * 10) held out
    assert train.n_symbols == 57 and train.steps == 6 and train.targets is None
    got = sorted((_decode(s, r), s.classes[s.labels[r]]) for s in (train, test) for r in range(len(s)))
    assert got == sorted([
        ("Smith", "English"), ("'Neill", "English"), ("eanLuc", "English"), ("Ab", "English"),
        ("wshire", "English"), ("Muller", "German"), ("chmidt", "German"), ("He", "German"),
        ("sarski", "Polish"), ("Nowak", "Polish"),
    ])
    # the split is the seeded permutation: same seed, same split; another seed, another one
    again = load_names(names_dir, "test", steps=6, test_fraction=0.3)
    assert np.array_equal(again.ids, test.ids) and np.array_equal(again.labels, test.labels)
    order = np.random.default_rng(7).permutation(10)
    other = load_names(names_dir, "test", steps=6, test_fraction=0.3, seed=7)
    everything = load_names(names_dir, "train", steps=6, test_fraction=0.1, seed=7, limit=100)
    assert len(everything) == 9 and len(load_names(names_dir, "train", steps=6, limit=2)) == 2
    file_order = ["Smith", "'Neill", "eanLuc", "Ab", "wshire", "Muller", "chmidt", "He", "sarski", "Nowak"]
    assert [_decode(other, r) for r in range(3)] == [file_order[k] for k in order[:3]]


def test_names_one_hot_inputs(names_dir: Path) -> None:
    seqs = load_names(names_dir, "train", steps=6, test_fraction=0.3)
    x = seqs.inputs()
    assert list(x) == [f"x{t}" for t in range(1, 7)]
    assert all(v.shape == (7, 57) and v.dtype == np.float64 for v in x.values())
    onehot = seqs.one_hot()
    for r in range(len(seqs)):
        name = _decode(seqs, r)
        pad = 6 - len(name)
        assert onehot[r, :pad].sum() == 0  # left padding: zero vectors
        assert [NAMES_ALPHABET[k] for k in onehot[r, pad:].argmax(axis=1)] == list(name)
        assert np.all(onehot[r, pad:].sum(axis=1) == 1)
    assert np.array_equal(seqs.inputs(rows=np.array([2]))["x6"], x["x6"][[2]])


def test_names_errors(names_dir: Path, tmp_path: Path, no_data_env: None) -> None:
    with pytest.raises(DataError, match=f"data directory, which is not set.*--data-dir.*{DATA_DIR_ENV}"):
        load_names()
    with pytest.raises(DataError, match=r"nowhere[/\\]names not found.*--data-dir"):
        load_names(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    (empty / "names").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no <Language>.txt files"):
        load_names(empty)
    (empty / "names" / "Greek.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Greek.txt holds no names"):
        load_names(empty)
    (empty / "names" / "Greek.txt").write_text("Papadopoulos\n1234\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Greek.txt, line 2: '1234' has no character of the names alphabet"):
        load_names(empty)
    (empty / "names" / "Greek.txt").write_bytes(b"Pap\xff\n")
    with pytest.raises(DataError, match=r"Greek.txt is not UTF-8 text: byte 3"):
        load_names(empty)
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_names(names_dir, "val")
    for bad in (dict(steps=0), dict(test_fraction=1.0), dict(limit=0), dict(steps=2.0)):
        with pytest.raises(ConfigError):
            load_names(names_dir, **bad)


def test_names_from_the_environment(names_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(names_dir))
    assert len(load_sequences("names", split="test", steps=4, test_fraction=0.3)) == 3


# ---- tiny-shakespeare on a hand-made file --------------------------------------------------
@pytest.fixture
def shakespeare_dir(tmp_path: Path) -> Path:
    (tmp_path / "tinyshakespeare").mkdir()
    # 20 characters: the first int(0.9 * 20) = 18 are the train split, "ab" the test split
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("To be or not to\nbeab", encoding="ascii")
    return tmp_path


def test_load_shakespeare_windows(shakespeare_dir: Path) -> None:
    train = load_shakespeare(shakespeare_dir, "train", steps=4)
    assert train.symbols == tuple(sorted(set("To be or not to\nbeab")))
    assert train.classes == train.symbols and train.n_symbols == 10
    # train text "To be or not to\nbe" (18 chars): windows at 0, 4, 8, 12 (each needs 4 + 1 chars)
    text = "To be or not to\nbe"
    assert [_decode(train, r) for r in range(len(train))] == [text[s:s + 4] for s in (0, 4, 8, 12)]
    assert [train.symbols[k] for k in train.labels] == [text[s + 4] for s in (0, 4, 8, 12)]
    for r, s in enumerate((0, 4, 8, 12)):
        assert "".join(train.symbols[k] for k in train.targets[r]) == text[s + 1:s + 5]
    assert np.array_equal(train.targets[:, -1], train.labels)
    dense = load_shakespeare(shakespeare_dir, "train", steps=4, stride=1)
    assert len(dense) == 18 - 4 and _decode(dense, 13) == text[13:17]
    assert len(load_shakespeare(shakespeare_dir, "train", steps=4, stride=1, limit=3)) == 3
    test = load_shakespeare(shakespeare_dir, "test", steps=1)
    assert _decode(test, 0) == "a" and test.symbols[test.labels[0]] == "b" and len(test) == 1


def test_shakespeare_errors(shakespeare_dir: Path, tmp_path: Path, no_data_env: None) -> None:
    with pytest.raises(DataError, match=f"not set: expected DIR/tinyshakespeare/input.txt.*{DATA_DIR_ENV}"):
        load_shakespeare()
    with pytest.raises(DataError, match="has 2 characters, too few for one window of steps \\+ 1 = 3"):
        load_shakespeare(shakespeare_dir, "test", steps=2)
    other = tmp_path / "other"
    (other / "tinyshakespeare").mkdir(parents=True)
    with pytest.raises(DataError, match=r"input.txt not found.*--data-dir"):
        load_shakespeare(other)
    (other / "tinyshakespeare" / "input.txt").write_text("")
    with pytest.raises(DataError, match="input.txt is empty"):
        load_shakespeare(other)
    with pytest.raises(ConfigError, match="stride"):
        load_shakespeare(shakespeare_dir, stride=0)
    with pytest.raises(DataError, match="unknown sequence data set 'poems'"):
        load_sequences("poems", shakespeare_dir)
    assert len(load_sequences("tiny-shakespeare", shakespeare_dir, steps=4)) == 4


# ---- the real data ------------------------------------------------------------------------
def test_real_names() -> None:
    root = _real("names")
    train, test = load_names(root, "train", steps=8), load_names(root, "test", steps=8)
    assert train.classes == tuple(NAMES_LINES) and train.n_symbols == 57
    assert len(test) == round(0.2 * 20074) == 4015 and len(train) == 20074 - 4015
    counts = np.bincount(np.concatenate([train.labels, test.labels]), minlength=18)
    assert counts.tolist() == list(NAMES_LINES.values())
    assert train.ids.min() == -1 and train.ids.max() < 57
    # every row ends with a letter (right-aligned), padding only on the left
    assert np.all(train.ids[:, -1] >= 0)
    pad = train.ids < 0
    assert np.all(pad[:, 1:] <= pad[:, :-1])


def test_real_shakespeare() -> None:
    root = _real("tinyshakespeare/input.txt")
    train = load_shakespeare(root, "train", steps=8)
    test = load_shakespeare(root, "test", steps=8)
    n_train = int(0.9 * SHAKESPEARE_CHARS)  # 1,003,854
    assert train.n_symbols == 65 and train.classes == train.symbols
    assert len(train) == len(range(0, n_train - 8, 8)) == 125_481
    assert len(test) == len(range(0, SHAKESPEARE_CHARS - n_train - 8, 8)) == 13_942
    assert _decode(train, 0) == "First Ci" and train.symbols[train.labels[0]] == "t"
    assert _decode(train, 1) == "tizen:\nB"
