"""Where the data files live, what their checksums are, and how to get them.

The data directory is ``$GENZOO_DATA``, else ``$XDG_CACHE_HOME/genzoo/data``, else
``~/.cache/genzoo/data``, laid out as ``mnist/train-images-idx3-ubyte.gz``,
``binarized_mnist/binarized_mnist.npz`` and so on. :func:`ensure_file` returns the verified path
of one file: a present file is checked against its SHA-256 (and never deleted or replaced when it
does not match); a missing file is downloaded from its canonical address unless
``GENZOO_OFFLINE=1``. Files whose originals come in another format (Larochelle's ``.amat`` text,
MATLAB ``.mat``) are rebuilt from those originals, which are verified first where a checksum was
published; the rebuilt ``.npz`` is then checked by the SHA-256 of its arrays, because zip
timestamps make the bytes of a rebuilt file differ from the reference copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from genzoo.core.errors import DataError
from genzoo.data import formats
from genzoo.utils.io import file_kind

DATA_ENV = "GENZOO_DATA"
OFFLINE_ENV = "GENZOO_OFFLINE"
TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One file of the data directory.

    ``sha256`` is of the file's bytes (``None`` where no checksum was ever published).
    A file is obtained from ``urls`` (tried in order) or, when it has none, rebuilt by
    ``convert`` from ``sources``; ``content_sha256`` maps each ``.npz`` key to the SHA-256 of
    the array's C-order bytes, which is what a rebuilt file is checked against.
    """

    relpath: str
    sha256: str | None
    urls: tuple[str, ...] = ()
    sources: tuple[FileSpec, ...] = ()
    convert: Callable[[list[Path]], dict[str, np.ndarray]] | None = None
    content_sha256: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _mnist(name: str, sha256: str) -> FileSpec:
    # The S3 mirror first: yann.lecun.com has answered 403 to scripts for years.
    urls = (
        f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}",
        f"http://yann.lecun.com/exdb/mnist/{name}",
    )
    return FileSpec(f"mnist/{name}", sha256, urls)


