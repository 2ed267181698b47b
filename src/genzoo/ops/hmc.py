"""Hamiltonian (hybrid) Monte Carlo on a differentiable energy U(v) of real vectors v.

Duane, Kennedy, Pendleton & Roweth (1987); Neal (2011), "MCMC using Hamiltonian dynamics".
The target is p(v) ∝ exp(-U(v)); the momenta r ~ N(0, I) are drawn afresh for each trajectory and
the Hamiltonian is H(v, r) = U(v) + 1/2 ||r||^2. One transition runs ``n_leapfrog`` leapfrog
steps of size eps::

    r <- r - eps/2 dU/dv(v);   v <- v + eps r;   r <- r - eps/2 dU/dv(v)   (L times, fused)

and accepts the end point (v*, r*) with probability min(1, exp(H(v, r) - H(v*, r*))), else stays
at v (Metropolis). Leapfrog is volume-preserving and time-reversible, so every transition leaves
p(v) invariant, whatever eps and L (each chain's acceptance is decided by its own H).

Step size. Ranzato & Hinton (2010) adapt eps during training so that the acceptance rate of the
negative-phase trajectories stays near a target (90% in their mcRBM): :func:`adapt_step_size`
multiplies eps up when the rate is above the target and down when it is below. Adapting from the
chain's own past makes the chain inhomogeneous; the callers adapt only where that is harmless
(training negatives, a burn-in, a pilot run before AIS).

Shapes: a batch of B chains v (B, D); ``energy`` maps (B, D) -> (B,) in nats, differentiable in
v. Randomness comes only from the explicit ``generator``. Nothing here imports above ``ops``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

Energy = Callable[[torch.Tensor], torch.Tensor]


class HMCStep(NamedTuple):
    """One HMC transition of B chains: the new states ``v`` (B, D) and which proposals were
    ``accepted`` (B,) bool, with ``accept_prob`` (B,) the Metropolis probabilities
    min(1, exp(-dH)) (their mean estimates the acceptance rate with less noise)."""

    v: torch.Tensor
    accepted: torch.Tensor
    accept_prob: torch.Tensor


def energy_and_grad(energy: Energy, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U(v) (B,), dU/dv (B, D)), both detached. The gradient is taken with respect to v only
    (parameters of the energy get none)."""
    with torch.enable_grad():
        x = v.detach().requires_grad_(True)
        u = energy(x)
        (g,) = torch.autograd.grad(u.sum(), x)
    return u.detach(), g.detach()


def hmc_step(
    energy: Energy,
    v: torch.Tensor,
    step_size: float | torch.Tensor,
    n_leapfrog: int,
    generator: torch.Generator | None = None,
) -> HMCStep:
    """One HMC transition of each of the B chains v (B, D) on U = ``energy`` (module docstring):
    ``n_leapfrog`` >= 1 leapfrog steps of size ``step_size`` (a float, or a (B, 1) tensor of
    per-chain sizes), then a Metropolis accept or reject per chain (one uniform draw per chain,
    after the B x D momentum draws, all from ``generator``)."""
    if n_leapfrog < 1:
        raise ValueError(f"n_leapfrog={n_leapfrog} must be >= 1")
    v = v.detach()
    r0 = torch.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype)
    u0, g = energy_and_grad(energy, v)
    x, r = v, r0 - 0.5 * step_size * g
    for i in range(n_leapfrog):
        x = x + step_size * r
        u1, g = energy_and_grad(energy, x)
        # Full momentum steps inside the trajectory, a half step at its end.
        r = r - (step_size if i < n_leapfrog - 1 else 0.5 * step_size) * g
    # -log acceptance ratio: H(x, r) - H(v, r0), in the dtype of v (float64 when evaluating).
    dh = (u1 - u0) + 0.5 * ((r**2).sum(-1) - (r0**2).sum(-1))
    # A trajectory that diverged (inf or NaN energy) is rejected.
    log_prob = torch.where(torch.isfinite(dh), -dh, torch.full_like(dh, -math.inf)).clamp(max=0.0)
    u = torch.rand(dh.shape, generator=generator, device=v.device, dtype=v.dtype)
    accepted = torch.log(u) < log_prob
    return HMCStep(torch.where(accepted[:, None], x, v), accepted, torch.exp(log_prob))


def adapt_step_size(
    step_size: float,
    accept_rate: float,
    target: float = 0.9,
    factor: float = 1.02,
    bounds: tuple[float, float] = (1e-4, 1.0),
) -> float:
    """The step size for the next trajectories: ``step_size * factor`` when the measured
    ``accept_rate`` (in [0, 1]) is above ``target``, ``step_size / factor`` when below, kept in
    ``bounds`` (Ranzato & Hinton 2010: eps tracks a target acceptance of about 90%)."""
    new = step_size * factor if accept_rate > target else step_size / factor
    return min(max(new, bounds[0]), bounds[1])


def run_hmc(
    energy: Energy,
    v: torch.Tensor,
    step_size: float,
    n_leapfrog: int,
    n_steps: int,
    generator: torch.Generator | None = None,
    target: float | None = None,
) -> tuple[torch.Tensor, float, float]:
    """``n_steps`` HMC transitions of the chains v (B, D) -> (final states (B, D), final step
    size, mean acceptance probability over the transitions). With ``target`` the step size is
    adapted after each transition toward that acceptance rate (:func:`adapt_step_size`), e.g.
    during a burn-in; None keeps it fixed (a chain that leaves p(v) exactly invariant)."""
    total = 0.0
    for _ in range(n_steps):
        step = hmc_step(energy, v, step_size, n_leapfrog, generator)
        v, rate = step.v, float(step.accept_prob.mean())
        total += rate
        if target is not None:
            step_size = adapt_step_size(step_size, rate, target)
    return v, step_size, total / max(n_steps, 1)
