"""The data directory, checksums, error messages, downloads and rebuilds (all offline)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from genzoo.core.errors import DataError
from genzoo.data import DataConfig, data_dir, ensure_file, files, formats, load_data

LABELS = "mnist/t10k-labels-idx1-ubyte.gz"
BINARIZED = "binarized_mnist/binarized_mnist.npz"
CALTECH = "caltech101_silhouettes/caltech101_silhouettes_28.npz"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("GENZOO_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "genzoo" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "genzoo" / "data"


def test_table_matches_published_sha256sums(real_file):
    sums = real_file("SHA256SUMS").read_text().split("\n")
    published = {line.split()[1].removeprefix("./"): line.split()[0] for line in sums if line}
    for relpath, digest in published.items():
        assert files.FILES[relpath].sha256 == digest
    every_needed = {r for rs in files.DATASET_FILES.values() for r in rs}
    assert every_needed <= set(published)


def test_missing_file_error_names_file_path_checksum_source_and_env(tmp_data):
    with pytest.raises(DataError) as info:
        ensure_file(LABELS)
    msg = str(info.value)
    assert LABELS in msg
    assert str(tmp_data / LABELS) in msg
    assert files.FILES[LABELS].sha256 in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" in msg
    assert "GENZOO_DATA" in msg and "GENZOO_OFFLINE" in msg


def test_missing_rebuilt_file_names_its_original_source(tmp_data):
    with pytest.raises(DataError) as info:
        load_data(DataConfig(name="binarized-mnist"))
    msg = str(info.value)
    assert BINARIZED in msg and files.FILES[BINARIZED].sha256 in msg
    assert "binarized_mnist_train.amat" in msg and "www.cs.toronto.edu/~larocheh" in msg


def test_unknown_file_is_refused(tmp_data):
    with pytest.raises(DataError, match="unknown data file"):
        ensure_file("mnist/nope.gz")


def test_corrupt_file_raises_with_both_checksums_and_is_kept(tmp_data):
    path = tmp_data / LABELS
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the MNIST labels")
    with pytest.raises(DataError) as info:
        ensure_file(LABELS)
    msg = str(info.value)
    assert LABELS in msg and str(path) in msg
    assert files.FILES[LABELS].sha256 in msg and sha(b"not the MNIST labels") in msg
    assert path.read_bytes() == b"not the MNIST labels"
    with pytest.raises(DataError, match="corrupt"):
        load_data(DataConfig(name="mnist"))


def test_verification_is_cached_until_the_file_changes(tmp_data, monkeypatch):
    content = b"toy data"
    monkeypatch.setitem(files.FILES, "toy/a.bin", files.FileSpec("toy/a.bin", sha(content)))
    (tmp_data / "toy").mkdir()
    (tmp_data / "toy/a.bin").write_bytes(content)
    calls = []
    real_hash = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: calls.append(p) or real_hash(p))
    ensure_file("toy/a.bin")
    ensure_file("toy/a.bin")
    assert len(calls) == 1
    (tmp_data / "toy/a.bin").write_bytes(b"toy datA!")  # new size, new mtime
    with pytest.raises(DataError, match="SHA-256"):
        ensure_file("toy/a.bin")
    assert len(calls) == 2


def _fake_fetcher(contents: dict[str, bytes], calls: list[str]):
    def fetch(url, dest, timeout=None):
        calls.append(url)
        if url not in contents:
            raise urllib.error.URLError("unreachable")
        Path(dest).write_bytes(contents[url])

    return fetch


def test_download_tries_each_url_and_verifies(tmp_data, monkeypatch):
    monkeypatch.delenv("GENZOO_OFFLINE")
    spec = files.FileSpec("toy/a.bin", sha(b"payload"), ("http://down/a.bin", "http://up/a.bin"))
    monkeypatch.setitem(files.FILES, spec.relpath, spec)
    calls = []
    monkeypatch.setattr(files, "_fetch", _fake_fetcher({"http://up/a.bin": b"payload"}, calls))
    path = ensure_file("toy/a.bin")
    assert calls == ["http://down/a.bin", "http://up/a.bin"]
    assert path == tmp_data / "toy/a.bin" and path.read_bytes() == b"payload"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.bin"]  # no temp file left
    ensure_file("toy/a.bin")
    assert len(calls) == 2  # present now: not fetched again


def test_download_with_wrong_checksum_leaves_nothing_behind(tmp_data, monkeypatch):
    monkeypatch.delenv("GENZOO_OFFLINE")
    spec = files.FileSpec("toy/a.bin", sha(b"payload"), ("http://evil/a.bin",))
    monkeypatch.setitem(files.FILES, spec.relpath, spec)
    fetch = _fake_fetcher({"http://evil/a.bin": b"tampered"}, [])
    monkeypatch.setattr(files, "_fetch", fetch)
    with pytest.raises(DataError) as info:
        ensure_file("toy/a.bin")
    assert sha(b"tampered") in str(info.value) and spec.sha256 in str(info.value)
    assert list((tmp_data / "toy").iterdir()) == []


def test_download_of_real_mnist_file(tmp_data, monkeypatch, real_file):
    source = real_file(LABELS).read_bytes()
    monkeypatch.delenv("GENZOO_OFFLINE")
    calls = []
    url = files.FILES[LABELS].urls[0]
    monkeypatch.setattr(files, "_fetch", _fake_fetcher({url: source}, calls))
    assert ensure_file(LABELS).read_bytes() == source
    assert formats.read_idx(tmp_data / LABELS, 1).shape == (10000,)


def _amat(x01: np.ndarray) -> bytes:
    return "".join(" ".join(map(str, row)) + "\n" for row in x01).encode()


def test_rebuild_from_amat_sources(tmp_data, monkeypatch):
    rng = np.random.default_rng(0)
    sizes = {"train": 5, "valid": 2, "test": 3}
    splits = {k: (rng.random((n, 784)) < 0.3).astype(np.uint8) for k, n in sizes.items()}
    texts = {k: _amat(x) for k, x in splits.items()}
    sources = tuple(
        files.FileSpec(f"toy/{k}.amat", sha(t), (f"http://x/{k}.amat",)) for k, t in texts.items()
    )
    expected = {k: np.packbits(x, axis=1) for k, x in splits.items()} | {"shape": np.array([784])}
    spec = files.FileSpec(
        "toy/b.npz",
        "0" * 64,  # the rebuilt zip's bytes never match; its arrays do
        sources=sources,
        convert=formats.amat_to_packed,
        content_sha256={k: files.sha256_array(v) for k, v in expected.items()},
    )
    monkeypatch.setitem(files.FILES, spec.relpath, spec)
    monkeypatch.delenv("GENZOO_OFFLINE")
    calls = []
    fetch = _fake_fetcher({f"http://x/{k}.amat": t for k, t in texts.items()}, calls)
    monkeypatch.setattr(files, "_fetch", fetch)
    path = ensure_file("toy/b.npz")
    assert len(calls) == 3
    with np.load(path) as z:
        for k, x in splits.items():
            np.testing.assert_array_equal(np.unpackbits(z[k], axis=1, count=int(z["shape"][0])), x)
    assert sorted(p.name for p in (tmp_data / "toy").iterdir()) == ["b.npz"]  # sources not kept
    files._verified.clear()
    ensure_file("toy/b.npz")  # a fresh process accepts the rebuilt file by its arrays


def test_read_amat_rejects_other_text(tmp_path):
    path = tmp_path / "x.amat"
    path.write_bytes(_amat(np.zeros((2, 784), np.uint8)).replace(b"0 0", b"0,0", 1))
    with pytest.raises(DataError, match="amat"):
        formats.read_amat(path)


def test_caltech_rebuilt_offline_from_local_mat(tmp_data, real_file):
    pytest.importorskip("scipy")
    mat = files.FILES[CALTECH].sources[0].relpath
    (tmp_data / mat).parent.mkdir(parents=True)
    shutil.copy(real_file(mat), tmp_data / mat)
    path = ensure_file(CALTECH)  # offline: the verified local .mat is converted
    with np.load(path) as z, np.load(real_file(CALTECH)) as ref:
        for k in ref.files:
            np.testing.assert_array_equal(z[k], ref[k])


def test_frey_conversion_matches_published_array_checksum(tmp_path, real_file):
    scipy_io = pytest.importorskip("scipy.io")
    with np.load(real_file("frey_faces/frey_faces.npz")) as z:
        images = z["images"]
    scipy_io.savemat(tmp_path / "frey_rawface.mat", {"ff": images.reshape(1965, 560).T})
    arrays = formats.frey_mat_to_arrays([tmp_path / "frey_rawface.mat"])
    expected = files.FILES["frey_faces/frey_faces.npz"].content_sha256
    assert {k: files.sha256_array(v) for k, v in arrays.items()} == expected


def test_missing_scipy_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(DataError, match="pip install scipy"):
        formats.caltech_mat_to_arrays([tmp_path / "c.mat"])


@pytest.mark.parametrize("kind", ["fifo", "device", "empty"])
def test_a_data_file_that_is_not_a_nonempty_regular_file_is_refused_unopened(tmp_data, kind):
    """Checked with stat before any read: a FIFO would block forever, /dev/zero never end."""
    path = tmp_data / LABELS
    path.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(b"")
    words = {"fifo": "is a FIFO", "device": "is a character device", "empty": "is empty"}[kind]
    with pytest.raises(DataError, match=f"{LABELS} at .* {words}.*replace it with a good copy"):
        ensure_file(LABELS)
    assert path.is_symlink() or path.exists()  # left as it was
