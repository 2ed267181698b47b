"""What the evaluators need from the Gaussian-Bernoulli RBM: the annealing path for AIS
(Salakhutdinov & Murray 2008, here with a Gaussian base model) and the hidden-state free energy
for exact enumeration of Z.

The base model A has W_A = 0, c_A = 0, b_A = the data mean and sigma_A = the data standard
deviation (inside the bounds), log Z_A = sum_i 0.5 log(2 pi sigma_A_i^2) + H log 2. With
E_beta = (1 - beta) E_A + beta E::

    F_beta(v) = sum_i [(1 - beta) (v_i - b_A_i)^2 / (2 sigma_A_i^2)
                       + beta (v_i - b_i)^2 / (2 sigma_i^2)]
                - sum_j softplus(beta (c_j + (v / sigma^2)^T W_j))
    p_beta(v | h) = N(m / lam, 1 / lam),  lam = (1 - beta) / sigma_A^2 + beta / sigma^2,
                    m = (1 - beta) b_A / sigma_A^2 + beta (b + W h) / sigma^2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from genzoo.models.boltzmann._ops import (
    bernoulli,
    check_zero_weights,
    enumerable_hidden_free_energy,
    randn,
    softplus,
)
from genzoo.ops.numerics import LOG_2PI

if TYPE_CHECKING:
    from genzoo.models.boltzmann.grbm import GRBM



class GRBMAnnealingPath:
    """Mixin giving :class:`~genzoo.models.boltzmann.grbm.GRBM` the AIS contract (``ais_base``,
    ``log_partition`` of the base, ``annealed_free_energy``, ``annealed_gibbs_step``, the fused
    ``annealed_step``) and ``enumerable_free_energy`` for exact log Z."""

    @torch.no_grad()
    def ais_base(self, x_train: torch.Tensor) -> GRBM:
        """The base model: W = 0, c = 0, b = the data mean, sigma_i = the data's standard
        deviation of unit i (inside this model's bounds): the data's Gaussian marginals. Its
        samples are exact."""
        self.check_input(x_train, "x_train")
        cfg = self.config.replace(
            n_visible=self.n_visible, init_std=0.0, sample_burn_in=0, persistent=False,
            learn_std=True,
        )
        base = type(self)(cfg).to(device=self.W.device, dtype=self.W.dtype)
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

    def annealed_free_energy(self, v: torch.Tensor, beta: float, base: GRBM) -> torch.Tensor:
        """F_beta(v) on the path from ``base`` (beta = 0, W_A = 0) to this model (beta = 1);
        module docstring. v (B, D) -> (B,)."""
        prec = torch.exp(-self.log_var)
        return self._annealed_free_energy(v, self._hidden_input(v * prec), prec, beta, base)

    def _annealed_free_energy(self, v, a, prec, beta, base):
        prec_a = torch.exp(-base.log_var)
        quad = (1.0 - beta) * ((v - base.b) ** 2 * prec_a).sum(-1) + beta * (
            (v - self.b) ** 2 * prec
        ).sum(-1)
        return 0.5 * quad - softplus(beta * a + (1.0 - beta) * base.c).sum(-1)

    @torch.no_grad()
    def annealed_gibbs_step(
        self, v: torch.Tensor, beta: float, base: GRBM, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Gibbs sweep v -> h -> v leaving p_beta invariant. v (B, D) -> (B, D)."""
        prec = torch.exp(-self.log_var)
        return self._annealed_sweep(self._hidden_input(v * prec), prec, beta, base, generator)

    def _annealed_sweep(self, a, prec, beta, base, generator):
        h = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * base.c), generator)
        prec_a = torch.exp(-base.log_var)
        lam = (1.0 - beta) * prec_a + beta * prec
        m = (1.0 - beta) * base.b * prec_a + beta * prec * self.v_mean_given_h(h)
        return m / lam + randn(m, generator) * torch.rsqrt(lam)

    @torch.no_grad()
    def annealed_step(
        self,
        v: torch.Tensor,
        beta_prev: float,
        beta: float,
        base: GRBM,
        generator: torch.Generator | None = None,
        transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step: (F_{beta_prev}(v) - F_beta(v) (B,), the state after one sweep at
        beta), the hidden input computed once."""
        prec = torch.exp(-self.log_var)
        a = self._hidden_input(v * prec)
        inc = self._annealed_free_energy(v, a, prec, beta_prev, base) - self._annealed_free_energy(
            v, a, prec, beta, base
        )
        if not transition:
            return inc, v
        return inc, self._annealed_sweep(a, prec, beta, base, generator)

    def enumerable_free_energy(self):
        """(F(h), n_hidden): the hidden-state free energy with the Gaussian visibles integrated
        analytically (computed without gradients); Z = sum over the 2^H states of exp(-F(h))."""
        return enumerable_hidden_free_energy(self)
