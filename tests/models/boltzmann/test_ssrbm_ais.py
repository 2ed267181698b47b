"""AIS of the spike-and-slab RBM's log Z: the annealing path's ends, the base's closed-form log Z,
the tempered Gibbs sweep against exact moments, forward and reverse AIS against exact enumeration
(random strongly coupled models and one CD-trained on digits), and the evaluator and CLI choosing
AIS when the spikes are too many to enumerate."""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, has
from genzoo.evaluation import (
    EvalConfig,
    ais_log_partition,
    energy_nll,
    exact_log_partition,
    reverse_ais_log_partition,
    sm08_schedule,
)
from genzoo.models.boltzmann.ssrbm import SSRBM, SSRBMConfig


def make_coupled_ssrbm(d=8, h=10, seed=0, b_mean=2.0) -> SSRBM:
    """An ssRBM whose min(D, H) singular values of Lambda^{-1/2} W alpha^{-1/2} lie in [0.8, 0.94] and
    whose spikes are mostly on: log Z exceeds the base's by several nats."""
    g = torch.Generator().manual_seed(seed)
    m = SSRBM(SSRBMConfig(n_visible=d, n_hidden=h), generator=g).double()
    with torch.no_grad():
        m.b.copy_(torch.randn(h, generator=g, dtype=torch.float64) + b_mean)
        noise = 0.3 * torch.randn(h + d, generator=g, dtype=torch.float64)
        m._set_log_precision(m.log_alpha_logit, noise[:h])
        m._set_log_precision(m.log_lambda_logit, noise[h:])
        r = min(d, h)
        right, _ = torch.linalg.qr(torch.randn(h, r, generator=g, dtype=torch.float64))
        left, _ = torch.linalg.qr(torch.randn(d, r, generator=g, dtype=torch.float64))
        core = left @ torch.diag(torch.linspace(0.8, 0.94, r, dtype=torch.float64)) @ right.T
        m.W.copy_(m.lam.sqrt()[:, None] * core * m.alpha.sqrt()[None, :])
    return m


def all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


@torch.no_grad()
def exact_samples(m: SSRBM, n: int, g: torch.Generator) -> torch.Tensor:
    """Exact draws from p(v): h from the enumerated p(h), then v | h ~ N(0, P(h)^{-1}) with
    P(h) = Lambda - W diag(h / alpha) W^T (no linear term in v, so the mean is 0)."""
    hs = all_states(m.n_hidden)
    h = hs[torch.multinomial(torch.softmax(-m.hidden_free_energy(hs), 0), n, True, generator=g)]
    W = m.weight()
    P = torch.diag_embed(m.lam.expand(n, -1)) - (W[None] * (h / m.alpha)[:, None, :]) @ W.T
    z = torch.randn(n, m.n_visible, 1, generator=g, dtype=torch.float64)
    L = torch.linalg.cholesky(P)
    return torch.linalg.solve_triangular(L.transpose(-1, -2), z, upper=True)[..., 0]


