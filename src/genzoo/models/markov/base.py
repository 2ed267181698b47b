"""The base classes of the Markov-chain samplers (DAE, CAE, GSN) and the processes they share:
the corruption C(x~|x), the reconstruction distribution P(x|w), the chains' noise start.

Corruption (Vincent et al. 2008; Bengio et al. 2013, section 4):
    salt and pepper: each unit, with probability ``level``, is replaced by a fair coin in {0, 1};
    Gaussian: x~ = x + level * eps, eps ~ N(0, I).
Reconstruction, from the decoder's pre-activation w (B, D):
    Bernoulli: log P(x|w) = sum_i x_i w_i - softplus(w_i), mean sigmoid(w);
    Gaussian:  log P(x|w) = sum_i log N(x_i; w_i, sigma_i^2), sigma_i = exp(log_sigma_i).

:class:`MarkovChainModel` samples by running a model's ``chain`` from noise;
:class:`WalkbackChainModel` (DAE, GSN) runs a chain of corrupt-reconstruct steps whose observed
units can be clamped (inpainting) and trains it by walkback.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import GenzooError, InputError
from genzoo.core.protocols import IMPLICIT, INPAINT
from genzoo.core.validation import check_observed_mask
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
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
    """GenzooError unless ``n`` is an integer >= 0."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise GenzooError(f"{name}={n!r} must be an integer >= 0")


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


def autoencoder_parameters(
    n_visible: int, n_hidden: int, tied: bool
) -> dict[str, nn.Parameter | None]:
    """The one-hidden-layer auto-encoder's parameters, by name, for the model to register:
    encoder W (H, D) and b (H,), decoder V (D, H) (None when ``tied``: V = W^T) and c (D,).
    W and V are uninitialised (:func:`reset_autoencoder_weights`)."""
    return {
        "W": nn.Parameter(torch.empty(n_hidden, n_visible)),
        "b": nn.Parameter(torch.zeros(n_hidden)),
        "V": None if tied else nn.Parameter(torch.empty(n_visible, n_hidden)),
        "c": nn.Parameter(torch.zeros(n_visible)),
    }


@torch.no_grad()
def reset_autoencoder_weights(
    W: torch.Tensor, V: torch.Tensor | None, init_std: float | None,
    generator: torch.Generator | None,
) -> None:
    """W (H, D) (and V (D, H)) ~ N(0, std^2), std = ``init_std`` or by default 1/sqrt(D + H)
    (Glorot & Bengio 2010's scale)."""
    std = 1.0 / math.sqrt(sum(W.shape)) if init_std is None else init_std
    normal_or_zero_(W, std, generator)
    if V is not None:
        normal_or_zero_(V, std, generator)


@dataclasses.dataclass(frozen=True)
class ChainConfig(VisibleConfig):
    """Fields of every Markov-chain sampler. ``reconstruction``: P(x|w), "bernoulli" (binary
    data) or "gaussian". ``grey_levels``: accept grey levels in [0, 1] with the Bernoulli
    reconstruction, scored by the cross-entropy sum x log p + (1 - x) log(1 - p) (how DAEs and
    GSNs were trained on MNIST intensities); the figures are then cross-entropies, not
    log-likelihoods of the data. ``sample_steps``: chain steps from the noise start before
    ``sample`` returns (the burn-in). ``init_std``: weights ~ N(0, init_std^2), biases 0; None:
    the model's fan-scaled default."""

    reconstruction: Literal["bernoulli", "gaussian"] = "bernoulli"
    grey_levels: bool = False
    sample_steps: int = 100
    init_std: float | None = None

    def validate(self) -> None:
        check(
            not self.grey_levels or self.reconstruction == "bernoulli",
            "model.grey_levels applies to the bernoulli reconstruction only",
        )
        super().validate()
        check(self.sample_steps >= 0, "model.sample_steps must be >= 0")
        check(self.init_std is None or self.init_std >= 0, "model.init_std must be >= 0 or none")


@dataclasses.dataclass(frozen=True)
class WalkbackConfig(ChainConfig):
    """:class:`ChainConfig` plus the corruption of the visible layer and the chain's output.
    ``corruption`` and ``noise_level`` (salt-and-pepper replacement probability, or Gaussian
    standard deviation). ``sample_output``: "mean" returns E[x|w] of the last step (the papers'
    sample figures), "draw" the chain state itself. ``min_log_sigma``: floor of the Gaussian
    reconstruction's log sigma."""

    corruption: Literal["salt_and_pepper", "gaussian"] = "salt_and_pepper"
    noise_level: float = 0.3
    sample_output: Literal["mean", "draw"] = "mean"
    min_log_sigma: float = -5.0

    def validate(self) -> None:
        super().validate()
        check_nonnegative(self.noise_level, "model.noise_level")
        check(
            self.corruption != "salt_and_pepper" or self.noise_level <= 1,
            f"model.noise_level={self.noise_level} is a probability for salt-and-pepper noise; "
            "use a value in [0, 1]",
        )
        check(math.isfinite(self.min_log_sigma), "model.min_log_sigma must be finite")