_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist"
_AMAT = tuple(
    FileSpec(
        f"binarized_mnist/binarized_mnist_{split}.amat",
        sha,
        (f"{_LAROCHELLE}/binarized_mnist_{split}.amat",),
    )
    for split, sha in (
        ("train", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
        ("valid", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
        ("test", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
    )
)
_CALTECH_MAT = FileSpec(
    "caltech101_silhouettes/caltech101_silhouettes_28.mat",
    "862d0a4b828256d54ad5de7c5066c18c72f355cac5b7cde4c1c3be7c000d180b",
    ("https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28.mat",),
)
# Roweis published no checksum for this file; the rebuilt array is checked instead.
_FREY_MAT = FileSpec(
    "frey_faces/frey_rawface.mat", None, ("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",)
)

_SPECS = (
    _mnist(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    _mnist(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    _mnist(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    _mnist(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
    FileSpec(
        "binarized_mnist/binarized_mnist.npz",
        "47d73739f7c93c183327e211f66832ba92a31100640ce64592b4440d663810b3",
        sources=_AMAT,
        convert=formats.amat_to_packed,
        # Packed rows; they unpack to the arrays whose SHA-256s the data README publishes.
        content_sha256={
            "train": "727146c35424b019f3e350e1e69faa05644a0abaf787e3f4e1a9632220a13906",
            "valid": "a256ac44ae26be720fad8616a05ed6ecfd1619930d9a208379bb2a4405df5b6d",
            "test": "9fcd8da6f0fdf09b2ba30fe63a0bb784042a0de82563172530229b983e294ff2",
            "shape": "be9ef85f02f466c961bfbdbafea5fbaaf3cf91de6b9bf0c1c0b0881407f5d4ba",
        },
    ),
    FileSpec(
        "frey_faces/frey_faces.npz",
        "3c70375e0a9c4751ad49ad5f1f692bd094c46f133cf4aa8ea77d1cb14e1efcd1",
        sources=(_FREY_MAT,),
        convert=formats.frey_mat_to_arrays,
        content_sha256={
            "images": "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78",
        },
    ),
    FileSpec(
        "caltech101_silhouettes/caltech101_silhouettes_28.npz",
        "ff06b43bb966f1a4409c44da34c2d9a922c9f24d7cdfe91261956ecf98fb8142",
        sources=(_CALTECH_MAT,),
        convert=formats.caltech_mat_to_arrays,
        content_sha256={
            "images": "75276849019c9b58a614ad3a9ca41da7125846c442cd8b41ffeaea49b8fa34bc",
            "labels": "a383f1227bbaf92c22054f47a9ff3882e1cb808ef6bdaa23b9ddf09c3452851e",
            "classnames": "bd3b24389bc2e5e96ed0304527ce49a90e61ec6215a12dc124aee2edd692b5b3",
        },
    ),
)

#: Every file genzoo knows, by path relative to the data directory (sources included).
FILES: dict[str, FileSpec] = {s.relpath: s for s in _SPECS + _AMAT + (_CALTECH_MAT, _FREY_MAT)}

#: The files each data set reads (``digits`` ships with scikit-learn).
DATASET_FILES: dict[str, tuple[str, ...]] = {
    "digits": (),
    "mnist": tuple(s.relpath for s in _SPECS[:4]),
    "binarized-mnist": ("binarized_mnist/binarized_mnist.npz",),
    "frey-faces": ("frey_faces/frey_faces.npz",),
    "caltech-silhouettes": ("caltech101_silhouettes/caltech101_silhouettes_28.npz",),
}


def data_dir() -> Path:
    """The data directory: ``$GENZOO_DATA``, else the user cache folder."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "genzoo" / "data"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_array(a: np.ndarray) -> str:
    """SHA-256 of an array's C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _fetch(url: str, dest: Path, timeout: float = TIMEOUT_S) -> None:
    """Download ``url`` into ``dest``. Tests replace this function; nothing else touches the net."""
    request = urllib.request.Request(url, headers={"User-Agent": "genzoo"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f)


# (path, size, mtime_ns) of files verified in this process, so repeated loads skip the hash.
_verified: set[tuple[str, int, int]] = set()


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _content_matches(path: Path, spec: FileSpec) -> bool:
    if not spec.content_sha256:
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(z.files) == set(spec.content_sha256) and all(
                sha256_array(z[k]) == v for k, v in spec.content_sha256.items()
            )
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def _check_regular(path: Path, spec: FileSpec) -> None:
    """Raise :class:`DataError` unless ``path`` (a symlink followed) is a non-empty regular
    file. Checked with ``stat`` before anything opens it: reading a FIFO would block forever
    and a device (``/dev/zero``) would never end."""
    st = path.stat()
    fix = (f"replace it with a good copy ({_where_to_get(spec)}), or point {DATA_ENV} at a "
           "folder holding one")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"data file {spec.relpath} at {path} is {file_kind(st.st_mode)}, not a "
                        f"regular file; {fix}")
    if st.st_size == 0:
        raise DataError(f"data file {spec.relpath} at {path} is empty (0 bytes: an interrupted "
                        f"copy or download?); {fix}")


def _verify(path: Path, spec: FileSpec) -> None:
    """Raise :class:`DataError` unless ``path`` holds the data ``spec`` describes."""
    _check_regular(path, spec)
    key = _stat_key(path)
    if key in _verified or spec.sha256 is None:
        return
    actual = sha256_file(path)
    if actual != spec.sha256 and not _content_matches(path, spec):
        raise DataError(
            f"data file {spec.relpath} is corrupt or not the expected file: {path} has "
            f"SHA-256 {actual}, expected {spec.sha256}. It was left untouched; replace it with a "
            f"good copy ({_where_to_get(spec)}), or point {DATA_ENV} at a folder holding one."
        )
    _verified.add(key)


def _where_to_get(spec: FileSpec) -> str:
    if spec.urls:
        return "download it from " + " or ".join(spec.urls)
    if spec.sources:
        urls = ", ".join(u for s in spec.sources for u in s.urls)
        where = ", ".join(str(data_dir() / s.relpath) for s in spec.sources)
        return (
            f"fetch the original(s) from {urls}, which genzoo converts (it downloads them itself "
            f"when online; copies placed at {where} are converted offline)"
        )
    return "no canonical download URL is known; copy it from another genzoo data folder"


def _download(spec: FileSpec, dest: Path) -> None:
    """Fetch ``spec`` from its URLs into ``dest``, verified, via a temp file and a rename."""
    if not spec.urls:
        raise DataError(f"no canonical download URL is known for {spec.relpath}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    for url in spec.urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _fetch(url, tmp)
            actual = sha256_file(tmp)
            if spec.sha256 is not None and actual != spec.sha256:
                reasons.append(f"{url}: SHA-256 {actual}, expected {spec.sha256}")
                continue
            os.replace(tmp, dest)
            _verified.add(_stat_key(dest))
            return
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
            reasons.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError("; ".join(reasons))


def _rebuild(spec: FileSpec, dest: Path, offline: bool) -> None:
    """Rebuild ``spec`` from its sources: local copies when present (verified), else downloads."""
    if spec.convert is None or not spec.sources:
        raise DataError(f"no canonical download URL is known for {spec.relpath}")
    local = [data_dir() / s.relpath for s in spec.sources]
    missing = [s.relpath for s, p in zip(spec.sources, local) if not p.exists()]
    if missing and offline:
        raise DataError(f"{OFFLINE_ENV}=1 forbids downloading {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmpdir:
        paths = []
        for source, path in zip(spec.sources, local):
            if path.exists():
                _verify(path, source)
            else:
                path = Path(tmpdir) / path.name  # downloaded originals are not kept
                _download(source, path)
            paths.append(path)
        arrays = spec.convert(paths)
        if {k: sha256_array(a) for k, a in arrays.items()} != dict(spec.content_sha256):
            names = ", ".join(p.name for p in paths)
            raise DataError(f"the arrays rebuilt from {names} do not match their expected SHA-256s")
        tmp = Path(tmpdir) / "rebuilt.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, dest)
    _verified.add(_stat_key(dest))


def ensure_file(relpath: str) -> Path:
    """The verified path of data file ``relpath`` (e.g. ``"mnist/t10k-labels-idx1-ubyte.gz"``).

    Raises :class:`DataError` when the file is corrupt, or missing and cannot be obtained;
    the message names the file, its expected path and SHA-256, where to get it, and
    ``GENZOO_DATA``.
    """
    if relpath not in FILES:
        raise DataError(f"unknown data file {relpath!r}; known files: {', '.join(FILES)}")
    spec = FILES[relpath]
    path = data_dir() / relpath
    if path.exists():
        _verify(path, spec)
        return path
    offline = os.environ.get(OFFLINE_ENV, "") not in ("", "0")
    try:
        if spec.urls and offline:
            raise DataError(f"{OFFLINE_ENV}=1 forbids downloading")
        if spec.urls:
            _download(spec, path)
        else:
            _rebuild(spec, path, offline)
    except (DataError, OSError) as exc:  # OSError: e.g. a read-only data directory
        reason = str(exc)
    else:
        return path
    raise DataError(
        f"data file {relpath} is missing: expected {path} "
        f"(SHA-256 {spec.sha256 or 'not published'}). "
        f"It could not be obtained ({reason}). To get it, {_where_to_get(spec)}; or set {DATA_ENV} "
        f"to a folder that holds {relpath} (current data directory: {data_dir()})."
    )
