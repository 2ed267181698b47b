"""Deep latent Gaussian model trained by stochastic backpropagation.

Rezende, Mohamed & Wierstra (2014), "Stochastic backpropagation and approximate inference in
deep generative models", ICML. Generative model (eq. 2), L Gaussian layers generated top-down::

    xi_l ~ N(0, I)                         l = 1..L  (xi_l has J_l units)
    h_L = G_L xi_L
    h_l = T_l(h_{l+1}) + G_l xi_l          l = L-1..1
    x ~ Bernoulli(sigmoid(T_0(h_1)))

with T_l MLPs (one hidden layer of ``hidden`` units) and G_l square matrices (started at the
identity). Given xi the h are deterministic, so log p(x, xi) = sum_l log N(xi_l; 0, I) +
log p(x | h_1(xi)): the latent vector z of the LATENT contract is [xi_1, ..., xi_L].

Recognition model (section 4.2), factorised across layers: q(xi|x) = prod_l
N(xi_l; mu_l(x), C_l(x)), all layers read from one MLP trunk on x. ``posterior_cov`` picks C_l:

- ``diagonal`` (default): C_l = diag sigma_l^2.
- ``rank_one``: C_l = D_l + u_l u_l^T, D_l = diag d_l, d_l and u_l from the network.
- ``rank_one_precision``: the form of the paper's "Gaussian covariance parameterisation"
  paragraph, C_l^{-1} = D_l + u_l u_l^T, so with eta = 1 / (u^T D^{-1} u + 1):
  C = D^{-1} - eta D^{-1} u u^T D^{-1}, log det C = log eta - log det D and
  R = D^{-1/2} - [(1 - sqrt eta) / (u^T D^{-1} u)] D^{-1} u u^T D^{-1/2} with R R^T = C.

The rank-one forms draw xi = mu + R eps with a closed-form R and get log det C, tr C and the
quadratic form in O(J_l) (formulas of both forms in :mod:`genzoo.models.directed._rank_one`).
Free energy (eq. 17) F(x) = -E_q[log p(x|xi)] + KL(q(xi|x) || N(0, I)), the KL analytic:
KL = 1/2 sum_l (tr C_l + mu_l^T mu_l - J_l - log det C_l).

Gradients of E_q[f(xi)], f = log p(x|h(xi)), with respect to mu and C (``gradient``; the
rank-one posteriors take ``reparam`` only):

- ``reparam`` (section 3, eq. 8): xi = mu + sigma eps and autograd through the draw.
- ``bonnet_price`` (section 3.1, eqs. 5-6): Bonnet's theorem grad_mu E[f] = E[grad_xi f] and
  Price's theorem grad_C E[f] = 1/2 E[grad^2_xi f], estimated with the same draws; the
  diagonal of the Hessian costs one extra backward pass per latent unit, so this option is for
  small latent spaces and for checking the reparameterised estimator. See
  :func:`~genzoo.models.directed.objectives.gaussian_backprop_surrogate`.

Both are unbiased; they give the same mean gradient (the identical one per draw) and the same
decoder gradient per draw, and differ only in the covariance gradient's noise.

The free energy is the :class:`~genzoo.models.directed.objectives.ELBO` objective with the
analytic KL; ``objective="iwae"`` trains with the importance-weighted bound instead (IWAE or
DReG, as for the VAE; the reparameterised gradient only), and a Python user may pass any
objective of :mod:`genzoo.models.directed.objectives` to the constructor.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.directed._rank_one import BlockRankOneGaussian
from genzoo.models.directed.objectives import (
    DiagonalGaussian,
    GaussianLatentConfig,
    GaussianLatentModel,
    Objective,
    gaussian_backprop_surrogate,
)
from genzoo.models.directed.vae import ACTIVATIONS, mlp, normal_linear_
from genzoo.ops.numerics import bernoulli_log_likelihood, data_logits

# gaussian_backprop_surrogate lives with the objectives that use it; importable from here too.
__all__ = ["DLGM", "DLGMConfig", "gaussian_backprop_surrogate"]


@dataclasses.dataclass(frozen=True)
class DLGMConfig(GaussianLatentConfig):
    """Hyperparameters of the DLGM (the shared fields: :class:`GaussianLatentConfig`).

    ``latent``: J_1 (next to x) .. J_L (top). ``hidden``: units of the one hidden layer of each
    T_l and of the two-layer recognition trunk. ``gradient``: "reparam" or "bonnet_price"
    (module docstring). ``n_mc``: draws per example. ``init_std``: weights ~ N(0, init_std^2),
    biases 0, G_l = I. ``posterior_cov``: "diagonal", "rank_one" or "rank_one_precision"
    (module docstring); at initialisation every form starts near C = I.
    """

    latent: tuple[int, ...] = (50, 50)
    hidden: int = 200
    gradient: Literal["reparam", "bonnet_price"] = "reparam"
    posterior_cov: Literal["diagonal", "rank_one", "rank_one_precision"] = "diagonal"

    def validate(self) -> None:
        super().validate()
        check(len(self.latent) >= 1 and all(j > 0 for j in self.latent),
              f"model.latent={self.latent}: give one or more positive layer sizes")
        check(self.hidden > 0, f"model.hidden={self.hidden} must be positive")
        check(self.posterior_cov == "diagonal" or self.gradient == "reparam",
              f"model.posterior_cov={self.posterior_cov!r} needs model.gradient='reparam' "
              "(the Bonnet/Price estimator here is for diagonal covariances)")
        check(self.objective == "elbo" or self.gradient == "reparam",
              "model.gradient=bonnet_price estimates the ELBO's gradient; use it with "
              "model.objective=elbo")

    def elbo_options(self) -> dict[str, object]:
        return {"gradient": self.gradient}


@register_model("dlgm", family="directed", paper="Rezende, Mohamed & Wierstra 2014")
class DLGM(GaussianLatentModel):
    """Deep latent Gaussian model (stochastic backprop; Bonnet/Price option), IS-evaluated.

    DLGM over D binary visibles with L Gaussian layers; z = [xi_1..xi_L] is (B, J) or
    (S, B, J), J = sum J_l. Values in nats per example; device and dtype follow the parameters.
    ``objective``: an objective of :mod:`genzoo.models.directed.objectives` to train with
    instead of the one the config names (the config, not this object, is saved with a run)."""

    config_class = DLGMConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    test_overrides = ("model.latent=4,2", "model.hidden=8")

    def __init__(self, config: DLGMConfig, generator: torch.Generator | None = None,
                 objective: Objective | None = None) -> None:
        super().__init__(config, objective)
        sizes, hid, act = list(config.latent), config.hidden, config.activation
        # transforms[0] = T_0 (h_1 -> logits of x); transforms[l] = T_l (h_{l+1} -> h_l).
        self.transforms = nn.ModuleList(
            [mlp([sizes[0], hid, config.n_visible], act)]
            + [mlp([sizes[l], hid, sizes[l - 1]], act) for l in range(1, len(sizes))]
        )
        self.G = nn.ModuleList(nn.Linear(j, j, bias=False) for j in sizes)
        self.trunk = nn.Sequential(*mlp([config.n_visible, hid, hid], act), ACTIVATIONS[act]())
        # Per layer: mu and log sigma^2 (diagonal), or mu, log d and u (rank one).
        per_unit = 2 if config.posterior_cov == "diagonal" else 3
        self.heads = nn.ModuleList(nn.Linear(hid, per_unit * j) for j in sizes)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2), biases 0, G_l = I. ``generator=None``: torch's default."""
        normal_linear_(self, self.config.init_std, generator)
        with torch.no_grad():
            for g in self.G:
                g.weight.copy_(torch.eye(g.in_features))

    @property
    def n_latent(self) -> int:
        return sum(self.config.latent)

    def _ref(self) -> torch.Tensor:
        return self.trunk[0].weight

    # -- the two networks ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(xi|x), each (B, J), layers concatenated bottom-up; for the
        rank-one posteriors log_var is the log of the marginal variances diag C."""
        q = self.posterior(x)
        if isinstance(q, BlockRankOneGaussian):
            return q.loc, torch.log(q.variance)
        return q.mu, q.log_var

    @checks_input
    def posterior(self, x: torch.Tensor) -> DiagonalGaussian | BlockRankOneGaussian:
        """q(xi|x) for x (B, D): batch shape (B,), event shape (J,); a
        :class:`DiagonalGaussian`, or a :class:`BlockRankOneGaussian` for the rank-one forms.
        The parameters of every layer come from one head per layer on the shared trunk."""
        t = self.trunk(x.to(self._ref()))
        if self.config.posterior_cov == "diagonal":
            parts = [head(t).chunk(2, -1) for head in self.heads]
            return DiagonalGaussian(*(torch.cat([p[i] for p in parts], -1) for i in range(2)))
        parts = [head(t).chunk(3, -1) for head in self.heads]
        mu, log_d, u = (torch.cat([p[i] for p in parts], -1) for i in range(3))
        form = "covariance" if self.config.posterior_cov == "rank_one" else "precision"
        return BlockRankOneGaussian(mu, log_d, u, self.config.latent, form)

    def decode(self, xi: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of x (..., D) for xi = [xi_1..xi_L] (..., J), top-down (eq. 2)."""
        xis = xi.split(list(self.config.latent), -1)
        h = self.G[-1](xis[-1])
        for l in range(len(xis) - 2, -1, -1):
            h = self.transforms[l + 1](h) + self.G[l](xis[l])
        return self.transforms[0](h)

    def decoder_mean(self, xi: torch.Tensor) -> torch.Tensor:
        """Bernoulli means sigmoid(T_0(h_1)) (..., D) for xi (..., J)."""
        return torch.sigmoid(self.decode(xi))

    def log_likelihood(self, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """log p(x|xi) in nats: x (B, D) (cast to the model's dtype, not checked),
        xi (..., B, J) -> (..., B)."""
        return bernoulli_log_likelihood(self.decode(xi), x.to(self._ref()))

    @torch.no_grad()
    @checks_input
    def init_from_data(self, x_train: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start the output bias of T_0 at the logits of the clamped pixel means."""
        self.transforms[0][-1].bias.copy_(data_logits(x_train.to(self._ref())))
