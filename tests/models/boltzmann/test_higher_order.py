"""The factored three-way RBM, the mcRBM and mPoT: their free energies are the hiddens summed
(or integrated) out of their energies, at every inverse temperature; their HMC samples follow
the density exp(-F(v)) / Z found by quadrature; their filters show as images."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genzoo.core.registry import get_model_spec

NAMES = ["factored-rbm", "mcrbm", "mpot"]


def tiny(name: str, d: int = 3, scale: float = 0.7, seed: int = 0):
    spec = get_model_spec(name)
    extra = {} if name == "factored-rbm" else {"n_mean": 2}
    cfg = spec.config_cls(n_visible=d, n_factors=3, n_hidden=2, n_leapfrog=10, sample_burn_in=80,
                          **extra)
    model = spec.build(cfg).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def binary_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


@pytest.mark.parametrize("beta", [1.0, 0.4])
@pytest.mark.parametrize("name", ["factored-rbm", "mcrbm"])
def test_free_energy_sums_the_binary_hiddens_out_of_the_energy(name, beta):
    m = tiny(name)
    v = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    n_c = m.config.n_hidden
    n_m = 0 if name == "factored-rbm" else m.config.n_mean
    terms = []
    for h in binary_states(n_c + n_m):
        hc, hm = h[:n_c].expand(4, -1), h[n_c:].expand(4, -1)
        e = m.energy(v, hc) if name == "factored-rbm" else m.energy(v, (hc, hm))
        terms.append(-beta * e)
    expected = -torch.logsumexp(torch.stack(terms), 0)
    torch.testing.assert_close(m.tempered_free_energy(v, beta), expected)
    if beta == 1.0:
        torch.testing.assert_close(m.free_energy(v), expected)


@pytest.mark.parametrize("beta", [1.0, 0.6])
def test_mpot_free_energy_integrates_the_gamma_hiddens_out(beta):
    m = tiny("mpot")
    v = torch.randn(3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # Quadrature over log h^c (h = e^t, dh = h dt) for each covariance unit, a sum over h^m.
    t = torch.linspace(-40.0, 8.0, 200001, dtype=torch.float64)
    dt = float(t[1] - t[0])
    q, gamma = m.cov.q(v), m.gamma  # (3, N), (N,)
    log_int = 0.0
    for k in range(m.config.n_hidden):
        e = torch.exp(t)[None, :] * (1 + q[:, k : k + 1]) + (1 - gamma[k]) * t[None, :]
        log_int = log_int + torch.logsumexp(-beta * e + t[None, :], 1) + math.log(dt)
    f_mean_vis = m.mean.free_energy(v, beta) + m.visible_energy(v, beta)
    # Quadrature error (the tail below e^-40): ~1e-5 nats.
    torch.testing.assert_close(m.tempered_free_energy(v, beta), -log_int + f_mean_vis,
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_hmc_samples_follow_the_density_found_by_quadrature(name):
    m = tiny(name, d=2, scale=1.0)
    h = 0.02
    g = torch.arange(-10, 10, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        p = torch.softmax(-m.free_energy(grid), 0)
    mean = p @ grid
    second = (grid * p[:, None]).T @ grid
    v = m.sample(3000, torch.Generator().manual_seed(3))
    assert torch.allclose(v.mean(0), mean, atol=0.12)
    assert torch.allclose(v.T @ v / len(v), second, atol=0.3)


@pytest.mark.parametrize("name", NAMES)
def test_filters_of_dc_removed_patches_are_8x8_images(name):
    spec = get_model_spec(name)
    m = spec.build(spec.config_cls(n_visible=63, n_factors=5))
    images, shape = m.filters()
    assert shape == (8, 8) and images.shape == (5, 64)
    assert torch.allclose(images[:, :63].norm(dim=1), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_training_adapts_the_step_size_toward_the_target_acceptance(name):
    m = tiny(name, d=4, scale=0.3)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    before = float(m.step_size)
    out = m.loss(x, generator=torch.Generator().manual_seed(5))
    rate = float(out["accept_rate"])
    after = float(m.step_size)
    assert (after > before) == (rate > m.config.target_accept)


@pytest.mark.parametrize("name", NAMES)
def test_whitening_carries_its_jacobian_so_the_data_density_keeps_its_normaliser(name):
    """init_from_data fits the ZCA map v = Z (x - m); Z_x = int exp(-F(x)) dx over the data
    space equals Z_v = int exp(-F_v(v)) dv over the whitened space (quadrature on grids)."""
    m = tiny(name, d=2, scale=1.0)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64) @ torch.tensor(
        [[2.0, 0.0], [1.5, 0.3]], dtype=torch.float64) + torch.tensor([1.0, -1.0],
                                                                      dtype=torch.float64)
    m.init_from_data(x)
    assert abs(float(m.log_det_Z)) > 0.1 and torch.allclose(
        torch.cov(m.whiten(x).T), torch.eye(2, dtype=torch.float64), atol=0.06)  # eps-regularised
    torch.testing.assert_close(m.unwhiten(m.whiten(x)), x)

    def log_z(f, center, half_width, h):
        axes = [torch.arange(c - half_width, c + half_width, h, dtype=torch.float64)
                for c in center.tolist()]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        with torch.no_grad():
            return float(torch.logsumexp(-f(grid), 0)) + 2 * math.log(h)

    z_x = log_z(m.free_energy, m.m, 40.0, 0.03)
    z_v = log_z(lambda v: m._free_energy(v, 1.0), torch.zeros(2), 12.0, 0.02)
    assert abs(z_x - z_v) < 1e-3
