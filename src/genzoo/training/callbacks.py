"""Hooks into :class:`genzoo.training.Trainer`, and the Trainer's own callbacks.

A callback may read the trainer's public attributes (``model``, ``run_config``, ``run_dir``,
``step``, ``epoch``, ``metrics``) but must not change the model or step anything: the
Trainer's results, checkpoints and resume guarantee assume it alone drives training.

The Trainer runs callbacks of its own before the ones it is given: :class:`FailureSignals`
(warnings about failure flags among the validation figures), :class:`KeepBest`
(``train.keep_best``: ``RUN/best/``), :class:`DivergenceWatch` (``train.divergence_factor``:
a warning when the validation figure explodes), :class:`ProgressBar`, :class:`CurvesPlot`
(``RUN/curves.png`` at the end of the run) and, with ``train.log_to=tensorboard``,
:class:`TensorBoardLog` (``RUN/tensorboard/``).
"""

from __future__ import annotations

import csv
import math
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from genzoo.core.errors import ConfigError
from genzoo.training.checkpoint import checkpoint_step
from genzoo.training.manifest import (
    BEST_DIR,
    CURVES_FILE,
    METRICS_FILE,
    PREVIOUS_DIR,
    TENSORBOARD_DIR,
)
from genzoo.training.model_calls import (
    can_sample,
    can_validate,
    first_layer_filters,
    sample_images,
    validation_figures,
)
from genzoo.training.seeding import seed_for

if TYPE_CHECKING:
    from genzoo.training.run_directory import RunDirectory


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first step (after a resume has restored the state)."""

    def on_step_end(self, trainer: Any, loss: float) -> None:
        """After each optimizer step; ``trainer.step`` counts completed steps."""

    def on_validation(self, trainer: Any, figures: dict[str, float]) -> None:
        """After the ``valid_`` figures of ``trainer.step`` are computed, before they are
        logged (on rank 0 only in a data-parallel run: the only rank that validates)."""

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        """After a row (training figures and/or ``valid_`` figures) is appended to metrics.csv."""

    def on_checkpoint(self, trainer: Any) -> None:
        """After a checkpoint of ``trainer.step`` is committed."""

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        """After the last checkpoint and ``samples.png`` are written."""


class LoopTimer(Callback):
    """Seconds of a fit's training loop (``seconds``): from the start of the fit to the end of
    its last step, so that the final validation and checkpoint are left out; 0 before a step.
    Use it to time training (a resumed fit is timed from its own start)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def on_fit_start(self, trainer: Any) -> None:
        self.start = self.end = time.perf_counter()

    def on_step_end(self, trainer: Any, loss: float) -> None:
        self.end = time.perf_counter()


class FailureSignals(Callback):
    """Failure signals a model reports among its validation figures, as ``<what>_collapsed``
    = 1.0 (e.g. the GAN's discriminator loss near zero): warned about once when they appear;
    ``active`` holds those of the last validation (the progress bar shows them).
    metrics.csv keeps the column."""

    def __init__(self) -> None:
        self.active: set[str] = set()

    def on_validation(self, trainer: Any, figures: dict[str, float]) -> None:
        now = {k for k, v in figures.items() if k.endswith("_collapsed") and v >= 1.0}
        for key in sorted(now - self.active):
            warnings.warn(
                f"step {trainer.step}: {type(trainer.model).__name__} reports {key} on the "
                f"validation split ({', '.join(f'{k}={v:.3g}' for k, v in sorted(figures.items()))}"
                "); training is failing: see the model's docs for the usual remedies",
                RuntimeWarning, stacklevel=2,
            )
        self.active = now


