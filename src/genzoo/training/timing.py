"""Timing training: the seconds of a Trainer's loop alone, for speed comparisons of a model's
training against other implementations of it."""

from __future__ import annotations

import os
from typing import Any

from genzoo.data.config import DataConfig
from genzoo.run_config import RunConfig
from genzoo.training.callbacks import LoopTimer
from genzoo.training.config import TrainConfig
from genzoo.training.trainer import Trainer


def timed_fit(model: Any, model_name: str, data: DataConfig, bundle: Any,
              run_dir: str | os.PathLike, resume: bool = False,
              **train: Any) -> tuple[float, dict[str, Any]]:
    """Train ``model`` (registered as ``model_name``) with the Trainer on ``bundle`` (``data``:
    its DataConfig) under ``TrainConfig(**train)``, by default without progress bar, sample
    grids or checkpoints midway. Returns the seconds of its training loop (:class:`LoopTimer`:
    setup, validation and the last checkpoint left out) and fit's figures."""
    train = {"progress": False, "grid_samples": 0, "checkpoint_every": 10**9, **train}
    cfg = RunConfig(model_name=model_name, model=model.config, data=data,
                    train=TrainConfig(**train))
    timer = LoopTimer()
    metrics = Trainer(model, cfg, bundle, run_dir, callbacks=[timer]).fit(resume=resume)
    return timer.seconds, metrics
