"""Spike-and-slab restricted Boltzmann machine (ssRBM).

Courville, Bergstra & Bengio (2011), "A spike and slab restricted Boltzmann machine" (AISTATS),
eqs. 1-6, with a diagonal visible precision Lambda.

Real visibles v (D,), and per hidden unit i = 1..H a binary spike h_i and a real slab s_i.
Parameters: W (D, H) with columns W_i, spike biases b (H,), slab precisions alpha (H,) and the
diagonal visible precision Lambda (D,)::

    E(v, s, h) = 1/2 v^T Lambda v - sum_i h_i s_i v^T W_i + 1/2 sum_i alpha_i s_i^2 - b^T h

    p(s_i | v, h)   = N(h_i v^T W_i / alpha_i, 1 / alpha_i)                        (eq. 4)
    p(h_i = 1 | v)  = sigmoid(b_i + (v^T W_i)^2 / (2 alpha_i))   (s integrated out) (eq. 5)
    p(v | s, h)     = N(Lambda^{-1} W (s * h), Lambda^{-1})     (diagonal: no inversion)
    F(v) = -log sum_h int exp(-E) ds
         = 1/2 v^T Lambda v
           - sum_i [softplus(b_i + (v^T W_i)^2 / (2 alpha_i)) + 1/2 log(2 pi / alpha_i)]

Block Gibbs: h ~ p(h | v), s ~ p(s | v, h), v ~ p(v | s, h).

Feasible region. With s integrated out, p(v | h) is Gaussian with precision
P(h) = Lambda - sum_i h_i W_i W_i^T / alpha_i, which is positive definite for every h iff it is
for h = all ones, i.e. iff rho = ||Lambda^{-1/2} W alpha^{-1/2}||_2 < 1. The paper confines v to
a ball to keep Z finite outside that region; here instead the parameters are kept inside it, so
every conditional is a proper Gaussian and Z is finite without the ball. ``guard="rescale"``
uses the effective weights W * min(1, max_spectral_norm / rho) (a differentiable
parameterisation: whatever the optimiser does to W, Lambda or alpha, the model stays feasible
with P(all on) >= (1 - max_spectral_norm^2) Lambda); ``guard="error"`` uses W as it is and
raises once rho reaches ``max_spectral_norm``. Lambda and alpha are positive and bounded by a
sigmoid parameterisation of their logarithms between ``min_precision`` and ``max_precision``.

Exact log Z for small H: integrating v and s analytically for each spike vector h,

    F(h) = -b^T h - sum_i 1/2 log(2 pi / alpha_i) - D/2 log(2 pi) + 1/2 log det P(h),

and Z = sum_h exp(-F(h)) (enumeration, one Cholesky factorisation per state; evaluation only).
Larger H: annealed importance sampling of log Z (Neal 2001; Salakhutdinov & Murray 2008) from
the base model A, the ssRBM with W_A = 0 and the model's own Lambda, alpha and spike biases b::

    E_A(v, s, h) = 1/2 v^T Lambda v + 1/2 sum_i alpha_i s_i^2 - b^T h

so v, s and h are independent under A: v ~ N(0, Lambda^{-1}), h_i ~ Bernoulli(sigmoid(b_i)),
s_i ~ N(0, 1 / alpha_i), and

    log Z_A = sum_k 1/2 log(2 pi / Lambda_k) + sum_i [softplus(b_i) + 1/2 log(2 pi / alpha_i)].

The path E_beta = (1 - beta) E_A + beta E is the ssRBM with weights beta W. Its spectral norm
beta rho is below the model's rho < 1, so every p_beta is normalisable and its conditionals are
proper Gaussians; F_beta(v) is F(v) with W -> beta W (F_0 is the base's own free energy,
constants included; F_1 = F), and the transition at beta is the block Gibbs sweep with
W -> beta W.

Learning: CD-k / PCD-k as the surrogate ``mean F(v_data) - mean F(v_model)`` (v_model
detached), differentiated by autograd; no matrix is inverted or factorised during training.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import ConfigError, GenzooError, TrainingDiverged
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.boltzmann._ops import (
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
    widen,
)
from genzoo.nn.init import normal_or_zero_
from genzoo.ops.numerics import LOG_2PI

GUARDS = ("rescale", "error")


@dataclasses.dataclass(frozen=True)
class SSRBMConfig(RBMFamilyConfig):
    """Hyperparameters of the spike-and-slab RBM: those of :class:`RBMFamilyConfig` (with 256
    hidden units by default), the precisions' and the guard's.

    ``init_alpha``: the initial slab precision;
    ``init_b``: the initial spike bias (negative for sparse spikes). ``min_precision`` /
    ``max_precision`` bound every Lambda_k and alpha_i. ``max_spectral_norm`` (< 1) bounds
    rho = ||Lambda^{-1/2} W alpha^{-1/2}||_2; ``guard`` is ``rescale`` (keep the model feasible by
    shrinking W) or ``error`` (raise when it leaves the region). ``init_from_data`` sets Lambda to
    the inverse data variances (clipped to the bounds).
    """

    n_hidden: int = 256
    init_alpha: float = 1.0
    init_b: float = 0.0
    min_precision: float = 1e-2
    max_precision: float = 1e3
    max_spectral_norm: float = 0.95
    guard: str = "rescale"

    def validate(self) -> None:
        super().validate()
        check(
            math.isfinite(self.min_precision) and self.min_precision > 0,
            f"model.min_precision={self.min_precision} must be positive and finite (a precision "
            "of zero or below is not a Gaussian)",
        )
        check(
            math.isfinite(self.max_precision) and self.max_precision > self.min_precision,
            f"model.max_precision={self.max_precision} must be finite and above "
            f"model.min_precision={self.min_precision}",
        )
        check(
            self.min_precision < self.init_alpha < self.max_precision,
            f"model.init_alpha={self.init_alpha} must lie strictly between model.min_precision "
            f"and model.max_precision",
        )
        check(
            0.0 < self.max_spectral_norm < 1.0,
            f"model.max_spectral_norm={self.max_spectral_norm} must be in (0, 1): at 1 the "
            "covariance of p(v | h) with every spike on is singular, above it not positive "
            "definite",
        )
        check(self.guard in GUARDS, f"model.guard={self.guard!r} must be one of {GUARDS}")
        check(math.isfinite(self.init_b), f"model.init_b={self.init_b} must be finite")


@register_model("ssrbm", family="boltzmann", paper="Courville, Bergstra & Bengio 2011")
class SSRBM(RBMFamily):
    """Spike-and-slab RBM (binary spikes, real slabs, real visibles), CD-k / PCD-k.

    Batch methods take (B, D) real visibles and (B, H) spikes / slabs and
    return (B,) values in nats; device and dtype follow the parameters."""

    config_class = SSRBMConfig
    train_defaults = train_recipe(optimizer="sgd", lr=0.001)
    binary_input = False
    test_overrides = ("data.binarize=none", *RBMFamily.test_overrides)

    def __init__(self, config: SSRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)  # W (D, H)
        self.b = nn.Parameter(torch.zeros(self.n_hidden))  # spike biases
        self.log_alpha_logit = nn.Parameter(torch.zeros(self.n_hidden))
        self.log_lambda_logit = nn.Parameter(torch.zeros(self.n_visible))
        register_chains(self, config.persistent, config.n_chains, self.n_visible)
        self.reset_parameters(generator)
        if config.guard == "error":
            with torch.no_grad():
                rho = float(self.spectral_norm())
            if rho >= config.max_spectral_norm:
                raise ConfigError(
                    f"model.init_std={config.init_std} puts the initial ssRBM outside the "
                    f"positive-definite region (rho = {rho:.3g} >= model.max_spectral_norm="
                    f"{config.max_spectral_norm}); lower model.init_std, raise model.init_alpha, "
                    "or use model.guard=rescale"
                )

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W ~ N(0, init_std^2), b = init_b, alpha = init_alpha, Lambda = 1 (clipped)."""
        with torch.no_grad():
            normal_or_zero_(self.W, self.config.init_std, generator)
            self.b.fill_(self.config.init_b)
            self._set_log_precision(
                self.log_alpha_logit, torch.full_like(self.b, math.log(self.config.init_alpha))
            )
            self._set_log_precision(self.log_lambda_logit, torch.zeros_like(self.log_lambda_logit))
            if self.chains is not None:
                self.chains.zero_()

    # -- parameters ---------------------------------------------------------------------------

    def _bounds(self) -> tuple[float, float]:
        return math.log(self.config.min_precision), math.log(self.config.max_precision)

    @torch.no_grad()
    def _set_log_precision(self, logit: torch.Tensor, log_value: torch.Tensor) -> None:
        logit.copy_(bounded_logit(log_value, *self._bounds()))

    @property
    def alpha(self) -> torch.Tensor:
        """Slab precisions alpha (H,), inside [min_precision, max_precision]."""
        return torch.exp(bounded(self.log_alpha_logit, *self._bounds()))

    @property
    def lam(self) -> torch.Tensor:
        """Diagonal visible precision Lambda (D,), inside [min_precision, max_precision]."""
        return torch.exp(bounded(self.log_lambda_logit, *self._bounds()))

    def spectral_norm(self, W: torch.Tensor | None = None) -> torch.Tensor:
        """rho = ||Lambda^{-1/2} W alpha^{-1/2}||_2 (0-dim) of the raw W (or the given one); the
        model is normalisable iff rho < 1."""
        W = self.W if W is None else W
        scaled = W * torch.rsqrt(self.lam)[:, None] * torch.rsqrt(self.alpha)[None, :]
        return torch.linalg.matrix_norm(scaled, ord=2)

    def weight(self) -> torch.Tensor:
        """The effective W (D, H) used by every formula: W itself under ``guard="error"``, else
        W * min(1, max_spectral_norm / rho). Differentiable."""
        if self.config.guard == "error":
            return self.W
        rho = self.spectral_norm()
        return self.W * torch.clamp(self.config.max_spectral_norm / rho.clamp_min(1e-30), max=1.0)

    @torch.no_grad()
    def check_feasible(self) -> float:
        """Return rho of the effective weights; under ``guard="error"`` raise TrainingDiverged
        when it is at or above ``max_spectral_norm`` (under ``rescale`` it is at most that by
        construction, up to rounding)."""
        rho = float(self.spectral_norm(self.weight()))
        if self.config.guard == "error" and not rho < self.config.max_spectral_norm:
            raise TrainingDiverged(
                f"the ssRBM left the positive-definite region: rho = {rho:.4g} >= "
                f"model.max_spectral_norm={self.config.max_spectral_norm}, so p(v | h) is no "
                "longer a proper Gaussian; lower train.lr or use model.guard=rescale"
            )
        return rho

    # -- energies -----------------------------------------------------------------------------

    @checks_input
    def energy(
        self,
        v: torch.Tensor,
        hs: tuple[torch.Tensor, torch.Tensor] | torch.Tensor,
        s: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """E(v, s, h) (module docstring). The latent state is the pair hs = (h, s) of the
        spikes h (B, H) and slabs s (B, H), as the energy contract passes it, or the spikes
        with the slabs as ``s`` (``energy(v, h, s)``). v (B, D) -> (B,)."""
        h, s = hs if s is None else (hs, s)
        quad = 0.5 * (v**2 * self.lam).sum(-1)
        slab = 0.5 * (s**2 * self.alpha).sum(-1)
        return quad - ((v @ self.weight()) * h * s).sum(-1) + slab - h @ self.b

    @checks_input
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v), spikes summed and slabs integrated out, in nats. v (B, D) -> (B,)."""
        return self._free_energy(v, self.weight(), self.alpha, self.lam)

    def _free_energy(self, v, W, alpha, lam, u=None):
        u = v @ W if u is None else u  # u = v W, when the caller has it
        spikes = softplus(self.b + u**2 / (2.0 * alpha)) + 0.5 * (LOG_2PI - torch.log(alpha))
        return 0.5 * (v**2 * lam).sum(-1) - spikes.sum(-1)

    def hidden_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        """F(h) = -log int int exp(-E(v, s, h)) ds dv, constants included (module docstring).
        h (B, H) -> (B,). Uses one Cholesky factorisation per row (evaluation only)."""
        W, alpha, lam = self.weight(), self.alpha, self.lam
        Wh = W[None, :, :] * (h / alpha)[:, None, :]  # (B, D, H)
        P = torch.diag_embed(lam.expand(h.shape[0], -1)) - Wh @ W.T
        logdet = 2.0 * torch.log(torch.diagonal(torch.linalg.cholesky(P), dim1=-2, dim2=-1)).sum(-1)
        const = 0.5 * (LOG_2PI - torch.log(alpha)).sum() + 0.5 * self.n_visible * LOG_2PI
        return -(h @ self.b) - const + 0.5 * logdet

    # -- conditionals and Gibbs sampling ------------------------------------------------------

    def p_h_given_v(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """p(h_i = 1 | v) with the slab integrated out, at inverse temperature beta.
        v (B, D) -> (B, H)."""
        u = v @ self.weight()
        return torch.sigmoid(beta * (self.b + u**2 / (2.0 * self.alpha)))

    def s_given_vh(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance) of p(s | v, h): h_i v^T W_i / alpha_i and 1 / alpha_i. -> (B, H) each
        (the variance broadcast)."""
        alpha = self.alpha
        mean = h * (v @ self.weight()) / alpha
        return mean, (1.0 / alpha).expand_as(mean)

    def v_given_sh(self, s: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance) of p(v | s, h): Lambda^{-1} W (s h) and Lambda^{-1}. -> (B, D) each."""
        inv_lam = 1.0 / self.lam
        mean = ((s * h) @ self.weight().T) * inv_lam
        return mean, inv_lam.expand_as(mean)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, v: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One block Gibbs sweep v -> h -> s -> v leaving p_beta(v, s, h) ∝ exp(-beta E)
        invariant (beta > 0). v (B, D) -> (B, D)."""
        W = self.weight()
        return self._gibbs_sweep(v @ W, W, self.alpha, self.lam, beta, generator)

    def _gibbs_sweep(self, u, W, alpha, lam, beta, generator):
        # the sweep from u = v W, for any feasible W (the AIS path uses beta W)
        h = bernoulli(torch.sigmoid(beta * (self.b + u**2 / (2.0 * alpha))), generator)
        s = h * u / alpha + randn(u, generator) * torch.rsqrt(beta * alpha)
        mean = ((s * h) @ W.T) / lam
        return mean + randn(mean, generator) * torch.rsqrt(beta * lam)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k / PCD-k surrogate on a real batch x (B, D): ``loss`` = mean F(x) - mean
        F(v_model) (+ 0.5 weight_decay ||W||^2), differentiated by autograd (no matrix inverse).
        Figures: ``free_energy_gap`` (nats), ``recon_error`` (mean squared error of
        E[v | s, h] after one sweep from x), ``rho`` (the spectral norm of the effective model)."""
        x = x.to(dtype=self.W.dtype)
        cfg = self.config
        with torch.no_grad():
            rho = self.check_feasible()
            if cfg.persistent:
                v = advance_chains(self.chains, self.gibbs_step, cfg.k, generator)
                v_first = self.gibbs_step(x, generator=generator)
            else:
                v = x
                for step in range(cfg.k):
                    v = self.gibbs_step(v, generator=generator)
                    if step == 0:
                        v_first = v
            v_model = v
            recon = ((x - v_first) ** 2).mean()
        W, alpha, lam = self.weight(), self.alpha, self.lam
        gap = self._free_energy(x, W, alpha, lam).mean() - self._free_energy(
            v_model, W, alpha, lam
        ).mean()
        loss = gap
        if cfg.weight_decay > 0:
            loss = loss + 0.5 * cfg.weight_decay * (self.W**2).sum()
        return {
            "loss": loss,
            "free_energy_gap": gap.detach(),
            "recon_error": recon,
            "rho": torch.tensor(rho, dtype=x.dtype, device=x.device),
        }

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Lambda = 1 / the data's second moments about zero (the model has no visible mean:
        centre the data first), clipped to the bounds; persistent chains start at random training
        examples (``generator=None``: a CPU generator seeded 0). x_train (N, D)."""
        x = x_train.to(self.W)
        self._set_log_precision(self.log_lambda_logit, -torch.log((x**2).mean(0).clamp_min(1e-30)))
        if self.chains is not None:
            start_chains_at_data(self.chains, x_train, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean free energy of x (nats, not a likelihood: log Z is missing) and rho."""
        x = x.to(dtype=self.W.dtype)
        rho = float(self.spectral_norm(self.weight()))
        return {"free_energy": float(self.free_energy(x).mean()), "rho": rho}

    # -- sampling -------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n real visible vectors (n, D): a copy of the persistent chains after a few sweeps when
        there are enough of them, else fresh chains from N(0, Lambda^{-1}) run
        ``sample_burn_in`` sweeps."""
        lam = self.lam
        return sample_chains(
            self,
            n,
            lambda m: randn(lam.expand(m, -1), generator) * torch.rsqrt(lam),
            self.config.sample_burn_in,
            generator,
        )

    # -- AIS path ------------------------------------------------------------------------------

    @torch.no_grad()
    @checks_input
    def ais_base(self, x_train: torch.Tensor) -> SSRBM:
        """The base model: an ssRBM with W = 0 and this model's Lambda, alpha and b (the path
        needs them shared; the data only checks the input). v ~ N(0, Lambda^{-1}) under it, so
        its samples are exact (sample_burn_in = 0)."""
        base = self._zero_weight_base(x_train)
        for name in ("b", "log_alpha_logit", "log_lambda_logit"):
            getattr(base, name).copy_(getattr(self, name))
        return base

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base): sum_k 1/2 log(2 pi /
        Lambda_k) + sum_i [softplus(b_i) + 1/2 log(2 pi / alpha_i)]. 0-dim tensor."""
        check_zero_weights(self.W)
        alpha, lam = self.alpha, self.lam
        visible = 0.5 * (LOG_2PI - torch.log(lam)).sum()
        return visible + (softplus(self.b) + 0.5 * (LOG_2PI - torch.log(alpha))).sum()

    def _path_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, alpha, Lambda) of the model. Without autograd they are cached while the
        parameters are unchanged: the guarded W needs a spectral norm (an SVD), which would cost
        more than the rest of an AIS step."""
        if torch.is_grad_enabled():
            return self.weight(), self.alpha, self.lam
        params = (self.W, self.log_alpha_logit, self.log_lambda_logit)
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device, p.shape) for p in params)
        cache = self.__dict__.get("_ais_path_cache")
        if cache is None or cache[0] != key:
            # the detached views keep the storage alive, so no other tensor can take its address
            held = tuple(p.detach() for p in params)
            cache = (key, held, (self.weight(), self.alpha, self.lam))
            self.__dict__["_ais_path_cache"] = cache
        return cache[2]

    def _check_path_base(self, base: SSRBM) -> None:
        check_zero_weights(base.W)
        for name in ("b", "log_alpha_logit", "log_lambda_logit"):
            if not torch.equal(getattr(base, name), getattr(self, name)):
                raise GenzooError(
                    f"the ssRBM annealing path needs a base with this model's {name}; build it "
                    "with model.ais_base(x_train) after the model's last update"
                )

    def _path_input(self, v: torch.Tensor):
        W, alpha, lam = self._path_parameters()
        return v @ W, W, alpha, lam  # u = v W, shared by F_beta and the sweep

    def _wide_path_input(self, ctx):
        u, W, alpha, lam = ctx
        return widen(u), W, widen(alpha), widen(lam)  # W is not read by the free energy

    def _path_free_energy(self, v, ctx, beta, base):
        u, _, alpha, lam = ctx
        return self._free_energy(v, None, alpha, lam, u=beta * u)

    def _path_sweep(self, v, ctx, beta, base, generator):
        u, W, alpha, lam = ctx
        return self._gibbs_sweep(beta * u, beta * W, alpha, lam, 1.0, generator)