@pytest.fixture(scope="module")
def digits_ssrbm() -> tuple[SSRBM, torch.Tensor]:
    """An ssRBM with 10 spikes, CD-1 trained for 300 steps on standardized sklearn digits."""
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().data).double()
    x = (x - x.mean(0)) / x.std(0).clamp_min(0.5)
    g = torch.Generator().manual_seed(0)
    m = SSRBM(SSRBMConfig(n_visible=64, n_hidden=10, init_std=0.1, init_b=-1.0), generator=g)
    m = m.double()
    m.init_from_data(x)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    for _ in range(300):
        out = m.loss(x[torch.randint(0, len(x), (50,), generator=g)], g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return m, x


def test_has_the_ais_capability():
    m = make_coupled_ssrbm()
    assert has(m, AIS)
    for name in ("ais_base", "log_partition", "annealed_free_energy", "annealed_gibbs_step"):
        assert callable(getattr(m, name)), name


@torch.no_grad()
def test_path_ends_at_base_and_model_and_base_log_z_is_exact():
    m = make_coupled_ssrbm(d=5, h=6, seed=1)
    v = torch.randn(9, 5, dtype=torch.float64)
    base = m.ais_base(v)
    assert not base.W.any() and torch.equal(base.b, m.b)
    torch.testing.assert_close(m.annealed_free_energy(v, 0.0, base), base.free_energy(v))
    torch.testing.assert_close(m.annealed_free_energy(v, 1.0, base), m.free_energy(v))
    assert float(base.log_partition()) == pytest.approx(exact_log_partition(base).value, abs=1e-9)
    # base samples are exact: v ~ N(0, Lambda^{-1}) with no burn-in
    assert base.config.sample_burn_in == 0 and not base.config.persistent
    # the fused step: the same increment and the same draws as the separate calls
    inc, v1 = m.annealed_step(v, 0.3, 0.4, base, torch.Generator().manual_seed(5))
    ref = m.annealed_free_energy(v, 0.3, base) - m.annealed_free_energy(v, 0.4, base)
    torch.testing.assert_close(inc, ref)
    v2 = m.annealed_gibbs_step(v, 0.4, base, torch.Generator().manual_seed(5))
    torch.testing.assert_close(v1, v2)
    with pytest.raises(GenzooError):
        m.log_partition()  # closed form only for W = 0


@torch.no_grad()
def test_a_base_with_other_parameters_is_rejected():
    m = make_coupled_ssrbm(d=4, h=3)
    base = m.ais_base(torch.randn(5, 4, dtype=torch.float64))
    base.b.add_(0.5)
    v = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(GenzooError, match="ais_base"):
        m.annealed_free_energy(v, 0.5, base)
    with pytest.raises(GenzooError, match="ais_base"):
        m.annealed_step(v, 0.0, 0.1, base)


@torch.no_grad()
def test_intermediate_distribution_is_the_ssrbm_with_scaled_weights():
    """p_beta is the ssRBM with weights beta W: its free energy matches, and long chains of the
    annealed sweep reach that model's exact second moments sum_h p_beta(h) P_beta(h)^{-1}."""
    m = make_coupled_ssrbm(d=3, h=4, seed=2)
    beta = 0.7
    m_beta = copy.deepcopy(m)
    m_beta.W.copy_(beta * m.weight())
    g = torch.Generator().manual_seed(0)
    v = torch.randn(11, 3, generator=g, dtype=torch.float64)
    base = m.ais_base(v)
    torch.testing.assert_close(m.annealed_free_energy(v, beta, base), m_beta.free_energy(v))
    hs = all_states(4)
    p_h = torch.softmax(-m_beta.hidden_free_energy(hs), 0)
    W = m_beta.weight()
    P = torch.diag_embed(m.lam.expand(16, -1)) - (W[None] * (hs / m.alpha)[:, None, :]) @ W.T
    second = (p_h[:, None, None] * torch.linalg.inv(P)).sum(0)
    chains = base.sample(20000, g)
    for _ in range(40):
        chains = m.annealed_gibbs_step(chains, beta, base, g)
    empirical = chains.T @ chains / len(chains)
    torch.testing.assert_close(empirical, second, atol=0.05 * float(second.diag().max()), rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_and_reverse_ais_agree_with_enumeration(seed):
    m = make_coupled_ssrbm(d=8, h=10, seed=seed)
    base = m.ais_base(torch.randn(20, 8, dtype=torch.float64))
    exact = exact_log_partition(m).value
    assert exact - float(base.log_partition()) > 3.0  # a real distance to anneal across
    betas = sm08_schedule(1000)
    g = torch.Generator().manual_seed(1)
    fwd = ais_log_partition(m, base, betas, 100, g)
    assert abs(fwd.value - exact) < 0.1 and fwd.stderr < 0.05
    rev = reverse_ais_log_partition(m, base, betas, exact_samples(m, 100, g), g)
    assert abs(rev.value - exact) < max(0.1, 4 * rev.stderr)
    assert fwd.value - 4 * fwd.stderr < rev.value + 4 * rev.stderr  # bracket, within error


def test_forward_ais_on_a_model_trained_on_digits(digits_ssrbm):
    m, x = digits_ssrbm
    assert m.check_feasible() > 0.5  # training coupled the layers
    base = m.ais_base(x)
    exact = exact_log_partition(m).value
    assert exact - float(base.log_partition()) > 1.0
    fwd = ais_log_partition(m, base, sm08_schedule(1000), 100, torch.Generator().manual_seed(2))
    assert abs(fwd.value - exact) < 0.1


def test_energy_nll_with_ais_matches_the_exact_nll(digits_ssrbm):
    m, x = digits_ssrbm
    x_test = x[:300]
    exact = energy_nll(m, x_test, x, EvalConfig())
    cfg = EvalConfig(exact_max_units=0, ais_runs=50, ais_betas=1000, reverse_burn_in=50)
    ais = energy_nll(m, x_test, x, cfg)
    assert exact["estimator"] == "exact enumeration" and ais["estimator"] == "AIS (forward)"
    assert ais["nll_nats"] == pytest.approx(exact["nll_nats"], abs=0.1)
    assert ais["nll_nats_reverse"] == pytest.approx(exact["nll_nats"], abs=0.2)


def test_energy_nll_uses_ais_above_twenty_spikes():
    m = make_coupled_ssrbm(d=6, h=24, seed=3, b_mean=0.0)
    x = exact_samples(make_coupled_ssrbm(d=6, h=8, seed=4), 200, torch.Generator().manual_seed(0))
    cfg = EvalConfig(ais_runs=20, ais_betas=300, reverse_burn_in=20)
    report = energy_nll(m, x[:100], x[100:], cfg)
    assert report["estimator"] == "AIS (forward)" and report["n_samples"] == 20
    assert math.isfinite(report["nll_nats"]) and report["stderr"] > 0
    assert math.isfinite(report["log_z"]) and report["stderr_log_z"] > 0
    assert math.isfinite(report["nll_nats_reverse"])


def test_cli_trains_and_evaluates_an_ssrbm_with_24_spikes_by_ais(tmp_path, capsys):
    from genzoo.cli import main

    run = tmp_path / "ssrbm"
    train = ["train", "ssrbm", "--data", "digits", "--set", "data.binarize=none",
             "--set", "model.n_hidden=24", "--set", "train.epochs=1",
             "--set", "train.batch_size=100", "--set", "train.progress=false",
             "--set", "train.grid_samples=16", "--set", "model.sample_burn_in=10",
             "--out", str(run)]
    assert main(train) == 0
    capsys.readouterr()
    evaluate = ["evaluate", str(run), "--split", "test", "--json",
                "--set", "eval.ais_runs=16", "--set", "eval.ais_betas=300",
                "--set", "eval.reverse_burn_in=10"]
    assert main(evaluate) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["estimator"] == "AIS (forward)" and report["split"] == "test"
    assert report["n_samples"] == 16 and report["n_betas"] == 300
    assert math.isfinite(report["nll_nats"]) and report["stderr"] > 0
    assert report["log_z_reverse"] is not None
