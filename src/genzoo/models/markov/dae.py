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
values after every step, so the remaining units are resampled given them
(:class:`~genzoo.models.markov.base.WalkbackChainModel`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import InputError
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.markov.base import (
    WalkbackChainModel,
    WalkbackConfig,
    autoencoder_parameters,
    corrupt,
    init_visible_bias_,
    reconstruction_draw,
    reconstruction_log_prob,
    reset_autoencoder_weights,
)
from genzoo.ops.enumeration import binary_states


@dataclasses.dataclass(frozen=True)
class DAEConfig(WalkbackConfig):
    """Hyperparameters of the DAE sampler (the shared ones: :class:`WalkbackConfig`).

    ``n_hidden``: H. ``activation``: s of the encoder. ``walkback``: K corrupt-reconstruct
    steps per training example (1: plain DAE). ``tied``: decoder weights V = W^T.
    ``init_std`` None: 1/sqrt(fan-in + fan-out) (Glorot & Bengio 2010's scale).
    """

    n_hidden: int = 500
    activation: Literal["tanh", "sigmoid"] = "tanh"
    walkback: int = 1
    tied: bool = False

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.walkback >= 1, f"model.walkback={self.walkback} must be >= 1 (1: plain DAE)")


@register_model("dae", family="markov", paper="Bengio, Yao, Alain & Vincent 2013")
class DAE(WalkbackChainModel):
    """Denoising auto-encoder as a Markov-chain sampler, walkback training, inpainting.

    One-hidden-layer DAE over D visible units. Batch methods take x (B, D); device and
    dtype follow the parameters. Figures are in nats per example. A chain state is [x]."""

    config_class = DAEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.0003, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.n_hidden=8", "model.walkback=2", "model.sample_steps=3")

    def __init__(self, config: DAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d = config.n_visible
        for name, param in autoencoder_parameters(d, config.n_hidden, config.tied).items():
            self.register_parameter(name, param)
        # Gaussian reconstruction only; kept for Bernoulli too so state dicts have one shape.
        self.log_sigma = nn.Parameter(
            torch.zeros(d), requires_grad=config.reconstruction == "gaussian"
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2) (default scale 1/sqrt(D + H)), biases and log sigma 0."""
        reset_autoencoder_weights(self.W, self.V, self.config.init_std, generator)
        with torch.no_grad():
            for p in (self.b, self.c, self.log_sigma):
                p.zero_()

    # -- the chain -------------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x~ ~ C(x~|x), (B, D)."""
        return corrupt(x, self.config.corruption, self.config.noise_level, generator)

    def encode(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """h = s(W x~ + b), (B, H)."""
        pre = x_tilde @ self.W.T + self.b
        return torch.tanh(pre) if self.config.activation == "tanh" else torch.sigmoid(pre)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """w = V h + c (V = W^T when tied): Bernoulli logits or Gaussian means, (B, D)."""
        V = self.W.T if self.V is None else self.V
        return h @ V.T + self.c

    def reconstruct(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """w = g(f(x~)), the parameter of P(x|x~), (B, D)."""
        return self.decode(self.encode(x_tilde))

    def log_reconstruction(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """log P(x|w) in nats, (B,)."""
        return reconstruction_log_prob(x, w, self.config.reconstruction, self._log_sigma())

    def _draw(self, w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return reconstruction_draw(w, self.config.reconstruction, self._log_sigma(), generator)

    def initial_state(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """[x]: the chain starts at x (B, D) itself."""
        return [x.to(self.W)]

    def step(
        self, state: list[torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """x -> x~ ~ C(x~|x) -> w = g(f(x~)) -> x' ~ P(x|w): ([x'], w, x')."""
        w = self.reconstruct(self.corrupt(state[0], generator))
        x = self._draw(w, generator)
        return [x], w, x

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
        codes = torch.arange(2**d, device=self.device)
        return binary_states(codes, d, self.dtype).flip(-1)

    # -- training --------------------------------------------------------------------------
    @checks_input
    def walkback_losses(
        self, x: torch.Tensor, generator: torch.Generator | None = None, k: int | None = None
    ) -> torch.Tensor:
        """-log P(x | x~_j) for the j = 1..K reconstructions of the walk from each example,
        (K, B) in nats; K = ``k`` or the config's ``walkback``. Row 0 is the ordinary DAE
        criterion; gradients do not flow through the draws x* of the walk."""
        x = x.to(self.W)
        k = self.config.walkback if k is None else k
        x_star, rows = x, []
        for j in range(k):
            w = self.reconstruct(self.corrupt(x_star, generator))
            rows.append(-self.log_reconstruction(x, w))
            if j + 1 < k:
                x_star = self._draw(w, generator)  # an input of the next step: no gradient
        return torch.stack(rows)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"reconstruction": -log P(x|x~) for one corruption per example with a fixed seed,
        so curves are comparable across steps}."""
        g = torch.Generator(device=self.W.device).manual_seed(0)
        return {"reconstruction": float(self.walkback_losses(x, g, k=1)[0].mean())}

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start the output bias at the data marginals: logits of the clamped pixel means
        (Bernoulli) or the means, with log sigma at the log standard deviations (Gaussian)."""
        init_visible_bias_(self.c, self.log_sigma, x_train.to(self.W), self.config.reconstruction)
