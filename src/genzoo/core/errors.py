"""Errors a user can cause. Each message names the fix.

All derive from :class:`GenzooError`, so the CLI can print them as one clean line (no trace)
while genuine bugs still surface with a full traceback.
"""

from __future__ import annotations


class GenzooError(Exception):
    """Base class of every error genzoo raises on purpose."""


class ConfigError(GenzooError, ValueError):
    """A hyperparameter or override is unknown, mistyped or out of range."""


class DataError(GenzooError):
    """A data file is missing, corrupt, or the data do not fit the model."""


class InputError(GenzooError, ValueError):
    """A tensor passed to a model has the wrong shape, dtype, support or contains NaN/Inf."""


class CheckpointError(GenzooError):
    """A run directory or checkpoint is missing, truncated, tampered with or incompatible."""


class TrainingDiverged(GenzooError, FloatingPointError):
    """Training produced NaN/Inf; the last good checkpoint is kept untouched."""
