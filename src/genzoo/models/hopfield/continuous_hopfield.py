"""Continuous (graded-response) Hopfield network.

Hopfield (1984), "Neurons with graded response have collective computational properties like
those of two-state neurons", PNAS 81. Unit i has an internal potential u_i and an output
V_i = g(u_i) = tanh(gain u_i); with symmetric W, inputs I and leak time constant tau (the
paper's R_i C_i, capacitances set to 1), the dynamics (eq. 5)::

    du_i/dt = -u_i / tau + sum_j W_ij V_j + I_i

decrease the energy (eq. 7)::

    E(V) = -1/2 V^T W V - I^T V + (1/tau) sum_i int_0^{V_i} g^{-1}(v) dv,
    int_0^V g^{-1}(v) dv = (V atanh V + 1/2 log(1 - V^2)) / gain

since dE/dt = -sum_i g'(u_i) (du_i/dt)^2 <= 0. :meth:`run` integrates them by explicit Euler
steps of size dt (E decreases for small enough dt). At high gain the minima approach the
corners of the binary network's hypercube.
"""

from __future__ import annotations

import torch
from torch import nn

from genzoo.core.errors import InputError


class ContinuousHopfield(nn.Module):
    """N graded-response units. ``W`` (N, N) is made symmetric with zero diagonal; ``I`` (N,)
    defaults to 0. States u, V are (B, N)."""

    def __init__(
        self, W: torch.Tensor, I: torch.Tensor | None = None, gain: float = 1.0, tau: float = 1.0
    ) -> None:
        super().__init__()
        if W.dim() != 2 or W.shape[0] != W.shape[1] or not W.is_floating_point():
            raise InputError(f"W must be a square floating matrix, got shape {tuple(W.shape)}")
        if gain <= 0 or tau <= 0:
            raise InputError(f"gain={gain} and tau={tau} must be positive")
        W = 0.5 * (W + W.T)
        self.register_buffer("W", W - torch.diag_embed(torch.diagonal(W)))
        self.register_buffer("I", torch.zeros(len(W), dtype=W.dtype) if I is None else I.to(W))
        self.gain, self.tau = gain, tau

    @classmethod
    def from_patterns(cls, x: torch.Tensor, gain: float = 1.0, tau: float = 1.0):
        """Hebbian weights (1/N) sum xi xi^T from patterns x (P, N) in {0, 1} or {-1, +1}."""
        xi = 2 * x - 1 if bool(((x == 0) | (x == 1)).all()) else x
        return cls(xi.T @ xi / x.shape[1], gain=gain, tau=tau)

    def output(self, u: torch.Tensor) -> torch.Tensor:
        """V = tanh(gain u)."""
        return torch.tanh(self.gain * u)

    def energy(self, V: torch.Tensor) -> torch.Tensor:
        """E(V) for outputs V (B, N) in (-1, 1), (B,)."""
        V = V.clamp(-1 + 1e-12, 1 - 1e-12)
        integral = (V * torch.atanh(V) + 0.5 * torch.log1p(-V * V)) / self.gain
        return -0.5 * ((V @ self.W) * V).sum(-1) - V @ self.I + integral.sum(-1) / self.tau

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        """du/dt = -u / tau + W V + I, (B, N)."""
        return -u / self.tau + self.output(u) @ self.W + self.I

    @torch.no_grad()
    def run(self, u: torch.Tensor, n_steps: int = 100, dt: float = 0.05) -> torch.Tensor:
        """Potentials (n_steps + 1, B, N) of the Euler-integrated dynamics from u (B, N)."""
        if dt <= 0:
            raise InputError(f"dt={dt} must be positive")
        u = u.to(self.W)
        path = [u]
        for _ in range(n_steps):
            u = u + dt * self.derivative(u)
            path.append(u)
        return torch.stack(path)
