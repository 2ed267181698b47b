"""Run directories and crash-safe checkpoints: safetensors + JSON, never pickle.

A run directory holds::

    config.json                 the resolved RunConfig (RunConfig.to_dict(), pretty JSON)
    model.safetensors           model.state_dict() (parameters and buffers, e.g. persistent chains)
    trainer_state.safetensors   the trainer's tensors: optimizer state, RNG state
    trainer_state.json          everything else: step, epoch, schedule, metrics, optimizer
                                param_groups, with references to the tensors above
    checkpoint.json             the manifest: step and the SHA-256 of each file above
    metrics.csv, samples.png    logs and pictures (not part of a checkpoint)

A checkpoint is committed by its manifest. Saving writes every new file under a ``.pending``
name first, then atomically replaces ``checkpoint.json`` (the commit point), then renames the
pending files over the old ones. A kill before the commit leaves the previous checkpoint
untouched; a kill after it leaves files that match the new manifest either under their own
name or under the pending name, and the next save (or load) finishes the renames. Loading
checks every file against the manifest's hash, so a mix of two checkpoints, a truncated or a
hand-edited file is refused with :class:`CheckpointError` rather than loaded.

Nested trainer state (e.g. ``optimizer.state_dict()``, whose state keys are ints and whose
param groups hold tuples) is stored exactly: tensors go to safetensors under their path,
the rest to JSON, with tags for tuples, non-string dict keys and tensor references.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from genzoo.core.errors import CheckpointError, GenzooError
from genzoo.training.atomic import atomic_write_bytes, fsync_dir, is_temporary

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "trainer_state.safetensors"
STATE_JSON_FILE = "trainer_state.json"
MANIFEST_FILE = "checkpoint.json"
METRICS_FILE = "metrics.csv"
SAMPLES_FILE = "samples.png"
PENDING_SUFFIX = ".pending"
MANIFEST_FORMAT = "genzoo-checkpoint"
MANIFEST_VERSION = 1
STATE_VERSION = 1

_FIX = "re-run training or restore the file"


# --------------------------------------------------------------------------- public API


def save_checkpoint(
    run_dir: str | os.PathLike,
    model: torch.nn.Module,
    run_config: Any,
    trainer_state: dict[str, Any] | None = None,
) -> None:
    """Write a complete checkpoint of ``model`` (and, if given, the trainer) to ``run_dir``.

    ``trainer_state`` is a nested dict of JSON values, tuples and tensors (e.g. holding
    ``optimizer.state_dict()``); its ``"step"`` entry, if any, is recorded in the manifest.
    The directory is created if needed. Either the previous checkpoint or this one survives a
    crash at any point.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        CONFIG_FILE: config_bytes(run_config),
        MODEL_FILE: _safetensors_bytes(_model_tensors(model), MODEL_FILE),
    }
    step = None
    if trainer_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        tree = _encode(trainer_state, "", tensors)
        doc = {"format_version": STATE_VERSION, "state": tree}
        files[STATE_TENSORS_FILE] = _safetensors_bytes(tensors, STATE_TENSORS_FILE)
        files[STATE_JSON_FILE] = _json_bytes(doc)
        raw_step = trainer_state.get("step")
        step = int(raw_step) if isinstance(raw_step, int) else None
    _commit(run_dir, files, carry={}, step=step, trainer_state=trainer_state is not None)


def write_config(run_dir: str | os.PathLike, run_config: Any) -> None:
    """Write ``config.json`` now (a run records its config before it trains).

    Where a checkpoint exists, the new config joins it through a manifest commit (the other
    files are kept), so the checkpoint stays verifiable; this is how a resumed run with a
    longer schedule records its new length.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = config_bytes(run_config)
    manifest = _read_manifest(run_dir, required=False)
    if manifest is None:
        atomic_write_bytes(run_dir / CONFIG_FILE, data)
        return
    carry = {k: v for k, v in manifest["files"].items() if k != CONFIG_FILE}
    _commit(
        run_dir,
        {CONFIG_FILE: data},
        carry=carry,
        step=manifest.get("step"),
        trainer_state=bool(manifest.get("trainer_state")),
    )


def load_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the model of the checkpoint in ``run_dir``: ``(model, run_config)``.

    The model is built from ``config.json`` through the registry, its state is loaded with
    strict key, shape and dtype checks, and it is returned in eval mode on ``device``.
    Raises :class:`CheckpointError` for a missing, incomplete, truncated or modified checkpoint.
    """
    from genzoo.core.registry import get_model_spec

    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir, required=True)
    run_config = _parse_config(run_dir, _read_verified(run_dir, manifest, CONFIG_FILE))
    try:
        model = get_model_spec(run_config.model_name).build(run_config.model)
    except GenzooError as exc:
        raise CheckpointError(
            f"cannot rebuild the model of {run_dir / CONFIG_FILE}: {exc}"
        ) from None
    _load_state(model, run_dir, manifest)
    return model.to(device).eval(), run_config


