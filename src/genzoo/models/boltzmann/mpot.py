"""Mean-product-of-Student-t model (mPoT).

Ranzato, Mnih & Hinton (2010), "Generating more realistic images using gated MRF's" (NIPS). The
covariance hiddens of the mcRBM (:mod:`.mcrbm`) become Gamma-distributed: a product of
Student-t experts on the filter outputs, whose heavy tails let a few filters be violated by a lot
(an edge) while the rest stay small. Filters C (D, F), pooling P (F, N) >= 0, covariance hiddens
h^c (N,) > 0 with shapes gamma (N,) > 0; mean hiddens h^m (M,) binary with weights W (D, M) and
biases b^m (M,); visible bias b^v (D,)::

    E(v, h^c, h^m) = sum_k [h^c_k (1 + 1/2 sum_f P_fk (C_f^T v)^2) + (1 - gamma_k) log h^c_k]
                     + 1/2 ||v||^2 - b^v^T v - sum_j h^m_j (W_j^T v + b^m_j)
    p(h^c_k | v)   = Gamma(shape gamma_k, rate 1 + 1/2 sum_f P_fk (C_f^T v)^2)
    F(v) = sum_k [gamma_k log(1 + 1/2 sum_f P_fk (C_f^T v)^2) - log Gamma(gamma_k)]
           - sum_j softplus(W_j^T v + b^m_j) + 1/2 ||v||^2 - b^v^T v

(the log Gamma(gamma_k) terms are constants of v that matter for log Z). At inverse temperature
beta, integrating h^c_k against exp(-beta E) gives shape a_k = 1 + beta (gamma_k - 1) and rate
beta (1 + q_k): F_beta's covariance term is sum_k [a_k log(beta (1 + q_k)) - log Gamma(a_k)].
The filter outputs are not normalised by default (``model.normalize=false``). The visibles are
sampled by HMC on F(v), as the paper does.

The formulas are in the whitened coordinates v = Z (x - m) of the data x (ZCA fitted to the
training data, :mod:`._factored`); the density of x is exp(-F_v(Z (x - m)) + log |det Z|) / Z.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import train_recipe
from genzoo.models.boltzmann._factored import (
    HMCBoltzmann,
    HMCBoltzmannConfig,
    MeanUnits,
    bounded_exp,
)
from genzoo.models.boltzmann._ops import bounded_logit

# The shapes gamma_k are kept inside these bounds.
GAMMA_BOUNDS = (0.05, 50.0)


@dataclasses.dataclass(frozen=True)
class MPoTConfig(HMCBoltzmannConfig):
    """Hyperparameters of mPoT: those of :class:`HMCBoltzmannConfig` (filter outputs not
    normalised by default), ``n_mean`` (M, the mean hiddens) and ``init_gamma`` (the starting
    Gamma shape of every covariance hidden)."""

    normalize: bool = False
    n_mean: int = 32
    init_gamma: float = 1.0

    def validate(self) -> None:
        super().validate()
        check(self.n_mean > 0, f"model.n_mean={self.n_mean} must be positive")
        lo, hi = GAMMA_BOUNDS
        check(lo < self.init_gamma < hi, f"model.init_gamma must lie in ({lo}, {hi})")


@register_model("mpot", family="boltzmann", paper="Ranzato, Mnih & Hinton 2010")
class MPoT(HMCBoltzmann):
    """Mean-product-of-Student-t (Gamma covariance hiddens + binary mean units), HMC, CD.

    Batch methods take (B, D) real visibles and return (B,) values in nats; device and dtype
    follow the parameters."""

    config_class = MPoTConfig
    train_defaults = train_recipe(optimizer="adam", lr=1e-3)
    test_overrides = (*HMCBoltzmann.test_overrides, "model.n_mean=4")

    def __init__(self, config: MPoTConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.cov = self._factor_layer(1.0, bias=False)  # P >= 0, no b^c
        self.mean = MeanUnits(config.n_visible, config.n_mean)
        self.gamma_raw = nn.Parameter(torch.zeros(config.n_hidden))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """C unit-norm random filters, P one-to-one, gamma = init_gamma; W ~ N(0, init_std^2),
        b^m = 0, b^v = 0."""
        cfg = self.config
        with torch.no_grad():
            self.cov.reset_parameters(cfg.init_std, 0.0, generator)
            self.mean.reset_parameters(cfg.init_std, generator)
            lo, hi = GAMMA_BOUNDS
            self.gamma_raw.copy_(bounded_logit(
                torch.full_like(self.gamma_raw, math.log(cfg.init_gamma)), math.log(lo),
                math.log(hi)))
            self.b_v.zero_()

    @property
    def gamma(self) -> torch.Tensor:
        """The Gamma shapes gamma (N,), inside GAMMA_BOUNDS."""
        return bounded_exp(self.gamma_raw, *GAMMA_BOUNDS)

    def _energy(self, v: torch.Tensor, h: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """E_v(v, h^c, h^m) (module docstring), v whitened: v (B, D), h = (h^c (B, N) > 0, h^m (B, M)
        binary) -> (B,)."""
        h_c, h_m = h
        e_c = (h_c * (1.0 + self.cov.q(v)) + (1.0 - self.gamma) * torch.log(h_c)).sum(-1)
        return e_c + self.mean.energy(v, h_m) + self.visible_energy(v)

    def _free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """F_v,beta(v) = sum_k [a_k log(beta (1 + q_k(v))) - log Gamma(a_k)] - sum_j softplus(beta
        (W_j^T v + b^m_j)) + beta (1/2 ||v||^2 - b^v^T v), a_k = 1 + beta (gamma_k - 1), beta > 0:
        (B, D) -> (B,)."""
        a = 1.0 + beta * (self.gamma - 1.0)
        f_c = (a * torch.log(beta * (1.0 + self.cov.q(v)))).sum(-1) - torch.lgamma(a).sum()
        return f_c + self.mean.free_energy(v, beta) + self.visible_energy(v, beta)
