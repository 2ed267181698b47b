"""The Gaussian-Bernoulli RBM: conditionals and free energies against enumeration and analytic
Gaussians, exact log Z against numerical integration, AIS against the exact value, the CD
update against autograd, bounded variances, and training on real-valued data."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
from _sequence_checks import assert_cd1_backward_is_autograd, exact_nll

from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, EnergyModel
from genzoo.evaluation import ais_log_partition, exact_log_partition, sm08_schedule
from genzoo.models.boltzmann.grbm import GRBM, GRBMConfig


def make_grbm(d=3, h=4, scale=0.7, seed=0, **kw) -> GRBM:
    g = torch.Generator().manual_seed(seed)
    m = GRBM(GRBMConfig(n_visible=d, n_hidden=h, init_std=scale, **kw), generator=g).double()
    with torch.no_grad():
        m.b.copy_(torch.randn(d, generator=g, dtype=torch.float64))
        m.c.copy_(torch.randn(h, generator=g, dtype=torch.float64))
        m.set_log_var(0.5 * torch.randn(d, generator=g, dtype=torch.float64))
    return m


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def test_registered_with_capabilities():
    m = make_grbm()
    assert isinstance(m, EnergyModel)
    assert m.capabilities == {ENERGY, AIS, EXACT_LOG_PARTITION}


@torch.no_grad()
def test_free_energy_and_p_h_given_v_match_enumeration_over_h():
    m = make_grbm()
    v = torch.randn(5, 3, dtype=torch.float64)
    hs = all_states(4)
    log_joint = torch.stack([-m.energy(v, h.expand(5, -1)) for h in hs], 1)  # (5, 16)
    torch.testing.assert_close(m.free_energy(v), -torch.logsumexp(log_joint, 1))
    p_h = torch.softmax(log_joint, 1) @ hs
    torch.testing.assert_close(m.p_h_given_v(v), p_h)


@torch.no_grad()
def test_p_v_given_h_is_the_analytic_gaussian():
    """-E(v, h) as a function of v differs from log N(v; b + W h, sigma^2) by a constant."""
    m = make_grbm()
    h = all_states(4)[[3, 9, 14]]
    for hi in h:
        v = torch.randn(50, 3, dtype=torch.float64) * 3
        normal = torch.distributions.Normal(m.v_mean_given_h(hi[None]), torch.exp(0.5 * m.log_var))
        diff = normal.log_prob(v).sum(-1) + m.energy(v, hi.expand(50, -1))
        torch.testing.assert_close(diff, diff[0].expand(50))
    # and the sampler draws that Gaussian
    g = torch.Generator().manual_seed(0)
    hh = h[0].expand(40000, -1)
    v = m.sample_v_given_h(hh, g)
    torch.testing.assert_close(v.mean(0), m.v_mean_given_h(h[:1])[0], atol=0.05, rtol=0)
    torch.testing.assert_close(v.var(0), torch.exp(m.log_var), atol=0.0, rtol=0.05)


@torch.no_grad()
def test_hidden_free_energy_integrates_the_gaussian():
    m = make_grbm(d=1, h=2)
    grid = torch.linspace(-40, 40, 400001, dtype=torch.float64)[:, None]
    dv = float(grid[1] - grid[0])
    for h in all_states(2):
        log_int = torch.logsumexp(-m.energy(grid, h.expand(len(grid), -1)), 0) + math.log(dv)
        torch.testing.assert_close(-m.hidden_free_energy(h[None])[0], log_int, rtol=0, atol=1e-8)


@pytest.mark.parametrize("d", [1, 2])
@torch.no_grad()
def test_exact_log_z_matches_numerical_integration(d):
    m = make_grbm(d=d, h=3, scale=1.0, seed=d)
    n = 200001 if d == 1 else 1201
    axes = [torch.linspace(-25, 25, n, dtype=torch.float64)] * d
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    cell = d * math.log(float(axes[0][1] - axes[0][0]))
    numeric = float(torch.logsumexp(-m.free_energy(grid), 0)) + cell
    assert exact_log_partition(m).value == pytest.approx(numeric, abs=1e-6)


def test_ais_within_a_tenth_of_a_nat_of_exact_with_16_hiddens():
    g = torch.Generator().manual_seed(0)
    x_train = torch.randn(500, 10, generator=g, dtype=torch.float64) * 1.5 + 0.3
    m = make_grbm(d=10, h=16, scale=0.5, seed=3)
    with torch.no_grad():
        m.b.copy_(x_train.mean(0))
    exact = exact_log_partition(m).value
    base = m.ais_base(x_train)
    est = ais_log_partition(m, base, sm08_schedule(2000), 100, torch.Generator().manual_seed(1))
    assert abs(est.value - exact) < 0.1
    assert est.stderr < 0.1


@torch.no_grad()
def test_annealing_path_ends_at_base_and_model():
    g = torch.Generator().manual_seed(0)
    x_train = torch.randn(300, 3, generator=g, dtype=torch.float64) * 2 - 1
    m = make_grbm()
    base = m.ais_base(x_train)
    v = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(m.annealed_free_energy(v, 0.0, base), base.free_energy(v))
    torch.testing.assert_close(m.annealed_free_energy(v, 1.0, base), m.free_energy(v))
    # the base's closed-form log Z is its exact one, constants included
    assert float(base.log_partition()) == pytest.approx(exact_log_partition(base).value, abs=1e-9)
    # fused step: same increment and same draws as the two-call form
    inc, v1 = m.annealed_step(v, 0.3, 0.4, base, torch.Generator().manual_seed(5))
    ref = m.annealed_free_energy(v, 0.3, base) - m.annealed_free_energy(v, 0.4, base)
    torch.testing.assert_close(inc, ref)
    v2 = m.annealed_gibbs_step(v, 0.4, base, torch.Generator().manual_seed(5))
    torch.testing.assert_close(v1, v2)


@torch.no_grad()
def test_annealed_gibbs_step_leaves_p_beta_invariant():
    """Moments of p_beta(v) for a 1-visible model, by quadrature, against long chains."""
    m = make_grbm(d=1, h=2, scale=1.5, seed=4)
    base = m.ais_base(torch.randn(200, 1, dtype=torch.float64) * 0.7 + 0.5)
    beta = 0.6
    grid = torch.linspace(-30, 30, 200001, dtype=torch.float64)[:, None]
    w = torch.softmax(-m.annealed_free_energy(grid, beta, base), 0)
    mean = float((w * grid[:, 0]).sum())
    var = float((w * grid[:, 0] ** 2).sum()) - mean**2
    g = torch.Generator().manual_seed(0)
    v = base.sample(20000, g)
    for _ in range(30):
        v = m.annealed_gibbs_step(v, beta, base, g)
    assert float(v.mean()) == pytest.approx(mean, abs=4 * math.sqrt(var / 20000) + 0.01)
    assert float(v.var()) == pytest.approx(var, rel=0.05)


def test_cd_gradient_equals_autograd_of_the_surrogate():
    m = make_grbm(std_lr_scale=1.0)
    assert_cd1_backward_is_autograd(m, torch.randn(9, 3, dtype=torch.float64))


def test_variances_stay_inside_the_bounds():
    m = make_grbm(min_std=0.1, max_std=2.0)
    with torch.no_grad():
        m.log_var_logit.copy_(torch.tensor([-1e4, 0.0, 1e4]))
    sigma = torch.exp(0.5 * m.log_var)
    assert bool((sigma >= 0.1 - 1e-12).all()) and bool((sigma <= 2.0 + 1e-12).all())
    assert torch.isfinite(m.free_energy(torch.randn(4, 3, dtype=torch.float64))).all()


@pytest.mark.parametrize(
    "bad",
    [
        {"min_std": 0.0},
        {"min_std": -1.0},
        {"max_std": 0.01},
        {"max_std": float("inf")},
        {"init_sigma": 10.0},
        {"n_hidden": 0},
        {"std_lr_scale": -1.0},
    ],
)
def test_bad_settings_are_rejected_at_construction(bad):
    with pytest.raises(ConfigError):
        GRBM(GRBMConfig(n_visible=3, **bad))


def test_rejects_non_finite_input():
    m = make_grbm()
    with pytest.raises(InputError):
        m.loss(torch.tensor([[0.0, float("nan"), 1.0]], dtype=torch.float64))


def _patches_run(n_hidden: int, epochs: int, overrides=()):
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig

    cfg = RunConfig.default("grbm").with_overrides(
        ["data.name=image-patches", "data.unit_variance=true", "data.n_train=4000",
         "data.n_eval=1000", f"model.n_hidden={n_hidden}", f"train.epochs={epochs}",
         "train.progress=false", "train.grid_samples=0", *overrides]
    )
    bundle = load_data(cfg.data)
    return dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features)), bundle


def test_training_on_unit_variance_patches_improvesexact_nll(tmp_path):
    """Default learning rate, unit-variance natural-image patches: no NaN, variances in their
    bounds, and the exact held-out NLL (16 hiddens, enumerated) goes down."""
    from genzoo.training import Trainer

    cfg, bundle = _patches_run(16, 4)
    assert cfg.train.lr == 0.01
    torch.manual_seed(0)
    m = GRBM(cfg.model)
    m.init_from_data(bundle.train.x)
    before = exact_nll(m, bundle.valid.x)
    Trainer(m, cfg, bundle, tmp_path / "run").fit()
    assert all(torch.isfinite(p).all() for p in m.parameters())
    sigma = torch.exp(0.5 * m.log_var)
    assert bool((sigma >= cfg.model.min_std).all()) and bool((sigma <= cfg.model.max_std).all())
    after = exact_nll(m, bundle.valid.x)
    assert after < before - 0.2


def test_default_settings_do_not_blow_up_on_raw_grey_levels(tmp_path):
    """Digits grey levels in [0, 1], not standardised, some pixels nearly constant: the CD
    gradients scale as v / sigma^2, which once sent this model to 1e11 reconstruction errors at
    the default learning rate. Trained 20 epochs, the mean-field reconstruction must stay better
    than predicting the pixel means."""
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer

    cfg = RunConfig.default("grbm").with_overrides(
        ["data.name=digits", "data.binarize=none", "model.n_hidden=64", "train.epochs=20",
         "train.progress=false", "train.grid_samples=0"]
    )
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)
    m = GRBM(cfg.model)
    Trainer(m, cfg, bundle, tmp_path / "run").fit()
    x = bundle.valid.x
    recon = m.validation_metrics(x)["recon_error"]
    baseline = float(((x - bundle.train.x.mean(0)) ** 2).mean())
    assert math.isfinite(recon) and recon < baseline
