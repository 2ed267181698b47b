"""Gaussian-Bernoulli restricted Boltzmann machine (GRBM): real visibles, binary hiddens.

Hinton & Salakhutdinov (2006), "Reducing the dimensionality of data with neural networks" (the
Gaussian visible layer); Cho, Ilin & Raiko (2011), "Improved learning of Gaussian-Bernoulli
restricted Boltzmann machines" (the energy below, in which the variances are learnable);
Salakhutdinov & Murray (2008) for AIS, here with a Gaussian base model; Montavon & Mueller
(2012), "Deep Boltzmann machines and the centering trick", and Melchior, Fischer & Wiskott (2016),
"How to center deep Boltzmann machines" (the centred variant, ``model.centered``).

Real visible units v in R^D, binary hidden units h in {0,1}^H, parameters W (D, H), visible
mean b (D,), hidden bias c (H,) and per-visible log variances log_var (D,), sigma^2 = exp(log_var)
(Cho et al. 2011, eq. 3)::

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_ij (v_i / sigma_i^2) W_ij h_j - c^T h
    F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v / sigma^2)^T W_j)
    p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i^2)
    p(v | h)       = N(b + W h, diag(sigma^2))

The Gaussian integrates analytically, so the free energy of a hidden state is::

    F(h) = -log int exp(-E(v, h)) dv
         = -c^T h - sum_i [(b + W h)_i^2 - b_i^2] / (2 sigma_i^2) - sum_i 0.5 log(2 pi sigma_i^2)

and Z = sum_h exp(-F(h)) is exact by enumeration for H <= ~20.

Centring (``model.centered``). The interaction reads the visibles through an offset mu (D,),
fixed at the training-data mean by ``init_from_data``::

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_ij ((v_i - mu_i) / sigma_i^2) W_ij h_j - c^T h

which is the energy above with the hidden bias c - W^T (mu / sigma^2): the same family of
distributions, every formula above holds with that effective bias (``hidden_bias``), but the
learning dynamics differ. Uncentred data (MNIST logits: ~600 background pixels at -2.8) make the
input (v / sigma^2)^T W of every hidden unit large from the first updates and saturate them all;
centred, the gradient of W is the covariance of (v - mu) with h and the inputs stay near c.

Bounded variances. A free log variance can run to -inf under CD (a visible unit that the model
explains perfectly) and the gradients in 1/sigma^2 then explode. Here
log_var = lo + (hi - lo) * sigmoid(log_var_logit) with lo = 2 log(min_std), hi = 2 log(max_std)
from the config: smooth, and bounded whatever the optimiser does.

Learning: CD-k / PCD-k as the surrogate ``mean F(v_data) - mean F(v_model)``. For (W, b, c) the
closed-form backward of :class:`ContrastiveFreeEnergy` applies unchanged with the scaled visibles
v / sigma^2 in place of v (dF/dW = -(v / sigma^2) s^T, and the b-gradients of the two phases
differ by the mean of v / sigma^2); the log-variance gradient
dF/dlog_var_i = -(v_i - b_i)^2 / (2 sigma_i^2) + (v_i / sigma_i^2) (W s)_i is added as a
zero-valued term.

AIS path (Salakhutdinov & Murray 2008, with a Gaussian base model). The base model A has
W_A = 0, c_A = 0, b_A = the data mean and sigma_A = the data standard deviation (inside the
bounds), log Z_A = sum_i 0.5 log(2 pi sigma_A_i^2) + H log 2. With E_beta = (1 - beta) E_A +
beta E::

    F_beta(v) = sum_i [(1 - beta) (v_i - b_A_i)^2 / (2 sigma_A_i^2)
                       + beta (v_i - b_i)^2 / (2 sigma_i^2)]
                - sum_j softplus(beta (c_j + (v / sigma^2)^T W_j))
    p_beta(v | h) = N(m / lam, 1 / lam),  lam = (1 - beta) / sigma_A^2 + beta / sigma^2,
                    m = (1 - beta) b_A / sigma_A^2 + beta (b + W h) / sigma^2
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.boltzmann._ops import (
    ContrastiveFreeEnergy,
    RBMFamily,
    RBMFamilyConfig,
    advance_chains,
    bernoulli,
    bounded,
    bounded_logit,
    check_zero_weights,
    randn,
    register_chains,
    sample_chains,
    softplus,
    start_chains_at_data,
)
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.numerics import LOG_2PI


@dataclasses.dataclass(frozen=True)
class GRBMConfig(RBMFamilyConfig):
    """Hyperparameters of the Gaussian-Bernoulli RBM: those of :class:`RBMFamilyConfig` (with
    256 hidden units by default) and the visible variances'.

    ``centered``: read the visibles through the data-mean offset mu (module docstring).
    ``learn_std``: learn the visible standard deviations (else they stay at ``init_sigma``).
    ``min_std`` / ``max_std``: the bounds of every sigma_i (units of the data).
    ``init_sigma``: sigma before ``init_from_data``, which (when ``learn_std``) sets every sigma_i
    to the data's pooled standard deviation, clipped to the bounds. ``std_lr_scale`` multiplies the
    log-variance gradient (Cho et al. 2011 learn the variances more slowly than W).
    """

    n_hidden: int = 256
    centered: bool = False
    learn_std: bool = True
    min_std: float = 0.05
    max_std: float = 5.0
    init_sigma: float = 1.0
    std_lr_scale: float = 0.1

    def validate(self) -> None:
        super().validate()
        check(
            math.isfinite(self.min_std) and self.min_std > 0,
            f"model.min_std={self.min_std} must be a positive finite standard deviation "
            "(a variance of zero or below has no Gaussian; e.g. 0.05)",
        )
        check(
            math.isfinite(self.max_std) and self.max_std > self.min_std,
            f"model.max_std={self.max_std} must be finite and above model.min_std={self.min_std}",
        )
        check(
            self.min_std < self.init_sigma < self.max_std,
            f"model.init_sigma={self.init_sigma} must lie strictly between model.min_std="
            f"{self.min_std} and model.max_std={self.max_std}",
        )
        check_nonnegative(self.std_lr_scale, "model.std_lr_scale")


@register_model(
    "grbm", family="boltzmann", paper="Hinton & Salakhutdinov 2006; Cho, Ilin & Raiko 2011"
)
class GRBM(RBMFamily):
    """Gaussian-Bernoulli RBM (real visibles, bounded learned variances), CD-k / PCD-k.

    Batch methods take (B, D) real visibles / (B, H) binary hiddens and return (B,) values in
    nats; device and dtype follow the parameters."""

    config_class = GRBMConfig
    train_defaults = train_recipe(optimizer="sgd", lr=0.01)
    binary_input = False
    test_overrides = ("data.binarize=none", *RBMFamily.test_overrides)

    def __init__(self, config: GRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)  # W (D, H)
        d, h = self.W.shape
        self.b = nn.Parameter(torch.zeros(d))
        self.c = nn.Parameter(torch.zeros(h))
        self.log_var_logit = nn.Parameter(torch.zeros(d), requires_grad=config.learn_std)
        # The offset is state, not a parameter: checkpoints carry it, the optimiser never moves it.
        self.mu: torch.Tensor | None
        self.register_buffer("mu", torch.zeros(d) if config.centered else None)
        register_chains(self, config.persistent, config.n_chains, d)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W ~ N(0, init_std^2), b = 0, c = 0, sigma = init_sigma (and mu = 0 when centred)."""
        with torch.no_grad():
            normal_or_zero_(self.W, self.config.init_std, generator)
            self.b.zero_()
            if self.mu is not None:
                self.mu.zero_()
            self.c.zero_()
            self.set_log_var(torch.full_like(self.b, 2.0 * math.log(self.config.init_sigma)))
            if self.chains is not None:
                self.chains.zero_()

    # -- parameters ---------------------------------------------------------------------------

    def _log_var_bounds(self) -> tuple[float, float]:
        return 2.0 * math.log(self.config.min_std), 2.0 * math.log(self.config.max_std)

    @property
    def log_var(self) -> torch.Tensor:
        """log sigma^2 (D,), inside [2 log min_std, 2 log max_std]."""
        lo, hi = self._log_var_bounds()
        return bounded(self.log_var_logit, lo, hi)

    @torch.no_grad()
    def set_log_var(self, log_var: torch.Tensor) -> None:
        """Set log sigma^2 (D,), clipped to just inside the bounds."""
        lo, hi = self._log_var_bounds()
        self.log_var_logit.copy_(bounded_logit(log_var, lo, hi))

    # -- energies -----------------------------------------------------------------------------

    @checks_input
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) (module docstring). v (B, D), h (B, H) -> (B,)."""
        prec = torch.exp(-self.log_var)
        quad = 0.5 * ((v - self.b) ** 2 * prec).sum(-1)
        return quad - (((v * prec) @ self.W) * h).sum(-1) - h @ self.hidden_bias(prec)

    @checks_input
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v/sigma^2)^T W_j),
        in nats. v (B, D) -> (B,)."""
        prec = torch.exp(-self.log_var)
        quad = 0.5 * ((v - self.b) ** 2 * prec).sum(-1)
        return quad - softplus(self._hidden_input(v * prec)).sum(-1)

    def hidden_bias(self, prec: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden bias of the uncentred energy (H,): c, or c - W^T (mu / sigma^2) when
        centred. ``prec``: 1 / sigma^2 (D,) if already computed."""
        if self.mu is None:
            return self.c
        if prec is None:
            prec = torch.exp(-self.log_var)
        return torch.addmv(self.c, self.W.T, self.mu * prec, alpha=-1.0)

    def _hidden_input(self, v_scaled: torch.Tensor) -> torch.Tensor:
        # hidden_bias + (v / sigma^2) W, from the already scaled visibles.
        return torch.addmm(self.hidden_bias(), v_scaled, self.W)

    def hidden_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        """F(h) = -log int exp(-E(v, h)) dv (module docstring), constants included.
        h (B, H) -> (B,)."""
        prec = torch.exp(-self.log_var)
        mean = torch.addmm(self.b, h, self.W.T)
        gain = 0.5 * ((mean**2 - self.b**2) * prec).sum(-1)
        return -(h @ self.hidden_bias(prec)) - gain - 0.5 * (LOG_2PI + self.log_var).sum()

    # -- conditionals and Gibbs sampling ------------------------------------------------------

    def p_h_given_v(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """p(h_j = 1 | v) at inverse temperature beta. v (B, D) -> (B, H)."""
        return torch.sigmoid(beta * self._hidden_input(v * torch.exp(-self.log_var)))

    def v_mean_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h] = b + W h (the same at every beta > 0). h (B, H) -> (B, D)."""
        return torch.addmm(self.b, h, self.W.T)

    def sample_v_given_h(
        self, h: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0
    ) -> torch.Tensor:
        """v ~ N(b + W h, sigma^2 / beta) (p_beta ∝ exp(-beta E)). h (B, H) -> (B, D)."""
        mean = self.v_mean_given_h(h)
        std = torch.exp(0.5 * self.log_var) / math.sqrt(beta)
        return mean + std * randn(mean, generator)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Gibbs sweep v -> h -> v leaving p_beta(v, h) ∝ exp(-beta E) invariant (beta > 0).
        v (B, D) -> (B, D)."""
        h = bernoulli(self.p_h_given_v(v, beta), generator)
        return self.sample_v_given_h(h, generator, beta)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k / PCD-k surrogate on a real batch x (B, D): ``loss`` = mean F(x) - mean F(v_model)
        (+ 0.5 weight_decay ||W||^2), whose gradient is the CD / PCD update (the log-variance
        part scaled by ``std_lr_scale``). ``recon_error``: mean squared error of E[v | h0],
        h0 ~ p(h | x). ``free_energy_gap``: the contrastive value (nats). ``sigma_mean``: the
        mean visible standard deviation."""
        x = x.to(dtype=self.W.dtype)
        cfg = self.config
        with torch.no_grad():
            log_var = self.log_var
            prec = torch.exp(-log_var)
            s_data = torch.sigmoid(self._hidden_input(x * prec))
            h0 = bernoulli(s_data, generator)
            recon = ((x - self.v_mean_given_h(h0)) ** 2).mean()
            if cfg.persistent:
                v = advance_chains(self.chains, self.gibbs_step, cfg.k, generator)
            else:
                v = self.sample_v_given_h(h0, generator)
                for _ in range(cfg.k - 1):
                    v = self.gibbs_step(v, generator=generator)
            v_model = v
            s_model = self.p_h_given_v(v_model)
            gap = self.free_energy(x).mean() - self.free_energy(v_model).mean()
            # Centred: the statistics of W are those of (v - mu) / sigma^2 (the b- and
            # c-gradients do not change: mu cancels between the phases).
            xc, vc = (x, v_model) if self.mu is None else (x - self.mu, v_model - self.mu)
        loss = ContrastiveFreeEnergy.apply(
            self.W, self.b, self.c, gap, xc * prec, s_data, vc * prec, s_model
        )
        if cfg.learn_std:
            with torch.no_grad():
                g = (
                    self._dF_dlog_var(x, xc, s_data, prec).mean(0)
                    - self._dF_dlog_var(v_model, vc, s_model, prec).mean(0)
                ) * cfg.std_lr_scale
            lv = self.log_var
            loss = loss + (g * (lv - lv.detach())).sum()
        if cfg.weight_decay > 0:
            loss = loss + 0.5 * cfg.weight_decay * (self.W**2).sum()
        return {
            "loss": loss,
            "recon_error": recon,
            "free_energy_gap": gap,
            "sigma_mean": torch.exp(0.5 * log_var).mean(),
        }

    def _dF_dlog_var(
        self, v: torch.Tensor, v_c: torch.Tensor, s: torch.Tensor, prec: torch.Tensor
    ) -> torch.Tensor:
        # dF/dlog_var_i = -(v_i - b_i)^2 / (2 sigma_i^2) + (v_c_i / sigma_i^2) (W s)_i per
        # example, v_c = v - mu when centred, else v.
        return -0.5 * (v - self.b) ** 2 * prec + v_c * prec * (s @ self.W.T)

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """b = the data mean (and the offset mu too, when centred); when ``learn_std``, every
        sigma_i = the data's pooled standard deviation (over all units), clipped to the bounds;
        persistent chains start at random training examples (``generator=None``: a CPU
        generator seeded 0). Called once by the Trainer on a fresh run. x_train (N, D)."""
        x = x_train.to(self.b)
        self.b.copy_(x.mean(0))
        if self.mu is not None:
            self.mu.copy_(self.b)
        if self.config.learn_std:
            # One pooled variance, not per-unit ones: a nearly constant pixel would start with a
            # tiny sigma_i, and the CD gradients scale as v / sigma_i^2 (a first step that can
            # overshoot at any sensible learning rate). The variances then adapt.
            pooled = ((x - x.mean(0)) ** 2).mean().clamp_min(1e-30)
            self.set_log_var(torch.log(pooled).expand_as(self.b))
        if self.chains is not None:
            start_chains_at_data(self.chains, x_train, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean free energy of x (nats, not a likelihood: log Z is missing) and the mean squared
        error of the mean-field reconstruction E[v | h = p(h | x)]."""
        x = x.to(dtype=self.W.dtype)
        recon = ((x - self.v_mean_given_h(self.p_h_given_v(x))) ** 2).mean()
        return {"free_energy": float(self.free_energy(x).mean()), "recon_error": float(recon)}

    # -- sampling -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n real visible vectors (n, D): a copy of the persistent chains after a few Gibbs
        steps when there are enough of them, else fresh chains from N(b, sigma^2) run
        ``sample_burn_in`` Gibbs steps."""
        # An untrained model (W = 0) samples its fresh chains exactly: no burn-in needed.
        return sample_chains(
            self,
            n,
            lambda m: self.sample_v_given_h(self.W.new_zeros(m, self.n_hidden), generator),
            self.config.sample_burn_in if self.W.any() else 0,
            generator,
        )

    # -- AIS path and exact log Z --------------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def ais_base(self, x_train: torch.Tensor) -> GRBM:
        """The base model: W = 0, c = 0, b = the data mean, sigma_i = the data's standard
        deviation of unit i (inside this model's bounds): the data's Gaussian marginals. Its
        samples are exact."""
        base = self._zero_weight_base(x_train, learn_std=True)
        x = x_train.to(self.W)
        base.b.copy_(x.mean(0))
        base.set_log_var(torch.log(x.var(0, unbiased=False).clamp_min(1e-30)))
        return base

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base):
        sum_i 0.5 log(2 pi sigma_i^2) + sum_j softplus(c_j). 0-dim tensor."""
        check_zero_weights(self.W)
        return 0.5 * (LOG_2PI + self.log_var).sum() + softplus(self.c).sum()

    def _path_input(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prec = torch.exp(-self.log_var)  # 1 / sigma^2
        return self._hidden_input(v * prec), prec

    def _path_free_energy(self, v, ctx, beta, base):
        a, prec = ctx
        prec_a = torch.exp(-base.log_var)
        quad = (1.0 - beta) * ((v - base.b) ** 2 * prec_a).sum(-1) + beta * (
            (v - self.b) ** 2 * prec
        ).sum(-1)
        return 0.5 * quad - softplus(beta * a + (1.0 - beta) * base.c).sum(-1)

    def _path_sweep(self, v, ctx, beta, base, generator):
        a, prec = ctx
        h = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * base.c), generator)
        prec_a = torch.exp(-base.log_var)
        lam = (1.0 - beta) * prec_a + beta * prec
        m = (1.0 - beta) * base.b * prec_a + beta * prec * self.v_mean_given_h(h)
        return m / lam + randn(m, generator) * torch.rsqrt(lam)
