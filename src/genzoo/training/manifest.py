"""The files of a run directory and the manifest (``checkpoint.json``) that commits them.

The manifest lists each file of a checkpoint with its SHA-256 and size; a file is read only
when its bytes (under its own name, or under its ``.pending`` name after an interrupted commit)
match that hash, so a mix of two checkpoints, a truncated or a hand-edited file is refused with
:class:`CheckpointError`. The last-but-one checkpoint is kept in ``previous/`` with its own
manifest. The commit protocol itself lives in :mod:`genzoo.training.checkpoint`.

A manifest is untrusted input: the names it lists must be the plain names of checkpoint files
(:data:`CHECKPOINT_FILES`: no path, so nothing outside the run is ever read, renamed or
written through it), each file must be a regular file (a symlink, a FIFO or a device is
refused after ``lstat``, before it is opened), and no more bytes are read than its manifest
size (:data:`MAX_MANIFEST_BYTES` for the manifest itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from genzoo.core.errors import CheckpointError, GenzooError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "trainer_state.safetensors"
STATE_JSON_FILE = "trainer_state.json"
MANIFEST_FILE = "checkpoint.json"
METRICS_FILE = "metrics.csv"
SAMPLES_FILE = "samples.png"
ENVIRONMENT_FILE = "environment.json"  # code, command and machine of the run's start
CURVES_FILE = "curves.png"  # the learning curves of metrics.csv, drawn at the end of a run
TENSORBOARD_DIR = "tensorboard"  # train.log_to=tensorboard: the TensorBoard event files
PENDING_SUFFIX = ".pending"
PREVIOUS_DIR = "previous"  # the last-but-one committed checkpoint, with its own manifest
BEST_DIR = "best"  # train.keep_best: the model with the best validation figure (model only)
PRETRAIN_DIR = "pretrain"  # genzoo train --pretrain: the RBM stack of a DBM (a run per layer)
# Hidden temporaries (readers ignore them) of the rotation into previous/.
PREVIOUS_NEW = ".previous.new.tmp"
PREVIOUS_OLD = ".previous.old.tmp"
LOCK_FILE = ".genzoo.lock"  # held (flock) while a process writes the run; marks a genzoo run
# The files a checkpoint commits (the only names a manifest may list).
CHECKPOINT_FILES = (CONFIG_FILE, MODEL_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE)
# Every name genzoo gives an entry of a run directory (besides the ``.pending`` and temporary
# forms of the files, see :func:`is_run_entry`).
RUN_ENTRIES = (*CHECKPOINT_FILES, MANIFEST_FILE, METRICS_FILE, SAMPLES_FILE, ENVIRONMENT_FILE,
               CURVES_FILE, TENSORBOARD_DIR, PREVIOUS_DIR, BEST_DIR, PRETRAIN_DIR, LOCK_FILE)
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists four files: ~1 KB
MANIFEST_FORMAT = "genzoo-checkpoint"
MANIFEST_VERSION = 1

FIX = "re-run training or restore the file"


def read_manifest(run_dir: Path, *, required: bool) -> dict[str, Any] | None:
    """The parsed, well-formed manifest of ``run_dir``.

    None when there is none and ``required`` is false; otherwise a missing directory or
    manifest, or one that is not a genzoo manifest of this version, raises CheckpointError.
    """
    path = run_dir / MANIFEST_FILE
    if not run_dir.is_dir():
        if not required:
            return None
        raise CheckpointError(f"run directory {run_dir} does not exist; check the path")
    if not os.path.lexists(path):  # a dangling symlink is there (and refused when read)
        if not required:
            return None
        hint = (
            "the run stopped before its first checkpoint; re-run training"
            if (run_dir / CONFIG_FILE).exists()
            else "is this a genzoo run directory? train a model into it first"
        )
        raise CheckpointError(f"no checkpoint in {run_dir} ({MANIFEST_FILE} is missing): {hint}")
    manifest = parse_json(run_dir, MANIFEST_FILE, read_bytes(path, MAX_MANIFEST_BYTES))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(files, dict)
        or not all(
            isinstance(e, dict)
            and isinstance(e.get("sha256"), str)
            and type(e.get("size")) is int
            and e["size"] >= 0
            for e in files.values()
        )
        or CONFIG_FILE not in files
        or MODEL_FILE not in files
    ):
        raise CheckpointError(f"{path} is not a genzoo checkpoint manifest; {FIX}")
    for name in files:
        if not is_plain_name(name):
            raise CheckpointError(
                f"{path} lists {name!r}, which is not a plain file name inside the run "
                f"directory (a crafted or corrupt manifest; nothing was read or written "
                f"through it); restore {MANIFEST_FILE} or re-run training"
            )
        if name not in CHECKPOINT_FILES:
            raise CheckpointError(
                f"{path} lists {name!r}, which is not a file of a genzoo checkpoint "
                f"({', '.join(CHECKPOINT_FILES)}); restore {MANIFEST_FILE} or re-run training"
            )
    if manifest.get("version") != MANIFEST_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; this genzoo "
            f"reads version {MANIFEST_VERSION}: use the genzoo version that wrote it"
        )
    return manifest


def read_verified(run_dir: Path, manifest: dict[str, Any], name: str) -> bytes:
    """Bytes of ``name`` whose SHA-256 matches the manifest (own name, else pending name)."""
    entry = manifest["files"].get(name)
    if entry is None:
        raise CheckpointError(f"{run_dir / MANIFEST_FILE} does not list {name}; {FIX}")
    expected, size = entry["sha256"], entry["size"]
    data = read_bytes(run_dir / name, size, missing_ok=True)
    if data is not None and sha256(data) == expected:
        return data
    pending_data = read_bytes(run_dir / (name + PENDING_SUFFIX), size, missing_ok=True)
    if pending_data is not None and sha256(pending_data) == expected:
        return pending_data
    if data is None:
        found = "is missing"
    elif len(data) > size:
        found = f"is larger than the {size} bytes the manifest says"
    else:
        found = f"has sha256 {sha256(data)}"
    raise CheckpointError(
        f"checkpoint in {run_dir} is incomplete or was modified: {name} {found}, "
        f"manifest says {expected}; {FIX}"
    )


def verified_files(run_dir: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file the manifest lists, each checked against its hash: ``{name: bytes}``.
    The first missing, truncated or modified file raises CheckpointError."""
    return {name: read_verified(run_dir, manifest, name) for name in manifest["files"]}


