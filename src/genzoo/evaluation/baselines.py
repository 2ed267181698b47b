"""Baselines that give a likelihood its scale where no published number exists.

The maximum-likelihood Gaussians fitted to the training data, with full and with diagonal
covariance: any density model of real-valued data should beat the first, and the second is a
Gaussian RBM's AIS base model. Their test NLL is exact (a closed form), in nats per example::

    NLL = -mean_n [ log N(y_n; mu, Sigma) + log|dy/dx|_n ]

with mu and Sigma the training mean and (biased, maximum-likelihood) covariance.
"""

from __future__ import annotations

import torch
from torch import distributions as D


def gaussian_baseline_nll(
    x_train: torch.Tensor, x_test: torch.Tensor, log_det: torch.Tensor | float = 0.0
) -> tuple[float, float]:
    """(full-covariance, diagonal) mean test NLLs in nats per example of x_test (N, D) under
    the maximum-likelihood Gaussians fitted to x_train (M, D), in float64. ``log_det`` (N,) or
    a scalar: log |dy/dx| of the data transform per example, which carries the NLL from the
    space the Gaussians model into the space the evaluator reports (0: none)."""
    x, y = x_train.double(), x_test.double()
    mean, cov = x.mean(0), torch.cov(x.T, correction=0)
    full = D.MultivariateNormal(mean, covariance_matrix=cov)
    diag = D.Normal(mean, torch.diagonal(cov).sqrt())
    return (float((-full.log_prob(y) - log_det).mean()),
            float((-diag.log_prob(y).sum(-1) - log_det).mean()))


__all__ = ["gaussian_baseline_nll"]
