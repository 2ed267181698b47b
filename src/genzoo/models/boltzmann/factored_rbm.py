"""Factored three-way restricted Boltzmann machine for the covariance of real-valued images.

Ranzato, Krizhevsky & Hinton (2010), "Factored 3-way restricted Boltzmann machines for modeling
natural images" (AISTATS). Pixels interact with pixels through binary hidden units: the three-way
weights W_ijk = sum_f C_if C_jf P_fk are factored through F deterministic factors, filters
C (D, F) and a pooling matrix P (F, H) with P_fk <= 0, so a hidden unit that turns on adds the
squared outputs of its filters to the energy and a smooth patch (small filter outputs) keeps the
hidden units on.

Visibles v (D,), covariance hiddens h (H,) binary, biases b^c (H,), visible bias b^v (D,), with
v~ the normalised input (v / sqrt(||v||^2 / D + eps), :mod:`._factored`) in the three-way term::

    E(v, h) = -1/2 sum_f sum_k P_fk h_k (C_f^T v~)^2 - sum_k b^c_k h_k + 1/2 ||v||^2 - b^v^T v
    F(v)    = -sum_k softplus(1/2 sum_f P_fk (C_f^T v~)^2 + b^c_k) + 1/2 ||v||^2 - b^v^T v
    p(h_k = 1 | v) = sigmoid(1/2 sum_f P_fk (C_f^T v~)^2 + b^c_k)

The paper models the normalised patches on the unit sphere; the Gaussian term 1/2 ||v||^2 - b^v^T v
(unit variance, the data at about unit variance) makes the model a density on R^D, so its
likelihood can be compared with the others'. Without normalisation p(v | h) would be the Gaussian
of precision I - C diag(P h) C^T; with it the visibles are sampled by HMC on F(v), as the paper
does, and F is used at inverse temperature beta as -log sum_h exp(-beta E).

The formulas are in the whitened coordinates v = Z (x - m) of the data x (ZCA fitted to the
training data, :mod:`._factored`); the density of x is exp(-F_v(Z (x - m)) + log |det Z|) / Z.
"""

from __future__ import annotations

import dataclasses

import torch

from genzoo.core.registry import register_model
from genzoo.models.base import train_recipe
from genzoo.models.boltzmann._factored import HMCBoltzmann, HMCBoltzmannConfig


@dataclasses.dataclass(frozen=True)
class FactoredRBMConfig(HMCBoltzmannConfig):
    """Hyperparameters of the factored three-way RBM: those of :class:`HMCBoltzmannConfig` and
    ``init_b_c``, the starting covariance bias (positive: hidden units start mostly on)."""

    init_b_c: float = 1.0


@register_model("factored-rbm", family="boltzmann", paper="Ranzato, Krizhevsky & Hinton 2010")
class FactoredRBM(HMCBoltzmann):
    """Factored three-way RBM (pixel x pixel x hidden through factors), HMC, CD.

    Batch methods take (B, D) real visibles and return (B,) values in nats; device and dtype
    follow the parameters."""

    config_class = FactoredRBMConfig
    train_defaults = train_recipe(optimizer="adam", lr=1e-3)

    def __init__(self, config: FactoredRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.cov = self._factor_layer(-1.0)  # P <= 0
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """C ~ unit-norm random filters, P one-to-one, b^c = init_b_c, b^v = 0."""
        with torch.no_grad():
            self.cov.reset_parameters(self.config.init_std, self.config.init_b_c, generator)
            self.b_v.zero_()

    def _energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E_v(v, h) (module docstring), v whitened: v (B, D), h (B, H) binary -> (B,)."""
        return self.cov.binary_energy(v, h) + self.visible_energy(v)

    def _free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """F_v,beta(v) = -sum_k softplus(beta (q_k(v) + b^c_k)) + beta (1/2 ||v||^2 - b^v^T v):
        (B, D) -> (B,)."""
        return self.cov.binary_free_energy(v, beta) + self.visible_energy(v, beta)
