"""genzoo: the classic deep generative models in PyTorch, trained, sampled and honestly evaluated."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir):
    """Rebuild the model saved in ``run_dir`` (``config.json`` + ``model.safetensors``).

    Returns the model in evaluation mode on the CPU. Raises :class:`genzoo.core.errors.CheckpointError`
    when the directory is missing, truncated or tampered with.
    """
    from genzoo.training.checkpoint import load_model

    return load_model(run_dir)[0]
