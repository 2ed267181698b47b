"""Run directories and crash-safe checkpoints: safetensors + JSON, never pickle.

A run directory holds::

    config.json                 the resolved RunConfig (RunConfig.to_dict(), pretty JSON)
    model.safetensors           model.state_dict() (parameters and buffers, e.g. persistent chains)
    trainer_state.safetensors   the trainer's tensors: optimizer state, RNG state
    trainer_state.json          everything else: step, epoch, schedule, metrics, optimizer
                                param_groups, with references to the tensors above
    checkpoint.json             the manifest: step and the SHA-256 of each file above
    metrics.csv, samples.png    logs and pictures (not part of a checkpoint)
    environment.json            where the run started: genzoo's version and commit, the
                                command, the machine and its libraries (not part of a
                                checkpoint; genzoo.utils.provenance.environment)
    best/                       with train.keep_best: a model-only checkpoint (config.json,
                                model.safetensors, checkpoint.json) of the model with the best
                                validation figure, loadable as a run directory of its own
    pretrain/                   genzoo train --pretrain: one run directory per pretrained layer
    .genzoo.lock                the Trainer's advisory lock, held while a process writes the
                                run (genzoo.training.run_directory.run_lock)

A checkpoint is committed by its manifest. Saving writes every new file under a ``.pending``
name first, then atomically replaces ``checkpoint.json`` (the commit point), then renames the
pending files over the old ones. A kill before the commit leaves the previous checkpoint
untouched; a kill after it leaves files that match the new manifest either under their own
name or under the pending name, and the next save (or load) finishes the renames. Loading
checks every file against the manifest's hash, so a mix of two checkpoints, a truncated or a
hand-edited file is refused with :class:`CheckpointError` rather than loaded.

The last-but-one checkpoint is kept in ``previous/`` (its own files and manifest). Each
:func:`save_checkpoint`, before its commit point, copies the current checkpoint there if it
verifies: into a hidden staging folder first, which then replaces ``previous/`` by renames, so
a kill leaves either the old or the new ``previous/`` (or a complete staging folder that the
next save moves into place). Loading verifies every file of the current checkpoint; when any
fails (a truncated, missing or modified file, an unreadable manifest), it falls back to
``previous/`` with a :class:`CheckpointFallbackWarning` naming the damage, and raises
:class:`CheckpointError` only when both fail.

This module holds the public API, the commit protocol and the rotation into ``previous/``;
the file names, the manifest and its verification are in :mod:`genzoo.training.manifest`, the
(de)serialisation of model and trainer state in :mod:`genzoo.training.state_io`.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, ConfigError, GenzooError
from genzoo.training.manifest import (
    BEST_DIR,
    CONFIG_FILE,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    METRICS_FILE,
    MODEL_FILE,
    PENDING_SUFFIX,
    PREVIOUS_DIR,
    PREVIOUS_NEW,
    PREVIOUS_OLD,
    SAMPLES_FILE,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    file_sha256,
    is_run_entry,
    json_bytes,
    read_config,
    read_manifest,
    sha256,
    verified_files,
)
from genzoo.training.state_io import (
    STATE_VERSION,
    checked_model_tensors,
    load_model_state,
    model_bytes,
    read_trainer_state,
    trainer_state_files,
)
from genzoo.utils.io import atomic_write_bytes, fsync_dir


class CheckpointFallbackWarning(UserWarning):
    """The current checkpoint of a run failed verification and the previous one was loaded."""


# --------------------------------------------------------------------------- public API


def save_checkpoint(
    run_dir: str | os.PathLike,
    model: torch.nn.Module,
    run_config: Any,
    trainer_state: dict[str, Any] | None = None,
    step: int | None = None,
) -> None:
    """Write a complete checkpoint of ``model`` (and, if given, the trainer) to ``run_dir``.

    ``trainer_state`` is a nested dict of JSON values, tuples and tensors (e.g. holding
    ``optimizer.state_dict()``); its ``"step"`` entry, if any, is recorded in the manifest,
    else ``step`` (the training step a model-only checkpoint was taken at).
    The directory is created if needed. Either the previous checkpoint or this one survives a
    crash at any point.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        CONFIG_FILE: config_bytes(run_config),
        MODEL_FILE: model_bytes(model),
    }
    if trainer_state is not None:
        files.update(trainer_state_files(trainer_state))
        raw_step = trainer_state.get("step")
        step = int(raw_step) if isinstance(raw_step, int) else None
    _commit(
        run_dir, files, carry={}, step=step, trainer_state=trainer_state is not None, rotate=True
    )


