"""Pieces of the higher-order Boltzmann machines of real-valued images (the factored three-way
RBM, the mean-covariance RBM, the mean-product-of-Student-t model): the factor layer that gates
pixel-pixel interactions by hidden units, the Gaussian-binary mean units, and
:class:`HMCBoltzmann`, their base, which trains, samples and steps them by Hamiltonian Monte Carlo
on the free energy F(v) (Ranzato & Hinton 2010 sample the visibles this way: p(v | h) is a
Gaussian whose covariance depends on h, so block Gibbs would need a D x D inverse per example).

Notation (Ranzato, Krizhevsky & Hinton 2010; Ranzato & Hinton 2010; Ranzato, Mnih & Hinton 2010):
visibles v (D,), filters C (D, F) with unit-norm columns C_f, pooling matrix P (F, H) from the F
factors to the H covariance hiddens, covariance biases b^c (H,); mean weights W (D, M) and
biases b^m (M,); visible bias b^v (D,). Every model here has the Gaussian term
1/2 ||v||^2 - b^v^T v (unit visible variance: the data are expected at about unit variance,
``data.unit_variance=true`` for image-patches), which keeps p(v) normalisable, so that every
model is a proper density on R^D and its likelihood is defined.

Whitening. The papers train on PCA-whitened patches. Here the whitening is a fixed part of the
model: a ZCA map u = Z (x - m) with m the training mean and Z = U diag((lambda + eps)^-1/2) U^T
from the eigendecomposition of the training covariance (eps = ``whiten_eps`` x the mean
eigenvalue keeps it invertible), set by ``init_from_data`` (``whiten=true``; the identity
before that or without it). Every formula of a model is written in the whitened coordinates,
named v there as in the papers, and the density of the data x carries the Jacobian::

    E(x, h) = E_v(Z (x - m), h) - log |det Z|,    F(x) = F_v(Z (x - m)) - log |det Z|

so the likelihood is that of the data space. ZCA keeps each filter in pixel layout, so the
filters C are shown as they are. Training and sampling run HMC in the whitened coordinates.

The factor input of the covariance part is

    q_k(v) = 1/2 sum_f P_fk (C_f^T v~)^2                                            (B, H)

with v~ = v / sqrt(||v||^2 / D + eps) when the model normalises its input (the mcRBM and the
three-way RBM: the covariance units then see the direction of a patch and not its contrast), else
v~ = v (mPoT, whose heavy tails take care of contrast).

Learning: contrastive divergence with HMC negatives, as in the papers: from each data point one
HMC trajectory of ``n_leapfrog`` leapfrog steps on F(v), accepted or rejected, gives v^-; the
surrogate loss mean F(v_data) - mean F(v^-) (v^- detached) has the CD gradient. The step size is
a buffer adapted after each update toward ``target_accept`` (Ranzato & Hinton: 90%), so
checkpoints carry it.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.errors import GenzooError
from genzoo.core.protocols import CONTINUOUS_ENERGY, ENERGY
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input, trusted_input
from genzoo.models.boltzmann._ops import bounded, randn, softplus
from genzoo.ops.hmc import adapt_step_size, hmc_step, run_hmc

# softplus^{-1}(1): the raw value of a pooling weight of magnitude 1.
_SOFTPLUS_INV_1 = math.log(math.e - 1.0)
# Raw value of the pooling weights off the initial one-to-one map (magnitude softplus(-7) ~ 1e-3).
_P_OFF = -7.0


@dataclasses.dataclass(frozen=True)
class HMCBoltzmannConfig(VisibleConfig):
    """Fields of the Boltzmann machines sampled by HMC on their free energy.

    ``n_factors``: F, the filters C (D, F). ``n_hidden``: H, the covariance hiddens (pooling P
    (F, H), initially one factor each when F = H). ``init_std``: the raw filters and mean
    weights ~ N(0, init_std^2) (filters are then normalised to unit length). ``normalize`` and
    ``norm_eps``: the covariance part reads v / sqrt(||v||^2 / D + norm_eps). ``whiten``: ZCA
    whitening fitted by ``init_from_data``, regularised by ``whiten_eps`` (a share of the mean
    eigenvalue of the data covariance). HMC:
    ``n_leapfrog`` leapfrog steps per trajectory, ``init_step_size`` the starting step size,
    adapted toward ``target_accept``; ``sample_burn_in``: trajectories run by fresh chains in
    ``sample``.
    """

    n_factors: int = 64
    n_hidden: int = 64
    init_std: float = 0.02
    normalize: bool = True
    norm_eps: float = 0.5
    whiten: bool = True
    whiten_eps: float = 1e-3
    n_leapfrog: int = 20
    init_step_size: float = 0.05
    target_accept: float = 0.9
    sample_burn_in: int = 300

    def validate(self) -> None:
        super().validate()
        check(self.n_factors > 0, f"model.n_factors={self.n_factors} must be positive")
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.init_std > 0, f"model.init_std={self.init_std} must be positive")
        check(self.norm_eps > 0, f"model.norm_eps={self.norm_eps} must be positive")
        check(self.whiten_eps > 0, f"model.whiten_eps={self.whiten_eps} must be positive")
        check(self.n_leapfrog >= 1, f"model.n_leapfrog={self.n_leapfrog} must be >= 1")
        check(0 < self.init_step_size <= 1, "model.init_step_size must be in (0, 1]")
        check(0 < self.target_accept < 1, "model.target_accept must be in (0, 1)")
        check(self.sample_burn_in >= 0, "model.sample_burn_in must be >= 0")


class FactorLayer(nn.Module):
    """Filters C (D, F) (unit-norm columns of the raw ``C_raw``), pooling P (F, H) of one sign
    (``sign`` -1: P <= 0 as in the mcRBM and the three-way RBM; +1: P >= 0 as in mPoT; its
    magnitude softplus(``P_raw``)) and, with ``bias``, biases ``b`` (H,) (b^c; mPoT has none)."""

    def __init__(self, d: int, f: int, h: int, sign: float, normalize: bool, eps: float,
                 bias: bool = True) -> None:
        super().__init__()
        self.C_raw = nn.Parameter(torch.zeros(d, f))
        self.P_raw = nn.Parameter(torch.zeros(f, h))
        self.b = nn.Parameter(torch.zeros(h)) if bias else None
        self.sign, self.normalize, self.eps = sign, normalize, eps

    @torch.no_grad()
    def reset_parameters(self, std: float, b: float, generator: torch.Generator | None) -> None:
        """C_raw ~ N(0, std^2); P one-to-one (|P_kk| = 1, the rest ~1e-3); b^c = ``b``
        (when the layer has biases)."""
        self.C_raw.normal_(0.0, std, generator=generator)
        self.P_raw.fill_(_P_OFF)
        n = min(self.P_raw.shape)
        self.P_raw[range(n), range(n)] = _SOFTPLUS_INV_1
        if self.b is not None:
            self.b.fill_(b)

    @property
    def C(self) -> torch.Tensor:
        """The filters (D, F), each column of unit Euclidean norm."""
        return self.C_raw / self.C_raw.norm(dim=0).clamp_min(1e-12)

    @property
    def P(self) -> torch.Tensor:
        """The pooling matrix (F, H), of the layer's sign."""
        return self.sign * softplus(self.P_raw)

    def q(self, v: torch.Tensor) -> torch.Tensor:
        """q(v) = 1/2 (C^T v~)^2 P (module docstring): v (B, D) -> (B, H)."""
        if self.normalize:
            v = v * torch.rsqrt((v * v).mean(-1, keepdim=True) + self.eps)
        return 0.5 * ((v @ self.C) ** 2) @ self.P

    def binary_energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The three-way term of binary hiddens h (B, H), -sum_k h_k (q_k(v) + b^c_k): -> (B,)."""
        return -(h * (self.q(v) + self.b)).sum(-1)

    def binary_free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """-log sum_h exp(-beta binary_energy(v, h)) = -sum_k softplus(beta (q_k(v) + b^c_k)):
        (B, D) -> (B,)."""
        return -softplus(beta * (self.q(v) + self.b)).sum(-1)


class MeanUnits(nn.Module):
    """The Gaussian-binary mean part: weights ``W`` (D, M), biases ``b`` (M,) (b^m); its energy
    -h^m^T (W^T v) - b^m^T h^m."""

    def __init__(self, d: int, m: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.zeros(d, m))
        self.b = nn.Parameter(torch.zeros(m))

    @torch.no_grad()
    def reset_parameters(self, std: float, generator: torch.Generator | None) -> None:
        self.W.normal_(0.0, std, generator=generator)
        self.b.zero_()

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """-h^T (W^T v + b^m): v (B, D), h (B, M) -> (B,)."""
        return -(h * torch.addmm(self.b, v, self.W)).sum(-1)

    def free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """-log sum_h exp(-beta E) = -sum_j softplus(beta (W_j^T v + b^m_j)): (B, D) -> (B,)."""
        return -softplus(beta * torch.addmm(self.b, v, self.W)).sum(-1)


def filter_images(C: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The columns of C (D, F) as F square images ((F, s*s), (s, s)): D = s^2, or D = s^2 - 1
    (DC-removed patches, whose dropped last pixel is shown as 0); else one row of D pixels."""
    images = C.detach().float().cpu().T
    d = images.shape[1]
    s = math.isqrt(d + 1)
    if s * s == d + 1:
        return torch.cat([images, images.new_zeros(len(images), 1)], 1), (s, s)
    s = math.isqrt(d)
    return (images, (s, s)) if s * s == d else (images, (1, d))


