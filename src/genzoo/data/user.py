"""Your own data: files, folders of images, and arrays handed over in Python.

:func:`read_user_data` turns what ``data.name`` names into :class:`UserData`: the examples as
float32 arrays, with labels where there are some, split three ways when the source says how;
:func:`genzoo.data.load_data` then splits, binarizes, dequantises, standardises and subsets
them exactly as it does the built-in sets. What is read:

- ``.npz``: an array ``x`` (N, ...) and optionally ``y`` (N,); or the splits ``train_x``,
  ``valid_x``, ``test_x`` with optional ``train_y``, ``valid_y``, ``test_y`` (a split left
  out, valid or test, is drawn from ``train_x`` by its fraction).
- ``.npy``: one array x (N, ...), no labels.
- ``.csv`` / ``.tsv``: one example per row of numbers (comma- or tab-separated); a first row
  holding any cell that is not a number is a header. ``data.label_column`` (a header name or a
  0-based index, e.g. -1) names the column of labels, which may be numbers or words.
- a folder of PNG / JPEG images, all of one size: images directly in it are unlabelled; images
  in its subfolders are labelled by the subfolder's name (in sorted order, 0, 1, ...). Grey
  images stay one channel; when any image has colour, all are read as RGB, stored (C, H, W)
  row-major per example like a PyTorch image.
- in Python: a numpy array, a torch tensor or a ``torch.utils.data.Dataset`` of ``x`` or
  ``(x, y)`` items.

Values: ``uint8`` data (every image; uint8 arrays with values above 1) are 8-bit grey levels,
divided by 255, with 256 levels known for ``data.dequantize``; booleans and uint8 arrays of 0 /
1 are binary; everything else is taken as it is. The kind of the values is detected: ``binary`` (every value 0 or 1), ``unit-interval``
(in [0, 1]) or ``real``. Data that do not come split are permuted with a generator seeded by
``data.seed`` and split into ``data.valid_fraction`` and ``data.test_fraction`` of the
examples for valid and test (each at least one example), the rest for training.

Every error a user's data can cause raises :class:`~genzoo.core.errors.DataError` naming the
file, what is wrong and the fix.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from genzoo.core.errors import DataError
from genzoo.data.config import IN_MEMORY, DataConfig, is_user_data, looks_like_path
from genzoo.data.files import sha256_array, sha256_file

SPLIT_NAMES = ("train", "valid", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclasses.dataclass
class UserData:
    """A user's examples as read, before splitting.

    ``splits``: split name -> (x (n, ...) float32, y (n,) int64 or None); either the key
    ``"all"`` alone (not split yet) or ``"train"`` with any of ``"valid"`` / ``"test"``.
    ``levels``: the number of grey levels the values were divided from (256 for uint8), None
    when unknown. ``sha256``: of the file, of a folder's images, or of the arrays. ``source``:
    a one-line description. ``classes``: label names, when the labels were words or folders.
    """

    splits: dict[str, tuple[np.ndarray, np.ndarray | None]]
    levels: int | None
    sha256: str
    source: str
    classes: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, ...) of all examples together (N over every split)."""
        n = sum(len(x) for x, _ in self.splits.values())
        return (n, *next(iter(self.splits.values()))[0].shape[1:])

    @property
    def kind(self) -> str:
        """``binary``, ``unit-interval`` or ``real``: what every value of every split is."""
        xs = [x for x, _ in self.splits.values()]
        if all(bool(((x == 0) | (x == 1)).all()) for x in xs):
            return "binary"
        if all(bool(((x >= 0) & (x <= 1)).all()) for x in xs):
            return "unit-interval"
        return "real"

    def value_range(self) -> tuple[float, float]:
        xs = [x for x, _ in self.splits.values()]
        return min(float(x.min()) for x in xs), max(float(x.max()) for x in xs)


