"""The IDX reader checks magic numbers and sizes."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from genzoo.core.errors import DataError
from genzoo.data.formats import read_idx


def write_idx(path, payload: bytes, magic: bytes, dims: tuple[int, ...]) -> None:
    header = magic + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def test_reads_images(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", a.tobytes(), b"\0\0\x08\x03", a.shape)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz", 3), a)


def test_rejects_wrong_magic(tmp_path):
    write_idx(tmp_path / "x.gz", bytes(6), b"\0\0\x08\x01", (6,))
    with pytest.raises(DataError, match="magic number"):
        read_idx(tmp_path / "x.gz", 3)  # a label file where images were expected
    write_idx(tmp_path / "y.gz", bytes(6), b"\0\0\x0d\x01", (6,))  # float32 type code
    with pytest.raises(DataError, match="magic number"):
        read_idx(tmp_path / "y.gz", 1)


def test_rejects_truncated_payload(tmp_path):
    write_idx(tmp_path / "x.gz", bytes(5), b"\0\0\x08\x01", (6,))
    with pytest.raises(DataError, match="6 bytes"):
        read_idx(tmp_path / "x.gz", 1)


def test_rejects_non_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"plain text")
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "x.gz", 1)
