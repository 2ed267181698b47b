"""Training objectives of the directed models with Gaussian latents (VAE, DLGM), as objects,
with the config fields and the base class those models share.

A model with a prior p(z) = N(0, I) over J latents, a decoder log p(x|z) and a reparameterised
Gaussian recognition model q(z|x) (:class:`ReparameterisedModel`) is trained by any of these
objectives, one implementation each, as Pyro passes ``loss=Trace_ELBO()`` to its SVI::

    model = VAE(VAEConfig(n_visible=784), objective=IWAE(k=5))
    out = model.loss(x)            # out["loss"] is -(1/B) sum_b L_k(x_b)

The config's ``objective`` string builds the same object (:meth:`GaussianLatentConfig.
build_objective`), so ``--set model.objective=iwae`` on the command line and ``IWAE(k)`` in
Python give the same numbers. An objective is called as ``objective(model, x, generator, step)``
and returns the dict of :meth:`loss`: ``"loss"`` (the scalar to minimise, mean over the batch,
nats per example) and detached figures. Draws are z = mu + R eps with eps ~ N(0, I) drawn from
``generator``, so a seeded call is reproducible.

- :class:`ELBO` (Kingma & Welling 2014, "Auto-encoding variational Bayes", ICLR; Rezende,
  Mohamed & Wierstra 2014, ICML, eq. 17), with L = ``n_mc`` draws per example and the two SGVB
  estimators::

      A (eq. 6):  L^A = (1/L) sum_l [log p(x|z_l) - (log q(z_l|x) - log p(z_l))]
      B (eq. 7):  L^B = (1/L) sum_l log p(x|z_l) - KL(q(z|x) || p(z))      (KL analytic)

  ``gradient="bonnet_price"`` (Rezende et al. 2014, eqs. 5-6) estimates the gradient of
  E_q[log p(x|z)] by Bonnet's and Price's theorems instead of through the draw
  (:func:`gaussian_backprop_surrogate`). Options of later work: the KL weight warmed up
  linearly from 0 to 1 over ``kl_warmup_steps`` training steps (Bowman et al. 2016; Sonderby
  et al. 2016) and free bits (Kingma et al. 2016, eq. 15: each factor's batch-mean KL counts at
  least ``free_bits`` nats). The reported ``elbo`` and ``kl`` are the unmodified bound and KL.
- :class:`IWAE` (Burda, Grosse & Salakhutdinov 2016, "Importance weighted autoencoders", ICLR,
  eq. 8): L_k = log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i|x); autograd through the
  logsumexp of reparameterised log w_i gives the paper's gradient sum_i w~_i grad log w_i
  (eq. 13), w~ the normalised weights. k = 1 is L^A with L = 1.
- :class:`DReG` (Tucker, Lawson, Gu & Maddison 2019, "Doubly reparameterized gradient
  estimators for Monte Carlo objectives", ICLR, eq. 5): the value of L_k with the encoder
  gradient sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi), log w_i taken with q's and the
  decoder's parameters held fixed, in place of IWAE's, whose score-function part grows noisier
  with k; the decoder keeps sum_i w~_i grad_theta log p(x, z_i). Same expectation.

:func:`iwae_bound` (log-mean-exp over draws) is also the bound that the sigmoid belief
network's reweighted wake-sleep reports from the same importance weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal, Protocol

import torch
import torch.func
from torch import distributions as D
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.protocols import LATENT
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
from genzoo.ops.numerics import LOG_2PI


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_i w_i (B,) from log w (k, B): the k-draw importance-weighted bound."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def standard_normal(shape: tuple[int, ...], like: torch.Tensor,
                    generator: torch.Generator | None) -> torch.Tensor:
    """eps ~ N(0, I) of ``shape`` with the dtype and device of ``like``."""
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)


class DiagonalGaussian(D.Independent):
    """q(z|x) = N(mu, diag exp(log_var)): ``Independent(Normal(mu, sigma), 1)``, batch shape
    ``mu.shape[:-1]``, event shape (J,), keeping ``mu`` and ``log_var`` (..., J) and the pieces
    the objectives use (:class:`GaussianPosterior`)."""

    def __init__(self, mu: torch.Tensor, log_var: torch.Tensor,
                 validate_args: bool | None = None) -> None:
        self.mu, self.log_var = mu, log_var
        super().__init__(D.Normal(mu, torch.exp(0.5 * log_var), validate_args=validate_args), 1,
                         validate_args=validate_args)

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps (*sample_shape, ..., J) (Kingma & Welling 2014, eq. 4)."""
        eps = standard_normal((*sample_shape, *self.mu.shape), self.mu, generator)
        return self.mu + self.base_dist.scale * eps

    def kl_terms(self) -> torch.Tensor:
        """KL(q || N(0, I)) per unit (..., J): (1/2)(mu^2 + sigma^2 - 1 - log sigma^2)."""
        return 0.5 * (self.mu**2 + torch.exp(self.log_var) - 1.0 - self.log_var)

    def log_ratio_terms(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z_j|x) - log N(z_j; 0, 1) per unit (..., J) for z (..., J); the log 2 pi
        terms cancel."""
        return 0.5 * (z**2 - (z - self.mu) ** 2 * torch.exp(-self.log_var) - self.log_var)

    def detach(self) -> DiagonalGaussian:
        """The same distribution with its parameters cut from the graph."""
        return DiagonalGaussian(self.mu.detach(), self.log_var.detach(), validate_args=False)


class GaussianPosterior(Protocol):
    """What the objectives need of q(z|x) (:class:`DiagonalGaussian`, or the DLGM's
    :class:`~genzoo.models.directed._rank_one.BlockRankOneGaussian`). "Terms" are per factor
    of q (K = J units for a diagonal Gaussian, K = 1 for one that does not factorise): their
    sum over the last axis is the total."""

    def rsample(self, sample_shape=(), generator: torch.Generator | None = None
                ) -> torch.Tensor: ...

    def kl_terms(self) -> torch.Tensor: ...  # (B, K): KL(q || N(0, I))

    def log_ratio_terms(self, z: torch.Tensor) -> torch.Tensor: ...  # (S, B, K)

    def detach(self) -> GaussianPosterior: ...


class ReparameterisedModel(Protocol):
    """What the objectives need of a model with the prior p(z) = N(0, I):
    ``posterior(x)`` is q(z|x) for x (B, D) (x checked by the model), and
    ``log_likelihood(x, z)`` is log p(x|z) (S, B) for z (S, B, J)."""

    def posterior(self, x: torch.Tensor, /) -> GaussianPosterior: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, /) -> torch.Tensor: ...


def gaussian_backprop_surrogate(
    f: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    log_var: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """Surrogate of E_{N(mu, diag exp(log_var))}[f(xi)] by Bonnet's and Price's theorems
    (Rezende et al. 2014, eqs. 5-6).

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


