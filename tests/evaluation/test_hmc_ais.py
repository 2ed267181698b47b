"""AIS with HMC transitions (genzoo.evaluation.hmc_ais) against log Z by quadrature on a grid
for two-dimensional instances of the three continuous energy models, forward and reverse; and
``evaluate`` choosing it for them by their capability."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.protocols import CONTINUOUS_ENERGY
from genzoo.core.registry import get_model_spec
from genzoo.evaluation import EvalConfig, estimator_for, evaluate, hmc_energy_nll
from genzoo.evaluation.ais import ais_log_partition, linear_schedule, reverse_ais_log_partition
from genzoo.evaluation.hmc_ais import GaussianBase, HMCAnnealingPath
from genzoo.testing import build_tiny

NAMES = ["factored-rbm", "mcrbm", "mpot"]


def two_dimensional(name: str, seed: int = 0):
    spec = get_model_spec(name)
    extra = {} if name == "factored-rbm" else {"n_mean": 2}
    m = spec.build(spec.config_cls(n_visible=2, n_factors=3, n_hidden=3, **extra)).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # far from the initial values: a skewed, correlated density
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


def quadrature_log_z(m, half_width: float = 12.0, h: float = 0.01) -> float:
    g = torch.arange(-half_width, half_width, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        f = torch.cat([m.free_energy(grid[i : i + 250000]) for i in range(0, len(grid), 250000)])
    return float(torch.logsumexp(-f, 0)) + 2 * math.log(h)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_reverse_ais_bracket_the_quadrature_log_z_within_a_tenth_of_a_nat(name):
    m = two_dimensional(name)
    exact = quadrature_log_z(m)
    path = HMCAnnealingPath(m)
    base = path.ais_base(m.sample(400, torch.Generator().manual_seed(1)))
    betas = linear_schedule(200)
    g = torch.Generator().manual_seed(2)
    fwd = ais_log_partition(path, base, betas, 100, g)
    start, rate = path.model_samples(base, 100, 100, g)
    rev = reverse_ais_log_partition(path, base, betas, start, g)
    assert abs(fwd.value - exact) < 0.1 and abs(rev.value - exact) < 0.1, (fwd, rev, exact)
    # Forward is a lower bound in expectation, reverse an upper one: within their noise.
    assert fwd.value - 4 * fwd.stderr <= exact + 0.01
    assert rev.value + 4 * rev.stderr >= exact - 0.01
    assert 0.3 < rate <= 1.0


def test_the_gaussian_base_is_normalised_and_samples_its_own_moments():
    x = torch.randn(5000, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.5]],
                         dtype=torch.float64) + 2.0
    base = GaussianBase.fit(x)
    h = 0.1
    g = torch.arange(-6, 10, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    log_z = float(torch.logsumexp(-base.free_energy(grid), 0)) + 3 * math.log(h)
    assert abs(log_z - float(base.log_partition())) < 1e-3
    s = base.sample(20000, torch.Generator().manual_seed(4))
    assert torch.allclose(torch.cov(s.T), torch.cov(x.T), atol=0.05)


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_gives_the_continuous_models_an_hmc_ais_likelihood(name):
    _, bundle, model = build_tiny(name, overrides=["data.n_eval=30"])
    assert CONTINUOUS_ENERGY in model.capabilities
    assert "HMC" in estimator_for(model).what
    cfg = EvalConfig(ais_runs=4, ais_betas=30, reverse_burn_in=5, batch_size=100)
    report = evaluate(model.eval(), bundle, cfg, torch.Generator().manual_seed(0))
    assert report.estimator.startswith("AIS with HMC")
    assert math.isfinite(report.nll.value) and report.nll_reverse is not None
    assert report.log_z.n_samples == 4 and math.isfinite(report.log_z_reverse.value)


def test_a_model_without_the_capability_is_refused():
    _, bundle, model = build_tiny("rbm")
    with pytest.raises(Exception, match="continuous_energy"):
        hmc_energy_nll(model, bundle.test.x, bundle.train.x, EvalConfig())
