"""Hooks into :class:`genzoo.training.Trainer`.

A callback may read the trainer's public attributes (``model``, ``run_config``, ``run_dir``,
``step``, ``epoch``, ``metrics``) but must not change the model or step anything: the
Trainer's results, checkpoints and resume guarantee assume it alone drives training.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first step (after a resume has restored the state)."""

    def on_step_end(self, trainer: Any, loss: float) -> None:
        """After each optimizer step; ``trainer.step`` counts completed steps."""

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        """After a row (training figures and/or ``valid_`` figures) is appended to metrics.csv."""

    def on_checkpoint(self, trainer: Any) -> None:
        """After a checkpoint of ``trainer.step`` is committed."""

    def on_fit_end(self, trainer: Any, metrics: dict[str, float]) -> None:
        """After the last checkpoint and ``samples.png`` are written."""
