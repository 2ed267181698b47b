"""Denoising auto-encoder used as a generative model, trained with or without walkback.

Bengio, Yao, Alain & Vincent (2013), "Generalized denoising auto-encoders as generative
models", NIPS. A corruption process C(x~|x) (salt and pepper, or Gaussian) and a learned
reconstruction distribution P_theta(x|x~) define the Markov chain (section 3)::

    x_t  ->  x~_t ~ C(x~ | x_t)  ->  h_t = f(x~_t) = s(W x~_t + b)
         ->  w_t = g(h_t) = V h_t + c  ->  x_{t+1} ~ P(x | w_t)

whose stationary distribution estimates the data distribution when P_theta(x|x~) is a
consistent estimator of the true conditional (theorem 1). P(x|w) is factorised Bernoulli with
logits w or Gaussian with mean w and a learned per-unit sigma; s is tanh or the logistic
sigmoid; V = W^T when ``tied``.

Training maximises log P_theta(x | x~) (the DAE criterion, "reconstruction"). Walkback
(section 4, algorithm 2) with K = ``walkback`` steps starts at x* = x, and repeats K times::

    x~ ~ C(x~ | x*),  penalise -log P_theta(x | x~),  x* ~ P_theta(x | x~)

so every reconstruction of the walk is scored against the ORIGINAL example, which removes
spurious modes far from the data that the chain would otherwise visit. The loss is the mean
of the K penalties (nats per example); K = 1 is the ordinary DAE. The paper draws the walk
length from a geometric law; a fixed K is the variant of Bengio et al. (2014).

Conditional sampling (inpainting) runs the same chain with the observed units reset to their
values after every step, so the remaining units are resampled given them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import IMPLICIT
from genzoo.core.registry import register_model
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.markov import _common as M


@dataclasses.dataclass(frozen=True)
class DAEConfig(Config):
    """Hyperparameters of the DAE sampler.

    ``n_visible``: D, from the data when None. ``n_hidden``: H. ``activation``: s of the
    encoder. ``corruption`` and ``noise_level`` (salt-and-pepper replacement probability, or
    Gaussian standard deviation). ``reconstruction``: "bernoulli" (binary data) or
    "gaussian". ``walkback``: K corrupt-reconstruct steps per training example (1: plain
    DAE). ``tied``: decoder weights V = W^T. ``sample_steps``: chain steps from the noise
    start before :meth:`sample` returns (the burn-in). ``sample_output``: "mean" returns
    E[x|w] of the last step (the papers' sample figures), "draw" the chain state itself.
    ``init_std``: weights ~ N(0, init_std^2), biases 0; None uses 1/sqrt(fan-in + fan-out)
    (Glorot & Bengio 2010's scale). ``min_log_sigma``: floor of the Gaussian log sigma.
    ``grey_levels``: accept grey levels in [0, 1] with the Bernoulli reconstruction, scored by
    the cross-entropy sum x log p + (1 - x) log(1 - p) (how DAEs and GSNs were trained on MNIST
    intensities); the figures are then cross-entropies, not log-likelihoods of the data.
    """

    n_visible: int | None = None
    n_hidden: int = 500
    activation: Literal["tanh", "sigmoid"] = "tanh"
    corruption: Literal["salt_and_pepper", "gaussian"] = "salt_and_pepper"
    noise_level: float = 0.3
    reconstruction: Literal["bernoulli", "gaussian"] = "bernoulli"
    grey_levels: bool = False
    walkback: int = 1
    tied: bool = False
    sample_steps: int = 100
    sample_output: Literal["mean", "draw"] = "mean"
    init_std: float | None = None
    min_log_sigma: float = -5.0

    def validate(self) -> None:
        check(
            not self.grey_levels or self.reconstruction == "bernoulli",
            "model.grey_levels applies to the bernoulli reconstruction only",
        )
        check_n_visible(self.n_visible)
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check_nonnegative(self.noise_level, "model.noise_level")
        check(
            self.corruption != "salt_and_pepper" or self.noise_level <= 1,
            f"model.noise_level={self.noise_level} is a probability for salt-and-pepper noise; "
            "use a value in [0, 1]",
        )
        check(self.walkback >= 1, f"model.walkback={self.walkback} must be >= 1 (1: plain DAE)")
        check(self.sample_steps >= 0, "model.sample_steps must be >= 0")
        check(self.init_std is None or self.init_std >= 0, "model.init_std must be >= 0 or none")
        check(math.isfinite(self.min_log_sigma), "model.min_log_sigma must be finite")


@register_model(
    "dae",
    config=DAEConfig,
    family="markov",
    summary="denoising auto-encoder as a Markov-chain sampler, walkback training, inpainting",
    paper="Bengio, Yao, Alain & Vincent 2013",
)
class DAE(nn.Module):
    """One-hidden-layer DAE over D visible units. Batch methods take x (B, D); device and
    dtype follow the parameters. Figures are in nats per example."""

    test_overrides = ("model.n_hidden=8", "model.walkback=2", "model.sample_steps=3")

    capabilities = frozenset({IMPLICIT})

    def __init__(self, config: DAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, DAEConfig):
            raise ConfigError(f"DAE needs a DAEConfig, got {type(config).__name__}")
        require_n_visible(config)
        self.config = config
        d = config.n_visible
        M.add_autoencoder_parameters(self, d, config.n_hidden, config.tied)
        # Gaussian reconstruction only; kept for Bernoulli too so state dicts have one shape.
        self.log_sigma = nn.Parameter(
            torch.zeros(d), requires_grad=config.reconstruction == "gaussian"
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2) (default scale 1/sqrt(D + H)), biases and log sigma 0."""
        M.reset_autoencoder_parameters(self, self.config.init_std, generator)
        with torch.no_grad():
            self.log_sigma.zero_()

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    def _log_sigma(self) -> torch.Tensor:
        return self.log_sigma.clamp_min(self.config.min_log_sigma)

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        M.check_visible(x, self.n_visible, self.config.reconstruction, name,
                        self.config.grey_levels)

    # -- the chain -------------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x~ ~ C(x~|x), (B, D)."""
        return M.corrupt(x, self.config.corruption, self.config.noise_level, generator)

    def encode(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """h = s(W x~ + b), (B, H)."""
        pre = x_tilde @ self.W.T + self.b
        return torch.tanh(pre) if self.config.activation == "tanh" else torch.sigmoid(pre)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """w = V h + c (V = W^T when tied): Bernoulli logits or Gaussian means, (B, D)."""
        return M.decode(self, h)

    def reconstruct(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """w = g(f(x~)), the parameter of P(x|x~), (B, D)."""
        return self.decode(self.encode(x_tilde))

    def log_reconstruction(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """log P(x|w) in nats, (B,)."""
        return M.reconstruction_log_prob(x, w, self.config.reconstruction, self._log_sigma())

    def _draw(self, w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return M.reconstruction_draw(w, self.config.reconstruction, self._log_sigma(), generator)

    def _output(self, x: torch.Tensor, w: torch.Tensor, output: str) -> torch.Tensor:
        return M.reconstruction_mean(w, self.config.reconstruction) if output == "mean" else x

    @torch.no_grad()
    def chain(
        self,
        x0: torch.Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
        observed_mask: torch.Tensor | None = None,
        output: str | None = None,
    ) -> torch.Tensor:
        """The chain's states (n_steps + 1, B, D) from x0 (B, D): x0, then after each step the
        mean E[x|w_t] (``output="mean"``) or the draw x_{t+1} (``"draw"``; default the
        config's ``sample_output``). With ``observed_mask`` ((B, D) or (D,), True = observed)
        the observed units are reset to x0's values after every step, so they never change."""
        M.check_n(n_steps, "n_steps")
        output = M.chain_output(output, self.config.sample_output)
        ref = self.W
        x = x0.to(ref)
        mask = None if observed_mask is None else M.check_mask(observed_mask, x)
        states = [x]
        for _ in range(n_steps):
            w = self.reconstruct(self.corrupt(x, generator))
            x = self._draw(w, generator)
            out = self._output(x, w, output)
            if mask is not None:
                x = torch.where(mask, x0.to(ref), x)
                out = torch.where(mask, x0.to(ref), out)
            states.append(out)
        return torch.stack(states)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) states after ``sample_steps`` chain steps from independent noise starts
        (uniform binary for Bernoulli units, N(0, I) for Gaussian units): E[x|w] of the last
        step or its draw, as ``sample_output`` says. Chains run in parallel, one per row."""
        return M.sample_from_noise(self, n, self.W, generator)

    @torch.no_grad()
    def inpaint(
        self,
        x: torch.Tensor,
        observed_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        n_samples: int = 1,
        n_steps: int | None = None,
    ) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D) by the clamped chain: the observed entries
        (``observed_mask`` (B, D) or (D,), True = observed) are kept exactly, the others start
        from noise and are resampled for ``n_steps`` steps (default ``sample_steps``); values
        of x at unobserved entries are ignored."""
        return M.inpaint_by_chain(self, x, observed_mask, self.W, generator, n_samples, n_steps)

    @torch.no_grad()
    def transition_matrix(self) -> torch.Tensor:
        """The exact chain T[x, x'] = sum_x~ C(x~|x) P(x'|x~) over all 2^D binary states
        (row-stochastic, (2^D, 2^D), states in binary-counting order with unit 0 the most
        significant bit), for salt-and-pepper corruption and Bernoulli reconstruction with
        D <= 12. Its left eigenvector of eigenvalue 1 is the chain's stationary distribution."""
        cfg, d = self.config, self.n_visible
        if cfg.corruption != "salt_and_pepper" or cfg.reconstruction != "bernoulli" or d > 12:
            raise InputError(
                "transition_matrix enumerates binary states: it needs salt_and_pepper "
                f"corruption, bernoulli reconstruction and n_visible <= 12 (got {d})"
            )
        states = self.all_states()
        p = cfg.noise_level
        same = (states.unsqueeze(1) == states.unsqueeze(0)).to(states.dtype)  # (x, x~, D)
        corrupt = ((1 - p) * same + p / 2).prod(-1)  # C(x~|x)
        w = self.reconstruct(states)  # (x~, D)
        log_rec = (states.unsqueeze(0) * w.unsqueeze(1) - F.softplus(w).unsqueeze(1)).sum(-1)
        return corrupt @ torch.exp(log_rec)  # log_rec[x~, x'] = log P(x'|x~)

    def all_states(self) -> torch.Tensor:
        """The 2^D binary states (2^D, D), unit 0 the most significant bit."""
        d = self.n_visible
        idx = torch.arange(2**d, device=self.W.device)
        bits = (idx.unsqueeze(1) >> torch.arange(d - 1, -1, -1, device=self.W.device)) & 1
        return bits.to(self.W.dtype)

    # -- training --------------------------------------------------------------------------
    def walkback_losses(
        self, x: torch.Tensor, generator: torch.Generator | None = None, k: int | None = None
    ) -> torch.Tensor:
        """-log P(x | x~_j) for the j = 1..K reconstructions of the walk from each example,
        (K, B) in nats; K = ``k`` or the config's ``walkback``. Row 0 is the ordinary DAE
        criterion; gradients do not flow through the draws x* of the walk."""
        self.check_input(x)
        x = x.to(self.W)
        k = self.config.walkback if k is None else k
        x_star, rows = x, []
        for j in range(k):
            w = self.reconstruct(self.corrupt(x_star, generator))
            rows.append(-self.log_reconstruction(x, w))
            if j + 1 < k:
                x_star = self._draw(w, generator)  # an input of the next step: no gradient
        return torch.stack(rows)

    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean over the K walkback reconstructions and the batch x (B, D) of
        -log P(x | x~) (nats per example); ``reconstruction``: the first one (the DAE
        criterion), detached."""
        nll = self.walkback_losses(x, generator)
        return {"loss": nll.mean(), "reconstruction": nll[0].mean().detach()}

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"reconstruction": -log P(x|x~) for one corruption per example with a fixed seed,
        so curves are comparable across steps}."""
        g = torch.Generator(device=self.W.device).manual_seed(0)
        return {"reconstruction": float(self.walkback_losses(x, g, k=1)[0].mean())}

    @torch.no_grad()
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start the output bias at the data marginals: logits of the clamped pixel means
        (Bernoulli) or the means, with log sigma at the log standard deviations (Gaussian)."""
        self.check_input(x_train, "x_train")
        x = x_train.to(self.W)
        M.init_visible_bias_(self.c, self.log_sigma, x, self.config.reconstruction)