def image_shape(config: DataConfig) -> tuple[int, int]:
    """(height, width) to show one example of a user's data set as an image, from the shape
    recorded in ``config.file_shape``: (H, W) examples as they are, (C, H, W) as the C channels
    stacked vertically, flat vectors of a square length as a square, others as one row."""
    if config.file_shape is None:
        raise DataError(
            f"data set {config.name!r}: no example shape is recorded (data.file_shape); "
            "load the data first (genzoo.data.load_data records it)"
        )
    dims = config.file_shape[1:]
    if len(dims) == 2:
        return (dims[0], dims[1])
    if len(dims) == 3:
        return (dims[0] * dims[1], dims[2])
    d = math.prod(dims)
    side = math.isqrt(d)
    return (side, side) if side * side == d else (1, d)


# ------------------------------------------------------------------------------- reading


def read_user_data(config: DataConfig, data: Any = None) -> UserData:
    """The examples ``config.name`` names (a file or folder), or ``data`` (an array, tensor or
    Dataset) when ``config.name`` is ``in-memory``. Raises :class:`DataError`."""
    if config.name == IN_MEMORY:
        if data is None:
            raise DataError(
                "data.name=in-memory: this run was trained on data handed over in Python, "
                "which genzoo cannot read again; save them (numpy.savez('data.npz', x=x, "
                "y=y)) and train on the file, or evaluate in Python"
            )
        return _check(_from_object(data), "the data given")
    if data is not None:
        raise DataError(f"data given in Python need data.name={IN_MEMORY}, not {config.name!r}")
    path = Path(config.name).expanduser()
    if not path.exists():
        raise DataError(
            f"data file {path} does not exist; give the path of a .npz, .npy, .csv, .tsv "
            "file or of a folder of images, or a built-in data set (genzoo data lists them)"
        )
    if path.is_dir():
        return _check(_read_image_folder(path), str(path))
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty (0 bytes); give a file holding examples")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        read = _read_npz
    elif suffix == ".npy":
        read = _read_npy
    elif suffix in (".csv", ".tsv"):
        return _check(_read_table(path, config.label_column), str(path))
    else:
        raise DataError(
            f"data file {path}: unknown extension {path.suffix!r}; genzoo reads .npz, .npy, "
            ".csv, .tsv and folders of PNG / JPEG images (convert the file to one of these)"
        )
    if config.label_column is not None:
        raise DataError(f"{path}: data.label_column applies to .csv / .tsv files; use "
                        "data.label_column=none (labels of a .npz are its array y)")
    return _check(read(path), str(path))


def _from_object(data: Any) -> UserData:
    import torch

    if isinstance(data, (np.ndarray, torch.Tensor)):
        x, y = _as_numpy(data), None
    elif isinstance(data, tuple) and len(data) == 2:
        x, y = _as_numpy(data[0]), _as_numpy(data[1])
    elif isinstance(data, torch.utils.data.Dataset):
        x, y = _from_dataset(data)
    else:
        raise DataError(
            f"cannot use data of type {type(data).__name__}: give a numpy array, a torch "
            "tensor, an (x, y) pair of them, a torch.utils.data.Dataset or a file path"
        )
    x, levels = to_values(x, "the data given")
    y, classes = (None, None) if y is None else _labels(y, "the data given")
    digest = hashlib.sha256()
    for a in (x, y):
        if a is not None:
            digest.update(sha256_array(a).encode())
    return UserData({"all": (x, y)}, levels, digest.hexdigest(), "arrays given in Python", classes)


def _as_numpy(a: Any) -> np.ndarray:
    import torch

    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _from_dataset(dataset) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        n = len(dataset)
    except TypeError:
        raise DataError("the Dataset given has no len(); give a map-style Dataset") from None
    items = [dataset[i] for i in range(n)]
    if not items:
        return np.zeros((0, 0), np.float32), None
    labelled = isinstance(items[0], (tuple, list))
    if labelled and len(items[0]) != 2:
        raise DataError("Dataset items must be x or (x, y); got tuples of "
                        f"{len(items[0])} items")
    xs = [_as_numpy(it[0] if labelled else it) for it in items]
    if len({a.shape for a in xs}) > 1:
        raise DataError("the Dataset's examples differ in shape; give examples of one shape")
    x = np.stack(xs)
    y = np.array([np.asarray(_as_numpy(it[1])).item() for it in items]) if labelled else None
    return x, y


def to_values(x: np.ndarray, where: str, image: bool = False) -> tuple[np.ndarray, int | None]:
    """(float32 values, grey levels or None) of raw array ``x`` (``where`` names it in
    errors): see the module docstring.
    A uint8 array holding only 0 and 1 is binary data, not grey levels (unless ``image``)."""
    if x.dtype == np.uint8 and (image or x.size == 0 or x.max() > 1):
        return x.astype(np.float32) / np.float32(255.0), 256
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.number):
        if np.issubdtype(x.dtype, np.complexfloating):
            raise DataError(f"{where}: complex values; give real numbers")
        return x.astype(np.float32), None
    raise DataError(f"{where}: values of dtype {x.dtype} are not numbers; give numeric arrays")


def _labels(y: np.ndarray, where: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """(int64 class indices, class names or None): non-negative whole numbers are kept, other
    labels (words, negative or fractional numbers) numbered in sorted order."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; give one label per example (N,)")
    if np.issubdtype(y.dtype, np.number) and not np.issubdtype(y.dtype, np.complexfloating):
        if not np.isfinite(y).all():
            raise DataError(f"{where}: labels contain NaN or Inf; give a label to every example")
        if (y >= 0).all() and (y == np.round(y)).all():
            return y.astype(np.int64), None
    names, idx = np.unique(y.astype(str), return_inverse=True)
    return idx.astype(np.int64), tuple(str(n) for n in names)


def _read_npz(path: Path) -> UserData:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})") from None
    where = str(path)
    if "x" in arrays:
        extra = sorted(set(arrays) - {"x", "y"})
        splits = {"all": ("x", "y")}
    elif "train_x" in arrays:
        keys = {f"{s}_{v}" for s in SPLIT_NAMES for v in "xy"}
        extra = sorted(set(arrays) - keys)
        splits = {s: (f"{s}_x", f"{s}_y") for s in SPLIT_NAMES if f"{s}_x" in arrays}
    else:
        raise DataError(
            f"{path} holds the arrays {', '.join(sorted(arrays)) or '(none)'}; genzoo reads "
            "x (and optionally y), or train_x, valid_x, test_x (and optionally train_y, ...): "
            "save it with numpy.savez(path, x=x, y=y)"
        )
    if extra:
        raise DataError(f"{path}: unexpected array(s) {', '.join(extra)}; genzoo reads x, y or "
                        "train_x, valid_x, test_x, train_y, valid_y, test_y")
    labelled = {name: y in arrays for name, (_, y) in splits.items()}
    if len(set(labelled.values())) > 1:
        raise DataError(f"{path}: labels are given for some splits but not others "
                        f"({', '.join(k for k, v in labelled.items() if v)}); give all or none")
    out, levels, classes = {}, None, None
    for name, (xk, yk) in splits.items():
        x, levels = to_values(arrays[xk], f"{where}: {xk}")
        y = None
        if yk in arrays:
            y, classes = _labels(arrays[yk], f"{where}: {yk}")
        out[name] = (x, y)
    if classes is not None and len(out) > 1:
        raise DataError(f"{path}: labels of split files must be whole numbers >= 0 (the same "
                        "class numbers in every split)")
    return UserData(out, levels, sha256_file(path), f"{path.name} (.npz)", classes)


def _read_npy(path: Path) -> UserData:
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy file of numbers ({exc})") from None
    x, levels = to_values(x, str(path))
    return UserData({"all": (x, None)}, levels, sha256_file(path), f"{path.name} (.npy)")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_table(path: Path, label_column: str | None) -> UserData:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f, delimiter=delimiter), 1)
                    if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a text table ({exc}); save it as UTF-8 CSV") from None
    if not rows:
        raise DataError(f"{path} holds no rows; give one example per row")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header is not None else len(rows[0][1]) if rows else 0
    for line, row in rows:
        if len(row) != width:
            raise DataError(
                f"{path}, line {line}: {len(row)} fields where the "
                f"{'header' if header is not None else 'first row'} has {width} (a ragged "
                "table); give every row the same number of columns"
            )
    if not rows:
        raise DataError(f"{path} holds a header and no examples; give one example per row")
    label = None if label_column is None else _column_index(path, label_column, header, width)
    cells = np.array([row for _, row in rows], dtype=object).reshape(len(rows), width)
    value_cols = [j for j in range(width) if j != label]
    values = np.empty((len(rows), len(value_cols)), np.float32)
    for k, j in enumerate(value_cols):
        for i, cell in enumerate(cells[:, j]):
            try:
                values[i, k] = float(cell)
            except ValueError:
                name = f" ({header[j]!r})" if header is not None else ""
                raise DataError(
                    f"{path}, line {rows[i][0]}, column {j}{name}: {cell!r} is not a number; "
                    "genzoo reads numeric columns (name a column of labels with "
                    "data.label_column=NAME, drop other text columns)"
                ) from None
    y, classes = (None, None)
    if label is not None:
        raw = [c.strip() for c in cells[:, label]]
        numeric = all(_is_number(c) for c in raw)
        y, classes = _labels(np.array([float(c) for c in raw] if numeric else raw),
                             f"{path}: column {label}")
    kind = "TSV" if delimiter == "\t" else "CSV"
    source = f"{path.name} ({kind}{', header' if header is not None else ''})"
    return UserData({"all": (values, y)}, None, sha256_file(path), source, classes)


def _column_index(path: Path, label_column: str, header: list[str] | None, width: int) -> int:
    if header is not None and label_column in header:
        return header.index(label_column)
    try:
        j = int(label_column)
    except ValueError:
        names = ", ".join(header) if header is not None else "(the file has no header)"
        raise DataError(f"{path}: no column {label_column!r} for data.label_column; columns: "
                        f"{names}; or give a 0-based index (e.g. -1 for the last)") from None
    if not -width <= j < width:
        raise DataError(f"{path}: data.label_column={j} is outside the {width} columns")
    return j % width


def _read_image_folder(path: Path) -> UserData:
    from PIL import Image, UnidentifiedImageError

    def images_in(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    top = images_in(path)
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and images_in(p))
    if top and subdirs:
        raise DataError(
            f"{path} holds images both directly and in subfolders "
            f"({', '.join(p.name for p in subdirs[:3])}); put every image in a subfolder named "
            "by its label, or all of them in the folder itself (no labels)"
        )
    if not top and not subdirs:
        raise DataError(f"{path} holds no images (.png, .jpg, .jpeg), directly or in its "
                        "subfolders; give a folder of images")
    files = [(f, None) for f in top] or [(f, i) for i, d in enumerate(subdirs)
                                         for f in images_in(d)]
    pictures, digest = [], hashlib.sha256()
    for f, _ in files:
        digest.update(f"{f.relative_to(path).as_posix()}:{sha256_file(f)}\n".encode())
        try:
            with Image.open(f) as im:
                im.load()
                pictures.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f} is not a readable image ({exc})") from None
    first = files[0][0]
    for (f, _), im in zip(files, pictures):
        if im.size != pictures[0].size:
            raise DataError(
                f"images of different sizes: {first} is {pictures[0].size[0]}x"
                f"{pictures[0].size[1]}, {f} is {im.size[0]}x{im.size[1]} (width x height); "
                "resize them all to one size"
            )
    colour = any(im.mode not in GREY_MODES for im in pictures)
    if any(im.mode in ("I", "I;16", "F") for im in pictures):
        raise DataError(f"{path}: images with more than 8 bits per pixel; save them as 8-bit "
                        "PNG / JPEG")
    mode = "RGB" if colour else "L"
    arrays = [np.asarray(im.convert(mode), dtype=np.uint8) for im in pictures]
    x = np.stack(arrays)
    x = x.transpose(0, 3, 1, 2) if colour else x[:, None]  # (N, C, H, W)
    x, levels = to_values(np.ascontiguousarray(x), str(path), image=True)
    y = None if top else np.array([label for _, label in files], dtype=np.int64)
    classes = None if top else tuple(d.name for d in subdirs)
    h, w = x.shape[2:]
    source = (f"{len(files)} {'RGB' if colour else 'grey'} {w}x{h} images in {path.name}/"
              + ("" if top else f", labelled by {len(subdirs)} subfolders"))
    return UserData({"all": (x, y)}, levels, digest.hexdigest(), source, classes)


# ------------------------------------------------------------------------------ checking


def _check(data: UserData, where: str) -> UserData:
    """``data`` itself after the checks every source shares: examples of one shape, enough of
    them, finite values, one label per example."""
    shapes = {x.shape[1:] for x, _ in data.splits.values()}
    if len(shapes) > 1:
        raise DataError(f"{where}: the splits' examples differ in shape "
                        f"({', '.join(str(s) for s in sorted(shapes))}); give one shape")
    for name, (x, y) in data.splits.items():
        label = "" if name == "all" else f" ({name} split)"
        if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
            raise DataError(
                f"{where}{label}: no examples (x has shape {x.shape}); give an array of shape "
                "(N, D) or (N, H, W) with N >= 2 examples"
            )
        bad = ~np.isfinite(x.reshape(len(x), -1))
        if bad.any():
            row = int(np.nonzero(bad.any(axis=1))[0][0])
            raise DataError(
                f"{where}{label}: {int(bad.sum())} value(s) are NaN or Inf (the first in "
                f"example {row}); remove or impute them before training"
            )
        if y is not None and len(y) != len(x):
            raise DataError(f"{where}{label}: {len(y)} labels for {len(x)} examples; give one "
                            "label per example")
    if data.shape[0] < 2 or (len(data.splits) == 1 and data.shape[0] < 3):
        raise DataError(
            f"{where}: {data.shape[0]} example(s); a model needs at least one example to train "
            "on and one each to validate and test on (3 in all): give more examples"
        )
    return data


def split_sizes(
    n: int, valid_fraction: float | None, test_fraction: float | None
) -> tuple[int, int, int]:
    """(train, valid, test) sizes of ``n`` examples: round(n * fraction) for valid and test,
    each at least 1 (0 where the fraction is None: that split is given), the rest (at least
    1) for training."""
    n_valid, n_test = (0 if f is None else max(1, round(n * f))
                       for f in (valid_fraction, test_fraction))
    if n - n_valid - n_test < 1:
        raise DataError(
            f"{n} examples are too few to draw {n_valid + n_test} for valid / test and keep "
            "one to train on; give more examples, or the splits (train_x, valid_x, test_x in "
            "a .npz)"
        )
    return n - n_valid - n_test, n_valid, n_test


def check_kind(config: DataConfig, data: UserData) -> None:
    """Refuse options that do not fit the kind of the data (DataError naming the fix)."""
    kind, (lo, hi) = data.kind, data.value_range()
    if config.binarize != "none" and kind == "binary":
        raise DataError(f"data set {config.name!r} is binary already; use data.binarize=none")
    if config.binarize != "none" and kind == "real":
        raise DataError(
            f"data.binarize={config.binarize} needs values in [0, 1], but {config.name!r} "
            f"ranges over [{lo:g}, {hi:g}]; rescale the data into [0, 1] first, or use "
            "data.binarize=none with a real-valued model"
        )
    if config.dequantize and data.levels is None:
        raise DataError(
            f"data.dequantize needs integer grey levels, but {config.name!r} holds "
            f"{data.kind} values of unknown quantisation; store them as uint8 (0..255) or "
            "images, or use data.dequantize=false"
        )
    if config.standardize and kind == "binary" and not config.dequantize:
        raise DataError(f"data.standardize applies to real-valued data; {config.name!r} is "
                        "binary: use data.standardize=false")


def resolve_path(name: str) -> str:
    """``name`` as a run records it: a built-in name or ``in-memory`` as it is, the path of
    the user's data made absolute (so that the run can be evaluated from another folder). A
    name that is neither a built-in set, nor an existing file or folder, nor shaped like a path
    stays as it is (DataConfig refuses it, listing the data sets)."""
    if not is_user_data(name) or name == IN_MEMORY:
        return name
    if not (os.path.exists(os.path.expanduser(name)) or looks_like_path(name)):
        return name
    return os.path.abspath(os.path.expanduser(name))
