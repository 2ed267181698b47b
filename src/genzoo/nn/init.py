"""Parameter initialisation shared by the models."""

from __future__ import annotations

import torch


@torch.no_grad()
def normal_or_zero_(weight: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    """Fill ``weight`` in place with N(0, std^2) draws, or zeros when ``std`` is 0 (a config's
    ``init_std = 0`` means "start from zero weights"; torch's normal_ refuses std = 0)."""
    if std > 0:
        weight.normal_(0.0, std, generator=generator)
    else:
        weight.zero_()
