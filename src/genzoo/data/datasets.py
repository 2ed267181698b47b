"""The data sets, as tensors split into train / valid / test.

Every split is (N, D) float32, images flattened row-major, in [0, 1] unless the set or the
options make it real-valued (``image-patches``, ``data.dequantize`` with ``data.logit_alpha``).
The splits:

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
- ``image-patches``: 8x8 patches of scikit-learn's two sample images, dequantised, DC removed,
  last pixel dropped (D = 63); 40000 / 5000 / 5000 from disjoint column blocks, positions and
  noise seeded by ``seed`` (see :mod:`genzoo.data.patches`). No labels.

Binarization of grey-level sets (``data.binarize``): ``threshold`` maps every split to
``x > data.threshold``; ``dynamic`` keeps the grey levels in ``train.x`` and draws a fresh
Bernoulli sample for each epoch through :meth:`DataBundle.train_x`, while valid and test are one
Bernoulli draw seeded by ``seed`` (made on the whole split, so an example keeps its draw in any
subset).

Subsets (``data.n_train``, ``data.n_eval``): :func:`subset_indices` draws the examples kept from
each split with a generator seeded by (``data.subset_seed``, split name), stratified by label
where there are labels, so a subset represents its split even when the file is sorted by class.

Dequantisation (``data.dequantize``) works the same way with uniform noise: ``train_x(epoch)``
redraws it each epoch, ``train.x`` is the epoch-0 draw, valid and test are one seeded draw. The
splits then hold model-space values y = f(x) of :class:`~genzoo.data.transforms.ValueTransform`
``bundle.transform``; :meth:`DataBundle.log_det_jacobian` and :meth:`DataBundle.to_images` map
back to the data space.

Your own data (``data.name`` a path, see :mod:`genzoo.data.user`) take the same path: split as
the file says or at random (seeded by ``seed``), then binarized, dequantised (8-bit grey
levels), standardised (``data.standardize``, real-valued data too) and subset like the sets
above. ``bundle.file_record`` holds the SHA-256, shape and kind that a run records; a config
that records a SHA-256 refuses data that no longer match it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import DataError
from genzoo.data import user
from genzoo.data.config import GREY_LEVELS, IMAGE_SHAPES, DataConfig, is_user_data
from genzoo.data.files import DATASET_FILES, ensure_file
from genzoo.data.formats import read_idx
from genzoo.data.patches import extract_patches, patch_images
from genzoo.data.transforms import ValueTransform, dequantize

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Split:
    """``x``: (N, D) float32, flattened row-major (in [0, 1] unless the data set is
    real-valued); ``y``: (N,) int64 labels or None."""

    x: torch.Tensor
    y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Row-major storage: a minibatch gather from a column-major array (np.unpackbits returns
        # one) is ten times slower, and it runs every training step.
        self.x = self.x.contiguous()

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, idx: torch.Tensor | None) -> Split:
        """The examples at ``idx`` (M,) int64, in that order (the split itself when None)."""
        if idx is None:
            return self
        return Split(self.x[idx], None if self.y is None else self.y[idx])


@dataclasses.dataclass
class DataBundle:
    """A data set split three ways, with what samplers and reports need to know about it.

    ``binary`` is True when the data a model sees, ``train_x(epoch)``, ``valid.x`` and
    ``test.x``, are in {0, 1}. Under dynamic binarization that holds while ``train.x`` keeps
    the grey levels the per-epoch draws are made from.
    ``grey_eval`` (``data.grey_eval``): train is binarized, valid and test keep their grey
    levels (``binary`` is then False).

    ``transform`` is set for real-valued data (``image-patches``, ``data.dequantize``): the
    splits hold model-space values y = transform.forward(x) and likelihoods are reported in the
    data space of x (see :mod:`genzoo.data.transforms`). ``train_levels`` (N, D) uint8 are the
    grey levels that ``train_x`` dequantises afresh each epoch (None when not dequantising).
    ``file_record``: for the user's own data, the ``data.file_sha256``, ``data.file_shape``
    and ``data.file_kind`` a run records (:func:`recorded_config`); None for built-in sets.
    """

    name: str
    train: Split
    valid: Split
    test: Split
    image_shape: tuple[int, int]
    binary: bool
    description: str
    binarize: str = "none"
    grey_eval: bool = False
    seed: int = 0
    transform: ValueTransform | None = None
    train_levels: torch.Tensor | None = None
    file_record: dict | None = None

    def split(self, name: str) -> Split:
        """The split called ``name``: ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def train_x(self, epoch: int) -> torch.Tensor:
        """(N, D) training data for ``epoch``: under dynamic binarization a Bernoulli draw
        from ``train.x`` seeded by (seed, epoch), so a resumed run sees the same data;
        under dequantisation fresh uniform noise seeded by (seed, epoch), mapped to model
        space; otherwise ``train.x`` itself."""
        if self.train_levels is not None:
            return _dequantized(self.train_levels, self.transform, self.seed, "train", epoch)
        if self.binarize != "dynamic":
            return self.train.x
        return torch.bernoulli(self.train.x, generator=_generator(self.seed, "train", epoch))

    def log_det_jacobian(self, y: torch.Tensor) -> torch.Tensor:
        """log |det dy/dx| (N,) float64 nats of the map from data space to model space, at
        model-space data ``y`` (N, D); zeros when the data are not transformed. The data-space
        log-density is the model's log-density of y plus this."""
        if self.transform is None:
            return torch.zeros(y.shape[0], dtype=torch.float64, device=y.device)
        return self.transform.log_det_jacobian(y)

    def to_images(self, y: torch.Tensor) -> torch.Tensor:
        """(N, H*W) images in [0, 1] for display, from model-space samples ``y`` (N, D)."""
        x = y if self.transform is None else self.transform.inverse(y)
        if self.name == "image-patches":
            return patch_images(x)
        return x.clamp(0.0, 1.0)

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


