"""The ``previous/`` copy of a run directory's checkpoint: rotating the current checkpoint into
it before each commit, and repairing a rotation that a kill interrupted.

Split out of :mod:`genzoo.training.checkpoint` (whose module docstring describes the protocol);
the file names and the manifest are in :mod:`genzoo.training.manifest`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from genzoo.core.errors import CheckpointError
from genzoo.training.manifest import (
    MANIFEST_FILE,
    PREVIOUS_DIR,
    json_bytes,
    read_manifest,
    verified_files,
)
from genzoo.utils.io import atomic_write_bytes, fsync_dir

# Hidden temporaries (readers ignore them) of the rotation into previous/.
_PREVIOUS_NEW = ".previous.new.tmp"
_PREVIOUS_OLD = ".previous.old.tmp"


def _sound_manifest(ckpt_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``ckpt_dir`` when it and every file it lists verify, else None."""
    try:
        manifest = read_manifest(ckpt_dir, required=False)
        if manifest is not None:
            verified_files(ckpt_dir, manifest)
        return manifest
    except CheckpointError:
        return None


def _keep_as_previous(run_dir: Path) -> None:
    """Copy the current checkpoint to ``previous/`` if it verifies (a damaged one would only
    push out the sound previous one). Staged in a hidden folder, then swapped in by renames."""
    try:
        manifest = read_manifest(run_dir, required=False)
        if manifest is None:
            return
        data = verified_files(run_dir, manifest)
    except CheckpointError:
        return
    staging = run_dir / _PREVIOUS_NEW
    _remove_tree(staging)
    staging.mkdir()
    for name, content in data.items():
        atomic_write_bytes(staging / name, content)
    atomic_write_bytes(staging / MANIFEST_FILE, json_bytes(manifest))  # complete from here on
    previous, old = run_dir / PREVIOUS_DIR, run_dir / _PREVIOUS_OLD
    _remove_tree(old)
    if previous.exists():
        os.replace(previous, old)
    os.replace(staging, previous)
    fsync_dir(run_dir)
    _remove_tree(old)


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _recover_previous(run_dir: Path) -> None:
    """After a kill between the two renames of :func:`_keep_as_previous`, ``previous/`` is
    missing: put the complete staging folder (else the old one) in its place."""
    previous = run_dir / PREVIOUS_DIR
    if not previous.exists():
        for candidate in (run_dir / _PREVIOUS_NEW, run_dir / _PREVIOUS_OLD):
            if candidate.is_dir() and _sound_manifest(candidate) is not None:
                os.replace(candidate, previous)
                fsync_dir(run_dir)
                break
    _remove_tree(run_dir / _PREVIOUS_NEW)
    _remove_tree(run_dir / _PREVIOUS_OLD)
