"""Numerical pieces that several model families share: a softplus accurate in float64 (the
evaluation precision) and the sum of its increments without cancellation (AIS in mixed precision), the Bernoulli log-likelihood of binary data given logits, the logits
of the data marginals that output biases start at, and the Gaussian normaliser log(2 pi)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# log(2 pi): a Gaussian's log density is -0.5 (LOG_2PI + log var + (x - mu)^2 / var).
LOG_2PI = math.log(2.0 * math.pi)

# Hinton's guide clamps the data marginals before taking logits so that a pixel that is never on
# in the training set does not get an infinite bias.
MARGINAL_CLAMP = 1e-3


def softplus_threshold(dtype: torch.dtype) -> float:
    # torch's softplus returns x itself above `threshold`, an error of log1p(exp(-threshold)):
    # 2e-9 at the default 20 is below float32 resolution but not float64's, so float64 (the
    # evaluation precision) switches over only at 40 (error 4e-18).
    return 40.0 if dtype == torch.float64 else 20.0


def softplus(x: torch.Tensor) -> torch.Tensor:
    """softplus(x) = log(1 + e^x), elementwise, accurate to the precision of x's dtype."""
    return F.softplus(x, threshold=softplus_threshold(x.dtype))


def softplus_increment(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """sum over the last axis of softplus(x + d) - softplus(x), (..., H) -> (...) float64.

    In float64 the plain difference. In a narrower dtype, with lo = min(x, x + d):
    softplus(x + d) - softplus(x) = sign(d) log1p(sigmoid(lo) expm1(|d|)), every factor
    positive, so the dtype's relative precision holds for the small d of an AIS step (where the
    plain difference of two values of order 1 would lose it to cancellation) and for a large
    negative d (where log1p(sigmoid(x) expm1(d)) would take the log of 1 - (1 - tiny)); the sum
    is taken in float64. |d| >= 20 (a coarse schedule; expm1 would near float32's range) falls
    back to the float64 difference: the test reads one scalar per call, the only host sync of
    an AIS temperature step (the fallback must be chosen before the increment is formed)."""
    if x.dtype == torch.float64 or bool(d.abs().max() >= 20.0):
        x64, d64 = x.to(torch.float64), d.to(torch.float64)
        return (softplus(x64 + d64) - softplus(x64)).sum(-1)
    lo = torch.minimum(x, x + d)
    step = torch.log1p(torch.sigmoid(lo).mul_(torch.expm1(d.abs())))
    return step.copysign_(d).sum(-1, dtype=torch.float64)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_d log Bernoulli(x_d; sigmoid(l_d)) = sum_d [x_d l_d - softplus(l_d)] over the last
    axis, in nats. ``logits`` (..., D) and binary ``x`` (..., D) of shapes that broadcast
    (e.g. logits (S, B, D) for S importance draws per example of x (B, D), summed against x
    without copying it; or logits (B, D) shared by draws x (S, B, D), whose softplus sum is
    then taken once) -> the broadcast shape without its last axis.

    Without gradients in float64 (likelihood evaluation) the softplus sum is taken as
    sum relu(l) + log prod (1 + e^-|l|): every factor lies in (1, 2], so a product over up to
    1000 of them cannot overflow, and its relative rounding error (about 1e-13 for 784
    factors) is an absolute error of 1e-13 nats; it is 3x faster than the elementwise
    softplus (one vectorised exp per variable instead of exp and log1p)."""
    lead = logits.dim() - x.dim()
    if lead > 0 and logits.shape[lead:] == x.shape and x.dim() == 2:
        flat = logits.reshape(-1, *x.shape)
        xl = torch.einsum("sbd,bd->sb", flat, x).reshape(logits.shape[:-1])
    else:
        xl = (x * logits).sum(-1)
    if logits.dtype != torch.float64 or (torch.is_grad_enabled() and logits.requires_grad):
        return xl - softplus(logits).sum(-1)
    # sum relu(l) = (sum l + sum |l|) / 2 reuses the |l| pass that the product needs.
    total = logits.sum(-1)
    for part in logits.split(1000, dim=-1):
        a = part.abs()
        total += a.sum(-1)
        total += a.neg_().exp_().add_(1.0).prod(-1).log_().mul_(2.0)
    return xl - total.mul_(0.5)


def data_logits(x: torch.Tensor) -> torch.Tensor:
    """Logits of the clamped per-variable means of x (N, D) -> (D,)."""
    p = x.mean(dim=0).clamp(MARGINAL_CLAMP, 1.0 - MARGINAL_CLAMP)
    return torch.log(p) - torch.log1p(-p)
