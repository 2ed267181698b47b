"""Checks that models of several families repeat: ``n_visible`` (the input width that the CLI
fills from the data when a config leaves it ``None``) and the class labels of the models that
learn from labels; one message each, so every model names the same fix."""

from __future__ import annotations

import torch

from genzoo.core.config import check
from genzoo.core.errors import ConfigError, InputError


def check_n_visible(n_visible: int | None) -> None:
    """For ``Config.validate``: ConfigError unless ``n_visible`` is None or positive."""
    check(
        n_visible is None or n_visible > 0,
        f"model.n_visible={n_visible} must be positive (or none to take it from the data)",
    )


def require_n_visible(config, example: int = 784) -> int:
    """``config.n_visible`` at model construction, or a ConfigError naming the fix (``example``
    is the value the message suggests)."""
    if config.n_visible is None:
        raise ConfigError(
            f"model.n_visible is not set: set it (--set model.n_visible={example}) or let the "
            "CLI take it from the data"
        )
    return config.n_visible


def check_labels(y: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    """``y`` itself after checking that it is (n,) int64 with values in [0, n_classes);
    InputError otherwise."""
    if y.shape != (n,) or y.dtype != torch.int64:
        raise InputError(f"y has shape {tuple(y.shape)} and dtype {y.dtype}; expected ({n},) int64")
    if bool(((y < 0) | (y >= n_classes)).any()):
        raise InputError(f"labels must be in [0, {n_classes}); set model.n_classes")
    return y