Figures = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ELBO:
    """The evidence lower bound with ``n_mc`` draws per example (module docstring).

    ``estimator``: "sgvb_a" (Monte Carlo KL) or "sgvb_b" (analytic KL). ``gradient``:
    "reparam" or "bonnet_price" (diagonal Gaussian q and analytic KL only). ``free_bits`` (0:
    off) and ``kl_warmup_steps`` (0: off) change the training loss only. Returns ``loss``,
    ``elbo`` and ``kl`` (mean KL of q from the prior: Monte Carlo for sgvb_a)."""

    estimator: Literal["sgvb_a", "sgvb_b"] = "sgvb_b"
    n_mc: int = 1
    gradient: Literal["reparam", "bonnet_price"] = "reparam"
    free_bits: float = 0.0
    kl_warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in ("sgvb_a", "sgvb_b"):
            raise GenzooError(f"estimator={self.estimator!r}: use 'sgvb_a' or 'sgvb_b'")
        if self.gradient not in ("reparam", "bonnet_price"):
            raise GenzooError(f"gradient={self.gradient!r}: use 'reparam' or 'bonnet_price'")
        if self.gradient == "bonnet_price" and self.estimator != "sgvb_b":
            raise GenzooError("gradient='bonnet_price' takes the analytic KL (estimator='sgvb_b')")
        if self.n_mc < 1 or self.kl_warmup_steps < 0 or not self.free_bits >= 0:
            raise GenzooError("ELBO needs n_mc >= 1, kl_warmup_steps >= 0 and free_bits >= 0")

    def kl_weight(self, step: int | torch.Tensor | None = None) -> float:
        """Weight of the KL term after ``step`` training steps: min(1, (step + 1) /
        kl_warmup_steps); 1 without warm-up or without a step."""
        w = self.kl_warmup_steps
        return 1.0 if w == 0 or step is None else min(1.0, (int(step) + 1) / w)

    def __call__(self, model: ReparameterisedModel, x: torch.Tensor,
                 generator: torch.Generator | None = None,
                 step: int | torch.Tensor | None = None) -> Figures:
        q = model.posterior(x)
        if self.gradient == "bonnet_price":
            if not isinstance(q, DiagonalGaussian):
                raise GenzooError("gradient='bonnet_price' needs a diagonal Gaussian q(z|x), "
                                  f"got {type(q).__name__}")
            eps = standard_normal((self.n_mc, *q.mu.shape), q.mu, generator)
            rec = gaussian_backprop_surrogate(lambda z: model.log_likelihood(x, z),
                                              q.mu, q.log_var, eps)
            kl_j = q.kl_terms()
        else:
            z = q.rsample((self.n_mc,), generator)  # (L, B, J)
            rec = model.log_likelihood(x, z)
            kl_j = q.log_ratio_terms(z).mean(0) if self.estimator == "sgvb_a" else q.kl_terms()
        rec = rec.mean(0)  # (B,)
        kl = kl_j.sum(-1)  # (B,)
        if self.free_bits > 0:
            kl_train = kl_j.mean(0).clamp_min(self.free_bits).sum()
        else:
            kl_train = kl.mean()
        return {
            "loss": -(rec.mean() - self.kl_weight(step) * kl_train),
            "elbo": (rec - kl).mean().detach(),
            "kl": kl.mean().detach(),
        }


