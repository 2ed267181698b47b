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
  :func:`gaussian_backprop_surrogate`.

Both are unbiased; they give the same mean gradient (the identical one per draw) and the same
decoder gradient per draw, and differ only in the covariance gradient's noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from torch import distributions as D
from torch import nn

from genzoo.core.config import Config, check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import LATENT
from genzoo.core.registry import register_model
from genzoo.core.validation import check_binary
from genzoo.models.base import check_n_visible, require_n_visible
from genzoo.models.directed._rank_one import BlockRankOneGaussian
from genzoo.ops.numerics import LOG_2PI, bernoulli_log_likelihood, data_logits

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}


def gaussian_backprop_surrogate(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_var: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """Surrogate of E_{N(mu, diag exp(log_var))}[f(xi)] by Bonnet's and Price's theorems.

    ``mu``, ``log_var``: (..., J); ``eps`` (S, ..., J) standard normal draws; ``f`` maps
    xi (S, ..., J) to per-draw values (S, ...), each depending only on its own row of xi.
    Returns (S, ...) equal in value to f(xi) at xi = mu + exp(log_var / 2) eps, whose gradient
    is: grad_xi f(xi) for mu (Bonnet), (1/2) diag grad^2_xi f(xi) * sigma^2 for log_var (Price,
    chained through sigma^2 = exp(log_var)), and grad f(xi) at fixed xi for any parameter of f.
    Costs J backward passes for the Hessian diagonal."""
    var = torch.exp(log_var)
    xi = (mu + var.sqrt() * eps).detach().requires_grad_(True)
    with torch.enable_grad():
        value = f(xi)
        (g,) = torch.autograd.grad(value.sum(), xi, create_graph=True)
        h_diag = torch.stack(
            [torch.autograd.grad(g[..., j].sum(), xi, retain_graph=True)[0][..., j]
             for j in range(xi.shape[-1])], -1)
    g, h_diag = g.detach(), h_diag.detach()
    # Terms that are zero in value and carry the identities' gradients to mu and log_var.
    bonnet = (g * (mu - mu.detach())).sum(-1)
    price = (0.5 * h_diag * (var - var.detach())).sum(-1)
    return value + bonnet + price


@dataclasses.dataclass(frozen=True)
class DLGMConfig(Config):
    """Hyperparameters of the DLGM.

    ``latent``: J_1 (next to x) .. J_L (top). ``hidden``: units of the one hidden layer of each
    T_l and of the two-layer recognition trunk. ``gradient``: "reparam" or "bonnet_price"
    (module docstring). ``n_mc``: draws per example. ``init_std``: weights ~ N(0, init_std^2),
    biases 0, G_l = I. ``posterior_cov``: "diagonal", "rank_one" or "rank_one_precision"
    (module docstring); at initialisation every form starts near C = I.
    """

    n_visible: int | None = None
    latent: tuple[int, ...] = (50, 50)
    hidden: int = 200
    activation: Literal["tanh", "relu", "softplus"] = "tanh"
    gradient: Literal["reparam", "bonnet_price"] = "reparam"
    n_mc: int = 1
    init_std: float = 0.01
    posterior_cov: Literal["diagonal", "rank_one", "rank_one_precision"] = "diagonal"

    def validate(self) -> None:
        check_n_visible(self.n_visible)
        check(len(self.latent) >= 1 and all(j > 0 for j in self.latent),
              f"model.latent={self.latent}: give one or more positive layer sizes")
        check(self.hidden > 0, f"model.hidden={self.hidden} must be positive")
        check(self.n_mc >= 1, f"model.n_mc={self.n_mc} must be >= 1")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.posterior_cov == "diagonal" or self.gradient == "reparam",
              f"model.posterior_cov={self.posterior_cov!r} needs model.gradient='reparam' "
              "(the Bonnet/Price estimator here is for diagonal covariances)")


def _mlp(a: int, hidden: int, b: int, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Linear(a, hidden), _ACTIVATIONS[activation](), nn.Linear(hidden, b))


