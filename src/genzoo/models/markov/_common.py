"""Pieces shared by the Markov-chain samplers (DAE, CAE, GSN): the corruption processes
C(x~|x), the reconstruction distributions P(x|w), the chain's noise start, and the input and
mask checks.

Corruption (Vincent et al. 2008; Bengio et al. 2013, section 4):
    salt and pepper: each unit, with probability ``level``, is replaced by a fair coin in {0, 1};
    Gaussian: x~ = x + level * eps, eps ~ N(0, I).
Reconstruction, from the decoder's pre-activation a (B, D):
    Bernoulli: log P(x|a) = sum_i x_i a_i - softplus(a_i), mean sigmoid(a);
    Gaussian:  log P(x|a) = sum_i log N(x_i; a_i, sigma_i^2), sigma_i = exp(log_sigma_i).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genzoo.core.errors import GenzooError, InputError
from genzoo.core.validation import check_binary, check_data

_LOG_2PI = math.log(2 * math.pi)
CORRUPTIONS = ("salt_and_pepper", "gaussian")
RECONSTRUCTIONS = ("bernoulli", "gaussian")


def salt_and_pepper(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x (B, D) with each entry, independently with probability ``p``, replaced by 0 or 1
    with probability 1/2 each. Same shape, dtype and device as x."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    coin = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 0.5
    return torch.where(u < p, coin.to(x.dtype), x)


def gaussian_corruption(
    x: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x + sigma * eps with eps ~ N(0, I) of x's shape, dtype and device."""
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + sigma * eps


def corrupt(
    x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One draw x~ ~ C(x~|x) for x (B, D): ``kind`` "salt_and_pepper" (``level`` = the
    probability of replacing a unit) or "gaussian" (``level`` = the standard deviation)."""
    if kind == "salt_and_pepper":
        return salt_and_pepper(x, level, generator)
    if kind == "gaussian":
        return gaussian_corruption(x, level, generator)
    raise GenzooError(f"corruption {kind!r}: use one of {', '.join(CORRUPTIONS)}")


def reconstruction_log_prob(
    x: torch.Tensor, a: torch.Tensor, kind: str, log_sigma: torch.Tensor | None = None
) -> torch.Tensor:
    """log P(x|a) in nats, summed over units: x, a (..., D) -> (...). ``log_sigma`` (D,) is
    the per-unit log standard deviation of the Gaussian reconstruction."""
    if kind == "bernoulli":
        return (x * a - F.softplus(a)).sum(-1)
    assert log_sigma is not None
    z = (x - a) * torch.exp(-log_sigma)
    return -(0.5 * z**2 + log_sigma + 0.5 * _LOG_2PI).sum(-1)


def reconstruction_mean(a: torch.Tensor, kind: str) -> torch.Tensor:
    """E[x|a]: sigmoid(a) for Bernoulli, a for Gaussian."""
    return torch.sigmoid(a) if kind == "bernoulli" else a


def reconstruction_draw(
    a: torch.Tensor,
    kind: str,
    log_sigma: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw x ~ P(x|a) of a's shape."""
    if kind == "bernoulli":
        return torch.bernoulli(torch.sigmoid(a), generator=generator)
    assert log_sigma is not None
    eps = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)
    return a + torch.exp(log_sigma) * eps


def noise_start(
    n: int, d: int, kind: str, ref: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The chains' documented start (n, D) on ref's dtype and device: uniform binary noise
    (each unit 1 with probability 1/2) for Bernoulli units, N(0, I) for Gaussian units."""
    if kind == "bernoulli":
        u = torch.rand((n, d), generator=generator, dtype=ref.dtype, device=ref.device)
        return (u < 0.5).to(ref.dtype)
    return torch.randn((n, d), generator=generator, dtype=ref.dtype, device=ref.device)


def check_n(n: object, name: str = "n") -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise GenzooError(f"{name}={n!r} must be an integer >= 0")


def check_visible(
    x: torch.Tensor, d: int, kind: str, name: str = "x", grey_levels: bool = False
) -> None:
    """InputError unless x is a finite (B, d) floating tensor, binary for Bernoulli units
    (grey levels in [0, 1] when ``grey_levels``)."""
    if kind == "bernoulli" and not grey_levels:
        check_binary(x, d, name)
        return
    check_data(x, d, binary=False, name=name)
    if kind == "bernoulli" and not bool(((x >= 0) & (x <= 1)).all()):
        raise InputError(f"{name} has values outside [0, 1]; grey levels must be in [0, 1]")


def check_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The boolean observed mask broadcast to x's shape (B, D); ``mask`` is (B, D) or (D,)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise InputError("observed_mask must be a bool tensor (True = observed), (B, D) or (D,)")
    if mask.shape not in (x.shape, x.shape[1:]):
        raise InputError(
            f"observed_mask has shape {tuple(mask.shape)}; expected {tuple(x.shape)} or "
            f"{tuple(x.shape[1:])}"
        )
    return mask.to(x.device).expand_as(x)