def restore_model(model: torch.nn.Module, run_dir: str | os.PathLike):
    """Load the checkpointed state of ``run_dir`` into ``model`` in place; return its RunConfig.

    Same checks as :func:`load_model`; ``model`` keeps its device and dtype.
    """
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir, required=True)
    run_config = _parse_config(run_dir, _read_verified(run_dir, manifest, CONFIG_FILE))
    _load_state(model, run_dir, manifest)
    return run_config


def read_run_config(run_dir: str | os.PathLike):
    """The RunConfig of the checkpoint in ``run_dir`` (verified against the manifest)."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir, required=True)
    return _parse_config(run_dir, _read_verified(run_dir, manifest, CONFIG_FILE))


def load_trainer_state(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_state`` dict given to :func:`save_checkpoint`, tensors on the CPU."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir, required=True)
    if not manifest.get("trainer_state"):
        raise CheckpointError(
            f"the checkpoint in {run_dir} holds a model only (no trainer state), so it cannot "
            "be resumed; start a fresh run in a new directory"
        )
    tensors = _parse_safetensors(
        run_dir, STATE_TENSORS_FILE, _read_verified(run_dir, manifest, STATE_TENSORS_FILE)
    )
    doc = _parse_json(run_dir, STATE_JSON_FILE, _read_verified(run_dir, manifest, STATE_JSON_FILE))
    if not isinstance(doc, dict) or doc.get("format_version") != STATE_VERSION:
        raise CheckpointError(
            f"{run_dir / STATE_JSON_FILE} has an unsupported format; use the genzoo version "
            "that wrote it or start a fresh run"
        )
    try:
        return _decode(doc["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{run_dir / STATE_JSON_FILE} does not match {STATE_TENSORS_FILE} ({exc}); {_FIX}"
        ) from None


def checkpoint_step(run_dir: str | os.PathLike) -> int | None:
    """Step recorded by the manifest in ``run_dir``; None when there is no readable checkpoint."""
    try:
        manifest = _read_manifest(Path(run_dir), required=False)
    except CheckpointError:
        return None
    if manifest is None:
        return None
    step = manifest.get("step")
    return step if isinstance(step, int) else None


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """True when ``run_dir`` holds a manifest (complete or not: loading verifies it)."""
    return (Path(run_dir) / MANIFEST_FILE).exists()


def config_bytes(run_config: Any) -> bytes:
    """``config.json`` content: the run config as pretty JSON."""
    return _json_bytes(run_config.to_dict())


# --------------------------------------------------------------------------- commit protocol


def _commit(
    run_dir: Path,
    files: dict[str, bytes],
    *,
    carry: dict[str, dict[str, Any]],
    step: int | None,
    trainer_state: bool,
) -> None:
    _recover(run_dir)
    entries = dict(carry)
    for name, data in files.items():
        atomic_write_bytes(run_dir / (name + PENDING_SUFFIX), data)
        entries[name] = {"sha256": _sha256(data), "size": len(data)}
    from genzoo import __version__

    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "genzoo_version": __version__,
        "step": step,
        "trainer_state": trainer_state,
        "files": entries,
    }
    _write_manifest(run_dir, manifest)
    for name in files:
        os.replace(run_dir / (name + PENDING_SUFFIX), run_dir / name)
    fsync_dir(run_dir)
    if not trainer_state:
        # A model-only save must not leave an older trainer state looking current.
        for name in (STATE_TENSORS_FILE, STATE_JSON_FILE):
            try:
                os.unlink(run_dir / name)
            except FileNotFoundError:
                pass


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """The commit point of a checkpoint (a single atomic rename)."""
    atomic_write_bytes(run_dir / MANIFEST_FILE, _json_bytes(manifest))


def _recover(run_dir: Path) -> None:
    """Finish the renames of a commit that was interrupted, then drop leftover temporaries."""
    try:
        manifest = _read_manifest(run_dir, required=False)
    except CheckpointError:
        manifest = None  # unreadable: the commit about to happen replaces it
    if manifest is not None:
        for name, entry in manifest["files"].items():
            pending = run_dir / (name + PENDING_SUFFIX)
            if pending.exists() and _file_sha256(pending) == entry.get("sha256"):
                os.replace(pending, run_dir / name)
        fsync_dir(run_dir)
    for path in run_dir.iterdir():
        if path.name.endswith(PENDING_SUFFIX) or is_temporary(path.name):
            try:
                path.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------- reading


def _read_manifest(run_dir: Path, *, required: bool) -> dict[str, Any] | None:
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
    manifest = _parse_json(run_dir, MANIFEST_FILE, _read_bytes(path))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in files.values())
        or CONFIG_FILE not in files
        or MODEL_FILE not in files
    ):
        raise CheckpointError(f"{path} is not a genzoo checkpoint manifest; {_FIX}")
    if manifest.get("version") != MANIFEST_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {manifest.get('version')!r}; this genzoo "
            f"reads version {MANIFEST_VERSION}: use the genzoo version that wrote it"
        )
    return manifest


def _read_verified(run_dir: Path, manifest: dict[str, Any], name: str) -> bytes:
    """Bytes of ``name`` whose SHA-256 matches the manifest (own name, else pending name)."""
    expected = manifest["files"].get(name, {}).get("sha256")
    if expected is None:
        raise CheckpointError(f"{run_dir / MANIFEST_FILE} does not list {name}; {_FIX}")
    path = run_dir / name
    data = _read_bytes(path) if path.exists() else None
    if data is not None and _sha256(data) == expected:
        return data
    pending = run_dir / (name + PENDING_SUFFIX)
    if pending.exists():
        pending_data = _read_bytes(pending)
        if _sha256(pending_data) == expected:
            return pending_data
    found = "is missing" if data is None else f"has sha256 {_sha256(data)}"
    raise CheckpointError(
        f"checkpoint in {run_dir} is incomplete or was modified: {name} {found}, "
        f"manifest says {expected}; {_FIX}"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}; {_FIX}") from None


def _parse_json(run_dir: Path, name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{run_dir / name} is not valid JSON ({exc}); {_FIX}") from None


def _parse_config(run_dir: Path, data: bytes):
    from genzoo.core.run_config import RunConfig

    doc = _parse_json(run_dir, CONFIG_FILE, data)
    try:
        return RunConfig.from_dict(doc)
    except GenzooError as exc:
        raise CheckpointError(f"{run_dir / CONFIG_FILE} is not a valid run config: {exc}") from None


def _parse_safetensors(run_dir: Path, name: str, data: bytes) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure of untrusted bytes is corruption
        raise CheckpointError(
            f"{run_dir / name} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
            f"{_FIX}"
        ) from None


def _load_state(model: torch.nn.Module, run_dir: Path, manifest: dict[str, Any]) -> None:
    tensors = _parse_safetensors(run_dir, MODEL_FILE, _read_verified(run_dir, manifest, MODEL_FILE))
    where = run_dir / MODEL_FILE
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise CheckpointError(
            f"{where} lacks key {missing[0]!r} that {type(model).__name__} expects "
            f"({len(missing)} missing in all); the file and config.json come from different "
            f"models: {_FIX}"
        )
    unexpected = [k for k in tensors if k not in expected]
    if unexpected:
        raise CheckpointError(
            f"{where} has key {unexpected[0]!r} that {type(model).__name__} does not have; "
            f"the file and config.json come from different models: {_FIX}"
        )
    for key, want in expected.items():
        got = tensors[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{where}: key {key!r} has shape {tuple(got.shape)} but the model built from "
                f"config.json expects {tuple(want.shape)}; {_FIX}"
            )
        if got.dtype != want.dtype:
            raise CheckpointError(
                f"{where}: key {key!r} has dtype {got.dtype} but the model expects "
                f"{want.dtype}; {_FIX}"
            )
    model.load_state_dict(tensors, strict=True)


# --------------------------------------------------------------------------- encoding


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone() so tied or viewed tensors do not share storage (safetensors refuses that).
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _safetensors_bytes(tensors: dict[str, torch.Tensor], name: str) -> bytes:
    return st_save(tensors, metadata={"format": "pt", "genzoo_file": name})


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except OSError:
        return None


_TAGS = ("__tensor__", "__tuple__", "__items__", "__float__")


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; tensors are moved into ``tensors`` under their path."""
    if isinstance(obj, torch.Tensor):
        key = path.lstrip(".") or "tensor"
        base, i = key, 1
        while key in tensors:
            i += 1
            key = f"{base}#{i}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        # Strict JSON has no NaN/Inf; keep them exact through a tag.
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: _encode(v, f"{path}.{k}", tensors) for k, v in obj.items()}
        return {
            "__items__": [
                [_encode(k, f"{path}.key{i}", tensors), _encode(v, f"{path}.{k}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _encode(obj.item(), path, tensors)
    raise TypeError(f"cannot store a {type(obj).__name__} at {path or '<root>'} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            (tag, value), = obj.items()
            if tag == "__tensor__":
                return tensors[value]
            if tag == "__tuple__":
                return tuple(_decode(v, tensors) for v in value)
            if tag == "__items__":
                return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
            if tag == "__float__":
                return float(value)
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj
