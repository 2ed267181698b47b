"""Readers of the original file formats: MNIST's IDX, Larochelle's ``.amat`` text and the
MATLAB ``.mat`` files of Frey faces and Caltech 101 Silhouettes (the last two need SciPy)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genzoo.core.errors import DataError

_IDX_UINT8 = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes with ``ndim`` dimensions.

    The magic number must be ``0x0000 08 ndim`` (0x803 for images, 0x801 for labels) and the
    payload exactly the product of the dimensions; anything else raises :class:`DataError`.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc})") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, _IDX_UINT8, ndim]):
        raise DataError(
            f"{path} is not an IDX file of uint8 with {ndim} dimension(s): magic number "
            f"{data[:4].hex()}, expected {bytes([0, 0, _IDX_UINT8, ndim]).hex()}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != int(np.prod(dims)):
        raise DataError(
            f"{path}: header says {dims} = {int(np.prod(dims))} bytes, "
            f"file holds {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_amat(path: Path, n_pixels: int = 784) -> np.ndarray:
    """Read a binarized-MNIST ``.amat`` file: one row per line, ``n_pixels`` values ``0``/``1``
    separated by single spaces. Returns (N, n_pixels) uint8 in {0, 1}."""
    raw = np.fromfile(path, dtype=np.uint8)
    width = 2 * n_pixels  # each value is one digit followed by a space or the newline
    if raw.size % width:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {width}-byte rows")
    rows = raw.reshape(-1, width)
    digits, seps = rows[:, 0::2] - ord("0"), rows[:, 1::2]
    if (digits > 1).any() or (seps[:, :-1] != ord(" ")).any() or (seps[:, -1] != ord("\n")).any():
        raise DataError(f"{path} is not in the .amat format (rows of 0/1 separated by spaces)")
    return digits


def amat_to_packed(paths: list[Path]) -> dict[str, np.ndarray]:
    """The three ``.amat`` files (train, valid, test) as the bit-packed ``.npz`` arrays."""
    out = {
        split: np.packbits(read_amat(p), axis=1)
        for split, p in zip(("train", "valid", "test"), paths, strict=True)
    }
    out["shape"] = np.array([784], dtype=np.int64)
    return out


def _loadmat(path: Path) -> dict:
    try:
        import scipy.io
    except ImportError:
        raise DataError(
            f"reading {path.name} needs SciPy: install it (pip install scipy), or copy the "
            "converted .npz file into the data directory"
        ) from None
    try:
        return scipy.io.loadmat(path)
    except (ValueError, OSError, NotImplementedError) as exc:
        raise DataError(f"{path} is not a readable MATLAB file ({exc})") from None


def frey_mat_to_arrays(paths: list[Path]) -> dict[str, np.ndarray]:
    """``frey_rawface.mat`` (variable ``ff``, 560 x 1965 uint8) as ``images`` (1965, 28, 20)."""
    (path,) = paths
    ff = _loadmat(path).get("ff")
    if ff is None or ff.shape != (560, 1965) or ff.dtype != np.uint8:
        raise DataError(f"{path}: expected variable ff of shape (560, 1965) uint8")
    # Each column is one frame stored row by row (20 pixels per row).
    return {"images": np.ascontiguousarray(ff.T.reshape(-1, 28, 20))}


def caltech_mat_to_arrays(paths: list[Path]) -> dict[str, np.ndarray]:
    """``caltech101_silhouettes_28.mat`` as ``images`` (8671, 28, 28) upright, 1 = background,
    ``labels`` (8671,) in 1..101 and ``classnames`` (101,)."""
    (path,) = paths
    d = _loadmat(path)
    if not {"X", "Y", "classnames"} <= set(d) or d["X"].shape[1:] != (784,):
        raise DataError(f"{path}: expected variables X (N, 784), Y and classnames")
    # Rows of X are column-major 28x28 images, so transpose each to make it upright.
    images = d["X"].astype(np.uint8).reshape(-1, 28, 28).transpose(0, 2, 1)
    names = [str(np.squeeze(c)) for c in d["classnames"].ravel()]
    return {
        "images": np.ascontiguousarray(images),
        "labels": d["Y"].astype(np.uint8).ravel(),
        "classnames": np.array(names),
    }