@register_model(
    "dlgm",
    config=DLGMConfig,
    family="directed",
    summary="deep latent Gaussian model (stochastic backprop; Bonnet/Price option), IS-evaluated",
    paper="Rezende, Mohamed & Wierstra 2014",
)
class DLGM(nn.Module):
    """DLGM over D binary visibles with L Gaussian layers; z = [xi_1..xi_L] is (B, J) or
    (S, B, J), J = sum J_l. Values in nats per example; device and dtype follow the parameters."""

    test_overrides = ("model.latent=4,2", "model.hidden=8")

    capabilities = frozenset({LATENT})

    def __init__(self, config: DLGMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(config, DLGMConfig):
            raise ConfigError(f"DLGM needs a DLGMConfig, got {type(config).__name__}")
        require_n_visible(config)
        self.config = config
        sizes, hid, act = list(config.latent), config.hidden, config.activation
        # transforms[0] = T_0 (h_1 -> logits of x); transforms[l] = T_l (h_{l+1} -> h_l).
        self.transforms = nn.ModuleList(
            [_mlp(sizes[0], hid, config.n_visible, act)]
            + [_mlp(sizes[l], hid, sizes[l - 1], act) for l in range(1, len(sizes))]
        )
        self.G = nn.ModuleList(nn.Linear(j, j, bias=False) for j in sizes)
        self.trunk = nn.Sequential(nn.Linear(config.n_visible, hid), _ACTIVATIONS[act](),
                                   nn.Linear(hid, hid), _ACTIVATIONS[act]())
        # Per layer: mu and log sigma^2 (diagonal), or mu, log d and u (rank one).
        per_unit = 2 if config.posterior_cov == "diagonal" else 3
        self.heads = nn.ModuleList(nn.Linear(hid, per_unit * j) for j in sizes)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2), biases 0, G_l = I. ``generator=None``: torch's default."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0.0, self.config.init_std, generator=generator)
                    if m.bias is not None:
                        m.bias.zero_()
            for g in self.G:
                g.weight.copy_(torch.eye(g.in_features))

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @property
    def n_latent(self) -> int:
        return sum(self.config.latent)

    def _ref(self) -> torch.Tensor:
        return self.trunk[0].weight

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_binary(x, self.n_visible, "x")
        return x.to(self._ref())

    # -- the two networks ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(xi|x), each (B, J), layers concatenated bottom-up; for the
        rank-one posteriors log_var is the log of the marginal variances diag C."""
        if self.config.posterior_cov != "diagonal":
            q = self.posterior(x)
            return q.loc, torch.log(q.variance)
        t = self.trunk(x)
        parts = [head(t).chunk(2, -1) for head in self.heads]
        return torch.cat([p[0] for p in parts], -1), torch.cat([p[1] for p in parts], -1)

    def posterior(self, x: torch.Tensor) -> BlockRankOneGaussian:
        """q(xi|x) for the rank-one forms: batch shape (B,), event shape (J,), x (B, D) already
        checked. mu, log d and u come from one head per layer."""
        if self.config.posterior_cov == "diagonal":
            raise GenzooError("posterior() is for the rank-one forms; use proposal()")
        t = self.trunk(x)
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

    def log_likelihood(self, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """log p(x|xi) in nats: x (B, D), xi (..., B, J) -> (..., B)."""
        logits = self.decode(xi)
        return bernoulli_log_likelihood(logits, x)

    # -- the latent-variable contract -----------------------------------------------------
    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, xi) = sum_l log N(xi_l; 0, I) + log p(x|xi): x (B, D), z (..., B, J)."""
        x = self._prepare(x)
        return -0.5 * (z**2 + LOG_2PI).sum(-1) + self.log_likelihood(x, z)

    def proposal(self, x: torch.Tensor) -> D.Distribution:
        """q(xi|x): Independent(Normal(mu, sigma), 1), or the rank-one
        :class:`BlockRankOneGaussian` (drawn with an explicit generator by importance
        sampling); batch shape (B,), event shape (J,)."""
        if self.config.posterior_cov != "diagonal":
            return self.posterior(self._prepare(x))
        mu, log_var = self.encode(self._prepare(x))
        return D.Independent(D.Normal(mu, torch.exp(0.5 * log_var)), 1)

    # -- training --------------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Free energy (negative bound) of x (B, D), mean over the batch in nats per example,
        with ``n_mc`` draws and the configured gradient estimator; also ``elbo`` and ``kl``
        (analytic), detached."""
        x = self._prepare(x)
        if self.config.posterior_cov != "diagonal":
            q = self.posterior(x)
            kl = q.kl_standard_normal()
            bound = self.log_likelihood(x, q.rsample((self.config.n_mc,), generator)).mean(0) - kl
            return {"loss": -bound.mean(), "elbo": bound.mean().detach(),
                    "kl": kl.mean().detach()}
        mu, log_var = self.encode(x)
        eps = torch.randn((self.config.n_mc, *mu.shape), generator=generator,
                          dtype=mu.dtype, device=mu.device)
        kl = 0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)  # (B,)
        if self.config.gradient == "reparam":
            rec = self.log_likelihood(x, mu + torch.exp(0.5 * log_var) * eps)
        else:
            rec = gaussian_backprop_surrogate(lambda xi: self.log_likelihood(x, xi),
                                              mu, log_var, eps)
        bound = rec.mean(0) - kl
        return {"loss": -bound.mean(), "elbo": bound.mean().detach(), "kl": kl.mean().detach()}

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"elbo": one-draw bound with a fixed seed, "kl": mean analytic KL}."""
        x = self._prepare(x)
        if self.config.posterior_cov != "diagonal":
            q = self.posterior(x)
            g = torch.Generator(device=q.loc.device).manual_seed(0)
            kl = q.kl_standard_normal()
            rec = self.log_likelihood(x, q.sample(generator=g))
            return {"elbo": float((rec - kl).mean()), "kl": float(kl.mean())}
        mu, log_var = self.encode(x)
        g = torch.Generator(device=mu.device).manual_seed(0)
        eps = torch.randn(mu.shape, generator=g, dtype=mu.dtype, device=mu.device)
        kl = 0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
        rec = self.log_likelihood(x, mu + torch.exp(0.5 * log_var) * eps)
        return {"elbo": float((rec - kl).mean()), "kl": float(kl.mean())}

    @torch.no_grad()
    def init_from_data(self, x_train: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Start the output bias of T_0 at the logits of the clamped pixel means."""
        self.transforms[0][-1].bias.copy_(data_logits(self._prepare(x_train)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) Bernoulli means sigmoid(T_0(h_1)) for xi ~ N(0, I) (the papers' convention
        for sample grids; draw x ~ p(x|xi) from them for exact samples)."""
        if not isinstance(n, int) or n < 0:
            raise GenzooError(f"sample(n={n!r}): n must be an integer >= 0")
        ref = self._ref()
        xi = torch.randn((n, self.n_latent), generator=generator, dtype=ref.dtype, device=ref.device)
        return torch.sigmoid(self.decode(xi))
