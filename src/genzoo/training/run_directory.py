"""The run directory of one Trainer run and its rules.

:class:`RunDirectory` is the Trainer's only way to the files of a run (their layout and the
crash-safe commit are in :mod:`genzoo.training.checkpoint`): ``config.json``, the checkpoint
and its ``previous/`` copy, ``best/``, ``metrics.csv`` and ``samples.png``. Its rules: a fresh
run refuses to overwrite a checkpoint, a resumed run must match its checkpoint in everything
but its length (so that it replays exactly), and a run that diverges points to the last good
checkpoint it keeps.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, TrainingDiverged
from genzoo.training import checkpoint as ckpt
from genzoo.training.model_calls import write_samples
from genzoo.training.seeding import device_key

# Config fields a resumed run may change: the run's length, and whether a bar is drawn.
RESUMABLE_CHANGES = ("epochs", "max_steps", "progress")


class RunDirectory:
    """The folder ``path`` of the run configured by ``run_config``.

    ``writes``: False on the ranks of a data-parallel run other than 0, which read the run
    directory (to resume) but never write it.
    """

    def __init__(self, path: str | os.PathLike, run_config: Any, *, writes: bool = True) -> None:
        self.path = Path(path)
        self.run_config = run_config
        self.writes = writes

    @property
    def metrics_path(self) -> Path:
        return self.path / ckpt.METRICS_FILE

    # ------------------------------------------------------------------ fresh run

    def prepare_fresh(self) -> None:
        """Refuse a folder holding a checkpoint; write ``config.json``; drop stale logs and a
        stale ``best/`` (left by a run that failed before its first checkpoint)."""
        if not self.writes:
            return
        if ckpt.has_checkpoint(self.path):
            step = ckpt.checkpoint_step(self.path)
            raise CheckpointError(
                f"{self.path} already holds a checkpoint"
                + (f" (step {step})" if step is not None else "")
                + "; resume it (fit(resume=True), genzoo train --resume) or choose a new run "
                "directory"
            )
        ckpt.write_config(self.path, self.run_config)
        for stale in (ckpt.METRICS_FILE, ckpt.SAMPLES_FILE):  # left by a run that failed early
            try:
                os.unlink(self.path / stale)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.path / ckpt.BEST_DIR, ignore_errors=True)

    # ------------------------------------------------------------------ resume

    def resume_into(self, model: torch.nn.Module) -> dict[str, Any]:
        """Check that the checkpoint may be resumed by this run config, load its model state
        into ``model`` and return its trainer state (tensors on the CPU)."""
        if not ckpt.has_checkpoint(self.path):
            raise CheckpointError(
                f"cannot resume: no checkpoint in {self.path} ({ckpt.MANIFEST_FILE} is "
                "missing); start a fresh run without resume"
            )
        self._check_resumable(ckpt.read_run_config(self.path))
        ckpt.restore_model(model, self.path)
        return ckpt.load_trainer_state(self.path)

    def _check_resumable(self, saved_cfg: Any) -> None:
        """Raise :class:`CheckpointError` when the run config differs from the checkpoint's
        ``saved_cfg`` in anything but :data:`RESUMABLE_CHANGES` (and the spelling of the
        device)."""
        old, new = saved_cfg.to_dict(), self.run_config.to_dict()
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
                            f"cannot resume {self.path}: {section}.{key} is {b.get(key)!r} now "
                            f"but {a.get(key)!r} in the checkpoint; only train.epochs and "
                            "train.max_steps may change on resume. Drop the other changes or "
                            "start a new run directory"
                        )
            elif a != b:
                raise CheckpointError(
                    f"cannot resume {self.path}: it holds a {a!r} model, not {b!r}; "
                    "use the same model or a new run directory"
                )

    def check_same_run(
        self,
        state: dict[str, Any],
        n_train: int,
        batches_per_epoch: int,
        device: torch.device,
        *,
        exact_device: bool = True,
    ) -> None:
        """Raise :class:`CheckpointError` unless the trainer ``state`` was saved for the same
        amount of data and the same device. ``exact_device=False`` (sharded runs, whose random
        streams are re-seeded every step rather than restored) compares the device type only,
        so rank r may resume on cuda:r.

        A malformed ``state`` raises KeyError/TypeError/ValueError for the caller to report."""
        if state["n_train"] != n_train or state["batches_per_epoch"] != batches_per_epoch:
            raise CheckpointError(
                f"cannot resume {self.path}: it was trained on {state['n_train']} "
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
                f"cannot resume {self.path}: it was trained on {saved_device} but "
                f"train.device={self.run_config.train.device!r} means {device} here; an exact "
                f"resume needs the same device: set train.device={saved_device}"
            )

    def record_config(self) -> None:
        """Write ``config.json`` into the resumed checkpoint (a longer schedule, say)."""
        if self.writes:
            ckpt.write_config(self.path, self.run_config)

    # ------------------------------------------------------------------ writes

    def save(self, model: torch.nn.Module, trainer_state: dict[str, Any]) -> None:
        """Commit a checkpoint of ``model`` and the trainer (rotating the last into
        ``previous/``)."""
        ckpt.save_checkpoint(self.path, model, self.run_config, trainer_state)

    def save_best(self, model: torch.nn.Module, step: int) -> None:
        """Save ``model`` as the model-only checkpoint ``best/`` of ``step``."""
        ckpt.save_checkpoint(self.path / ckpt.BEST_DIR, model, self.run_config, step=step)

    def write_samples(
        self,
        model: torch.nn.Module,
        n: int,
        image_shape: tuple[int, int],
        generator: torch.Generator,
        to_images: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        """``samples.png``: a grid of ``n`` samples (see
        :func:`~genzoo.training.model_calls.write_samples`)."""
        write_samples(model, n, image_shape, generator, self.path / ckpt.SAMPLES_FILE,
                      to_images=to_images)

    # ------------------------------------------------------------------ divergence

    def diverged(self, step: int, what: str) -> TrainingDiverged:
        """The error of a run that diverged at ``step`` (``what`` was not finite), naming the
        last good checkpoint it leaves here."""
        last = ckpt.checkpoint_step(self.path) if ckpt.has_checkpoint(self.path) else None
        kept = (
            f"the last good checkpoint (step {last}) is kept in {self.path}"
            if last is not None
            else f"no checkpoint had been written yet in {self.path}"
        )
        return TrainingDiverged(
            f"training diverged at step {step} ({what}); {kept}; lower train.lr "
            f"(now {self.run_config.train.lr:g}) and train again in a new run directory, or "
            "check the data for extreme values"
        )
