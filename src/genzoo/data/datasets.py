"""The data sets, as tensors split into train / valid / test.

Every split is (N, D) float32 in [0, 1], images flattened row-major. The splits:

- ``digits``: scikit-learn's 1797 8x8 digits (the UCI optdigits test set), grey levels 0..16
  divided by 16; a random permutation seeded by ``seed`` gives 1197 / 300 / 300.
- ``mnist``: the IDX files divided by 255; train = the first 50000 of the 60000 training
  digits, valid = the last 10000, test = the 10000 test digits.
- ``binarized-mnist``: the fixed binarization of Larochelle & Murray (2011), 50000 / 10000 /
  10000 as distributed; no labels.
- ``frey-faces``: 1965 frames of 28x20 divided by 255; a random permutation seeded by ``seed``
  gives 1565 / 200 / 200.
- ``caltech-silhouettes``: the 8671 silhouettes of Marlin et al. (2010) with silhouette = 1
  (``x = 1 - image``); a random permutation seeded by ``seed`` gives 4100 / 2264 / 2307, the
  sizes of the usual split1 file but NOT that file, so numbers are not comparable with papers
  digit for digit. Labels are the class numbers minus one (0..100).

Binarization of grey-level sets (``data.binarize``): ``threshold`` maps every split to
``x > data.threshold``; ``dynamic`` keeps the grey levels in ``train.x`` and draws a fresh
Bernoulli sample for each epoch through :meth:`DataBundle.train_x`, while valid and test are one
Bernoulli draw seeded by ``seed`` (made on the whole split, so ``n_eval`` keeps a prefix of it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import DataError
from genzoo.data.config import IMAGE_SHAPES, DataConfig
from genzoo.data.files import DATASET_FILES, ensure_file
from genzoo.data.formats import read_idx

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Split:
    """``x``: (N, D) float32 in [0, 1], flattened row-major; ``y``: (N,) int64 labels or None."""

    x: torch.Tensor
    y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Row-major storage: a minibatch gather from a column-major array (np.unpackbits returns
        # one) is ten times slower, and it runs every training step.
        self.x = self.x.contiguous()

    def __len__(self) -> int:
        return self.x.shape[0]

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None)."""
        return Split(self.x[:n], None if self.y is None else self.y[:n])


@dataclasses.dataclass
class DataBundle:
    """A data set split three ways, with what samplers and reports need to know about it.

    ``binary`` is True when the data a model sees, ``train_x(epoch)``, ``valid.x`` and
    ``test.x``, are in {0, 1}. Under dynamic binarization that holds while ``train.x`` keeps
    the grey levels the per-epoch draws are made from.
    """

    name: str
    train: Split
    valid: Split
    test: Split
    image_shape: tuple[int, int]
    binary: bool
    description: str
    binarize: str = "none"
    seed: int = 0

    def split(self, name: str) -> Split:
        """The split called ``name``: ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def train_x(self, epoch: int) -> torch.Tensor:
        """(N, D) training data for ``epoch``: under dynamic binarization a Bernoulli draw
        from ``train.x`` seeded by (seed, epoch), so a resumed run sees the same data;
        otherwise ``train.x`` itself."""
        if self.binarize != "dynamic":
            return self.train.x
        return torch.bernoulli(self.train.x, generator=_generator(self.seed, "train", epoch))

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]


def _generator(*key: object) -> torch.Generator:
    """A CPU generator seeded from a hash of ``key``, so distinct uses never share a stream."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@functools.lru_cache(maxsize=8)
def _parse(reader: Callable, paths: tuple[Path, ...], stamps: tuple[int, ...]) -> dict:
    arrays = reader(*paths)
    for a in arrays.values():
        a.setflags(write=False)  # shared by every later load in this process
    return arrays


def _arrays(name: str, reader: Callable) -> dict[str, np.ndarray]:
    """The parsed arrays of data set ``name``, cached per process while the files are unchanged."""
    paths = tuple(ensure_file(r) for r in DATASET_FILES[name])
    return _parse(reader, paths, tuple(p.stat().st_mtime_ns for p in paths))


def _expect(path: Path, what: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise DataError(f"{path}: {what} has shape {a.shape}, expected {shape}")


def _read_mnist(tr_x: Path, tr_y: Path, te_x: Path, te_y: Path) -> dict[str, np.ndarray]:
    out = {"train_x": read_idx(tr_x, 3), "train_y": read_idx(tr_y, 1)}
    out |= {"test_x": read_idx(te_x, 3), "test_y": read_idx(te_y, 1)}
    for path, key, shape in zip(
        (tr_x, tr_y, te_x, te_y), out, ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    ):
        _expect(path, key, out[key], shape)
    return out


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _read_binarized(path: Path) -> dict[str, np.ndarray]:
    z = _read_npz(path)
    n = int(z["shape"][0])
    out = {k: np.unpackbits(z[k], axis=1, count=n) for k in SPLITS}
    for key, rows in zip(SPLITS, (50000, 10000, 10000)):
        _expect(path, key, out[key], (rows, 784))
    return out


def _read_frey(path: Path) -> dict[str, np.ndarray]:
    z = _read_npz(path)
    _expect(path, "images", z["images"], (1965, 28, 20))
    return z


def _read_caltech(path: Path) -> dict[str, np.ndarray]:
    z = _read_npz(path)
    _expect(path, "images", z["images"], (8671, 28, 28))
    _expect(path, "labels", z["labels"], (8671,))
    return z


def _to_x(images: np.ndarray, scale: float) -> torch.Tensor:
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32))
    return x.div_(scale)


