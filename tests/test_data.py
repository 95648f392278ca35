"""The IDX reader and the data sets: real files, hand-made bytes, corrupt files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from neurosim.data import DATA_DIR_ENV, DIGITS_SPLIT_SEED, load_dataset, one_hot, parse_idx, read_idx, write_idx
from neurosim.errors import DataError

# Facts from shared/data/README.md (checked against the official data sets).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---- the IDX format on real files ------------------------------------------------------
def test_read_idx_mnist_files(mnist_dir: Path) -> None:
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,)
    assert np.bincount(labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert images.mean() == pytest.approx(33.318, abs=1e-3)
    test_labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", ndim=1)
    assert np.bincount(test_labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", ndim=3).shape == (10000, 28, 28)


def test_magic_numbers_of_real_files(mnist_dir: Path) -> None:
    with gzip.open(mnist_dir / "train-images-idx3-ubyte.gz", "rb") as fh:
        assert fh.read(4) == bytes.fromhex("00000803")
    with gzip.open(mnist_dir / "train-labels-idx1-ubyte.gz", "rb") as fh:
        assert fh.read(4) == bytes.fromhex("00000801")


def test_load_mnist(data_dir: Path) -> None:
    x, labels = load_dataset("mnist", data_dir, "train")
    assert x.shape == (60000, 784) and x.dtype == np.float64 and labels.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert x.mean() == pytest.approx(0.1307, abs=1e-4)
    assert np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    xt, lt = load_dataset("mnist", data_dir, "test")
    assert xt.shape == (10000, 784) and np.bincount(lt).tolist() == MNIST_TEST_COUNTS
    # Row-major flattening: pixel (r, c) of image i is x[i, 28 r + c].
    raw = read_idx(Path(data_dir) / "mnist" / "t10k-images-idx3-ubyte.gz")
    assert xt[7, 28 * 12 + 9] == raw[7, 12, 9] / 255.0


def test_load_fashion_mnist_from_env(fashion_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(fashion_dir.parent))
    x, labels = load_dataset("fashion-mnist", split="test")
    assert x.shape == (10000, 784)
    assert np.bincount(labels).tolist() == [1000] * 10
    _, train_labels = load_dataset("fashion-mnist", split="train")
    assert np.bincount(train_labels).tolist() == [6000] * 10


# ---- the IDX format on hand-made bytes --------------------------------------------------
def test_parse_idx_known_bytes() -> None:
    # uint8, 2 dims (2, 3), row-major
    data = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    assert parse_idx(data).tolist() == [[1, 2, 3], [4, 5, 6]]
    # int16 big-endian: 0x0102 = 258, 0xFFFE = -2
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    out = parse_idx(data)
    assert out.tolist() == [258, -2] and out.dtype.isnative
    # float64 big-endian 1.5 = 0x3FF8000000000000
    data = bytes([0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0])
    assert parse_idx(data).tolist() == [1.5]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_write_read_round_trip(tmp_path: Path, dtype: type, suffix: str) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, arr)


def _valid_bytes() -> bytes:
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (bytes([1, 0, 8, 2]) + _valid_bytes()[4:], "bad magic number 0x01000802"),
        (bytes([0, 0, 0x07, 2]) + _valid_bytes()[4:], "unknown element type 0x07"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (_valid_bytes()[:9], "truncated inside its header"),
        (_valid_bytes()[:-1], "truncated: shape (2, 3) needs 6 data bytes, found 5"),
        (_valid_bytes() + b"\x00\x00", "2 unexpected trailing bytes"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_corrupt_idx_files(tmp_path: Path, content: bytes, message: str, compress: bool) -> None:
    path = tmp_path / ("bad-idx.gz" if compress else "bad-idx")
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_wrong_number_of_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "x-idx"
    path.write_bytes(_valid_bytes())
    with pytest.raises(DataError, match="has 2 dimensions, expected 3"):
        read_idx(path, ndim=3)


def test_truncated_gzip_file(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, 10, 5000).astype(np.uint8)
    full = write_idx(tmp_path / "full-idx1-ubyte.gz", labels).read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match="truncated gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_file(tmp_path: Path) -> None:
    good = bytearray(gzip.compress(_valid_bytes() * 50))
    good[len(good) // 2] ^= 0xFF
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(good))
    with pytest.raises(DataError, match="corrupt gzip stream"):
        read_idx(path)


def test_gz_name_without_gzip_content(tmp_path: Path) -> None:
    path = tmp_path / "plain.gz"
    path.write_bytes(_valid_bytes())
    with pytest.raises(DataError, match="is not a gzip stream"):
        read_idx(path)


def test_missing_idx_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nothing.gz")


# ---- data sets: missing, corrupt, non-finite ---------------------------------------------
def test_missing_data_dir_says_how_to_fix(no_data_env: None) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    msg = str(info.value)
    assert "mnist/train-images-idx3-ubyte.gz" in msg and "--data-dir" in msg and DATA_DIR_ENV in msg


def test_missing_files_in_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", tmp_path, "test")
    msg = str(info.value)
    assert str(tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz") in msg
    assert "--data-dir" in msg and DATA_DIR_ENV in msg


def test_env_var_names_the_data_dir(fake_idx_data, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_idx_data("mnist", n_train=30, n_test=12)
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    x, labels = load_dataset("mnist")
    assert x.shape == (30, 784) and labels.tolist() == [i % 10 for i in range(30)]
    # the argument wins over the environment
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", root / "elsewhere")


def test_uncompressed_files_are_accepted(fake_idx_data) -> None:
    root = fake_idx_data("mnist", n_train=10, n_test=10)
    folder = root / "mnist"
    for gz in folder.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    x, _ = load_dataset("mnist", root, "test")
    assert x.shape == (10, 784)


def test_nan_pixels_raise(fake_idx_data) -> None:
    root = fake_idx_data("mnist", float_images=True, nan=True)
    with pytest.raises(DataError, match="NaN or infinite") as info:
        load_dataset("mnist", root, "train")
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    x, _ = load_dataset("mnist", root, "test")  # float pixels without NaN load fine
    assert x.dtype == np.float64 and 0.0 <= x.min() and x.max() <= 1.0


def test_bad_labels_and_counts(fake_idx_data) -> None:
    root = fake_idx_data("mnist", n_train=20, n_test=10)
    folder = root / "mnist"
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, np.uint8))
    with pytest.raises(DataError, match=r"labels in \[12, 12\], outside 0..9"):
        load_dataset("mnist", root, "test")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        load_dataset("mnist", root, "test")


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="unknown split 'valid'"):
        load_dataset("digits", split="valid")


# ---- digits ------------------------------------------------------------------------------
def test_digits_split_is_the_documented_one() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(1797)
    x_train, l_train = load_dataset("digits", split="train")
    x_test, l_test = load_dataset("digits", split="test")
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert np.array_equal(x_test, bunch.data[order[:359]] / 16.0)
    assert np.array_equal(l_train, bunch.target[order[359:]])
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert sorted(l_train.tolist() + l_test.tolist()) == sorted(bunch.target.tolist())


def test_digits_split_is_deterministic() -> None:
    np.random.seed(123)  # the global stream must not matter
    a = load_dataset("digits", split="test")
    np.random.seed(456)
    b = load_dataset("digits", split="test")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_digits_needs_no_data_dir(no_data_env: None) -> None:
    x, labels = load_dataset("digits", data_dir=None)
    assert len(x) == len(labels) == 1438


# ---- one_hot -----------------------------------------------------------------------------
def test_one_hot() -> None:
    out = one_hot(np.array([2, 0, 1]), 4)
    assert out.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    assert out.dtype == np.float64
    assert one_hot(np.array([1]), 2, np.float32).dtype == np.float32
    with pytest.raises(DataError, match="do not fit 3 classes"):
        one_hot(np.array([3]), 3)
    with pytest.raises(DataError, match="1-d integer array"):
        one_hot(np.array([0.5]), 3)
