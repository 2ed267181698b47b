"""Mean-covariance restricted Boltzmann machine (mcRBM).

Ranzato & Hinton (2010), "Modeling pixel means and covariances using factorized third-order
Boltzmann machines" (CVPR). The covariance part is the factored three-way RBM
(:mod:`.factored_rbm`: filters C (D, F), pooling P (F, N) <= 0, covariance hiddens h^c (N,)
binary with biases b^c, normalised input v~); the mean part is a Gaussian-binary RBM with hiddens
h^m (M,) binary, weights W (D, M) and biases b^m (M,). With the visible term::

    E(v, h^c, h^m) = -1/2 sum_f sum_k P_fk h^c_k (C_f^T v~)^2 - sum_k b^c_k h^c_k
                     - sum_j h^m_j W_j^T v - sum_j b^m_j h^m_j + 1/2 ||v||^2 - b^v^T v
    F(v) = -sum_k softplus(1/2 sum_f P_fk (C_f^T v~)^2 + b^c_k)
           - sum_j softplus(W_j^T v + b^m_j) + 1/2 ||v||^2 - b^v^T v

so that (without normalisation) p(v | h^c, h^m) = N(Sigma (W h^m + b^v), Sigma) with
Sigma^{-1} = I - C diag(P h^c) C^T: the covariance hiddens set the covariance, the mean hiddens
the mean. The visibles are sampled by HMC on F(v), as the paper does.

The formulas are in the whitened coordinates v = Z (x - m) of the data x (ZCA fitted to the
training data, :mod:`._factored`); the density of x is exp(-F_v(Z (x - m)) + log |det Z|) / Z.
"""

from __future__ import annotations

import dataclasses

import torch

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import train_recipe
from genzoo.models.boltzmann._factored import HMCBoltzmann, MeanUnits
from genzoo.models.boltzmann.factored_rbm import FactoredRBMConfig


@dataclasses.dataclass(frozen=True)
class MCRBMConfig(FactoredRBMConfig):
    """Hyperparameters of the mcRBM: those of the factored three-way RBM (its covariance part)
    and ``n_mean``, M, the mean hiddens."""

    n_mean: int = 32

    def validate(self) -> None:
        super().validate()
        check(self.n_mean > 0, f"model.n_mean={self.n_mean} must be positive")


@register_model("mcrbm", family="boltzmann", paper="Ranzato & Hinton 2010")
class MCRBM(HMCBoltzmann):
    """Mean-covariance RBM (factored covariance + Gaussian-binary mean units), HMC, CD.

    Batch methods take (B, D) real visibles and return (B,) values in nats; device and dtype
    follow the parameters."""

    config_class = MCRBMConfig
    train_defaults = train_recipe(optimizer="adam", lr=1e-3)
    test_overrides = (*HMCBoltzmann.test_overrides, "model.n_mean=4")

    def __init__(self, config: MCRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        self.cov = self._factor_layer(-1.0)  # P <= 0
        self.mean = MeanUnits(config.n_visible, config.n_mean)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """C unit-norm random filters, P one-to-one, b^c = init_b_c; W ~ N(0, init_std^2),
        b^m = 0, b^v = 0."""
        with torch.no_grad():
            self.cov.reset_parameters(self.config.init_std, self.config.init_b_c, generator)
            self.mean.reset_parameters(self.config.init_std, generator)
            self.b_v.zero_()

    def _energy(self, v: torch.Tensor, h: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """E_v(v, h^c, h^m) (module docstring), v whitened: v (B, D), h = (h^c (B, N), h^m (B, M)) -> (B,)."""
        h_c, h_m = h
        return self.cov.binary_energy(v, h_c) + self.mean.energy(v, h_m) + self.visible_energy(v)

    def _free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """F_v,beta(v) = -sum_k softplus(beta (q_k(v) + b^c_k)) - sum_j softplus(beta (W_j^T v
        + b^m_j)) + beta (1/2 ||v||^2 - b^v^T v): (B, D) -> (B,)."""
        return (self.cov.binary_free_energy(v, beta) + self.mean.free_energy(v, beta)
                + self.visible_energy(v, beta))
