"""Mixed-precision evaluation (eval.dtype=mixed): the model runs in float32, log-weights and
their sums in float64. On small trained models the mixed estimates agree with exact enumeration
and with float64 throughout, within their combined standard errors."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits
from support import cd_trained_rbm

from genzoo.evaluation import (
    EvalConfig,
    ais_log_partition,
    exact_log_partition,
    importance_nll,
    reverse_ais_log_partition,
    sm08_schedule,
)
from genzoo.evaluation.energy import energy_nll
from genzoo.models.boltzmann._ops import softplus, softplus_increment
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.rbm import RBM
from genzoo.models.directed.vae import VAE, VAEConfig


def _digits() -> torch.Tensor:
    """The 1797 8x8 digits of scikit-learn, binarized at half intensity (1797, 64)."""
    return torch.from_numpy(load_digits().data > 8).float()


def _agree(a, b, sigmas: float = 3.0) -> bool:
    return abs(a.value - b.value) <= sigmas * math.hypot(a.stderr, b.stderr)


@pytest.fixture(autouse=True)
def one_thread():
    """Small products: a second OpenMP thread buys nothing and stalls on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def rbm() -> tuple[RBM, torch.Tensor]:
    """A 64-12 RBM after 5 epochs of CD-1 on the digits: far from its base rate."""
    x = _digits()
    m, _ = cd_trained_rbm(x, 12, lr=0.1, epochs=5, batch_size=50)
    assert float(m.W.detach().abs().max()) > 0.5
    return m, x


def test_softplus_increment_is_the_difference_without_cancellation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 300, generator=g, dtype=torch.float64) * 8
    d = torch.randn(50, 300, generator=g, dtype=torch.float64) * 1e-3
    ref = (softplus(x + d) - softplus(x)).sum(-1)
    got = softplus_increment(x.float(), d.float())
    assert got.dtype == torch.float64
    # float32 inputs carry a relative error of 6e-8 each; the plain float32 difference of
    # values of order 8 loses about 1e-6 per unit to cancellation, this keeps ~1e-7 of d
    assert torch.allclose(got, ref, rtol=0, atol=2e-8 * float(ref.abs().max()) + 1e-7)
    plain = (softplus(x.float() + d.float()) - softplus(x.float())).sum(-1).double()
    assert (got - ref).abs().max() < (plain - ref).abs().max()
    # a large negative step where sigmoid(x) rounds to 1: log1p(sigmoid(x) expm1(d)) would be
    # the log of 1 - (1 - tiny), -inf in float32; the form from min(x, x + d) keeps ~1e-7
    x, d = torch.tensor([[17.0, 12.0, -3.0]]), torch.tensor([[-19.0, -15.0, 18.0]])
    ref = (softplus(x.double() + d.double()) - softplus(x.double())).sum(-1)
    assert torch.allclose(softplus_increment(x, d), ref, rtol=0, atol=1e-5)
    big = torch.full((2, 3), 30.0)  # |d| >= 20 falls back to the float64 difference
    assert torch.allclose(softplus_increment(big, big), (softplus(2 * big.double())
                          - softplus(big.double())).sum(-1))


def test_mixed_ais_brackets_exact_log_z_and_agrees_with_float64(rbm):
    m, x = rbm
    exact = exact_log_partition(m).value
    base, betas = m.ais_base(x), sm08_schedule(1000)
    est = {}
    for dt in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(1)
        est[dt] = (
            ais_log_partition(m, base, betas, 100, g, dt),
            reverse_ais_log_partition(m, base, betas, m.sample_exact(100, g), g, dt),
        )
    for fwd, rev in est.values():
        assert abs(fwd.value - exact) < 0.1 and abs(rev.value - exact) < 0.1
    for mixed, wide in zip(est[torch.float32], est[torch.float64], strict=True):
        assert _agree(mixed, wide)


def test_eval_dtype_mixed_is_the_default_and_agrees_with_float64(rbm):
    m, x = rbm
    assert EvalConfig().dtype == "mixed"
    cfg = {"exact_max_units": 0, "ais_runs": 50, "ais_betas": 1000, "reverse_burn_in": 100}
    mixed = energy_nll(m, x[:300], x, EvalConfig(**cfg))
    wide = energy_nll(m, x[:300], x, EvalConfig(**cfg, dtype="float64"))
    assert mixed.dtype == "mixed" and wide.dtype == "float64"
    assert m.W.dtype == torch.float32  # the caller's model is untouched
    assert _agree(mixed.log_z, wide.log_z) and _agree(mixed.log_z_reverse, wide.log_z_reverse)
    exact = energy_nll(m, x[:300], x, EvalConfig())  # 12 hidden: exact, in float64
    assert exact.log_z.value == pytest.approx(exact_log_partition(m).value, abs=1e-12)


def test_mixed_dbm_ais_agrees_with_float64_and_exact():
    g = torch.Generator().manual_seed(0)
    x = _digits()
    m = DBM(DBMConfig(n_visible=64, hidden=(10, 8), init_std=0.5, n_chains=50), generator=g)
    m.init_from_data(x, g)
    exact = exact_log_partition(m).value
    base, betas = m.ais_base(x), sm08_schedule(1000)
    runs = {}
    for dt in (torch.float32, torch.float64):
        runs[dt] = ais_log_partition(m, base, betas, 100, torch.Generator().manual_seed(1), dt)
    assert _agree(runs[torch.float32], runs[torch.float64])
    assert abs(runs[torch.float32].value - exact) < 0.1


def test_mixed_importance_sampling_agrees_with_float64():
    x, g = _digits(), torch.Generator().manual_seed(0)
    m = VAE(VAEConfig(n_visible=64, hidden=(32,), n_latent=8, init_std=0.1), generator=g)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(3):
        for idx in torch.randperm(len(x), generator=g).split(50):
            opt.zero_grad()
            m.loss(x[idx])["loss"].backward()
            opt.step()
    cfg = {"is_samples": 500, "batch_size": 100}
    mixed = importance_nll(m, x[:200], EvalConfig(**cfg))
    wide = importance_nll(m, x[:200], EvalConfig(**cfg, dtype="float64"))
    assert mixed["dtype"] == "mixed" and wide["dtype"] == "float64"
    # the same examples: the estimates differ by their Monte Carlo errors only
    se = math.hypot(mixed.nll.diagnostics["stderr_mc"], wide.nll.diagnostics["stderr_mc"])
    assert abs(mixed["nll_nats"] - wide["nll_nats"]) <= 3 * se
