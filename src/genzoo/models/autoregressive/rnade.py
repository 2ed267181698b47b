"""Real-valued neural autoregressive density estimator (RNADE).

Uria, Murray & Larochelle (2013), "RNADE: The real-valued neural autoregressive
density-estimator", NIPS, section 2, equations (3)-(8).

Real x in R^D in index order, H hidden units, K mixture components per dimension. The hidden
state is NADE's, with a per-dimension activation scale rho_d (eq. 8)::

    a_1 = c,    a_{d+1} = a_d + x_d W[:, d]                    (H,)   running pre-activation
    h_d = act(rho_d a_d)                                        act: relu (paper) or sigmoid

and each conditional is a mixture density network on h_d with its own output parameters
(eqs. 4-7)::

    alpha_d = softmax(V^alpha_d h_d + b^alpha_d)                (K,)   mixing weights
    mu_d    = V^mu_d h_d + b^mu_d                               (K,)   means
    sigma_d = sigma_min + exp(V^sigma_d h_d + b^sigma_d)        (K,)   standard deviations
              (with a cap M: sigma_min + 1 / (exp(-s) + 1 / M), s = V^sigma_d h_d + b^sigma_d)
    p(x_d | x_<d) = sum_k alpha_dk N(x_d; mu_dk, sigma_dk^2)
    log p(x) = sum_d logsumexp_k [log alpha_dk + log N(x_d; mu_dk, sigma_dk^2)]

V^alpha, V^mu, V^sigma are (D, K, H): every dimension has its own output layer. The floor
sigma_min (the paper's variance floor, here added smoothly rather than clipped so its gradient
never vanishes) keeps the likelihood bounded when a component collapses onto one data point.
The optional cap M (``sigma_max``, not in the paper) bounds every standard deviation smoothly
(the harmonic soft minimum of exp(s) and M, equal to exp(s) well below M): trained with ReLU
hiddens, RNADE gives a little mass to very wide, low-weight components at almost no cost in
likelihood, and in ancestral sampling one draw far out raises the unbounded hiddens of every
later dimension, whose exp(.) widths then grow until the samples overflow.
The running sum gives all D hidden vectors in O(DH) per example (a cumulative sum over d), the
outputs cost O(DKH). Densities are in nats of x, i.e. of the model space of the data; the
evaluator converts to the data space of a transformed data set (genzoo.data.transforms).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.autoregressive.base import (
    AutoregressiveConfig,
    AutoregressiveModel,
    check_sample_count,
)
from genzoo.models.base import checks_input, train_recipe
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.numerics import LOG_2PI


@dataclasses.dataclass(frozen=True)
class RNADEConfig(AutoregressiveConfig):
    """Hyperparameters of RNADE.

    ``n_visible`` is filled from the data by the CLI when left ``None``. ``n_hidden`` H,
    ``n_components`` K (the paper uses 2-20; 10 on image patches). ``activation``: relu, as in
    the paper, or sigmoid. ``sigma_min``: floor added to every standard deviation, in units of
    the model's input. ``sigma_max``: smooth cap on every standard deviation, same units (None:
    unbounded, the paper's parameterization; a few times the data's std keeps samples finite,
    module docstring). ``init_std``: W and the V's ~ N(0, init_std^2); ``init_from_data`` sets
    the output biases from the training marginals.
    """

    n_hidden: int = 100
    n_components: int = 10
    activation: Literal["relu", "sigmoid"] = "relu"
    sigma_min: float = 1e-3
    sigma_max: float | None = None

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.n_components > 0, f"model.n_components={self.n_components} must be positive")
        check(self.sigma_min > 0, f"model.sigma_min={self.sigma_min} must be positive")
        check(self.sigma_max is None or self.sigma_max > 10 * self.sigma_min,
              f"model.sigma_max={self.sigma_max} must exceed 10 x model.sigma_min "
              f"({10 * self.sigma_min:g}); leave it unset for unbounded widths")


@register_model("rnade", family="autoregressive", paper="Uria, Murray & Larochelle 2013")
class RNADE(AutoregressiveModel):
    """Real-valued NADE, mixture-of-Gaussians conditionals, exact density in O(DH).

    RNADE over D real variables in index order; see the module docstring. ``loss`` and
    ``validation_metrics`` (mean negative log-density) come from
    :class:`~genzoo.models.autoregressive.base.AutoregressiveModel`."""

    config_class = RNADEConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.001, lr_schedule="linear", lr_final_factor=0.1,
    )
    binary_input = False
    test_overrides = (
        "model.n_hidden=8",
        "model.n_components=3",
        "data.binarize=none",
        "data.dequantize=true",
    )

    def __init__(self, config: RNADEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, h, k = config.n_visible, config.n_hidden, config.n_components
        self.W = nn.Parameter(torch.zeros(h, d))
        self.c = nn.Parameter(torch.zeros(h))
        self.rho = nn.Parameter(torch.ones(d))
        self.V_alpha = nn.Parameter(torch.zeros(d, k, h))
        self.b_alpha = nn.Parameter(torch.zeros(d, k))
        self.V_mu = nn.Parameter(torch.zeros(d, k, h))
        self.b_mu = nn.Parameter(torch.zeros(d, k))
        self.V_sigma = nn.Parameter(torch.zeros(d, k, h))
        self.b_sigma = nn.Parameter(torch.zeros(d, k))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W, V ~ N(0, init_std^2); c, b^alpha, b^sigma = 0, rho = 1; b^mu spread over
        [-1, 1] so the components start distinct (``init_from_data`` refines the biases)."""
        with torch.no_grad():
            for weight in (self.W, self.V_alpha, self.V_mu, self.V_sigma):
                normal_or_zero_(weight, self.config.init_std, generator)
            for bias in (self.c, self.b_alpha, self.b_sigma):
                bias.zero_()
            self.rho.fill_(1.0)
            self.b_mu.copy_(torch.linspace(-1.0, 1.0, self.n_components).expand_as(self.b_mu))

    @property
    def n_visible(self) -> int:
        return self.W.shape[1]

    @property
    def n_components(self) -> int:
        return self.b_mu.shape[1]

    def _act(self, a: torch.Tensor) -> torch.Tensor:
        return torch.relu(a) if self.config.activation == "relu" else torch.sigmoid(a)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """h (B, D, H): h[:, d] = act(rho_d a_d), a_d = c + W[:, :d] x_:d, by a cumulative sum
        over d (O(DH) per example); h[:, d] depends on x[:, :d] only."""
        contrib = x.unsqueeze(-1) * self.W.T  # (B, D, H): x_d W[:, d]
        a = torch.cumsum(contrib, dim=1) - contrib + self.c  # exclusive sum: a_d sees x_<d
        return self._act(self.rho[:, None] * a)

    def mixture_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log alpha, mu, sigma), each (..., D, K), from hidden states h (..., D, H)."""
        logits = torch.einsum("...dh,dkh->...dk", h, self.V_alpha) + self.b_alpha
        mu = torch.einsum("...dh,dkh->...dk", h, self.V_mu) + self.b_mu
        log_s = torch.einsum("...dh,dkh->...dk", h, self.V_sigma) + self.b_sigma
        return torch.log_softmax(logits, dim=-1), mu, self._sigma(log_s)

    def _sigma(self, s: torch.Tensor) -> torch.Tensor:
        """sigma = sigma_min + exp(s), or with the cap M: sigma_min + 1 / (exp(-s) + 1 / M)
        = sigma_min + exp(log M - softplus(log M - s)) (no cancellation at either end)."""
        if self.config.sigma_max is not None:
            log_m = math.log(self.config.sigma_max)
            s = log_m - F.softplus(log_m - s)
        return self.config.sigma_min + torch.exp(s)

    def conditional_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_d | x_<d) (B, D) in nats."""
        log_alpha, mu, sigma = self.mixture_params(self.hidden(x))
        z = (x.unsqueeze(-1) - mu) / sigma
        log_n = -0.5 * z * z - torch.log(sigma) - 0.5 * LOG_2PI
        return torch.logsumexp(log_alpha + log_n, dim=-1)

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density log p(x) in nats. x (B, D) real -> (B,)."""
        return self.conditional_log_probs(x.to(dtype=self.W.dtype)).sum(-1)

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Start every conditional at a fit of the training marginal of its dimension: the
        component means at the marginal's quantiles (k + 1/2)/K, the standard deviations at
        the marginal's std / sqrt(K), equal weights. Called once by the Trainer on a fresh run.
        x_train (N, D)."""
        x = x_train.to(self.W)
        q = torch.arange(self.n_components, dtype=x.dtype, device=x.device) + 0.5
        q = q / self.n_components
        self.b_mu.copy_(torch.quantile(x, q, dim=0).T)
        std = x.std(dim=0).clamp_min(10 * self.config.sigma_min) / math.sqrt(self.n_components)
        cap = self.config.sigma_max
        if cap is not None:  # exp(s) M / (exp(s) + M) = std: exp(s) = std / (1 - std / M)
            std = std.clamp_max(cap / 2)
            std = std / (1.0 - std / cap)
        self.b_sigma.copy_(torch.log(std)[:, None].expand_as(self.b_sigma))
        self.b_alpha.zero_()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact, independent draws (n, D) by ancestral sampling in index order: at step d a
        component k ~ alpha_d, then x_d ~ N(mu_dk, sigma_dk^2), then a += x_d W[:, d]."""
        check_sample_count(n)
        d_total, dev, dtype = self.n_visible, self.W.device, self.W.dtype
        x = torch.zeros(n, d_total, device=dev, dtype=dtype)
        if n == 0:
            return x
        u = torch.rand((n, d_total), generator=generator, device=dev, dtype=dtype)
        eps = torch.randn((n, d_total), generator=generator, device=dev, dtype=dtype)
        a = self.c.expand(n, -1).clone()
        for d in range(d_total):
            h = self._act(self.rho[d] * a)
            log_alpha = F.log_softmax(h @ self.V_alpha[d].T + self.b_alpha[d], dim=-1)
            mu = h @ self.V_mu[d].T + self.b_mu[d]
            sigma = self._sigma(h @ self.V_sigma[d].T + self.b_sigma[d])
            # inverse-CDF choice of the component from one uniform per draw
            cdf = torch.cumsum(log_alpha.exp(), dim=-1)
            k = torch.searchsorted(cdf, u[:, d : d + 1].contiguous()).clamp_max(
                self.n_components - 1
            )
            x[:, d] = (mu.gather(1, k) + sigma.gather(1, k) * eps[:, d : d + 1]).squeeze(1)
            a.addr_(x[:, d], self.W[:, d])
        return x
