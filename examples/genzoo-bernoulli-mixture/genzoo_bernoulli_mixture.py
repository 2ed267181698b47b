"""Mixture of multivariate Bernoulli distributions: a genzoo model in one file, installed as a
plug-in (the ``genzoo.models`` entry point of this package's pyproject.toml).

Everitt & Hand (1981), "Finite mixture distributions"; Bishop (2006), "Pattern recognition and
machine learning", sec. 9.3.3.

K components with weights pi = softmax(alpha) (K,) and Bernoulli means mu_k = sigmoid(l_k),
logits l (K, D)::

    log p(x | k) = sum_d x_d l_kd - softplus(l_kd)
    log p(x)     = logsumexp_k [log pi_k + log p(x | k)]

The likelihood is exact, so genzoo evaluates it exactly. Inpainting is exact too: with O the
observed entries, p(k | x_O) ∝ pi_k prod_{d in O} p(x_d | k), and the missing entries are drawn
from component k. Trained by gradient descent on -log p(x) (EM would do as well).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import check
from genzoo.core.protocols import EXACT_LIKELIHOOD, INPAINT
from genzoo.core.registry import register_model
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
from genzoo.ops.numerics import data_logits, softplus


@dataclasses.dataclass(frozen=True)
class BernoulliMixtureConfig(VisibleConfig):
    """``n_components`` K; ``init_std``: the logits start at the data marginals plus
    N(0, init_std^2) noise, which breaks the symmetry between components."""

    n_components: int = 10
    init_std: float = 0.5

    def validate(self) -> None:
        super().validate()
        check(self.n_components > 0, f"model.n_components={self.n_components} must be positive")
        check(self.init_std >= 0, f"model.init_std={self.init_std} must be >= 0")


@register_model(
    "bernoulli-mixture", family="mixture", paper="Everitt & Hand 1981; Bishop 2006 sec. 9.3.3"
)
class BernoulliMixture(GenzooModel):
    """Mixture of multivariate Bernoulli distributions (worked example of a plug-in).

    x (B, D) binary; log-probabilities in nats.
    """

    config_class = BernoulliMixtureConfig
    capabilities = frozenset({EXACT_LIKELIHOOD, INPAINT})
    test_overrides = ("model.n_components=3",)

    def __init__(self, config: BernoulliMixtureConfig) -> None:
        super().__init__(config)
        self.alpha = nn.Parameter(torch.zeros(config.n_components))
        self.logits = nn.Parameter(torch.zeros(config.n_components, config.n_visible))

    def _log_weights(self) -> torch.Tensor:
        return F.log_softmax(self.alpha, dim=0)  # log pi (K,)

    def _log_p_given_k(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x_O | k) (B, K), summed over the entries where ``mask`` (B, D) is 1 (all of
        them when None): sum_d m_d (x_d l_kd - softplus(l_kd))."""
        if mask is None:
            return x @ self.logits.T - softplus(self.logits).sum(-1)
        return (x * mask) @ self.logits.T - mask @ softplus(self.logits).T

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) (B,) = logsumexp_k [log pi_k + log p(x | k)]."""
        x = x.to(self.logits.dtype)
        return torch.logsumexp(self._log_weights() + self._log_p_given_k(x), dim=-1)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The mean negative log-likelihood (nats), the figure the Trainer minimises."""
        nll = -self.log_prob(x).mean()
        return {"loss": nll, "nll": nll.detach()}

    @torch.no_grad()
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        self.check_input(x_train, "x_train")
        noise = torch.randn(self.logits.shape, generator=generator, device=self.logits.device)
        marginals = data_logits(x_train.to(self.logits))
        self.logits.copy_(marginals + self.config.init_std * noise.to(self.logits))

    @torch.no_grad()
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        return {"nll": float(-self.log_prob(x).mean())}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws (n, D): k ~ Categorical(pi), then x ~ Bernoulli(sigmoid(l_k))."""
        k = torch.multinomial(self._log_weights().exp(), n, replacement=True, generator=generator)
        return torch.bernoulli(torch.sigmoid(self.logits[k]), generator=generator)

    @torch.no_grad()
    def inpaint(self, x: torch.Tensor, observed_mask: torch.Tensor, /,
                generator: torch.Generator | None = None, n_samples: int = 1,
                n_steps: int | None = None) -> torch.Tensor:
        """Exact completions (n_samples, B, D): k ~ p(k | x_O), missing entries ~ p(x | k).
        ``n_steps`` is ignored (no chain)."""
        observed = self.observed_entries(x, observed_mask, n_samples)
        x_o = torch.where(observed, x, torch.zeros_like(x)).to(self.logits.dtype)
        log_post = self._log_weights() + self._log_p_given_k(x_o, observed.to(x_o.dtype))
        k = torch.multinomial(log_post.softmax(-1), n_samples, replacement=True,
                              generator=generator)  # (B, n_samples)
        draws = torch.bernoulli(torch.sigmoid(self.logits[k.T]), generator=generator)
        return torch.where(observed, x_o, draws)
