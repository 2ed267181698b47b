"""Logging of :class:`~genzoo.training.trainer.Trainer`: the rows of metrics.csv (training
figures averaged over the log interval, validation figures), callbacks' ``on_log``, the
progress-bar postfix, the wall clock and the samples grid.

A mixin of the Trainer, split out of trainer.py to keep files short; it reads and writes the
Trainer's attributes and is not meant to be used on its own.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch

from genzoo.core.errors import ConfigError
from genzoo.training import checkpoint as ckpt
from genzoo.training.model_calls import can_validate, validation_figures, write_samples
from genzoo.training.seeding import seed_for


class _ReportingMixin:
    """Trainer methods that log metrics rows and write the samples grid."""

    def _after_step(self, epoch_end: bool, n_train: int, bpe: int, total: int, bar: Any) -> None:
        cfg = self.cfg
        if self._loss_keys is None:
            self._loss_keys = list(self._sums)
        row: dict[str, float] = {}
        if self.step % cfg.log_every == 0 or self.step == total:
            self._check_parameters()
            row.update(self._train_row(bpe))
            post = {"loss": f"{row['loss']:.4g}"}
            for phase in self.phases:  # each player's loss: a collapse shows at a glance
                if f"{phase.name}_loss" in row:
                    post[f"{phase.name}_loss"] = f"{row[f'{phase.name}_loss']:.4g}"
            if getattr(self, "_failures", None):
                post["warn"] = ",".join(sorted(self._failures))
            bar.set_postfix(**post, ex_s=f"{row['examples_per_s']:.0f}")
        if can_validate(self.model, self.bundle) and (
            (cfg.validate_every > 0 and self.step % cfg.validate_every == 0)
            or (cfg.validate_every == 0 and epoch_end)
            or self.step == total
        ):
            row.update(self._validate())
        if row:
            self._log({"step": self.step, "epoch": self.step / bpe, "lr": self._lr,
                       "wall_s": self._wall(), **row})
        elif self._csv.columns is None:
            self._log(None)  # fixes the header once the loss keys are known
        if self.step % cfg.checkpoint_every == 0 or self.step == total:
            self._checkpoint(n_train, bpe, total)

    def _train_row(self, bpe: int) -> dict[str, float]:
        n = max(self._interval_steps, 1)
        row = {k: s / n for k, s in self._sums.items()}
        elapsed = time.perf_counter() - self._interval_t0 - self._excluded_s
        row["examples_per_s"] = self._rate_examples / elapsed if elapsed > 0 else float("nan")
        if self._best is None or row["loss"] < self._best["loss"]:
            self._best = {"loss": row["loss"], "step": self.step}
        self._sums, self._interval_steps, self._rate_examples = {}, 0, 0
        self._interval_t0 = time.perf_counter()
        self._excluded_s = 0.0
        return row

    def _validate(self) -> dict[str, float]:
        if self.plan.rank != 0 or (self._last_validation == self.step and self.step > 0):
            return {}
        t = time.perf_counter()
        valid = self.bundle.valid
        out = validation_figures(self.model, valid.x.to(self.device), getattr(valid, "y", None))
        if not self._valid_keys:
            self._valid_keys = sorted(out)
        self._flag_failures(out)
        self._keep_if_best(out)
        self._last_validation = self.step
        self._excluded_s += time.perf_counter() - t
        return out

    def _check_keep_best(self) -> None:
        """Refuse a ``train.keep_best`` the model does not report, before any training and on
        every process (a data-parallel run validates on rank 0 only: an error there alone
        would leave the others waiting); the figures' names come from two validation rows."""
        name = self.cfg.keep_best
        if not name:
            return
        if not can_validate(self.model, self.bundle):
            raise ConfigError(
                f"train.keep_best={name!r}, but {type(self.model).__name__} reports no "
                "validation figures on this data (no validation_metrics, or an empty valid "
                "split); unset train.keep_best"
            )
        valid = self.bundle.valid
        y = getattr(valid, "y", None)
        figures = validation_figures(self.model, valid.x[:2].to(self.device),
                                     None if y is None else y[:2].to(self.device))
        self._keep_if_best(figures, save=False)

    def _keep_if_best(self, figures: dict[str, float], save: bool = True) -> None:
        """``train.keep_best``: save the model to ``RUN/best/`` (model only) when its figure is
        the lowest so far. A resumed run replays the steps after its checkpoint exactly, so a
        best/ written after that checkpoint is written again with the same model."""
        name = self.cfg.keep_best
        if not name:
            return
        value = figures.get(f"valid_{name}")
        if value is None:
            reported = ", ".join(k.removeprefix("valid_") for k in sorted(figures)) or "none"
            raise ConfigError(
                f"train.keep_best={name!r} is not a validation figure of "
                f"{type(self.model).__name__} (it reports: {reported}); set train.keep_best "
                "to one of them"
            )
        if not save or not math.isfinite(value) or (
            self._best_valid is not None and value >= self._best_valid["value"]
        ):
            return
        ckpt.save_checkpoint(self.run_dir / ckpt.BEST_DIR, self.model, self.run_config,
                             step=self.step)
        self._best_valid = {"figure": name, "value": float(value), "step": self.step}

    def _flag_failures(self, figures: dict[str, float]) -> None:
        """Failure signals a model reports among its validation figures, as ``<what>_collapsed``
        = 1.0 (e.g. the GAN's discriminator loss near zero): warned about once when they
        appear, and shown in the progress bar while they last. metrics.csv keeps the column."""
        failures = getattr(self, "_failures", set())
        now = {k for k, v in figures.items() if k.endswith("_collapsed") and v >= 1.0}
        for key in sorted(now - failures):
            warnings.warn(
                f"step {self.step}: {type(self.model).__name__} reports {key} on the validation "
                f"split ({', '.join(f'{k}={v:.3g}' for k, v in sorted(figures.items()))}); "
                "training is failing: see the model's docs for the usual remedies",
                RuntimeWarning, stacklevel=2,
            )
        self._failures = now

    def _wall(self) -> float:
        return self._wall_offset + time.perf_counter() - self._t0

    def _log(self, row: dict[str, float] | None) -> None:
        if self._csv.columns is None and self._loss_keys is not None:
            self._csv.fix_columns(self._loss_keys, self._valid_keys)
        rows = self._csv.append([row] if row is not None else [])
        for r in rows:
            self.metrics.update({k: float(v) for k, v in r.items() if k in self._csv.columns})
        for r in rows:
            for cb in self.callbacks:
                cb.on_log(self, r)

    def _write_samples(self) -> None:
        n = self.cfg.grid_samples
        if n == 0 or not callable(getattr(self.model, "sample", None)):
            return
        # A generator of its own, so drawing the grid leaves the training stream untouched.
        g = torch.Generator(device=self.device).manual_seed(seed_for("samples", self.cfg.seed))
        write_samples(self.model, n, self.bundle.image_shape, g, self.run_dir / ckpt.SAMPLES_FILE,
                      to_images=getattr(self.bundle, "to_images", None))
