"""Data sets: shapes, ranges, splits, labels, binarization and subsetting."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from genzoo.core.errors import ConfigError, DataError
from genzoo.data import DATASET_NAMES, DataConfig, describe_datasets, load_data

MNIST_FILES = (
    "mnist/train-images-idx3-ubyte.gz",
    "mnist/train-labels-idx1-ubyte.gz",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
)
# Per-digit counts published in the data README.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def check_bundle(d, sizes, n_features, image_shape):
    assert (len(d.train), len(d.valid), len(d.test)) == sizes
    assert d.n_features == n_features == image_shape[0] * image_shape[1]
    assert d.image_shape == image_shape
    for s in (d.train, d.valid, d.test):
        assert s.x.dtype == torch.float32 and s.x.shape[1] == n_features
        assert s.x.is_contiguous(), "row-major storage keeps minibatch gathers fast"
        assert 0.0 <= s.x.min() and s.x.max() <= 1.0
        assert s.y is None or (s.y.dtype == torch.int64 and s.y.shape == (len(s),))
    assert d.name in d.description and "/".join(map(str, sizes)) in d.description


# digits ships with scikit-learn, so these tests always run.


def test_digits_splits_the_whole_set():
    from sklearn.datasets import load_digits

    d = load_data(DataConfig(name="digits"))
    check_bundle(d, (1197, 300, 300), 64, (8, 8))
    assert not d.binary
    ref = load_digits()
    x = torch.cat([d.train.x, d.valid.x, d.test.x])
    y = torch.cat([d.train.y, d.valid.y, d.test.y])
    np.testing.assert_array_equal(np.bincount(y.numpy()), np.bincount(ref.target))
    assert torch.allclose(x.sum(0).double(), torch.from_numpy(ref.data.sum(0) / 16.0))
    assert torch.equal((x * 16).round(), x * 16)  # grey levels 0..16


def test_digits_split_is_seeded():
    a, b = load_data(DataConfig(name="digits")), load_data(DataConfig(name="digits"))
    c = load_data(DataConfig(name="digits", seed=1))
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.test.x, c.test.x)


def test_dynamic_binarization():
    cfg = DataConfig(name="digits", binarize="dynamic", seed=3)
    d, again = load_data(cfg), load_data(cfg)
    grey = load_data(DataConfig(name="digits", seed=3))
    assert d.binary and torch.equal(d.train.x, grey.train.x)  # train keeps the grey levels
    x0, x1 = d.train_x(0), d.train_x(1)
    assert is_binary(x0) and is_binary(x1) and not torch.equal(x0, x1)
    assert torch.equal(x0, again.train_x(0))  # same (seed, epoch): same draw, also after reload
    assert not torch.equal(x0, load_data(cfg.replace(seed=4)).train_x(0))
    # Each draw is Bernoulli(train.x): its mean matches within 5 standard errors.
    p = grey.train.x
    assert abs((x0 - p).sum()) < 5 * (p * (1 - p)).sum().sqrt()
    for name in ("valid", "test"):
        s = d.split(name)
        assert is_binary(s.x) and torch.equal(s.x, again.split(name).x)
        assert torch.equal(s.y, grey.split(name).y)
    assert not torch.equal(d.valid.x, load_data(cfg.replace(seed=4)).valid.x)
    sub = load_data(cfg.replace(n_eval=50))
    # n_eval keeps examples of the same draw: found by their grey levels, the rows are equal.
    grey_sub = load_data(DataConfig(name="digits", seed=3, n_eval=50)).test
    idx = torch.tensor([int(((grey.test.x == x).all(1)).nonzero()[0]) for x in grey_sub.x])
    assert len(sub.test) == 50 and torch.equal(sub.test.x, d.test.x[idx])


def test_threshold_binarization():
    d = load_data(DataConfig(name="digits", binarize="threshold", threshold=0.3))
    grey = load_data(DataConfig(name="digits"))
    assert d.binary and d.train_x(0) is d.train.x
    for name in ("train", "valid", "test"):
        assert torch.equal(d.split(name).x, (grey.split(name).x > 0.3).float())


def test_n_train_and_n_eval_keep_examples_of_their_split():
    full = load_data(DataConfig(name="digits"))
    d = load_data(DataConfig(name="digits", n_train=100, n_eval=20))
    assert (len(d.train), len(d.valid), len(d.test)) == (100, 20, 20)
    # Each kept example is one of its split's, with its label (which ones: test_subsets.py).
    for name in ("train", "valid", "test"):
        whole = {(tuple(x.tolist()), int(y)) for x, y in zip(full.split(name).x,
                                                             full.split(name).y)}
        kept = list(zip(d.split(name).x, d.split(name).y))
        assert all((tuple(x.tolist()), int(y)) in whole for x, y in kept)
    assert "100/20/20" in d.description


def test_unknown_split_name():
    with pytest.raises(DataError, match="train, valid, test"):
        load_data(DataConfig(name="digits")).split("validation")


def test_config_refuses_binarizing_a_binary_set():
    with pytest.raises(ConfigError, match="binary already"):
        DataConfig(name="binarized-mnist", binarize="dynamic")


def test_describe_datasets_covers_every_name():
    described = describe_datasets()
    assert [name for name, _ in described] == list(DATASET_NAMES)
    assert all(text and "\n" not in text for _, text in described)


# Real data: skipped unless GENZOO_DATA holds the files.


@pytest.fixture
def mnist_files(real_file):
    for relpath in MNIST_FILES:
        real_file(relpath)


def test_mnist(mnist_files):
    d = load_data(DataConfig(name="mnist"))
    check_bundle(d, (50000, 10000, 10000), 784, (28, 28))
    assert not d.binary
    train_y = torch.cat([d.train.y, d.valid.y])
    assert torch.bincount(train_y).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(d.test.y).tolist() == MNIST_TEST_COUNTS
    assert torch.equal((d.test.x * 255).round(), d.test.x * 255)
    assert d.train.x.max() == 1.0 and d.train.x.min() == 0.0


def test_mnist_binarizations_and_cache(mnist_files):
    from genzoo.data import datasets

    d = load_data(DataConfig(name="mnist", binarize="dynamic", n_train=2000, n_eval=500))
    hits = datasets._parse.cache_info().hits
    t = load_data(DataConfig(name="mnist", binarize="threshold", n_train=2000))
    assert datasets._parse.cache_info().hits == hits + 1  # parsed once per process
    assert (len(d.train), len(d.valid), len(d.test)) == (2000, 500, 500)
    assert is_binary(d.valid.x) and is_binary(d.train_x(7)) and not is_binary(d.train.x)
    assert not torch.equal(d.train_x(0), d.train_x(1))
    assert torch.equal(t.train.x, (d.train.x > 0.5).float())


def test_binarized_mnist(real_file):
    real_file("binarized_mnist/binarized_mnist.npz")
    d = load_data(DataConfig(name="binarized-mnist"))
    check_bundle(d, (50000, 10000, 10000), 784, (28, 28))
    assert d.binary and d.train.y is None
    # Fractions of ones and array checksums published in the data README.
    fractions = {"train": 0.130562, "valid": 0.131127, "test": 0.132512}
    digests = {
        "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
        "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
        "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
    }
    for name in ("train", "valid", "test"):
        x = d.split(name).x
        assert abs(x.double().mean().item() - fractions[name]) < 5e-7
        assert hashlib.sha256(x.to(torch.uint8).numpy().tobytes()).hexdigest() == digests[name]


def test_frey_faces(real_file):
    real_file("frey_faces/frey_faces.npz")
    d = load_data(DataConfig(name="frey-faces"))
    check_bundle(d, (1565, 200, 200), 560, (28, 20))
    assert not d.binary and d.train.y is None
    x = torch.cat([d.train.x, d.valid.x, d.test.x])
    assert x.min() == 8 / 255 and x.max() == 238 / 255  # the README's value range
    dyn = load_data(DataConfig(name="frey-faces", binarize="dynamic"))
    assert dyn.binary and is_binary(dyn.test.x) and is_binary(dyn.train_x(0))
    thr = load_data(DataConfig(name="frey-faces", binarize="threshold"))
    assert torch.equal(thr.valid.x, (d.valid.x > 0.5).float())


def test_caltech_silhouettes(real_file):
    path = real_file("caltech101_silhouettes/caltech101_silhouettes_28.npz")
    d = load_data(DataConfig(name="caltech-silhouettes"))
    check_bundle(d, (4100, 2264, 2307), 784, (28, 28))
    assert d.binary and "NOT the official split1" in d.description
    y = torch.cat([d.train.y, d.valid.y, d.test.y])
    with np.load(path) as z:
        images, labels = z["images"], z["labels"]
    np.testing.assert_array_equal(np.bincount(y.numpy()), np.bincount(labels - 1))
    assert y.min() == 0 and y.max() == 100
    # Silhouette = 1: the rows are 1 - image, so the totals add up to the pixel count.
    x = torch.cat([d.train.x, d.valid.x, d.test.x])
    assert x.sum() + images.sum() == images.size
    assert x.mean() < 0.5  # objects cover less of the frame than the background
