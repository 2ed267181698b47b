"""Likelihood of continuous energy models (``CONTINUOUS_ENERGY``: the mcRBM, mPoT, the factored
three-way RBM) by annealed importance sampling with Hamiltonian Monte Carlo transitions.

Neal (2001), "Annealed importance sampling"; Neal (2011), "MCMC using Hamiltonian dynamics".
The model gives only F(v), differentiable in v: its hiddens are summed or integrated out and no
tractable base model of its own family exists (the mcRBM's p(v | h) is a Gaussian with an
h-dependent covariance). So the path starts at a Gaussian p0 = N(mu, Sigma) fitted to the
training data (mean and covariance, a small jitter on the diagonal), whose log Z0 is closed-form:

    F0(v)       = 1/2 (v - mu)^T Sigma^{-1} (v - mu),   log Z0 = D/2 log(2 pi) + 1/2 log det Sigma
    F_beta(v)   = (1 - beta) F0(v) + beta F(v),   p_beta(v) ∝ p0(v)^(1 - beta) exp(-beta F(v))
    log w      += F_{beta_{k-1}}(v) - F_{beta_k}(v) = (beta_k - beta_{k-1}) (F0(v) - F(v))

and each transition is one HMC trajectory on F_beta (:mod:`genzoo.ops.hmc`), which leaves
p_beta invariant. HMC runs in the whitened coordinates u = L^{-1} (v - mu) (Sigma = L L^T): a
linear change of variables, which only rescales the energy's gradient, so one step size suits
every direction of the data's covariance at beta near 0.

Step sizes. Before the runs, a pilot of ``PILOT_CHAINS`` chains anneals over a grid of
``PILOT_GRID`` temperatures, adapting the step size at each toward ``TARGET_ACCEPT``
(:func:`genzoo.ops.hmc.adapt_step_size`) and recording it; the runs then use the step size
interpolated (log-linearly) at each beta from that record, fixed: every transition of a run is a
fixed kernel leaving p_beta invariant, so forward AIS stays unbiased for Z. The pilot draws from
its own generator seeded ``PILOT_SEED``.

Forward AIS (from exact draws of p0) is a stochastic lower bound on log Z; reverse AIS starts
from approximate model samples, p0 draws run ``eval.reverse_burn_in`` HMC trajectories at
beta = 1, and is an upper bound only as far as those chains have mixed. The annealing loop, the
shards and the report are those of every energy model (:mod:`genzoo.evaluation.ais`,
:func:`genzoo.evaluation.energy.log_z_nll`): this module supplies the path
(:class:`HMCAnnealingPath`, the :class:`~genzoo.core.protocols.AnnealingPath` contract around the
model) and its base (:class:`GaussianBase`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, CONTINUOUS_ENERGY, has
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import LogZNLL, _free_energies, log_z_nll
from genzoo.evaluation.report import EvaluationReport
from genzoo.models.base import trusted_input
from genzoo.ops.hmc import adapt_step_size, hmc_step, run_hmc
from genzoo.ops.numerics import LOG_2PI

# Leapfrog steps of each AIS transition; the acceptance rate the pilot aims at (Neal 2011: about
# 0.65 is near optimal for HMC).
N_LEAPFROG = 5
TARGET_ACCEPT = 0.65
PILOT_CHAINS = 64
PILOT_GRID = 17
PILOT_STEPS = 15
PILOT_SEED = 0
# Relative jitter added to the diagonal of the data covariance (a share of its mean variance).
JITTER = 1e-4


class GaussianBase(nn.Module):
    """The AIS base p0 = N(mu, L L^T): ``mu`` (D,), ``L`` (D, D) lower-triangular."""

    def __init__(self, mu: torch.Tensor, L: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("L", L)

    @classmethod
    @torch.no_grad()
    def fit(cls, x: torch.Tensor) -> GaussianBase:
        """The Gaussian of the mean and covariance of x (N, D), in float64 for the fit, returned
        in x's dtype and device; the diagonal gets JITTER x the mean variance."""
        x64 = x.to(torch.float64)
        mu = x64.mean(0)
        xc = x64 - mu
        cov = xc.T @ xc / max(len(x64) - 1, 1)
        cov += JITTER * float(cov.diagonal().mean().clamp_min(1e-12)) * torch.eye(
            cov.shape[0], dtype=cov.dtype, device=cov.device)
        return cls(mu.to(x.dtype), torch.linalg.cholesky(cov).to(x.dtype))

    def whiten(self, v: torch.Tensor) -> torch.Tensor:
        """u = L^{-1} (v - mu): (B, D) -> (B, D)."""
        return torch.linalg.solve_triangular(self.L, (v - self.mu).T, upper=False).T

    def color(self, u: torch.Tensor) -> torch.Tensor:
        """v = mu + L u: (B, D) -> (B, D)."""
        return torch.addmm(self.mu, u, self.L.T)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F0(v) = 1/2 ||L^{-1} (v - mu)||^2 (nats; -log p0(v) - log Z0): (B, D) -> (B,)."""
        return 0.5 * (self.whiten(v) ** 2).sum(-1)

    def log_partition(self) -> torch.Tensor:
        """log Z0 = D/2 log(2 pi) + sum_i log L_ii, 0-dim."""
        return 0.5 * LOG_2PI * self.L.shape[0] + torch.log(self.L.diagonal()).sum()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws (n, D)."""
        z = torch.randn((n, self.L.shape[0]), generator=generator, device=self.L.device,
                        dtype=self.L.dtype)
        return self.color(z)