class KeepBest(Callback):
    """``train.keep_best=<figure>``: save the model to ``RUN/best/`` (model only, through
    ``run``, a :class:`~genzoo.training.run_directory.RunDirectory`) whenever its validation
    figure ``valid_<figure>`` is the lowest so far. ``best``: the figure, value and step of
    the model kept, None before the first (checkpointed with the trainer state). A resumed run
    replays the steps after its checkpoint exactly, so a best/ written after that checkpoint
    is written again with the same model. ``figure=None``: does nothing.

    ``patience`` (``train.patience``; 0 = off): ``stale`` counts the validations since the
    best (checkpointed with the trainer state), and ``exhausted`` turns True once it reaches
    ``patience``: the Trainer then ends the run (early stopping)."""

    def __init__(self, figure: str | None, run: RunDirectory, patience: int = 0) -> None:
        self.figure = figure
        self.run = run
        self.patience = patience
        self.best: dict[str, Any] | None = None
        self.stale = 0

    @property
    def exhausted(self) -> bool:
        """True once ``patience`` validations in a row have not lowered the figure."""
        return self.patience > 0 and self.stale >= self.patience

    def check(self, trainer: Any) -> None:
        """Refuse a figure the model does not report, before any training and on every
        process (a data-parallel run validates on rank 0 only: an error there alone would
        leave the others waiting); the figures' names come from two validation rows."""
        name = self.figure
        if not name:
            return
        model, valid = trainer.model, trainer.bundle.valid
        if not can_validate(model, trainer.bundle):
            raise ConfigError(
                f"train.keep_best={name!r}, but {type(model).__name__} reports no "
                "validation figures on this data (no validation_metrics, or an empty valid "
                "split); unset train.keep_best"
            )
        y = getattr(valid, "y", None)
        figures = validation_figures(model, valid.x[:2].to(trainer.device),
                                     None if y is None else y[:2].to(trainer.device))
        self._value(model, figures)

    def on_validation(self, trainer: Any, figures: dict[str, float]) -> None:
        if not self.figure:
            return
        value = self._value(trainer.model, figures)
        if not math.isfinite(value) or (self.best is not None and value >= self.best["value"]):
            self.stale += 1
            return
        self.stale = 0
        self.run.save_best(trainer.model, trainer.step)
        self.best = {"figure": self.figure, "value": float(value), "step": trainer.step}

    def _value(self, model: Any, figures: dict[str, float]) -> float:
        value = figures.get(f"valid_{self.figure}")
        if value is None:
            reported = ", ".join(k.removeprefix("valid_") for k in sorted(figures)) or "none"
            raise ConfigError(
                f"train.keep_best={self.figure!r} is not a validation figure of "
                f"{type(model).__name__} (it reports: {reported}); set train.keep_best "
                "to one of them"
            )
        return value


# Validation figures DivergenceWatch follows when train.keep_best names none, in order of
# preference, with the sign that makes them lower-is-better: losses in nats and errors as they
# are, a bound to maximise (the ELBO) negated. Free energies (no fixed zero: log Z is missing)
# and sample-based figures (mmd2: noisy, near zero when good) are not followed.
DIVERGENCE_FIGURES: tuple[tuple[str, float], ...] = (
    ("nll", 1.0), ("nll_estimate", 1.0), ("fill_in_nll", 1.0), ("elbo", -1.0),
    ("walkback", 1.0), ("reconstruction", 1.0), ("recon_error", 1.0),
)


