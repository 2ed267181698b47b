"""Pieces shared by the Markov-chain samplers (DAE, CAE, GSN): the corruption processes
C(x~|x), the reconstruction distributions P(x|w), the chain's noise start, sampling and clamped
inpainting by the chain, the visible bias started at the data, the one-hidden-layer
auto-encoder's parameters (DAE, CAE), and the input and mask checks.

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
from torch import nn

from genzoo.core.errors import GenzooError, InputError
from genzoo.core.validation import check_binary, check_data
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.numerics import LOG_2PI, data_logits

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
    return -(0.5 * z**2 + log_sigma + 0.5 * LOG_2PI).sum(-1)


def reconstruction_mean(a: torch.Tensor, kind: str) -> torch.Tensor:
    """E[x|a]: sigmoid(a) for Bernoulli, a for Gaussian."""
    return torch.sigmoid(a) if kind == "bernoulli" else a


def reconstruction_draw(
    a: torch.Tensor,
    kind: str,
    log_sigma: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw x ~ P(x|a) of a's shape, without gradient: the chain's states are inputs of
    the next step, not functions of theta (walkback, algorithm 2 of Bengio et al. 2013), so a
    Gaussian draw a + sigma * eps must not carry a gradient to log sigma."""
    if kind == "bernoulli":
        return torch.bernoulli(torch.sigmoid(a.detach()), generator=generator)
    assert log_sigma is not None
    eps = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)
    return (a + torch.exp(log_sigma) * eps).detach()


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


def chain_output(output: str | None, default: str) -> str:
    """What a chain reports after each step: ``output`` or the config's ``default``, "mean"
    (E[x|w]) or "draw"; InputError otherwise."""
    output = output or default
    if output not in ("mean", "draw"):
        raise InputError(f"output={output!r}: use 'mean' or 'draw'")
    return output


def sample_from_noise(model, n: int, ref: torch.Tensor, generator: torch.Generator | None):
    """(n, D): the last state of ``model.chain`` run ``config.sample_steps`` steps from n
    independent noise starts (:func:`noise_start`) on ref's dtype and device."""
    check_n(n)
    x0 = noise_start(n, model.n_visible, model.config.reconstruction, ref, generator)
    return model.chain(x0, model.config.sample_steps, generator)[-1]


def inpaint_by_chain(
    model,
    x: torch.Tensor,
    observed_mask: torch.Tensor,
    ref: torch.Tensor,
    generator: torch.Generator | None,
    n_samples: int,
    n_steps: int | None,
) -> torch.Tensor:
    """Completions (n_samples, B, D) of x (B, D) by ``model.chain`` with the observed entries
    (``observed_mask`` (B, D) or (D,), True = observed) clamped and the others started from
    noise, run ``n_steps`` steps (None: ``config.sample_steps``). Values of x at unobserved
    entries are ignored (only the observed ones are checked)."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise InputError(f"n_samples={n_samples!r} must be a positive integer")
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != model.n_visible:
        model.check_input(x)  # raises, naming the expected shape
    mask = check_mask(observed_mask, x)
    model.check_input(torch.where(mask, x, torch.zeros_like(x)))
    b, d = x.shape
    x = x.to(ref).repeat(n_samples, 1)
    mask = mask.repeat(n_samples, 1)
    noise = noise_start(len(x), d, model.config.reconstruction, ref, generator)
    x0 = torch.where(mask, x, noise)
    steps = model.config.sample_steps if n_steps is None else n_steps
    return model.chain(x0, steps, generator, observed_mask=mask)[-1].reshape(n_samples, b, d)


@torch.no_grad()
def init_visible_bias_(
    bias: torch.Tensor, log_sigma: torch.Tensor | None, x: torch.Tensor, kind: str
) -> None:
    """Start the visible (output) bias (D,) at the data marginals of x (N, D): logits of the
    clamped means (Bernoulli), or the means (Gaussian), with ``log_sigma`` (when given and
    N > 1) at the log standard deviations."""
    if kind == "bernoulli":
        bias.copy_(data_logits(x))
    else:
        bias.copy_(x.mean(0))
        if log_sigma is not None and len(x) > 1:
            log_sigma.copy_(torch.log(x.std(0).clamp_min(1e-3)))


def add_autoencoder_parameters(module: nn.Module, n_visible: int, n_hidden: int, tied: bool):
    """Register the one-hidden-layer auto-encoder's parameters on ``module``: encoder W (H, D)
    and b (H,), decoder V (D, H) (None when ``tied``: V = W^T) and c (D,)."""
    module.W = nn.Parameter(torch.empty(n_hidden, n_visible))
    module.b = nn.Parameter(torch.zeros(n_hidden))
    if tied:
        module.register_parameter("V", None)
    else:
        module.V = nn.Parameter(torch.empty(n_visible, n_hidden))
    module.c = nn.Parameter(torch.zeros(n_visible))


def reset_autoencoder_parameters(
    module: nn.Module, init_std: float | None, generator: torch.Generator | None
) -> None:
    """W (and V) ~ N(0, std^2), std = ``init_std`` or by default 1/sqrt(D + H); b, c = 0."""
    h, d = module.W.shape
    std = 1.0 / math.sqrt(d + h) if init_std is None else init_std
    normal_or_zero_(module.W, std, generator)
    if module.V is not None:
        normal_or_zero_(module.V, std, generator)
    with torch.no_grad():
        module.b.zero_()
        module.c.zero_()


def decode(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """w = V h + c (V = W^T when tied) for h (B, H): Bernoulli logits or Gaussian means, (B, D)."""
    V = module.W.T if module.V is None else module.V
    return h @ V.T + module.c
