"""Training: the one :class:`Trainer`, crash-safe checkpoints, schedules and callbacks.

Names are imported lazily so that reading a config (``genzoo.training.config``) does not pull
in the training loop.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Callback",
    "TrainConfig",
    "Trainer",
    "load_model",
    "load_trainer_state",
    "save_checkpoint",
]

_WHERE = {
    "Callback": "genzoo.training.callbacks",
    "Trainer": "genzoo.training.trainer",
    "TrainConfig": "genzoo.training.config",
    "load_model": "genzoo.training.checkpoint",
    "load_trainer_state": "genzoo.training.checkpoint",
    "save_checkpoint": "genzoo.training.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'genzoo.training' has no attribute {name!r}")
