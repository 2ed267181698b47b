"""Enumeration of binary states: the integer code i stands for the vector whose unit k is bit k
of i, so ``binary_states(torch.arange(2**n), n, dtype)`` lists all 2^n states of n units."""

from __future__ import annotations

import torch


def binary_states(index: torch.Tensor, n_units: int, dtype: torch.dtype) -> torch.Tensor:
    """The binary vectors whose integer codes are ``index`` (M,) -> (M, n_units); unit i is
    bit i of the code."""
    bits = torch.arange(n_units, device=index.device)
    return ((index.unsqueeze(-1) >> bits) & 1).to(dtype)
