"""The classification error of a model that predicts labels (``predict(x) -> (B,) int64``):
the one count that the hybrid discriminative RBM, the evaluators and the benchmarks share."""

from __future__ import annotations

import torch


def classification_error(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    """Fraction of the examples x (N, D) whose ``model.predict`` differs from y (N,), computed
    in eval mode without gradients, ``chunk`` examples at a time on the model's device."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            wrong = sum(
                int((model.predict(x[i : i + chunk].to(device)).cpu() != y[i : i + chunk].cpu())
                    .sum())
                for i in range(0, len(x), chunk)
            )
    finally:
        model.train(was_training)
    return wrong / max(len(x), 1)