class HMCBoltzmann(GenzooModel):
    """Base of the Boltzmann machines trained and sampled by HMC on F(v) (module docstring).

    A model sets its parts and implements, in the whitened coordinates v (B, D),
    ``_energy(v, h)`` -> (B,) and ``_free_energy(v, beta)``, -log sum_h exp(-beta E_v(v, h)) (an
    integral for real hiddens) -> (B,) in nats, differentiable in v. Here: the visible bias
    ``b_v`` (D,), the whitening buffers (``m`` (D,), ``Z`` and ``Z_inv`` (D, D), ``log_det_Z``)
    and the step-size buffer; the public methods take data x (B, D).
    Capabilities: ENERGY (``gibbs_step`` is one HMC transition leaving p_beta(x) invariant) and
    CONTINUOUS_ENERGY (log Z by AIS with HMC transitions, :mod:`genzoo.evaluation.hmc_ais`)."""

    capabilities = frozenset({ENERGY, CONTINUOUS_ENERGY})
    binary_input = False
    test_overrides = ("data.binarize=none", "model.n_factors=8", "model.n_hidden=8",
                      "model.n_leapfrog=3", "model.sample_burn_in=5")

    def __init__(self, config: HMCBoltzmannConfig) -> None:
        super().__init__(config)
        d = config.n_visible
        self.b_v = nn.Parameter(torch.zeros(d))
        self.register_buffer("step_size", torch.tensor(config.init_step_size))
        self.register_buffer("m", torch.zeros(d))
        self.register_buffer("Z", torch.eye(d))
        self.register_buffer("Z_inv", torch.eye(d))
        self.register_buffer("log_det_Z", torch.tensor(0.0))

    def _energy(self, v: torch.Tensor, h) -> torch.Tensor:
        raise NotImplementedError

    def _free_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """v = Z (x - m): data (B, D) -> whitened (B, D)."""
        return (x - self.m) @ self.Z.T

    def unwhiten(self, v: torch.Tensor) -> torch.Tensor:
        """x = Z^-1 v + m: whitened (B, D) -> data (B, D)."""
        return torch.addmm(self.m, v, self.Z_inv.T)

    @checks_input
    def energy(self, x: torch.Tensor, h) -> torch.Tensor:
        """E(x, h) = E_v(Z (x - m), h) - log |det Z| (the model's module docstring gives E_v):
        x (B, D), h the model's hidden states -> (B,)."""
        return self._energy(self.whiten(x), h) - self.log_det_Z

    def tempered_free_energy(self, x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """F_beta(x) = -log sum_h exp(-beta E(x, h)) = F_v,beta(Z (x - m)) - beta log |det Z|:
        x (B, D) -> (B,) in nats, differentiable in x and the parameters."""
        return self._free_energy(self.whiten(x), beta) - beta * self.log_det_Z

    def _factor_layer(self, sign: float, bias: bool = True) -> FactorLayer:
        """The model's :class:`FactorLayer` (D, F, H and normalisation from its config)."""
        cfg = self.config
        return FactorLayer(cfg.n_visible, cfg.n_factors, cfg.n_hidden, sign, cfg.normalize,
                           cfg.norm_eps, bias)

    def visible_energy(self, v: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """beta (1/2 ||v||^2 - b^v^T v), the Gaussian term of E: (B, D) -> (B,)."""
        return beta * (0.5 * (v * v).sum(-1) - v @ self.b_v)

    @checks_input
    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = -log sum_h exp(-E(x, h)), in nats (the model's module docstring; the density
        of the data x): x (B, D) -> (B,), differentiable in x and the parameters."""
        return self.tempered_free_energy(x, 1.0)

    def filters(self) -> tuple[torch.Tensor, tuple[int, int]]:
        """The F filters C_f as images (:func:`filter_images`), for ``genzoo filters``."""
        return filter_images(self.cov.C)

    # -- HMC ----------------------------------------------------------------------------------

    def _hmc(self, v, beta, step_size, n_steps, generator, target=None):
        # HMC in the whitened coordinates v (the Jacobian is a constant: it changes nothing).
        with trusted_input():
            return run_hmc(lambda u: self._free_energy(u, beta), v, step_size,
                           self.config.n_leapfrog, n_steps, generator, target)

    @torch.no_grad()
    @checks_input
    def gibbs_step(
        self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One HMC trajectory (``n_leapfrog`` steps at the current step size, in the whitened
        coordinates) on F_beta, accepted or rejected: leaves p_beta(x) ∝ exp(-F_beta(x))
        invariant. x (B, D) -> (B, D)."""
        v = self._hmc(self.whiten(x), beta, float(self.step_size), 1, generator)[0]
        return self.unwhiten(v)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n data vectors (n, D): whitened chains from N(b^v, I) run ``sample_burn_in`` HMC
        trajectories, the step size adapted toward ``target_accept`` on the way (the model's
        own step size is left as it is), then mapped back to the data space."""
        if n < 0:
            raise GenzooError(f"sample(n={n}): n must be >= 0")
        v = self.b_v.expand(n, -1) + randn(self.b_v.expand(n, -1), generator)
        cfg = self.config
        v = self._hmc(v, 1.0, float(self.step_size), cfg.sample_burn_in, generator,
                      cfg.target_accept)[0]
        return self.unwhiten(v)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD with an HMC negative phase on a real batch x (B, D): ``loss`` = mean F_v(v) -
        mean F_v(v^-), v = Z (x - m) and v^- one HMC trajectory from each v (detached). ``accept_rate``: the mean
        Metropolis acceptance probability of those trajectories; ``step_size``: the HMC step
        size, which (in training mode) is then adapted toward ``target_accept``."""
        v = self.whiten(x.to(dtype=self.b_v.dtype))
        cfg = self.config
        with torch.no_grad():
            step = hmc_step(lambda u: self._free_energy(u, 1.0), v, float(self.step_size),
                            cfg.n_leapfrog, generator)
            rate = step.accept_prob.mean()
            eps = self.step_size.clone()
            if self.training:
                self.step_size.fill_(adapt_step_size(float(eps), float(rate), cfg.target_accept))
        # The Jacobian term is the same in both phases: it cancels.
        f_data = self._free_energy(v, 1.0).mean()
        f_model = self._free_energy(step.v, 1.0).mean()
        return {"loss": f_data - f_model, "free_energy_gap": f_data.detach() - f_model.detach(),
                "accept_rate": rate, "step_size": eps}

    @torch.no_grad()
    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """With ``whiten``: m, Z, Z^-1 and log |det Z| of the ZCA map of x_train (N, D)
        (module docstring); then b^v = the mean of the whitened data (0 when whitened)."""
        x = x_train.to(device=self.b_v.device, dtype=torch.float64)
        if self.config.whiten:
            m = x.mean(0)
            cov = (x - m).T @ (x - m) / max(len(x) - 1, 1)
            lam, U = torch.linalg.eigh(cov)
            lam = lam.clamp_min(0.0) + self.config.whiten_eps * float(lam.mean().clamp_min(1e-12))
            self.m.copy_(m)
            self.Z.copy_((U * lam.rsqrt()) @ U.T)
            self.Z_inv.copy_((U * lam.sqrt()) @ U.T)
            self.log_det_Z.fill_(float(-0.5 * torch.log(lam).sum()))
        self.b_v.copy_(self.whiten(x.to(self.b_v.dtype)).mean(0))

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean free energy of x (nats; not a likelihood: log Z is missing)."""
        return {"free_energy": float(self.tempered_free_energy(x.to(self.b_v), 1.0).mean())}


def bounded_exp(raw: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """exp of :func:`bounded` (raw, log lo, log hi): a positive quantity kept in [lo, hi]."""
    return torch.exp(bounded(raw, math.log(lo), math.log(hi)))