@dataclasses.dataclass(frozen=True)
class IWAE:
    """The k-draw importance-weighted bound L_k with its own gradient (Burda et al. 2016).
    Returns ``loss`` = -L_k, ``iwae`` (L_k), ``elbo`` (mean log w), ``kl`` (mean
    log q(z|x) - log p(z) over the draws)."""

    k: int = 50

    def __post_init__(self) -> None:
        if self.k < 1:
            raise GenzooError(f"{type(self).__name__}(k={self.k}): k must be >= 1")

    def __call__(self, model: ReparameterisedModel, x: torch.Tensor,
                 generator: torch.Generator | None = None,
                 step: int | torch.Tensor | None = None) -> Figures:
        q = model.posterior(x)
        z = q.rsample((self.k,), generator)  # (k, B, J)
        log_ratio = q.log_ratio_terms(z).sum(-1)  # log q(z|x) - log p(z), (k, B)
        log_w = model.log_likelihood(x, z) - log_ratio
        bound = iwae_bound(log_w)
        return {
            "loss": -bound.mean(),
            "iwae": bound.mean().detach(),
            "elbo": log_w.mean().detach(),
            "kl": log_ratio.mean().detach(),
        }


class _LogLikelihood(nn.Module):
    """log p(x|z) of ``model`` as a module call, so that torch.func.functional_call can
    evaluate it with the model's parameters replaced."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.log_likelihood(x, z)


@dataclasses.dataclass(frozen=True)
class DReG(IWAE):
    """L_k with the doubly reparameterised gradient (Tucker et al. 2019): the value and the
    figures of :class:`IWAE` for the same draws, the decoder's gradient sum_i w~_i grad_theta
    log p(x, z_i), the encoder's sum_i w~_i^2 grad_phi log w_i through z_i only."""

    def __call__(self, model: ReparameterisedModel, x: torch.Tensor,
                 generator: torch.Generator | None = None,
                 step: int | torch.Tensor | None = None) -> Figures:
        q = model.posterior(x)
        z = q.rsample((self.k,), generator)  # (k, B, J)
        # log w_i as a function of z_i alone: q's and the decoder's parameters held fixed.
        log_ratio = q.detach().log_ratio_terms(z).sum(-1)
        fixed = {f"model.{name}": p.detach() for name, p in model.named_parameters()}
        log_p_fixed = torch.func.functional_call(_LogLikelihood(model), fixed, (x, z))
        log_w_encoder = log_p_fixed - log_ratio  # (k, B), phi through z only
        log_p_decoder = model.log_likelihood(x, z.detach())  # (k, B), theta only
        log_w = log_w_encoder.detach()
        w_tilde = torch.softmax(log_w, 0)
        surrogate = (w_tilde * log_p_decoder + w_tilde**2 * log_w_encoder).sum(0)
        bound = iwae_bound(log_w)
        return {
            "loss": -(bound + surrogate - surrogate.detach()).mean(),  # value -L_k
            "iwae": bound.mean(),
            "elbo": log_w.mean(),
            "kl": log_ratio.detach().mean(),
        }


Objective = ELBO | IWAE | DReG


