"""Crash-safe file writes: a reader sees the old content or the new, never a torn file.

Each write goes to a uniquely named temporary file in the destination's directory, is flushed
and fsync'ed, renamed over the destination with :func:`os.replace` (atomic on POSIX and
Windows within one file system), and the directory entry is fsync'ed so the rename itself
survives a power cut. Temporary names start with ``.`` and end with :data:`TMP_SUFFIX`, so a
crash leaves at worst a stray hidden file that readers ignore.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"


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


def is_temporary(name: str) -> bool:
    """True for the names :func:`atomic_write_bytes` gives its temporary files."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)