class DivergenceWatch(Callback):
    """``train.divergence_factor`` f > 1: warn when the validation figure explodes, i.e. when
    value - best > (f - 1) * |best| (for a positive figure: value > f * best), ``best`` the
    lowest value so far (never while it is 0: there is no scale to compare with); once per
    onset (again only after the figure has come back). f = 0: does nothing. NaN/Inf parameters are not this callback's: the Trainer raises
    :class:`~genzoo.core.errors.TrainingDiverged` for them.

    The figure followed: ``valid_<figure>`` of ``train.keep_best`` when set (``figure``), else
    the first of :data:`DIVERGENCE_FIGURES` the model reports (an ELBO negated). The warning
    names the step, the best value and its step, and the last good checkpoint: the newest one
    written at or before the last validation that was not exploded, in ``run_dir`` or its
    ``previous/`` (the run keeps those two), and ``best/`` under ``train.keep_best``.
    A resumed run rebuilds the best value from the ``valid_`` column of its metrics.csv."""

    def __init__(self, factor: float, figure: str, run_dir: str | Path) -> None:
        self.factor = factor
        self.figure = figure
        self.run_dir = Path(run_dir)
        self.best: tuple[float, int] | None = None  # (lower-is-better value, step)
        self.exploded = False
        self.last_fine: int | None = None  # step of the last validation not exploded
        self.checkpoints: list[int] = []  # steps of the checkpoints kept: previous/, current

    def watched(self, names: set[str]) -> tuple[str, float] | None:
        """(figure, sign) followed among the validation figure ``names`` (without ``valid_``),
        None when none is."""
        if self.figure:
            return (self.figure, 1.0) if self.figure in names else None
        return next(((n, sign) for n, sign in DIVERGENCE_FIGURES if n in names), None)

    def on_fit_start(self, trainer: Any) -> None:
        if not self.factor or trainer.step == 0:
            return
        # Resumed: the checkpoints on disk, and the best so far from the logged figures.
        self.checkpoints = [s for s in (checkpoint_step(self.run_dir / PREVIOUS_DIR),
                                        trainer.step) if s is not None and s <= trainer.step]
        for step, figures in self._logged(trainer.step):
            exploded = self._update(step, figures)
            if exploded is not None:
                self.exploded = exploded

    def on_checkpoint(self, trainer: Any) -> None:
        self.checkpoints = [*self.checkpoints[-1:], trainer.step]

    def on_validation(self, trainer: Any, figures: dict[str, float]) -> None:
        if not self.factor:
            return
        exploded = self._update(trainer.step, figures)
        if exploded is None:
            return
        if exploded and not self.exploded:
            warnings.warn(self._message(trainer, figures), RuntimeWarning, stacklevel=2)
        self.exploded = exploded

    def _update(self, step: int, figures: dict[str, float]) -> bool | None:
        """Record the validation figures of ``step``; whether the followed figure is exploded
        (None when it is not reported or not finite)."""
        names = {k.removeprefix("valid_") for k in figures if k.startswith("valid_")}
        watched = self.watched(names)
        if watched is None:
            return None
        value = watched[1] * figures[f"valid_{watched[0]}"]
        if not math.isfinite(value):
            return None
        if self.best is None or value < self.best[0]:
            self.best = (value, step)
        best = self.best[0]
        exploded = best != 0.0 and value - best > (self.factor - 1.0) * abs(best)
        if not exploded:
            self.last_fine = step
        return exploded

    def _message(self, trainer: Any, figures: dict[str, float]) -> str:
        name, sign = self.watched({k.removeprefix("valid_") for k in figures}) or ("", 1.0)
        best_value, best_step = self.best or (math.nan, trainer.step)
        good = [s for s in self.checkpoints if self.last_fine is not None and s <= self.last_fine]
        if not good:
            kept = "no checkpoint from before it is kept"
        else:
            where = self.run_dir if good[-1] == self.checkpoints[-1] else (
                self.run_dir / PREVIOUS_DIR)
            kept = f"the last good checkpoint is step {good[-1]}, in {where}"
        if self.figure:
            kept += f" (and {self.run_dir / BEST_DIR} holds the model of the best step)"
        return (
            f"step {trainer.step}: valid_{name}={figures[f'valid_{name}']:.6g} is more than "
            f"{self.factor:g} times worse than its best, {sign * best_value:.6g} at step "
            f"{best_step}: training is diverging; {kept}. Lower train.lr (now "
            f"{trainer.cfg.lr:g}) and train again, or set train.divergence_factor=0 to "
            "silence this warning"
        )

    def _logged(self, step: int) -> list[tuple[int, dict[str, float]]]:
        """(step, valid_ figures) of the rows of metrics.csv up to ``step``; none when the
        file cannot be read (the warning is advice: it never stops a run)."""
        rows = []
        try:
            with open(self.run_dir / METRICS_FILE, newline="") as f:
                for row in csv.DictReader(f):
                    figures = {k: float(v) for k, v in row.items()
                               if k and k.startswith("valid_") and v not in (None, "")}
                    if figures and int(row["step"]) <= step:
                        rows.append((int(row["step"]), figures))
        except (OSError, ValueError, KeyError, csv.Error):
            return []
        return rows


class ProgressBar(Callback):
    """A tqdm bar on stderr over ``total`` steps from ``initial``, showing the loss, each
    phase's loss (``phases``: their names), the active failure signals (``failures``) and the
    examples/s of the last logged row. ``enabled=False`` draws nothing."""

    def __init__(
        self, total: int, initial: int, desc: str, phases: list[str], failures: FailureSignals,
        *, enabled: bool,
    ) -> None:
        self.phases = phases
        self.failures = failures
        self.bar = tqdm(
            total=total,
            initial=min(initial, total),
            desc=desc,
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            mininterval=0.2 if _stderr_is_tty() else 30.0,
            file=sys.stderr,
        )

    def on_step_end(self, trainer: Any, loss: float) -> None:
        self.bar.update(1)

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        if "loss" not in row:  # a row of validation figures only
            return
        post = {"loss": f"{row['loss']:.4g}"}
        for name in self.phases:  # each player's loss: a collapse shows at a glance
            if f"{name}_loss" in row:
                post[f"{name}_loss"] = f"{row[f'{name}_loss']:.4g}"
        if self.failures.active:
            post["warn"] = ",".join(sorted(self.failures.active))
        self.bar.set_postfix(**post, ex_s=f"{row['examples_per_s']:.0f}")

    def close(self) -> None:
        self.bar.close()


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class CurvesPlot(Callback):
    """At the end of a run, ``RUN/curves.png`` beside ``samples.png``: every figure of its
    metrics.csv against steps (:func:`genzoo.training.curves.plot_curves`), drawn by the
    process that writes the run. The picture is a convenience: when it cannot be drawn
    (matplotlib missing, a log with nothing to draw, a full disk) a RuntimeWarning says why
    and how to draw it later, and the finished run is kept as it is."""

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if trainer.plan.rank != 0:
            return
        run_dir = Path(trainer.run_dir)
        try:
            from genzoo.training.curves import plot_curves, read_metrics

            plot_curves([(run_dir.resolve().name, read_metrics(run_dir))], run_dir / CURVES_FILE)
        except Exception as exc:  # noqa: BLE001 (a picture never fails a finished run)
            warnings.warn(
                f"{run_dir / CURVES_FILE} was not drawn ({type(exc).__name__}: {exc}); the run "
                f"is complete: draw its curves with `genzoo plot {run_dir} --out curves.png`",
                RuntimeWarning, stacklevel=2,
            )