@dataclasses.dataclass(frozen=True)
class GaussianLatentConfig(VisibleConfig):
    """Fields of the models trained by these objectives (VAE, DLGM).

    ``activation`` of the hidden layers. ``n_mc``: L draws per example for the "elbo"
    ``objective``; "iwae" uses ``iwae_k`` draws and ``iwae_gradient`` ("iwae": Burda et al.'s
    gradient, "dreg": Tucker et al.'s). ``init_std``: weights ~ N(0, init_std^2), biases 0.
    """

    activation: Literal["tanh", "relu", "softplus"] = "tanh"
    n_mc: int = 1
    objective: Literal["elbo", "iwae"] = "elbo"
    iwae_k: int = 50
    iwae_gradient: Literal["iwae", "dreg"] = "iwae"
    init_std: float = 0.01

    def validate(self) -> None:
        super().validate()
        check(self.n_mc >= 1, f"model.n_mc={self.n_mc} must be >= 1")
        check(self.iwae_k >= 1, f"model.iwae_k={self.iwae_k} must be >= 1")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.iwae_gradient == "iwae" or self.objective == "iwae",
              "model.iwae_gradient=dreg needs model.objective=iwae")

    def elbo_options(self) -> dict[str, object]:
        """The model's own :class:`ELBO` settings beyond ``n_mc`` (none here)."""
        return {}

    def build_objective(self) -> Objective:
        """The objective these fields name (``elbo_options`` for the "elbo" objective)."""
        if self.objective == "iwae":
            return DReG(self.iwae_k) if self.iwae_gradient == "dreg" else IWAE(self.iwae_k)
        return ELBO(n_mc=self.n_mc, **self.elbo_options())


def check_objective(objective: object) -> Objective:
    """``objective`` itself if it is one of this module's objectives, else a ConfigError."""
    if not isinstance(objective, (ELBO, IWAE)):
        raise ConfigError(f"objective must be an ELBO, IWAE or DReG, got {objective!r}")
    return objective


class GaussianLatentModel(GenzooModel):
    """Base of the models these objectives train (VAE, DLGM): prior p(z) = N(0, I) over
    ``n_latent`` units, the latent-variable contract, training by ``objective``.

    A subclass defines ``n_latent``, ``posterior(x)`` (q(z|x), x checked there),
    ``log_likelihood(x, z)`` (log p(x|z), x cast but not checked) and ``decoder_mean(z)``
    (E[x|z] (..., D) for z (..., J)). ``objective``: an objective of this module to train with
    instead of the one the config names (the config, not this object, is saved with a run).
    """

    capabilities = frozenset({LATENT})

    def __init__(self, config: GaussianLatentConfig, objective: Objective | None = None) -> None:
        super().__init__(config)
        self.objective = (check_objective(objective) if objective is not None
                          else config.build_objective())

    @property
    def n_visible(self) -> int:
        return self.config.n_visible  # type: ignore[return-value]

    @checks_input
    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log N(z; 0, I) + log p(x|z) in nats: x (B, D), z (B, J) -> (B,), or
        z (S, B, J) -> (S, B)."""
        return -0.5 * (z**2 + LOG_2PI).sum(-1) + self.log_likelihood(x, z)

    @checks_input
    def proposal(self, x: torch.Tensor) -> GaussianPosterior:
        """q(z|x) (B, J), the importance sampler's proposal (:meth:`posterior`)."""
        return self.posterior(x)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The objective's figures for x (B, D), mean over the batch in nats per example:
        ``loss`` (with gradient), ``elbo`` and ``kl`` (detached), plus ``iwae`` (the k-draw
        bound) for the importance-weighted objectives."""
        return self.objective(self, x, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """{"elbo": one-draw bound with the analytic KL (a fixed seed, so curves are comparable
        across steps), "kl": mean analytic KL}."""
        g = torch.Generator(device=self.device).manual_seed(0)
        out = ELBO()(self, x, g)
        return {"elbo": float(out["elbo"]), "kl": float(out["kl"])}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) decoder means E[x|z] for z ~ N(0, I), not draws from p(x|z) (the convention
        of the papers' sample grids; draw x ~ p(x|z) from these yourself for exact samples)."""
        if not isinstance(n, int) or n < 0:
            raise GenzooError(f"sample(n={n!r}): n must be an integer >= 0")
        z = torch.randn((n, self.n_latent), generator=generator, dtype=self.dtype,
                        device=self.device)
        return self.decoder_mean(z)
