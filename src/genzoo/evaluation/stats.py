"""Estimates with standard errors, and the log-space statistics of importance weights.

All functions take log-weights ``log_w`` (n,) and work in log space so that weights spanning
hundreds of nats neither overflow nor underflow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch


@dataclasses.dataclass
class Estimate:
    """A Monte Carlo (or exact) estimate: ``value`` with its standard error ``stderr`` from
    ``n_samples`` samples (None for a value computed without sampling), the ``estimator`` that
    produced it, ``diagnostics`` (effective sample size, number of temperatures, ...) and the
    ``unit`` of value and stderr (``"nats per example"`` for an NLL, ``"nats"`` for log Z,
    ``"fraction of examples"`` for an error rate; None where the quantity has none)."""

    value: float
    stderr: float
    n_samples: int | None
    estimator: str
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def log_mean_exp(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(mean(exp(log_w))) along ``dim``, computed with logsumexp."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def log_mean_exp_stderr(log_w: torch.Tensor) -> tuple[float, float]:
    """(log mean w, its standard error) for log-weights ``log_w`` (n,), n >= 2.

    Delta method: se(log mean w) = std(w) / (sqrt(n) mean(w)); the ratio is scale-free, so the
    weights are rescaled by their maximum before exponentiating. ``std`` is the unbiased sample
    standard deviation.
    """
    log_w = log_w.detach().to(torch.float64).flatten()
    n = log_w.numel()
    if n < 2:
        raise ValueError("log_mean_exp_stderr needs at least two weights")
    m = log_w.max()
    w = torch.exp(log_w - m)
    mean_w = w.mean()
    estimate = float(m + torch.log(mean_w))
    stderr = float(w.std(unbiased=True) / (math.sqrt(n) * mean_w))
    return estimate, stderr


def effective_sample_size(log_w: torch.Tensor) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2, in log space. Between 1 and n."""
    log_w = log_w.detach().to(torch.float64).flatten()
    return float(torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)))


def mean_stderr(values: torch.Tensor) -> tuple[float, float]:
    """(mean, standard error of the mean) of ``values`` (n,): std / sqrt(n) with the unbiased
    std, 0 for n = 1; e.g. a per-example figure over a test split, or paired differences."""
    values = values.detach().to(torch.float64).flatten()
    n = values.numel()
    return float(values.mean()), float(values.std()) / math.sqrt(n) if n > 1 else 0.0
