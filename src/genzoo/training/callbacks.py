"""Hooks into :class:`genzoo.training.Trainer`, and the Trainer's own callbacks.

A callback may read the trainer's public attributes (``model``, ``run_config``, ``run_dir``,
``step``, ``epoch``, ``metrics``) but must not change the model or step anything: the
Trainer's results, checkpoints and resume guarantee assume it alone drives training.

The Trainer runs three callbacks of its own before the ones it is given: :class:`FailureSignals`
(warnings about failure flags among the validation figures), :class:`KeepBest`
(``train.keep_best``: ``RUN/best/``) and :class:`ProgressBar`.
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from genzoo.core.errors import ConfigError
from genzoo.training.model_calls import can_validate, validation_figures

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
    is written again with the same model. ``figure=None``: does nothing."""

    def __init__(self, figure: str | None, run: RunDirectory) -> None:
        self.figure = figure
        self.run = run
        self.best: dict[str, Any] | None = None

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
            return
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
