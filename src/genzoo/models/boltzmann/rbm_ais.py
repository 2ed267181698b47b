"""What the evaluators need from the binary RBM: the annealing path for AIS (Salakhutdinov &
Murray 2008) and the free energy of the smaller layer for exact enumeration of Z.

The base model A is the RBM with W_A = 0, c_A = 0 and b_A the logits of the data marginals; the
hidden units are shared along the path, whose energy is E_beta(v, h) = (1 - beta) E_A(v, h) +
beta E(v, h), so::

    F_beta(v) = -((1 - beta) b_A + beta b)^T v
                - sum_j softplus((1 - beta) c_A_j + beta (c_j + (v^T W)_j))

equals the base's own free energy at beta = 0 (-b_A^T v - H log 2, constants included) and F(v)
at beta = 1. Its Gibbs conditionals are sigmoids of the interpolated inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from genzoo.models.boltzmann._ops import (
    bernoulli,
    check_zero_weights,
    data_logits,
    softplus,
    softplus_threshold,
)

if TYPE_CHECKING:
    from genzoo.models.boltzmann.rbm import RBM


class RBMAnnealingPath:
    """Mixin giving :class:`~genzoo.models.boltzmann.rbm.RBM` the AIS contract (``ais_base``,
    ``log_partition`` of the base, ``annealed_free_energy``, ``annealed_gibbs_step``, the fused
    ``annealed_step``) and ``enumerable_free_energy`` for exact log Z."""

    @torch.no_grad()
    def ais_base(self, x_train: torch.Tensor) -> RBM:
        """The base-rate model of SM08: an RBM of the same size with W = 0, c = 0 and b the
        logits of the clamped training marginals. Its samples are exact (sample_burn_in = 0)."""
        self.check_input(x_train, "x_train")
        cfg = type(self.config)(
            n_visible=self.n_visible, n_hidden=self.n_hidden, init_std=0.0, sample_burn_in=0
        )
        base = type(self)(cfg).to(device=self.W.device, dtype=self.W.dtype)
        base.b.copy_(data_logits(x_train.to(self.b)))
        return base

    @torch.no_grad()
    def log_partition(self) -> torch.Tensor:
        """log Z in closed form, valid only when W == 0 (the AIS base model):
        sum_i softplus(b_i) + sum_j softplus(c_j). Returns a 0-dim tensor."""
        check_zero_weights(self.W)
        return softplus(self.b).sum() + softplus(self.c).sum()

    def annealed_free_energy(self, v: torch.Tensor, beta: float, base: RBM) -> torch.Tensor:
        """F_beta(v) = -log p*_beta(v) on the path from ``base`` (beta=0, W_A must be 0) to this
        model (beta=1); see the module docstring. v (B, D) -> (B,)."""
        return self._annealed_free_energy(v, self._hidden_input(v), beta, base)

    def _annealed_free_energy(
        self, v: torch.Tensor, a: torch.Tensor, beta: float, base: RBM
    ) -> torch.Tensor:
        vis = v @ ((1.0 - beta) * base.b + beta * self.b)
        return -vis - softplus(beta * a + (1.0 - beta) * base.c).sum(-1)

    @torch.no_grad()
    def annealed_gibbs_step(
        self,
        v: torch.Tensor,
        beta: float,
        base: RBM,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One Gibbs sweep v -> h -> v leaving p_beta invariant. v (B, D) -> (B, D)."""
        return self._annealed_sweep(v, self._hidden_input(v), beta, base, generator)

    def _annealed_sweep(self, v, a, beta, base, generator):
        h = bernoulli(torch.sigmoid(beta * a + (1.0 - beta) * base.c), generator)
        in_v = torch.addmm((1.0 - beta) * base.b + beta * self.b, h, self.W.T, alpha=beta)
        return bernoulli(torch.sigmoid(in_v), generator)

    @torch.no_grad()
    def annealed_step(
        self,
        v: torch.Tensor,
        beta_prev: float,
        beta: float,
        base: RBM,
        generator: torch.Generator | None = None,
        transition: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused AIS step (optional speed-up used by ``ais_log_partition``): returns
        (F_{beta_prev}(v) - F_beta(v) of shape (B,), the state after one sweep at beta), the
        same values and random draws as annealed_free_energy twice and annealed_gibbs_step,
        with v W computed once."""
        a = self._hidden_input(v)
        inc = self._annealed_free_energy(v, a, beta_prev, base) - self._annealed_free_energy(
            v, a, beta, base
        )
        if not transition:
            return inc, v
        return inc, self._annealed_sweep(v, a, beta, base, generator)

    def enumerable_free_energy(self):
        """(F_layer, n_units): the free energy of the smaller layer's states with the other
        layer summed out (F(h) = hidden_free_energy or F(v) = free_energy, computed without
        gradients), and that layer's size; sum over its 2^n_units states of exp(-F_layer) is Z."""
        if self.n_hidden <= self.n_visible:
            return self._enumeration_free_energy(self.c, self.b, self.W.T), self.n_hidden
        return self._enumeration_free_energy(self.b, self.c, self.W), self.n_visible

    def _enumeration_free_energy(self, own_bias, other_bias, weight):
        """F(s) = -own_bias^T s - sum softplus(other_bias + s weight) for blocks of states s,
        writing the (block, other layer) intermediate into one reused buffer per block size:
        enumeration scores millions of states, and a fresh multi-MB tensor per block costs as
        much in page faults as the arithmetic."""
        workspace: dict[int, torch.Tensor] = {}
        threshold = softplus_threshold(weight.dtype)

        @torch.no_grad()
        def free_energy(s: torch.Tensor) -> torch.Tensor:
            buf = workspace.get(s.shape[0])
            if buf is None:
                buf = workspace[s.shape[0]] = s.new_empty(s.shape[0], weight.shape[1])
            torch.addmm(other_bias, s, weight, out=buf)
            torch.ops.aten.softplus.out(buf, 1.0, threshold, out=buf)
            return -(s @ own_bias) - buf.sum(-1)

        return free_energy