def read_config(run_dir: Path, manifest: dict[str, Any]):
    """The RunConfig of ``config.json``, verified against ``manifest``."""
    from genzoo.run_config import RunConfig

    doc = parse_json(run_dir, CONFIG_FILE, read_verified(run_dir, manifest, CONFIG_FILE))
    try:
        return RunConfig.from_dict(doc)
    except GenzooError as exc:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} is not a valid run config: {exc}") from None


def is_plain_name(name: object) -> bool:
    """True for a file name with no path in it: not absolute, no separator, not ``.``/``..``."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in ("/", "\\", "\0"))
        and os.path.basename(name) == name
    )


def is_run_entry(name: str) -> bool:
    """True for the names genzoo gives the entries of a run directory: :data:`RUN_ENTRIES`,
    a checkpoint file's ``.pending`` form, and the hidden temporaries of their atomic writes
    (``.NAME.<random>.tmp``) and of the rotation into ``previous/``."""
    if name in RUN_ENTRIES:
        return True
    if name.endswith(PENDING_SUFFIX) and name[: -len(PENDING_SUFFIX)] in CHECKPOINT_FILES:
        return True
    if name in (PREVIOUS_NEW, PREVIOUS_OLD):
        return True
    return name.endswith(".tmp") and any(name.startswith(f".{k}.") for k in RUN_ENTRIES)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: Path, fix: str = FIX) -> bool:
    """False when nothing is at ``path``; True for a regular file; anything else (a symlink, a
    FIFO, a device...; checked with ``lstat``, so nothing is opened) raises CheckpointError."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(
            f"{path} is {_kind(mode)}, not a file genzoo wrote; genzoo reads only regular "
            f"files in a run directory: remove it, then {fix}"
        )
    return True


def read_bytes(path: Path, limit: int, *, missing_ok: bool = False) -> bytes | None:
    """``path``'s content, at most ``limit + 1`` bytes (more than ``limit`` means the file is
    not the one expected; the caller sees the extra byte). ``path`` must be a regular file
    (:func:`check_regular`); a missing one gives None when ``missing_ok``. An OSError becomes a
    CheckpointError naming the file."""
    try:
        if not check_regular(path):
            if missing_ok:
                return None
            raise FileNotFoundError(2, "No such file or directory")
        # O_NOFOLLOW / O_NONBLOCK: a file swapped for a symlink or a FIFO after the lstat
        # cannot make the open follow it or hang; fstat then checks what was opened.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"{path} is not a regular file; remove it, then {FIX}")
            chunks, left = [], limit + 1
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 24))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}; {FIX}") from None


def parse_json(run_dir: Path, name: str, data: bytes) -> Any:
    """``data`` (the content of ``run_dir / name``) as JSON, else CheckpointError."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{run_dir / name} is not valid JSON ({exc}); {FIX}") from None


def json_bytes(obj: Any) -> bytes:
    """Pretty JSON, UTF-8, with a final newline (the form of every JSON file of a run)."""
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path, limit: int) -> str | None:
    """SHA-256 of ``path``'s content; None when it is not a regular file of at most ``limit``
    bytes or cannot be read."""
    try:
        data = read_bytes(path, limit, missing_ok=True)
    except CheckpointError:
        return None
    return None if data is None or len(data) > limit else sha256(data)
