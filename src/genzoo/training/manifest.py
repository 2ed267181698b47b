"""The files of a run directory and the manifest (``checkpoint.json``) that commits them.

The manifest lists each file of a checkpoint with its SHA-256 and size; a file is read only
when its bytes (under its own name, or under its ``.pending`` name after an interrupted commit)
match that hash, so a mix of two checkpoints, a truncated or a hand-edited file is refused with
:class:`CheckpointError`. The last-but-one checkpoint is kept in ``previous/`` with its own
manifest. The commit protocol itself lives in :mod:`genzoo.training.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
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
PENDING_SUFFIX = ".pending"
PREVIOUS_DIR = "previous"  # the last-but-one committed checkpoint, with its own manifest
BEST_DIR = "best"  # train.keep_best: the model with the best validation figure (model only)
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
    if not path.exists():
        if not required:
            return None
        hint = (
            "the run stopped before its first checkpoint; re-run training"
            if (run_dir / CONFIG_FILE).exists()
            else "is this a genzoo run directory? train a model into it first"
        )
        raise CheckpointError(f"no checkpoint in {run_dir} ({MANIFEST_FILE} is missing): {hint}")
    manifest = parse_json(run_dir, MANIFEST_FILE, read_bytes(path))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in files.values())
        or CONFIG_FILE not in files
        or MODEL_FILE not in files
    ):
        raise CheckpointError(f"{path} is not a genzoo checkpoint manifest; {FIX}")
    if manifest.get("version") != MANIFEST_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; this genzoo "
            f"reads version {MANIFEST_VERSION}: use the genzoo version that wrote it"
        )
    return manifest


def read_verified(run_dir: Path, manifest: dict[str, Any], name: str) -> bytes:
    """Bytes of ``name`` whose SHA-256 matches the manifest (own name, else pending name)."""
    expected = manifest["files"].get(name, {}).get("sha256")
    if expected is None:
        raise CheckpointError(f"{run_dir / MANIFEST_FILE} does not list {name}; {FIX}")
    path = run_dir / name
    data = read_bytes(path) if path.exists() else None
    if data is not None and sha256(data) == expected:
        return data
    pending = run_dir / (name + PENDING_SUFFIX)
    if pending.exists():
        pending_data = read_bytes(pending)
        if sha256(pending_data) == expected:
            return pending_data
    found = "is missing" if data is None else f"has sha256 {sha256(data)}"
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


def read_bytes(path: Path) -> bytes:
    """``path``'s content; an OSError becomes a CheckpointError naming the file."""
    try:
        return path.read_bytes()
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


def file_sha256(path: Path) -> str | None:
    """SHA-256 of ``path``'s content; None when it cannot be read."""
    try:
        return sha256(path.read_bytes())
    except OSError:
        return None
