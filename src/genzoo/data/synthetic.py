"""Synthetic data drawn on demand: small problems whose true distribution is known, for
checking that a sampler finds every mode.

The ring of Gaussians is the equal mixture of k isotropic Gaussians N(mu_j, std^2 I) in 2-D
whose means mu_j = radius (cos(2 pi j / k), sin(2 pi j / k)) lie evenly on a circle: with the
defaults (8 modes, radius 2, std 0.1) the modes are far apart against their width, so a
sampler that misses one, or strays between them, shows at once.
"""

from __future__ import annotations

import math

import torch


def ring_means(k: int = 8, radius: float = 2.0) -> torch.Tensor:
    """(k, 2) float32: the means mu_j = radius (cos(2 pi j / k), sin(2 pi j / k))."""
    angle = 2 * math.pi * torch.arange(k) / k
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)


def ring_of_gaussians(n: int, generator: torch.Generator | None = None, k: int = 8,
                      radius: float = 2.0, std: float = 0.1) -> torch.Tensor:
    """(n, 2) float32 draws from the ring of ``k`` Gaussians (module docstring): a component
    j uniform on 0..k-1, then mu_j + std * eps with eps ~ N(0, I)."""
    j = torch.randint(0, k, (n,), generator=generator)
    return ring_means(k, radius)[j] + std * torch.randn(n, 2, generator=generator)
