"""The spike-and-slab RBM: conditionals and free energies against numerical integration over the
slabs, exact log Z against numerical integration over v, the block Gibbs sampler against exact
moments, the positive-definite guard, and training on real data."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from _sequence_checks import built_from_data, exact_nll

from genzoo.core.errors import ConfigError, TrainingDiverged
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, EnergyModel
from genzoo.evaluation import exact_log_partition
from genzoo.models.boltzmann.ssrbm import SSRBM, SSRBMConfig


def make_ssrbm(d=2, h=3, scale=0.6, seed=0, **kw) -> SSRBM:
    g = torch.Generator().manual_seed(seed)
    m = SSRBM(SSRBMConfig(n_visible=d, n_hidden=h, init_std=scale, **kw), generator=g).double()
    with torch.no_grad():
        m.b.copy_(torch.randn(h, generator=g, dtype=torch.float64))
        noise = 0.3 * torch.randn(h + d, generator=g, dtype=torch.float64)
        m._set_log_precision(m.log_alpha_logit, noise[:h])
        m._set_log_precision(m.log_lambda_logit, noise[h:])
    return m


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


SLAB_GRID = torch.linspace(-40, 40, 160001, dtype=torch.float64)
DS = float(SLAB_GRID[1] - SLAB_GRID[0])


@torch.no_grad()
def log_marginal_slabs(m: SSRBM, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """log int exp(-E(v, s, h)) ds by quadrature, one slab at a time (E is separable in s given
    v and h). v (B, D), h (H,) -> (B,)."""
    H = m.n_hidden
    out = -0.5 * (v**2 * m.lam).sum(-1) + h @ m.b
    u = v @ m.weight()
    alpha = m.alpha
    for i in range(H):
        e = h[i] * u[:, i : i + 1] * SLAB_GRID - 0.5 * alpha[i] * SLAB_GRID**2
        out = out + torch.logsumexp(e, 1) + math.log(DS)
    return out


def test_registered_with_capabilities():
    m = make_ssrbm()
    assert isinstance(m, EnergyModel)
    assert m.capabilities == {ENERGY, AIS, EXACT_LOG_PARTITION}


@torch.no_grad()
def test_p_h_given_v_and_free_energy_match_numerical_integration_over_slabs():
    m = make_ssrbm()
    v = torch.randn(4, 2, dtype=torch.float64) * 1.5
    hs = all_states(3)
    log_joint = torch.stack([log_marginal_slabs(m, v, h) for h in hs], 1)  # (4, 8)
    torch.testing.assert_close(m.free_energy(v), -torch.logsumexp(log_joint, 1), rtol=0, atol=1e-8)
    p_h = torch.softmax(log_joint, 1) @ hs
    torch.testing.assert_close(m.p_h_given_v(v), p_h, rtol=0, atol=1e-8)


@torch.no_grad()
def test_energy_conditionals_are_the_stated_gaussians():
    """-E(v, s, h) as a function of s (resp. v) differs from log p(s | v, h) (resp.
    log p(v | s, h)) by a constant."""
    m = make_ssrbm()
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64).expand(30, -1)
    v = torch.randn(1, 2, dtype=torch.float64).expand(30, -1)
    s = torch.randn(30, 3, dtype=torch.float64) * 2
    mean, var = m.s_given_vh(v, h)
    diff = torch.distributions.Normal(mean, var.sqrt()).log_prob(s).sum(-1) + m.energy(v, h, s)
    torch.testing.assert_close(diff, diff[0].expand(30))
    s1 = s[:1].expand(30, -1)
    v = torch.randn(30, 2, dtype=torch.float64) * 2
    mean, var = m.v_given_sh(s1, h)
    diff = torch.distributions.Normal(mean, var.sqrt()).log_prob(v).sum(-1) + m.energy(v, h, s1)
    torch.testing.assert_close(diff, diff[0].expand(30))
    # The energy contract passes the latent state as one argument, the pair (h, s).
    torch.testing.assert_close(m.energy(v, (h, s1)), m.energy(v, h, s1))


@torch.no_grad()
def test_exact_log_z_matches_numerical_integration_over_v():
    m = make_ssrbm(scale=1.5)  # raw weights outside the region: the guard rescales them
    assert float(m.spectral_norm()) > 1.0
    axis = torch.linspace(-20, 20, 1601, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    cell = 2 * math.log(float(axis[1] - axis[0]))
    numeric = float(torch.logsumexp(-m.free_energy(grid), 0)) + cell
    assert exact_log_partition(m).value == pytest.approx(numeric, abs=1e-6)


@torch.no_grad()
def test_block_gibbs_matches_the_exact_second_moments():
    """E[v v^T] = sum_h p(h) P(h)^{-1}, with p(h) ∝ exp(-F(h)) and P(h) the precision of
    p(v | h) (matrix inverse in the test only)."""
    m = make_ssrbm(scale=1.0, seed=2)
    hs = all_states(3)
    p_h = torch.softmax(-m.hidden_free_energy(hs), 0)
    W, alpha = m.weight(), m.alpha
    second = sum(
        p * torch.linalg.inv(torch.diag(m.lam) - (W * (h / alpha)) @ W.T) for p, h in zip(p_h, hs)
    )
    g = torch.Generator().manual_seed(0)
    v = m.sample(1, g).expand(20000, -1).clone()
    for _ in range(60):
        v = m.gibbs_step(v, generator=g)
    torch.testing.assert_close(v.T @ v / len(v), second, rtol=0.06, atol=0.03)


def test_rescale_guard_keeps_every_conditional_proper():
    m = make_ssrbm(d=3, h=5, scale=5.0)
    assert float(m.spectral_norm().detach()) > 1.0
    assert float(m.spectral_norm(m.weight()).detach()) == pytest.approx(m.config.max_spectral_norm)
    # an SGD step with a huge learning rate still leaves a feasible model
    x = torch.randn(20, 3, dtype=torch.float64) * 3
    m.loss(x, torch.Generator().manual_seed(0))["loss"].backward()
    with torch.no_grad():
        for p in m.parameters():
            p -= 100.0 * p.grad
    assert m.check_feasible() <= m.config.max_spectral_norm + 1e-9
    z = exact_log_partition(m).value  # Cholesky of every P(h) succeeds
    assert math.isfinite(z)


def test_error_guard_detects_leaving_the_region():
    m = make_ssrbm(guard="error", scale=0.1)
    x = torch.randn(8, 2, dtype=torch.float64)
    m.loss(x)  # feasible: fine
    with torch.no_grad():
        m.W.mul_(100.0)
    with pytest.raises(TrainingDiverged, match="positive-definite"):
        m.loss(x)


def test_settings_that_force_infeasibility_fail_at_construction():
    with pytest.raises(ConfigError, match="positive-definite"):
        SSRBM(SSRBMConfig(n_visible=20, n_hidden=20, init_std=1.0, guard="error"))


@pytest.mark.parametrize(
    "bad",
    [
        {"max_spectral_norm": 1.0},
        {"max_spectral_norm": 0.0},
        {"min_precision": 0.0},
        {"min_precision": -1.0},
        {"max_precision": 1e-3},
        {"init_alpha": 1e9},
        {"guard": "clip"},
        {"n_hidden": 0},
    ],
)
def test_bad_settings_are_rejected_at_construction(bad):
    with pytest.raises(ConfigError):
        SSRBM(SSRBMConfig(n_visible=3, **bad))


def test_training_on_image_patches_improvesexact_nll(tmp_path):
    """CD-1 at SGD lr 0.01 on zero-mean natural-image patches: the exact held-out
    NLL (8 spikes, enumerated) goes down, and the model stays in the feasible region."""
    from genzoo.training import Trainer

    cfg, bundle, m = built_from_data(
        "ssrbm",
        ["data.name=image-patches", "data.unit_variance=true", "data.n_train=3000",
         "data.n_eval=1000", "model.n_hidden=8", "train.epochs=2", "train.batch_size=50",
         "train.optimizer=sgd", "train.lr=0.01", "train.progress=false", "train.grid_samples=0"],
    )
    assert isinstance(m, SSRBM)
    before = exact_nll(m, bundle.valid.x)
    Trainer(m, cfg, bundle, tmp_path / "run").fit()
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert m.check_feasible() <= cfg.model.max_spectral_norm + 1e-6
    after = exact_nll(m, bundle.valid.x)
    assert after < before - 1.0