def write_config(run_dir: str | os.PathLike, run_config: Any) -> None:
    """Write ``config.json`` now (a run records its config before it trains).

    Where a checkpoint exists, the new config joins it through a manifest commit (the other
    files are kept), so the checkpoint stays verifiable; this is how a resumed run with a
    longer schedule records its new length.
    Where the current checkpoint fails verification and ``previous/`` is sound (loading falls
    back to it), the previous checkpoint becomes the current one again, with the new config.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = config_bytes(run_config)
    previous = run_dir / PREVIOUS_DIR
    if _sound_manifest(run_dir) is None and (kept := _sound_manifest(previous)) is not None:
        # The current checkpoint is damaged, so loading uses previous/ (a resumed run has just
        # done so): make that one current again, with the new config.
        files = {k: v for k, v in _verified(previous, kept).items() if k != CONFIG_FILE}
        files[CONFIG_FILE] = data
        _commit(run_dir, files, carry={}, step=kept.get("step"),
                trainer_state=bool(kept.get("trainer_state")))
        return
    manifest = read_manifest(run_dir, required=False)
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


def load_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu",
               model_overrides: Sequence[str] = ()):
    """Rebuild the model of the checkpoint in ``run_dir``: ``(model, run_config)``.

    The model is built from ``config.json`` through the registry, its state is loaded with
    strict key, shape and dtype checks, and it is returned in eval mode on ``device``.
    ``model_overrides``: ``model.KEY=VALUE`` strings for fields in the model config's
    ``EVALUATION_FIELDS`` (the returned run config carries them); any other key raises
    ConfigError naming the ones allowed.
    Raises :class:`CheckpointError` for a missing, incomplete, truncated or modified checkpoint.
    """
    from genzoo.core.registry import get_model_spec

    ckpt_dir, manifest = _open(Path(run_dir))
    run_config = read_config(ckpt_dir, manifest)
    if model_overrides:
        run_config = _with_evaluation_overrides(run_config, model_overrides)
    try:
        model = get_model_spec(run_config.model_name).build(run_config.model)
    except GenzooError as exc:
        raise CheckpointError(
            f"cannot rebuild the model of {ckpt_dir / CONFIG_FILE}: {exc}"
        ) from None
    load_model_state(model, ckpt_dir, manifest)
    return model.to(device).eval(), run_config


def _with_evaluation_overrides(run_config, overrides: Sequence[str]):
    allowed = type(run_config.model).EVALUATION_FIELDS
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if not key.startswith("model.") or key[len("model."):] not in allowed:
            raise ConfigError(
                f"{item!r}: a trained {run_config.model_name} model can change only "
                + (", ".join(f"model.{k}" for k in allowed) if allowed else "none of its "
                   "model.* fields")
                + " at evaluation (the others fix its parameters); use eval.* for the rest"
            )
    return run_config.with_overrides(list(overrides))


def restore_model(model: torch.nn.Module, run_dir: str | os.PathLike):
    """Load the checkpointed state of ``run_dir`` into ``model`` in place; return its RunConfig.

    Same checks as :func:`load_model`; ``model`` keeps its device and dtype.
    """
    ckpt_dir, manifest = _open(Path(run_dir))
    run_config = read_config(ckpt_dir, manifest)
    load_model_state(model, ckpt_dir, manifest)
    return run_config


def read_run_config(run_dir: str | os.PathLike):
    """The RunConfig of the checkpoint in ``run_dir`` (verified against the manifest)."""
    ckpt_dir, manifest = _open(Path(run_dir))
    return read_config(ckpt_dir, manifest)


def load_trainer_state(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_state`` dict given to :func:`save_checkpoint`, tensors on the CPU."""
    ckpt_dir, manifest = _open(Path(run_dir))
    if not manifest.get("trainer_state"):
        raise CheckpointError(
            f"the checkpoint in {ckpt_dir} holds a model only (no trainer state), so it cannot "
            "be resumed; start a fresh run in a new directory"
        )
    return read_trainer_state(ckpt_dir, manifest)


