"""Hamiltonian Monte Carlo (genzoo.ops.hmc) checked statistically: it samples a known Gaussian,
keeps its target, satisfies detailed balance, and rejects diverging trajectories."""

from __future__ import annotations

import math

import torch

from genzoo.ops.hmc import adapt_step_size, hmc_step, run_hmc

MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)
PREC = torch.linalg.inv(COV)


def gaussian_energy(v: torch.Tensor) -> torch.Tensor:
    d = v - MEAN
    return 0.5 * ((d @ PREC) * d).sum(-1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def exact_draws(n: int, seed: int) -> torch.Tensor:
    z = torch.randn(n, 2, generator=gen(seed), dtype=torch.float64)
    return MEAN + z @ torch.linalg.cholesky(COV).T


def test_chains_from_far_away_reach_the_mean_and_covariance_of_a_gaussian():
    v0 = torch.full((4000, 2), 6.0, dtype=torch.float64)
    v, eps, rate = run_hmc(gaussian_energy, v0, 0.3, 10, 60, gen(0), target=0.8)
    # 4000 nearly independent draws: se of a mean ~ 0.02-0.03, of a covariance entry ~ 0.03.
    assert torch.allclose(v.mean(0), MEAN, atol=0.1)
    assert torch.allclose(torch.cov(v.T), COV, atol=0.15)
    assert 0.5 < rate < 1.0 and 0.01 < eps < 2.0


def test_a_transition_keeps_exact_samples_exact_even_when_it_rejects_often():
    v = exact_draws(20000, 1)
    step = hmc_step(gaussian_energy, v, 1.6, 3, gen(2))  # a coarse step: many rejections
    assert 0.05 < step.accepted.double().mean() < 0.95
    assert torch.allclose(step.v.mean(0), MEAN, atol=0.06)
    assert torch.allclose(torch.cov(step.v.T), COV, atol=0.1)


def test_detailed_balance_on_a_skewed_one_dimensional_target():
    """With v ~ p exactly and v' ~ T(v, .), (v, v') and (v', v) have one law: a reversible
    kernel. E[v v'^2] = E[v^2 v'] is a moment that an irreversible or biased kernel breaks."""

    def energy(v):
        x = v[:, 0]
        return x**4 / 4 - x

    grid = torch.linspace(-4, 4, 200001, dtype=torch.float64)
    cdf = torch.cumsum(torch.exp(-(grid**4 / 4 - grid)), 0)
    cdf = cdf / cdf[-1]
    u = torch.rand(200000, generator=gen(3), dtype=torch.float64)
    v = grid[torch.searchsorted(cdf, u).clamp(max=len(grid) - 1)][:, None]
    w = hmc_step(energy, v, 0.9, 4, gen(4)).v
    a, b = v[:, 0], w[:, 0]
    lhs, rhs = (a * b**2), (a**2 * b)
    se = math.sqrt(float((lhs - rhs).var()) / len(a))
    assert abs(float(lhs.mean() - rhs.mean())) < 4 * se + 1e-3
    assert abs(float(a.mean() - b.mean())) < 0.02  # and p stays p


def test_diverging_trajectories_are_rejected_and_draws_follow_the_generator():
    v = exact_draws(50, 5)
    step = hmc_step(gaussian_energy, v, 50.0, 5, gen(6))
    assert not step.accepted.any() and torch.equal(step.v, v)
    again = hmc_step(gaussian_energy, v, 0.5, 5, gen(7))
    assert torch.equal(again.v, hmc_step(gaussian_energy, v, 0.5, 5, gen(7)).v)


def test_step_size_moves_toward_the_target_acceptance():
    assert adapt_step_size(0.1, 0.99, target=0.9) > 0.1
    assert adapt_step_size(0.1, 0.5, target=0.9) < 0.1
    assert adapt_step_size(1.0, 1.0, target=0.9, bounds=(1e-3, 1.0)) == 1.0