def subset_indices(
    n_rows: int, n: int | None, y: torch.Tensor | None, generator: torch.Generator
) -> torch.Tensor | None:
    """(min(n, n_rows),) int64 indices, ascending, of ``n`` of ``n_rows`` examples drawn without
    replacement by ``generator``; None (keep all) when ``n`` is None or at least ``n_rows``.

    With labels ``y`` (n_rows,) the draw is stratified: each class gets its share of ``n``
    (n * n_c / n_rows, rounded), its examples chosen at random within the class."""
    if n is None or n >= n_rows:
        return None
    perm = torch.randperm(n_rows, generator=generator)
    if y is not None:
        # Rank r of each permuted example within its class (0, 1, ... in permuted order);
        # ordering by (r + 1/2) / n_c interleaves the classes, so the first n hold each class
        # c in proportion to its size n_c, ties between classes broken by the permutation.
        _, cls = torch.unique(y[perm], return_inverse=True)
        counts = torch.bincount(cls)
        by_class = torch.argsort(cls, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty(n_rows, dtype=torch.int64)
        rank[by_class] = torch.arange(n_rows) - starts[cls[by_class]]
        key = (rank.double() + 0.5) / counts[cls].double()
        perm = perm[torch.argsort(key, stable=True)]
    return perm[:n].sort().values


def _subsets(config: DataConfig, splits: tuple[Split, Split, Split]) -> list[torch.Tensor | None]:
    """The indices each split keeps under ``n_train`` / ``n_eval`` (None: all)."""
    sizes = (config.n_train, config.n_eval, config.n_eval)
    return [
        subset_indices(len(s), n, s.y, _generator(config.subset_seed, "subset", name))
        for s, n, name in zip(splits, sizes, SPLITS)
    ]


def _permuted(x: torch.Tensor, y: torch.Tensor | None, sizes: tuple[int, int, int], seed: int):
    perm = torch.randperm(len(x), generator=_generator(seed, "split"))
    starts = np.cumsum((0,) + sizes)
    idx = [perm[a:b] for a, b in itertools.pairwise(starts)]
    return [Split(x[i], None if y is None else y[i]) for i in idx]


def _dequantized(
    levels: torch.Tensor, transform: ValueTransform, seed: int, *key: object
) -> torch.Tensor:
    x = dequantize(levels, transform.levels, _generator(seed, "dequantize", *key))
    return transform.forward(x.double()).float()


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


def _image_patches(seed: int):
    splits = [Split(x) for x in extract_patches(_generator(seed, "image-patches"))]
    source = "8x8 patches of scikit-learn's sample images, dequantised /256, DC removed, D=63"
    return splits, source, f"disjoint column blocks, positions seeded by {seed}"


_LOADERS = {
    "digits": _digits,
    "mnist": _mnist,
    "binarized-mnist": _binarized_mnist,
    "frey-faces": _frey_faces,
    "caltech-silhouettes": _caltech,
    "image-patches": _image_patches,
}


def _user_data(config: DataConfig, data, allow_changed: bool):
    """The user's data that ``config`` (or ``data``, in memory) names, split; see
    :mod:`genzoo.data.user`. Returns the splits, their description, the grey levels (or None)
    and what a run records about them."""
    got = user.read_user_data(config, data)
    if config.file_sha256 is not None and got.sha256 != config.file_sha256 and not allow_changed:
        raise DataError(
            f"data {config.name!r} changed since the run was trained: its SHA-256 is now "
            f"{got.sha256}, the run recorded {config.file_sha256} (shape {config.file_shape}, "
            f"{config.file_kind}). Restore the file, train again, or evaluate on the data as "
            "they are now with --allow-changed-data (genzoo evaluate)"
        )
    user.check_kind(config, got)
    splits = {k: Split(torch.from_numpy(x.reshape(len(x), -1)),
                       None if y is None else torch.from_numpy(y))
              for k, (x, y) in got.splits.items()}
    if "all" in splits:
        sizes = user.split_sizes(len(splits["all"]), config.valid_fraction,
                                 config.test_fraction)
        out = _permuted(splits["all"].x, splits["all"].y, sizes, config.seed)
        how = (f"random split seeded by {config.seed} (valid_fraction {config.valid_fraction:g}, "
               f"test_fraction {config.test_fraction:g})")
    else:
        train, drawn = splits["train"], [k for k in ("valid", "test") if k not in splits]
        if drawn:
            sizes = user.split_sizes(
                len(train),
                config.valid_fraction if "valid" in drawn else None,
                config.test_fraction if "test" in drawn else None,
            )
            parts = _permuted(train.x, train.y, sizes, config.seed)
            splits = {"train": parts[0], "valid": splits.get("valid", parts[1]),
                      "test": splits.get("test", parts[2])}
        out = [splits[k] for k in SPLITS]
        how = "split as in the file" + (
            f" ({' and '.join(drawn)} drawn from train_x, seeded by {config.seed})"
            if drawn else "")
    record = {"file_sha256": got.sha256, "file_shape": got.shape, "file_kind": got.kind}
    return out, got.source, how, got.levels, record


def image_shape_of(config: DataConfig) -> tuple[int, int]:
    """(height, width) of one example of the data set ``config`` names, shown as an image
    (sample grids): a built-in set's own, or one from the shape recorded for the user's data
    (:func:`genzoo.data.user.image_shape`)."""
    return user.image_shape(config) if is_user_data(config.name) else IMAGE_SHAPES[config.name]


def recorded_config(config: DataConfig, bundle: DataBundle) -> DataConfig:
    """``config`` with what a run records about the user's data it was trained on (SHA-256,
    shape, kind: ``bundle.file_record``); ``config`` itself for built-in sets."""
    if bundle.file_record is None:
        return config
    return config.replace(**bundle.file_record)


def load_data(config: DataConfig, data=None, *, allow_changed: bool = False) -> DataBundle:
    """Load, split, binarize and subset the data set that ``config`` names: a built-in set, a
    file or folder of the user's (``config.name`` a path), or ``data`` (a numpy array, torch
    tensor, (x, y) pair or Dataset) when ``config.name`` is ``in-memory``.

    Raises :class:`DataError` when a needed file is missing, corrupt or malformed, or when the
    user's data no longer match the ``config.file_sha256`` a run recorded (unless
    ``allow_changed``).
    """
    levels, record = None, None
    if is_user_data(config.name):
        (whole_train, valid, test), source, split_how, levels, record = _user_data(
            config, data, allow_changed)
    else:
        (whole_train, valid, test), source, split_how = _LOADERS[config.name](config.seed)
    keep = _subsets(config, (whole_train, valid, test))
    # Training values (per-epoch draws, standardisation) come from the examples kept; the one
    # valid/test draw is made on the whole split, so an example keeps it in any subset.
    train = whole_train.take(keep[0])
    binary = config.binarize != "none"
    transform, train_levels = None, None
    if config.binarize == "dynamic" and config.grey_eval:
        binary = False  # valid/test keep their grey levels
        values = ("dynamic binarization of train (redrawn each epoch); valid/test grey levels "
                  "in [0, 1] (data.grey_eval)")
    elif config.binarize == "dynamic":
        valid, test = (
            Split(torch.bernoulli(s.x, generator=_generator(config.seed, name)), s.y)
            for s, name in ((valid, "valid"), (test, "test"))
        )
        values = (
            "dynamic binarization (train redrawn each epoch, "
            f"valid/test drawn once with seed {config.seed})"
        )
    elif config.binarize == "threshold":
        train = Split((train.x > config.threshold).float(), train.y)
        if config.grey_eval:
            binary = False  # valid/test keep their grey levels
        else:
            valid, test = (Split((s.x > config.threshold).float(), s.y) for s in (valid, test))
        values = f"binarized by x > {config.threshold}" + (
            "; valid/test grey levels in [0, 1] (data.grey_eval)" if config.grey_eval else "")
    elif config.dequantize:
        binary = False
        train, valid, test, train_levels, transform, values = _dequantize_splits(
            config, train, valid, test, levels or GREY_LEVELS.get(config.name)
        )
    elif config.name == "image-patches":
        binary = False
        scale = float(whole_train.x.double().std()) if config.unit_variance else 1.0
        space = "dequantised DC-removed patches in [-1, 1]^63 (pixels /256)"
        transform = ValueTransform(levels=256, scale=scale, space=space)
        if config.unit_variance:
            train, valid, test = (Split(s.x / scale, s.y) for s in (train, valid, test))
            values = f"real-valued, divided by the training std {scale:.6g}"
        else:
            values = "real-valued"
    elif config.standardize:  # the user's real-valued data
        binary = False
        transform = ValueTransform(space="the data's own values").standardized(train.x)
        train, valid, test = (
            Split(transform.forward(s.x.double()).float(), s.y) for s in (train, valid, test)
        )
        values = ("real-valued, each unit standardised by its training mean and std; "
                  "likelihoods in the data's own values")
    else:
        binary = all(bool(((s.x == 0) | (s.x == 1)).all()) for s in (train, valid, test))
        if binary:
            values = "binary"
        elif record is not None and record["file_kind"] == "real":
            values = "real-valued"
        else:
            values = "grey levels in [0, 1]"
    valid, test = valid.take(keep[1]), test.take(keep[2])
    sizes = "/".join(str(len(s)) for s in (train, valid, test))
    subset = (
        f" (random subsets by n_train/n_eval, subset_seed {config.subset_seed})"
        if any(idx is not None for idx in keep) else ""
    )
    return DataBundle(
        name=config.name,
        train=train,
        valid=valid,
        test=test,
        image_shape=image_shape_of(config if record is None else config.replace(**record)),
        binary=binary,
        description=(
            f"{config.name}: {source}; {sizes} train/valid/test{subset}, {split_how}; {values}"
        ),
        binarize=config.binarize,
        grey_eval=config.grey_eval,
        seed=config.seed,
        transform=transform,
        train_levels=train_levels,
        file_record=record,
    )


def _dequantize_splits(
    config: DataConfig, train: Split, valid: Split, test: Split, n_levels: int
):
    """Dequantised model-space splits, the train grey levels, the transform and a description.
    ``n_levels``: L, the number of grey levels of the data.

    ``train`` holds the examples trained on (after ``n_train``), ``valid`` and ``test`` whole
    splits (their noise is drawn once on the whole split)."""
    alpha = config.logit_alpha
    space = f"dequantised (k + u)/{n_levels} in [0, 1]^D"
    transform = ValueTransform(levels=n_levels, logit_alpha=alpha, space=space, bits_per_dim=True)
    levels = [(s.x * (n_levels - 1)).round().to(torch.uint8) for s in (train, valid, test)]
    train = Split(_dequantized(levels[0], transform, config.seed, "train", 0), train.y)
    standard = ""
    if config.standardize:
        # Statistics of the units' training values in model space, from the examples trained on.
        transform = transform.standardized(train.x)
        train = Split(_dequantized(levels[0], transform, config.seed, "train", 0), train.y)
        standard = "; each unit standardised by its training mean and std"
    valid, test = (
        Split(_dequantized(k, transform, config.seed, name), s.y)
        for k, s, name in ((levels[1], valid, "valid"), (levels[2], test, "test"))
    )
    logit = "" if alpha is None else f", logit(alpha + (1 - 2 alpha) x) with alpha={alpha:g}"
    values = (
        f"dequantised (k + u)/{n_levels} (train redrawn each epoch, valid/test drawn once "
        f"with seed {config.seed}){logit}{standard}; likelihoods in [0, 1]^D"
    )
    return train, valid, test, levels[0], transform, values


def describe_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) of every data set, for the command line."""
    return [
        ("digits", "scikit-learn 8x8 digits, 1797 images, grey levels, seeded 1197/300/300 split"),
        ("mnist", "MNIST 28x28 digits, grey levels, 50k/10k/10k (train/valid from the 60k set)"),
        ("binarized-mnist", "fixed binarized MNIST of Larochelle & Murray (2011), 50k/10k/10k"),
        ("frey-faces", "Frey faces, 1965 28x20 grey-level frames, seeded 1565/200/200 split"),
        ("caltech-silhouettes", "Caltech 101 Silhouettes 28x28, binary, seeded 4100/2264/2307"),
        (
            "image-patches",
            "8x8 DC-removed patches (D=63) of scikit-learn's sample images, 40k/5k/5k, seeded",
        ),
    ]
