"""A linear layer whose connectivity is given by a binary mask at call time.

Used by MADE (Germain et al. 2015, eq. 11): h = act(b + (W * M) x). The mask multiplies the
weights inside the forward pass and is never written into them, so the stored weights stay
whole, gradients of masked-out entries are exactly zero, and one set of weights serves any
number of masks (the connectivity-agnostic ensembles).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    """``nn.Linear`` applied as y = x (W * M)^T + b for a mask M given to :meth:`forward`."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, in_features), mask (out_features, in_features) in {0, 1} (bool or float)
        -> (B, out_features)."""
        return F.linear(x, self.weight * mask.to(self.weight.dtype), self.bias)