def checkpoint_step(run_dir: str | os.PathLike) -> int | None:
    """Step of the checkpoint that loading ``run_dir`` would use (the current one, else the
    previous one when the current fails verification); None when neither is readable."""
    run_dir = Path(run_dir)
    for where in (run_dir, run_dir / PREVIOUS_DIR):
        manifest = _sound_manifest(where)
        if manifest is not None:
            step = manifest.get("step")
            return step if isinstance(step, int) else None
    return None


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """True when ``run_dir`` holds a manifest, its own or the previous checkpoint's (complete
    or not: loading verifies it)."""
    run_dir = Path(run_dir)
    return any(os.path.lexists(p) for p in (run_dir / MANIFEST_FILE,
                                              run_dir / PREVIOUS_DIR / MANIFEST_FILE))


def config_bytes(run_config: Any) -> bytes:
    """``config.json`` content: the run config as pretty JSON."""
    return json_bytes(run_config.to_dict())


# --------------------------------------------------------------------------- verification


def _verified(ckpt_dir: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the checkpoint in ``ckpt_dir``, checked against its hash, with a model
    whose tensors are finite: ``{name: bytes}``; else CheckpointError."""
    files = verified_files(ckpt_dir, manifest)
    checked_model_tensors(ckpt_dir, files[MODEL_FILE])
    return files


def _real_dir(path: Path) -> bool:
    """True for a directory that is not a symlink (``previous/`` must be inside the run)."""
    return path.is_dir() and not path.is_symlink()


def _open(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """(folder, manifest) of the checkpoint to load: ``run_dir`` when every file of its
    checkpoint verifies, else ``run_dir/previous`` (with a CheckpointFallbackWarning) when that
    one does. Deciding on all files at once makes the model and the trainer state of a resume
    come from the same checkpoint."""
    try:
        manifest = read_manifest(run_dir, required=True)
        _verified(run_dir, manifest)
        return run_dir, manifest
    except CheckpointError as exc:
        damage = exc
    previous = run_dir / PREVIOUS_DIR
    if not run_dir.is_dir() or not _real_dir(previous) or not (previous / MANIFEST_FILE).exists():
        raise damage
    try:
        manifest = read_manifest(previous, required=True)
        _verified(previous, manifest)
    except CheckpointError as exc:
        raise CheckpointError(
            f"{damage}; the previous checkpoint kept in {previous} is damaged too: {exc}"
        ) from None
    step = manifest.get("step")
    warnings.warn(
        CheckpointFallbackWarning(
            f"the current checkpoint failed verification ({damage}); using the previous "
            f"checkpoint{f' (step {step})' if isinstance(step, int) else ''} kept in "
            f"{previous}: the steps since then are lost, and the next save replaces the "
            "damaged files"
        ),
        stacklevel=3,
    )
    return previous, manifest


# --------------------------------------------------------------------------- commit protocol


def _commit(
    run_dir: Path,
    files: dict[str, bytes],
    *,
    carry: dict[str, dict[str, Any]],
    step: int | None,
    trainer_state: bool,
    rotate: bool = False,
) -> None:
    _recover(run_dir)
    entries = dict(carry)
    for name, data in files.items():
        atomic_write_bytes(run_dir / (name + PENDING_SUFFIX), data)
        entries[name] = {"sha256": sha256(data), "size": len(data)}
    if rotate:
        _keep_as_previous(run_dir)
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


# --------------------------------------------------------------------------- previous/


def _sound_manifest(ckpt_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``ckpt_dir`` when it and every file it lists verify, else None."""
    if ckpt_dir.is_symlink():
        return None
    try:
        manifest = read_manifest(ckpt_dir, required=False)
        if manifest is not None:
            _verified(ckpt_dir, manifest)
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
        data = _verified(run_dir, manifest)
    except CheckpointError:
        return
    staging = run_dir / PREVIOUS_NEW
    _remove_tree(staging)
    staging.mkdir()
    for name, content in data.items():
        atomic_write_bytes(staging / name, content)
    atomic_write_bytes(staging / MANIFEST_FILE, json_bytes(manifest))  # complete from here on
    previous, old = run_dir / PREVIOUS_DIR, run_dir / PREVIOUS_OLD
    _remove_tree(old)
    if previous.exists():
        os.replace(previous, old)
    os.replace(staging, previous)
    fsync_dir(run_dir)
    _remove_tree(old)


def _remove_tree(path: Path) -> None:
    """Remove the folder ``path`` (a symlink in its place is unlinked, never followed)."""
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _recover_previous(run_dir: Path) -> None:
    """After a kill between the two renames of :func:`_keep_as_previous`, ``previous/`` is
    missing: put the complete staging folder (else the old one) in its place."""
    previous = run_dir / PREVIOUS_DIR
    if not os.path.lexists(previous):
        for candidate in (run_dir / PREVIOUS_NEW, run_dir / PREVIOUS_OLD):
            if _real_dir(candidate) and _sound_manifest(candidate) is not None:
                os.replace(candidate, previous)
                fsync_dir(run_dir)
                break
    _remove_tree(run_dir / PREVIOUS_NEW)
    _remove_tree(run_dir / PREVIOUS_OLD)


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """The commit point of a checkpoint (a single atomic rename)."""
    atomic_write_bytes(run_dir / MANIFEST_FILE, json_bytes(manifest))


def _recover(run_dir: Path) -> None:
    """Finish the renames of a commit that was interrupted, then drop leftover temporaries:
    only the ``.pending`` files and temporaries genzoo names (:func:`manifest.is_run_entry`),
    never another file."""
    _recover_previous(run_dir)
    try:
        manifest = read_manifest(run_dir, required=False)
    except CheckpointError:
        manifest = None  # unreadable: the commit about to happen replaces it
    if manifest is not None:
        # The names are checkpoint file names (read_manifest checked them).
        for name, entry in manifest["files"].items():
            pending = run_dir / (name + PENDING_SUFFIX)
            if file_sha256(pending, entry["size"]) == entry["sha256"]:
                os.replace(pending, run_dir / name)
        fsync_dir(run_dir)
    for path in run_dir.iterdir():
        name = path.name
        leftover = name.endswith((PENDING_SUFFIX, ".tmp"))
        if leftover and is_run_entry(name) and not _real_dir(path):
            try:
                path.unlink()
            except OSError:
                pass


__all__ = [
    "BEST_DIR",
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "METRICS_FILE",
    "MODEL_FILE",
    "PENDING_SUFFIX",
    "PREVIOUS_DIR",
    "SAMPLES_FILE",
    "STATE_JSON_FILE",
    "STATE_TENSORS_FILE",
    "STATE_VERSION",
    "CheckpointFallbackWarning",
    "checkpoint_step",
    "config_bytes",
    "has_checkpoint",
    "load_model",
    "load_trainer_state",
    "read_run_config",
    "restore_model",
    "save_checkpoint",
    "write_config",
]