class HMCAnnealingPath(nn.Module):
    """The annealing path from a :class:`GaussianBase` to a ``CONTINUOUS_ENERGY`` model, as the
    :class:`~genzoo.core.protocols.AnnealingPath` contract (module docstring), so that the AIS
    loop of :mod:`genzoo.evaluation.ais` runs it. ``ais_base(x_train)`` fits the base and runs
    the step-size pilot; the states are visible vectors v (B, D)."""

    capabilities = frozenset({AIS})

    def __init__(self, model, n_leapfrog: int = N_LEAPFROG, target: float = TARGET_ACCEPT
                 ) -> None:
        super().__init__()
        self.model = model
        self.n_leapfrog, self.target = n_leapfrog, target
        self.register_buffer("grid_betas", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("grid_log_steps", torch.zeros(0, dtype=torch.float64))
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    # -- what the report needs of the model ---------------------------------------------------

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        self.model.check_input(x, name)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """The model's F(v): (B, D) -> (B,)."""
        return self.model.free_energy(v)

    # -- the path -----------------------------------------------------------------------------

    def annealed_free_energy(self, v: torch.Tensor, beta: float, base: GaussianBase
                             ) -> torch.Tensor:
        """F_beta(v) = (1 - beta) F0(v) + beta F(v) (F0 alone at beta = 0, F alone at 1):
        (B, D) -> (B,)."""
        with trusted_input():
            if beta == 0.0:
                return base.free_energy(v)
            if beta == 1.0:
                return self.model.free_energy(v)
            return (1.0 - beta) * base.free_energy(v) + beta * self.model.free_energy(v)

    def step_size(self, beta: float) -> float:
        """The HMC step size at ``beta``, interpolated log-linearly from the pilot's record."""
        if self._grid is None:  # read once from the buffers (a device read-back), then kept
            if len(self.grid_betas) == 0:
                raise GenzooError("the path has no step sizes: call ais_base(x_train) first")
            self._grid = (self.grid_betas.cpu().numpy(), self.grid_log_steps.cpu().numpy())
        return float(np.exp(np.interp(beta, *self._grid)))

    def _transition(self, v, beta, base, step_size, generator):
        def energy(u):
            return self.annealed_free_energy(base.color(u), beta, base)

        step = hmc_step(energy, base.whiten(v), step_size, self.n_leapfrog, generator)
        return base.color(step.v), step

    @torch.no_grad()
    def annealed_gibbs_step(self, v: torch.Tensor, beta: float, base: GaussianBase,
                            generator: torch.Generator | None = None) -> torch.Tensor:
        """One HMC trajectory on F_beta in whitened coordinates, accepted or rejected (leaves
        p_beta invariant): (B, D) -> (B, D)."""
        return self._transition(v, beta, base, self.step_size(beta), generator)[0]

    @torch.no_grad()
    def annealed_step(self, v: torch.Tensor, beta_prev: float, beta: float, base: GaussianBase,
                      generator: torch.Generator | None = None, transition: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(F_{beta_prev}(v) - F_beta(v) (B,) float64, the state after one transition at beta,
        or v itself when not ``transition``)."""
        with trusted_input():
            d = (beta - beta_prev) * (base.free_energy(v) - self.model.free_energy(v))
        inc = d.to(torch.float64)
        if not transition:
            return inc, v
        return inc, self.annealed_gibbs_step(v, beta, base, generator)

    @torch.no_grad()
    def ais_base(self, x_train: torch.Tensor) -> GaussianBase:
        """The Gaussian of the training data (:meth:`GaussianBase.fit`) on the model's device
        and dtype; also runs the pilot that records the step sizes (module docstring)."""
        p = next(self.model.parameters())
        base = GaussianBase.fit(x_train.to(device=p.device, dtype=p.dtype))
        g = torch.Generator(device=p.device).manual_seed(PILOT_SEED)
        grid = [float(b) for b in np.linspace(0.0, 1.0, PILOT_GRID) ** 2]
        v, eps, log_steps = base.sample(PILOT_CHAINS, g), 1.0, []
        for beta in grid:
            for _ in range(PILOT_STEPS):
                v, step = self._transition(v, beta, base, eps, g)
                eps = adapt_step_size(eps, float(step.accept_prob.mean()), self.target,
                                      factor=1.1, bounds=(1e-4, 2.0))
            log_steps.append(math.log(eps))
        self.grid_betas = torch.tensor(grid, dtype=torch.float64, device=p.device)
        self.grid_log_steps = torch.tensor(log_steps, dtype=torch.float64, device=p.device)
        self._grid = (np.array(grid), np.array(log_steps))
        return base

    @torch.no_grad()
    def model_samples(self, base: GaussianBase, n: int, burn_in: int,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
        """Approximate model samples (n, D) to start reverse AIS: base draws run ``burn_in`` HMC
        trajectories at beta = 1 with the pilot's step size there; and their mean acceptance
        probability."""
        v = base.sample(n, generator)
        u, _, rate = run_hmc(lambda u: self.annealed_free_energy(base.color(u), 1.0, base),
                             base.whiten(v), self.step_size(1.0), self.n_leapfrog, burn_in,
                             generator)
        return base.color(u), rate


def hmc_energy_nll(
    model,
    x: torch.Tensor,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> EvaluationReport:
    """Mean NLL in nats per example of ``x`` (N, D) under a ``CONTINUOUS_ENERGY`` model,
    -log p(x) = F(x) + log Z with log Z by AIS with HMC transitions from the Gaussian of
    ``x_train`` (N', D): ``eval.ais_runs`` runs over ``eval.ais_betas`` temperatures
    (``eval.schedule``), and reverse AIS when ``eval.reverse`` (module docstring). The report
    is that of :func:`genzoo.evaluation.energy.energy_nll`; the model is not modified."""
    if not has(model, CONTINUOUS_ENERGY):
        raise GenzooError(f"{type(model).__name__} has no differentiable free energy for AIS "
                          "with HMC (capability continuous_energy)")
    burn_in = eval_config.reverse_burn_in

    def reverse_start(m: Any, base, lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        return m.model_samples(base, hi - lo, burn_in, g)[0]

    how = LogZNLL(
        capability=AIS,
        needs="has no annealing path",
        free_energies=lambda m, x, batch_size, distributed: _free_energies(m, x, batch_size),
        exact_name="exact",
        ais_name="AIS with HMC transitions (forward)",
        no_log_z="has no annealing path",
        reverse_start=reverse_start,
        start_text=lambda m, n: f"Gaussian base draws + {n} HMC trajectories at beta = 1",
    )
    return log_z_nll(how, HMCAnnealingPath(model), x, x_train, eval_config, generator,
                     distributed)