def _permuted(x: torch.Tensor, y: torch.Tensor | None, sizes: tuple[int, int, int], seed: int):
    perm = torch.randperm(len(x), generator=_generator(seed, "split"))
    starts = np.cumsum((0,) + sizes)
    idx = [perm[a:b] for a, b in zip(starts[:-1], starts[1:])]
    return [Split(x[i], None if y is None else y[i]) for i in idx]


def _digits(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.data.astype(np.float32) / 16.0)
    y = torch.from_numpy(d.target.astype(np.int64))
    split = f"random split seeded by {seed}"
    return _permuted(x, y, (1197, 300, 300), seed), "scikit-learn 8x8 digits, /16", split


def _mnist(seed: int):
    a = _arrays("mnist", _read_mnist)
    x, y = _to_x(a["train_x"], 255.0), torch.from_numpy(a["train_y"].astype(np.int64))
    test = Split(_to_x(a["test_x"], 255.0), torch.from_numpy(a["test_y"].astype(np.int64)))
    splits = [Split(x[:50000], y[:50000]), Split(x[50000:], y[50000:]), test]
    return splits, "MNIST IDX files, /255", "train = first 50k of 60k, valid = last 10k"


def _binarized_mnist(seed: int):
    a = _arrays("binarized-mnist", _read_binarized)
    splits = [Split(torch.from_numpy(a[k].astype(np.float32))) for k in SPLITS]
    source = "fixed binarized MNIST (Larochelle & Murray 2011)"
    return splits, source, "split as distributed"


def _frey_faces(seed: int):
    a = _arrays("frey-faces", _read_frey)
    splits = _permuted(_to_x(a["images"], 255.0), None, (1565, 200, 200), seed)
    return splits, "Frey faces 28x20, /255", f"random split seeded by {seed}"


def _caltech(seed: int):
    a = _arrays("caltech-silhouettes", _read_caltech)
    x = 1.0 - _to_x(a["images"], 1.0)  # the file has 1 = background; we want silhouette = 1
    y = torch.from_numpy(a["labels"].astype(np.int64) - 1)
    split = f"random split seeded by {seed}, NOT the official split1"
    splits = _permuted(x, y, (4100, 2264, 2307), seed)
    return splits, "Caltech 101 Silhouettes 28x28, silhouette = 1", split


_LOADERS = {
    "digits": _digits,
    "mnist": _mnist,
    "binarized-mnist": _binarized_mnist,
    "frey-faces": _frey_faces,
    "caltech-silhouettes": _caltech,
}


def load_data(config: DataConfig) -> DataBundle:
    """Load, split, binarize and subset the data set that ``config`` names.

    Raises :class:`DataError` when a needed file is missing or corrupt.
    """
    (train, valid, test), source, split_how = _LOADERS[config.name](config.seed)
    binary = config.binarize != "none"
    if config.binarize == "dynamic":
        valid, test = (
            Split(torch.bernoulli(s.x, generator=_generator(config.seed, name)), s.y)
            for s, name in ((valid, "valid"), (test, "test"))
        )
        values = (
            "dynamic binarization (train redrawn each epoch, "
            f"valid/test drawn once with seed {config.seed})"
        )
    elif config.binarize == "threshold":
        train, valid, test = (
            Split((s.x > config.threshold).float(), s.y) for s in (train, valid, test)
        )
        values = f"binarized by x > {config.threshold}"
    else:
        binary = all(bool(((s.x == 0) | (s.x == 1)).all()) for s in (train, valid, test))
        values = "binary" if binary else "grey levels in [0, 1]"
    train, valid, test = (
        train.head(config.n_train), valid.head(config.n_eval), test.head(config.n_eval)
    )
    sizes = "/".join(str(len(s)) for s in (train, valid, test))
    subset = " (subset by n_train/n_eval)" if config.n_train or config.n_eval else ""
    return DataBundle(
        name=config.name,
        train=train,
        valid=valid,
        test=test,
        image_shape=IMAGE_SHAPES[config.name],
        binary=binary,
        description=(
            f"{config.name}: {source}; {sizes} train/valid/test{subset}, {split_how}; {values}"
        ),
        binarize=config.binarize,
        seed=config.seed,
    )


def describe_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) of every data set, for the command line."""
    return [
        ("digits", "scikit-learn 8x8 digits, 1797 images, grey levels, seeded 1197/300/300 split"),
        ("mnist", "MNIST 28x28 digits, grey levels, 50k/10k/10k (train/valid from the 60k set)"),
        ("binarized-mnist", "fixed binarized MNIST of Larochelle & Murray (2011), 50k/10k/10k"),
        ("frey-faces", "Frey faces, 1965 28x20 grey-level frames, seeded 1565/200/200 split"),
        ("caltech-silhouettes", "Caltech 101 Silhouettes 28x28, binary, seeded 4100/2264/2307"),
    ]
