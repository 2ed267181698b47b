"""Crash-safe file writes: a reader sees the old content or the new, never a torn file.

Each write goes to a uniquely named temporary file in the destination's directory, is flushed
and fsync'ed, renamed over the destination with :func:`os.replace` (atomic on POSIX and
Windows within one file system), and the directory entry is fsync'ed so the rename itself
survives a power cut. Temporary names start with ``.`` and end with :data:`TMP_SUFFIX`, so a
crash leaves at worst a stray hidden file that readers ignore.

:func:`check_output_path` is the one check of a command's output file, made before any work
starts: a directory, a wrong extension, an unwritable folder, a file of a run directory, or a
file genzoo did not write (unless ``force``) is refused with a :class:`GenzooError` naming the
fix. Files genzoo writes carry :data:`GENZOO_MARK` (a PNG text chunk, a GIF comment) or, for
JSON reports, the keys :data:`REPORT_KEYS`, which is how :func:`written_by_genzoo` knows them.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from genzoo.core.errors import GenzooError

TMP_SUFFIX = ".tmp"
#: The text of the PNG ``Software`` chunk and the GIF comment that genzoo's pictures carry.
GENZOO_MARK = "genzoo"
#: Keys every ``genzoo evaluate --out`` report has.
REPORT_KEYS = frozenset({"estimator", "model", "data", "run_dir"})
#: How much of a file :func:`written_by_genzoo` reads: the marks sit in a file's first chunks.
_SNIFF_BYTES = 1 << 16
_MAX_REPORT_BYTES = 1 << 22
# The files of a run directory (genzoo.training.manifest names them; repeated here so that
# utils imports nothing above it). Hidden names are the run's temporary files and lock.
_RUN_FILES = frozenset({
    "config.json", "model.safetensors", "trainer_state.safetensors", "trainer_state.json",
    "checkpoint.json", "metrics.csv", "samples.png", "curves.png",
})
_RUN_MARKERS = ("checkpoint.json", "config.json")
_FORMATS = {".png": "PNG image", ".gif": "GIF animation", ".json": "JSON report"}


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames and new entries in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` by the UTF-8 ``text`` atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj):
    """``obj`` with every non-finite float (NaN, Inf) replaced by None, in nested dicts, lists
    and tuples: JSON has no NaN, and a missing figure reads as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def is_temporary(name: str) -> bool:
    """True for the names :func:`atomic_write_bytes` gives its temporary files."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def file_kind(mode: int) -> str:
    """What a ``stat`` mode that is not a regular file is, in words (``'a FIFO'``)."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "not a regular file"


def written_by_genzoo(path: str | os.PathLike) -> bool:
    """True when the regular file ``path`` is a picture or report genzoo wrote (its mark, see
    the module docstring). Reads at most a few MiB; never opens anything but a regular file."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        with open(path, "rb") as f:
            if path.suffix.lower() == ".json":
                if st.st_size > _MAX_REPORT_BYTES:
                    return False
                doc = json.loads(f.read())
                return isinstance(doc, dict) and REPORT_KEYS <= doc.keys()
            head = f.read(_SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    mark = GENZOO_MARK.encode()
    if head.startswith(b"\x89PNG"):
        return b"tEXtSoftware\x00" + mark in head
    if head.startswith(b"GIF8"):
        return b"\x21\xfe" + bytes([len(mark)]) + mark in head  # a comment extension block
    return False


def _run_directory(directory: Path) -> bool:
    return any(os.path.lexists(directory / name) for name in _RUN_MARKERS)


def check_output_path(
    path: str | os.PathLike, suffixes: Sequence[str], *, force: bool = False,
    option: str = "--out",
) -> Path:
    """Check, before any work, that a command may write its output to ``path``; return it.

    ``suffixes`` are the extensions the output format allows (e.g. ``(".png",)``). Refused with
    a :class:`GenzooError` naming the fix: a directory or a name ending in a separator (never
    turned into a file of that name); another extension (a ``.jpg`` name is not given PNG
    bytes); a file of a run directory (a directory holding ``checkpoint.json`` or
    ``config.json``: its checkpoint, config, trainer state, metrics, samples, curves, and hidden
    files); an existing FIFO, device or symbolic link; an existing file genzoo did not write,
    unless ``force``; a parent that is not a directory or not writable. A missing parent is
    created, last, once everything else holds.
    """
    raw = os.fspath(path)
    path = Path(raw)
    if raw.endswith((os.sep, "/")) or path.is_dir():
        raise GenzooError(f"{option} {raw} is a directory; give a file name in it, such as "
                          f"{path / ('samples' + suffixes[0])}")
    target = Path(os.path.abspath(path))
    # The folder the file really lands in: a symlinked folder is followed.
    parent = target.parent.resolve()
    if _run_directory(parent) and (path.name in _RUN_FILES or path.name.startswith(".")
                                   or path.name.endswith(".pending")):
        raise GenzooError(f"{option} {raw} is a file of the run directory {parent}; genzoo "
                          "never writes over a run's own files: choose another name")
    if path.suffix.lower() not in suffixes:
        fmt = " or ".join(_FORMATS.get(s, s) for s in suffixes)
        raise GenzooError(f"{option} {raw}: this output is a {fmt}; give a name ending in "
                          f"{' or '.join(suffixes)}, such as {path.with_suffix(suffixes[0])}")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # a parent that is a file: reported below
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise GenzooError(f"{option} {raw} exists and is {file_kind(st.st_mode)}; choose "
                              "another name")
        if not force and not written_by_genzoo(target):
            raise GenzooError(f"{option} {raw} exists and was not written by genzoo; choose "
                              "another name, or add --force to replace it")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GenzooError(f"{option} {raw}: {existing} is not a directory; choose a path in a "
                          "folder")
    if not os.access(existing, os.W_OK | os.X_OK) or not _can_create_in(existing):
        raise GenzooError(f"{option} {raw}: {existing} is not writable; choose a folder you "
                          "can write to")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenzooError(f"{option} {raw}: cannot create {parent} ({exc.strerror}); choose "
                          "another folder") from None
    return path


def _can_create_in(directory: Path) -> bool:
    """Whether a file can be made in ``directory`` (os.access says yes to root on a read-only
    or special file system): one hidden temporary file, created and removed at once."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".genzoo-check.", suffix=TMP_SUFFIX)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True
