"""The rules of a run directory: a fresh run refuses to overwrite a checkpoint, a resumed run
must match its checkpoint in everything but its length (so that it replays exactly), and a
run that diverges points to the last good checkpoint it keeps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, TrainingDiverged
from genzoo.training import checkpoint as ckpt
from genzoo.training.seeding import device_key

# Config fields a resumed run may change: the run's length, and whether a bar is drawn.
RESUMABLE_CHANGES = ("epochs", "max_steps", "progress")


def prepare_fresh_run(run_dir: Path, run_config: Any) -> None:
    """Refuse a ``run_dir`` holding a checkpoint; write ``config.json``; drop stale logs and a
    stale ``best/`` (left by a run that failed before its first checkpoint)."""
    if ckpt.has_checkpoint(run_dir):
        step = ckpt.checkpoint_step(run_dir)
        raise CheckpointError(
            f"{run_dir} already holds a checkpoint"
            + (f" (step {step})" if step is not None else "")
            + "; resume it (fit(resume=True), genzoo train --resume) or choose a new run "
            "directory"
        )
    ckpt.write_config(run_dir, run_config)
    for stale in (ckpt.METRICS_FILE, ckpt.SAMPLES_FILE):  # left by a run that failed early
        try:
            os.unlink(run_dir / stale)
        except FileNotFoundError:
            pass
    shutil.rmtree(run_dir / ckpt.BEST_DIR, ignore_errors=True)


def require_checkpoint(run_dir: Path) -> None:
    """Raise :class:`CheckpointError` unless ``run_dir`` holds a checkpoint to resume."""
    if not ckpt.has_checkpoint(run_dir):
        raise CheckpointError(
            f"cannot resume: no checkpoint in {run_dir} ({ckpt.MANIFEST_FILE} is "
            "missing); start a fresh run without resume"
        )


def check_resumable(run_dir: Path, saved_cfg: Any, run_config: Any) -> None:
    """Raise :class:`CheckpointError` when ``run_config`` differs from the checkpoint's
    ``saved_cfg`` in anything but :data:`RESUMABLE_CHANGES` (and the spelling of the device)."""
    old, new = saved_cfg.to_dict(), run_config.to_dict()
    for section in ("model_name", "model", "data", "train", "eval"):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                # train.device may be respelled (auto/cuda/cuda:0); the resolved device
                # is compared with the checkpoint's in check_same_run.
                if section == "train" and key in (*RESUMABLE_CHANGES, "device"):
                    continue
                if a.get(key) != b.get(key):
                    raise CheckpointError(
                        f"cannot resume {run_dir}: {section}.{key} is {b.get(key)!r} now "
                        f"but {a.get(key)!r} in the checkpoint; only train.epochs and "
                        "train.max_steps may change on resume. Drop the other changes or "
                        "start a new run directory"
                    )
        elif a != b:
            raise CheckpointError(
                f"cannot resume {run_dir}: it holds a {a!r} model, not {b!r}; "
                "use the same model or a new run directory"
            )


def check_same_run(
    run_dir: Path,
    state: dict[str, Any],
    n_train: int,
    batches_per_epoch: int,
    device: torch.device,
    device_name: str,
    *,
    exact_device: bool = True,
) -> None:
    """Raise :class:`CheckpointError` unless the trainer ``state`` was saved for the same
    amount of data and the same device (``device_name`` is ``train.device`` as written).
    ``exact_device=False`` (sharded runs, whose random streams are re-seeded every step
    rather than restored) compares the device type only, so rank r may resume on cuda:r.

    A malformed ``state`` raises KeyError/TypeError/ValueError for the caller to report."""
    if state["n_train"] != n_train or state["batches_per_epoch"] != batches_per_epoch:
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained on {state['n_train']} "
            f"examples but the data now have {n_train}; use the same data settings"
        )
    saved_device = torch.device(state["generator_device"])
    same = (
        device_key(saved_device) == device_key(device)
        if exact_device
        else saved_device.type == device.type
    )
    if not same:
        raise CheckpointError(
            f"cannot resume {run_dir}: it was trained on {saved_device} but "
            f"train.device={device_name!r} means {device} here; an exact "
            f"resume needs the same device: set train.device={saved_device}"
        )


def diverged_error(run_dir: Path, step: int, what: str, lr: float) -> TrainingDiverged:
    """The error of a run that diverged at ``step`` (``what`` was not finite), naming the last
    good checkpoint it leaves in ``run_dir``; ``lr`` is ``train.lr``."""
    last = ckpt.checkpoint_step(run_dir) if ckpt.has_checkpoint(run_dir) else None
    kept = (
        f"the last good checkpoint (step {last}) is kept in {run_dir}"
        if last is not None
        else f"no checkpoint had been written yet in {run_dir}"
    )
    return TrainingDiverged(
        f"training diverged at step {step} ({what}); {kept}; lower train.lr "
        f"(now {lr:g}) and train again in a new run directory, or check the data "
        "for extreme values"
    )
