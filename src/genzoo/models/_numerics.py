"""Numerical pieces that several model families share: a softplus accurate in float64 (the
evaluation precision) and the logits of the data marginals that output biases start at."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def data_logits(x: torch.Tensor) -> torch.Tensor:
    """Logits of the clamped per-variable means of x (N, D) -> (D,)."""
    p = x.mean(dim=0).clamp(MARGINAL_CLAMP, 1.0 - MARGINAL_CLAMP)
    return torch.log(p) - torch.log1p(-p)