def summary_writer_class() -> type:
    """:class:`torch.utils.tensorboard.SummaryWriter`; a ConfigError naming the install
    command when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "train.log_to=tensorboard needs the tensorboard package, which is not installed: "
            "pip install 'genzoo[tensorboard]' (or leave train.log_to=csv)"
        ) from None
    return SummaryWriter


class TensorBoardLog(Callback):
    """``train.log_to=tensorboard``: TensorBoard event files in ``RUN/tensorboard/``
    (``tensorboard --logdir RUN``), written through :class:`torch.utils.tensorboard.
    SummaryWriter` by the process that writes the run; metrics.csv stays the record.

    * Scalars: every column of each row appended to metrics.csv, under the column's name, at
      the row's step.
    * At each validation and at the end of the run: ``samples``, a grid of ``grid_samples``
      samples (none when 0) drawn in eval mode from a generator of its own seeded as
      ``samples.png``'s, so that successive grids show the model change, not the noise;
      ``filters``, the first-layer filters where the model has them
      (:func:`~genzoo.training.model_calls.first_layer_filters`: ``filters()`` or a
      visible-to-hidden weight matrix ``W``), each scaled to its own range; and
      ``parameters/<name>``, a histogram of every parameter's finite values.

    A run starts its writer with ``purge_step`` at the first step it logs (0 for a fresh
    run, the checkpoint's step + 1 for a resumed one), so TensorBoard hides the events that an
    interrupted earlier part wrote from there on (the resumed run replays those steps).
    Events are flushed at each checkpoint and when the run ends. Constructing the callback
    raises ConfigError when tensorboard is not installed (:func:`summary_writer_class`).
    """

    def __init__(self, run_dir: str | Path, grid_samples: int) -> None:
        self.writer_class = summary_writer_class()
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR
        self.grid_samples = grid_samples
        self.writer: Any = None
        self._pictured: int | None = None  # step of the last pictures

    def _open(self, trainer: Any) -> Any:
        if self.writer is None:
            # Events from this step on replace earlier ones: a fresh run's from step 0; a
            # resumed run's after its checkpoint (those up to it are its own).
            first = trainer.step + 1 if trainer.step > 0 else 0
            self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=first)
        return self.writer

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.plan.rank == 0:
            self._open(trainer)

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        if trainer.plan.rank != 0:
            return
        writer, step = self._open(trainer), int(row["step"])
        for name, value in row.items():
            if name != "step":
                writer.add_scalar(name, float(value), step)

    def on_validation(self, trainer: Any, figures: dict[str, float]) -> None:
        self._pictures(trainer)  # validation runs on rank 0 only

    def on_checkpoint(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.flush()

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        if trainer.plan.rank != 0:
            return
        self._pictures(trainer)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _pictures(self, trainer: Any) -> None:
        """Samples, filters and parameter histograms of the model at ``trainer.step``."""
        from genzoo.utils.images import tile_images

        if self._pictured == trainer.step:
            return
        self._pictured = step = trainer.step
        writer, model = self._open(trainer), trainer.model
        shape = getattr(trainer.bundle, "image_shape", None)
        if shape is not None and self.grid_samples > 0 and can_sample(model):
            g = torch.Generator(device=trainer.device).manual_seed(
                seed_for("samples", trainer.cfg.seed))
            x = sample_images(model, self.grid_samples, shape, g,
                              getattr(trainer.bundle, "to_images", None),
                              "the TensorBoard sample grid")
            if x is not None and bool(torch.isfinite(x).all()):
                writer.add_image("samples", tile_images(x.clamp(0, 1), shape, scale=2), step,
                                 dataformats="HW")
        filters = first_layer_filters(model, shape) if shape is not None else None
        if filters is not None and bool(torch.isfinite(filters[0]).all()):
            images, filter_shape = filters
            scale = max(1, 36 // max(filter_shape))  # small kernels magnified to ~36 pixels
            writer.add_image("filters", tile_images(images[:100], filter_shape, scale=scale,
                                                    normalize=True), step, dataformats="HW")
        for name, p in model.named_parameters():
            values = p.detach().float().cpu().flatten()
            values = values[torch.isfinite(values)]
            if values.numel():
                writer.add_histogram(f"parameters/{name}", values, step)
