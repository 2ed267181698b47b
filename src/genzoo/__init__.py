"""genzoo: the classic deep generative models in PyTorch, trained, sampled and honestly evaluated.

``genzoo.fit("rbm", x, out="runs/rbm", model={"n_hidden": 64})`` trains a model on your data
(an array, tensor, Dataset, file or built-in set) and returns ``(model, run)``;
``model.score(x)`` (or ``genzoo.score(model, x)``) is its mean log-likelihood in nats per
example; ``genzoo.load(run_dir)`` rebuilds a trained model. See :mod:`genzoo.facade`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "fit", "load", "score"]


def load(run_dir):
    """Rebuild the model saved in ``run_dir`` (``config.json`` + ``model.safetensors``).

    Returns the model in evaluation mode on the CPU. Raises :class:`genzoo.core.errors.CheckpointError`
    when the directory is missing, truncated or tampered with.
    """
    from genzoo.training.checkpoint import load_model

    return load_model(run_dir)[0]


# The facade is imported when first called, so that `import genzoo` stays light.
def fit(model, data, /, *, out, y=None, resume=False, **sections):
    """Train ``model`` (a registered name) on ``data`` into the run directory ``out`` and
    return ``(model, run)``: see :func:`genzoo.facade.fit`."""
    from genzoo.facade import fit as _fit

    return _fit(model, data, out=out, y=y, resume=resume, **sections)


def score(model, x, /, *, estimate=False, generator=None, **eval_settings):
    """Mean log-likelihood of ``x`` under ``model`` in nats per example (an Estimate with its
    standard error when ``estimate``): see :func:`genzoo.facade.score`."""
    from genzoo.facade import score as _score

    return _score(model, x, estimate=estimate, generator=generator, **eval_settings)