class MarkovChainModel(GenzooModel):
    """Base of the models whose sampler is a Markov chain: ``chain(x0, n_steps, generator) ->
    (n_steps + 1, B, D)`` (the states, x0 first), implemented by each model; ``sample`` runs it
    from noise. They sample but have no tractable likelihood (``IMPLICIT``)."""

    config: ChainConfig
    capabilities = frozenset({IMPLICIT})

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @property
    def binary_input(self) -> bool:  # type: ignore[override]
        """Bernoulli units take binary x, unless ``grey_levels`` (then x in [0, 1])."""
        return self.config.reconstruction == "bernoulli" and not self.config.grey_levels

    @property
    def input_range(self) -> tuple[float, float] | None:  # type: ignore[override]
        return (0.0, 1.0) if self.config.reconstruction == "bernoulli" else None

    def chain(
        self, x0: torch.Tensor, n_steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The chain's states (n_steps + 1, B, D) from x0 (B, D), x0 first."""
        raise NotImplementedError

    def _noise_start(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        ref = torch.empty((), dtype=self.dtype, device=self.device)
        return noise_start(n, self.n_visible, self.config.reconstruction, ref, generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D): the last state of the chain run ``sample_steps`` steps from n independent
        noise starts (uniform binary for Bernoulli units, N(0, I) for Gaussian units), one
        chain per row."""
        check_n(n)
        return self.chain(self._noise_start(n, generator), self.config.sample_steps,
                          generator)[-1]


class WalkbackChainModel(MarkovChainModel):
    """A chain of corrupt-reconstruct steps trained by walkback (DAE, GSN). A model implements
    ``initial_state(x0, generator) -> state`` and ``step(state, generator) -> (state, w,
    x_draw)``, where a state is a list whose entry 0 is the visible layer (B, D), w (B, D) is
    the parameter of the step's P(x|w) and x_draw its draw; and ``walkback_losses(x,
    generator) -> (K, B)``, the -log P(x | w_k) of the K reconstructions of a walk from x.
    The class gives the chain (with clamped units: inpainting), the loss and the Gaussian
    reconstruction's floored ``log_sigma`` (D,), a parameter the model registers."""

    config: WalkbackConfig
    capabilities = frozenset({IMPLICIT, INPAINT})
    log_sigma: nn.Parameter

    def _log_sigma(self) -> torch.Tensor:
        return self.log_sigma.clamp_min(self.config.min_log_sigma)

    def initial_state(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """The chain's state at x (B, D)."""
        raise NotImplementedError

    def step(
        self, state: list[torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """One transition: (new state, w (B, D), x_draw (B, D))."""
        raise NotImplementedError

    def walkback_losses(
        self, x: torch.Tensor, generator: torch.Generator | None = None, k: int | None = None
    ) -> torch.Tensor:
        """-log P(x | w_j) of the walk's K reconstructions from each example, (K, B) nats."""
        raise NotImplementedError

    @torch.no_grad()
    def chain(
        self,
        x0: torch.Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
        observed_mask: torch.Tensor | None = None,
        output: str | None = None,
    ) -> torch.Tensor:
        """Visible states (n_steps + 1, B, D) of the chain from x0 (B, D): x0, then after each
        step the mean E[x|w_t] (``output="mean"``) or the draw x_{t+1} (``"draw"``; default the
        config's ``sample_output``). With ``observed_mask`` ((B, D) or (D,), True = observed)
        the observed units of the visible state are reset to x0's values after every step
        (before the next corruption), so they never change."""
        check_n(n_steps, "n_steps")
        output = output or self.config.sample_output
        if output not in ("mean", "draw"):
            raise InputError(f"output={output!r}: use 'mean' or 'draw'")
        x0 = x0.to(device=self.device, dtype=self.dtype)
        mask = None if observed_mask is None else check_observed_mask(observed_mask, x0)

        def clamp(v: torch.Tensor) -> torch.Tensor:
            return v if mask is None else torch.where(mask, x0, v)

        state = self.initial_state(x0, generator)
        state[0] = clamp(state[0])
        states = [x0]
        for _ in range(n_steps):
            state, w, x_draw = self.step(state, generator)
            state[0] = clamp(state[0])
            out = reconstruction_mean(w, self.config.reconstruction) if output == "mean" else x_draw
            states.append(clamp(out))
        return torch.stack(states)

    @torch.no_grad()
    def inpaint(self, x: torch.Tensor, observed_mask: torch.Tensor, /,
                generator: torch.Generator | None = None, n_samples: int = 1,
                n_steps: int | None = None) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D) by the clamped chain: the observed entries
        (``observed_mask`` (B, D) or (D,), True = observed) are kept exactly, the others start
        from noise and are resampled for ``n_steps`` steps (None: ``sample_steps``). Values
        of x at unobserved entries are ignored (only the observed ones are checked)."""
        mask = self.observed_entries(x, observed_mask, n_samples)
        b, d = x.shape
        x = x.to(device=self.device, dtype=self.dtype).repeat(n_samples, 1)
        mask = mask.repeat(n_samples, 1)
        x0 = torch.where(mask, x, self._noise_start(len(x), generator))
        steps = self.config.sample_steps if n_steps is None else n_steps
        return self.chain(x0, steps, generator, observed_mask=mask)[-1].reshape(n_samples, b, d)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean over the K walkback reconstructions and the batch x (B, D) of
        -log P(x | w_k) (nats per example); ``reconstruction``: the first one (the DAE
        criterion), detached."""
        nll = self.walkback_losses(x, generator)
        return {"loss": nll.mean(), "reconstruction": nll[0].mean().detach()}
