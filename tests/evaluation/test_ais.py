"""Annealed importance sampling against exact log partition functions on tiny RBMs, on the
device under test (its own random stream there: the checks are statistical)."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from support import gen, random_rbm

from genzoo.core.errors import GenzooError
from genzoo.evaluation import (
    ais_log_partition,
    exact_log_partition,
    linear_schedule,
    reverse_ais_log_partition,
    sm08_schedule,
)
from genzoo.models.boltzmann.rbm import RBM


def make_rbm(d=12, h=8, scale=1.0, seed=0, device="cpu"):
    return random_rbm(d, h, scale, seed, device=device)


def data(n=200, d=12, seed=1, device="cpu"):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.3).float().to(device)


def within(est, exact: float) -> bool:
    """|estimate - exact| <= 4 se + se^2: four standard errors (two-sided false-alarm rate
    6e-5 under the normal approximation) plus the O(se^2) downward bias of log mean w."""
    return abs(est.value - exact) <= 4 * est.stderr + est.stderr**2


# -- schedules ------------------------------------------------------------------------------


def test_sm08_schedule_default():
    b = sm08_schedule()
    assert len(b) == 14500 and b.dtype == torch.float64
    assert float(b[0]) == 0.0 and float(b[-1]) == 1.0
    assert bool((b[1:] > b[:-1]).all())
    assert int((b < 0.5).sum()) == 500
    assert int(((b >= 0.5) & (b < 0.9)).sum()) == 4000
    assert int((b >= 0.9).sum()) == 10000


@pytest.mark.parametrize("n", [2, 3, 10, 145, 1000, 29000])
def test_sm08_schedule_scaled(n):
    b = sm08_schedule(n)
    assert len(b) == n and float(b[0]) == 0.0 and float(b[-1]) == 1.0
    assert bool((b[1:] > b[:-1]).all())
    if n >= 145:  # proportions kept (within rounding)
        assert abs(int((b >= 0.9).sum()) - n * 10000 / 14500) <= 1


def test_linear_schedule_and_bad_schedules():
    assert torch.equal(linear_schedule(3), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    for bad in (lambda: linear_schedule(1), lambda: sm08_schedule(1)):
        with pytest.raises(GenzooError):
            bad()
    m = make_rbm()
    base = m.ais_base(data())
    for betas in ([0.1, 1.0], [0.0, 0.9], [0.0, 0.6, 0.4, 1.0], [1.0]):
        with pytest.raises(GenzooError, match="temperatures"):
            ais_log_partition(m, base, betas, 10)
    with pytest.raises(GenzooError, match="n_runs"):
        ais_log_partition(m, base, [0.0, 1.0], 1)


# -- accuracy -----------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", [lambda: linear_schedule(500), lambda: sm08_schedule(1000)])
def test_forward_ais_matches_exact(schedule, device):
    m = make_rbm(scale=1.0, seed=2, device=device)
    exact = exact_log_partition(m).value
    g = gen(device, 0)
    est = ais_log_partition(m, m.ais_base(data(device=device)), schedule(), 400, g)
    assert within(est, exact), (est.value, est.stderr, exact)
    assert est.stderr < 0.05  # the check above is not vacuous
    d = est.diagnostics
    assert d["direction"] == "forward" and len(d["log_w"]) == 400 and 1 <= d["ess"] <= 400
    assert est.n_samples == 400 and est.estimator == "AIS (forward)"


def test_reverse_ais_from_exact_samples_matches_exact(device):
    m = make_rbm(scale=1.0, seed=2, device=device)
    exact = exact_log_partition(m).value
    g = gen(device, 1)
    v = m.sample_exact(400, g)
    est = reverse_ais_log_partition(m, m.ais_base(data(device=device)), linear_schedule(500),
                                    v, g)
    assert within(est, exact), (est.value, est.stderr, exact)
    assert est.diagnostics["direction"] == "reverse" and est.estimator == "AIS (reverse)"


def test_forward_and_reverse_bracket_the_truth_on_average(device):
    """With a crude 4-temperature schedule the estimators are visibly biased, forward low and
    reverse high (Jensen). Over 40 repetitions the mean of each must lie on its side of the
    exact value up to 3 standard errors of that mean (one-sided false alarm 1e-3), and the
    two means must be separated."""
    m = make_rbm(scale=1.5, seed=3, device=device)
    exact = exact_log_partition(m).value
    base = m.ais_base(data(seed=4, device=device))
    betas = linear_schedule(4)
    g = gen(device, 2)
    fwd, rev = [], []
    for _ in range(40):
        fwd.append(ais_log_partition(m, base, betas, 10, g).value)
        rev.append(reverse_ais_log_partition(m, base, betas, m.sample_exact(10, g), g).value)
    sem = lambda xs: statistics.stdev(xs) / math.sqrt(len(xs))
    assert statistics.mean(fwd) <= exact + 3 * sem(fwd)
    assert statistics.mean(rev) >= exact - 3 * sem(rev)
    assert statistics.mean(rev) - statistics.mean(fwd) > 3 * math.hypot(sem(fwd), sem(rev))


class _NoFusedStep(RBM):
    """annealed_step written from the two contract methods it fuses, unshared."""

    def annealed_step(self, s, beta_prev, beta, base, generator=None, transition=True):
        inc = self.annealed_free_energy(s, beta_prev, base) - self.annealed_free_energy(
            s, beta, base
        )
        return inc, (self.annealed_gibbs_step(s, beta, base, generator) if transition else s)


def test_fused_and_generic_paths_agree(device):
    m = make_rbm(seed=5, device=device)
    plain = _NoFusedStep(m.config).to(device)
    plain.load_state_dict(m.state_dict())
    base = m.ais_base(data(device=device))
    betas = linear_schedule(50)
    a = ais_log_partition(m, base, betas, 20, gen(device, 3))
    b = ais_log_partition(plain, base, betas, 20, gen(device, 3))
    assert a.diagnostics["log_w"] == pytest.approx(b.diagnostics["log_w"], abs=1e-9)


def test_model_untouched_and_batches(device):
    m = make_rbm(seed=6, device=device)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    base = m.ais_base(data(device=device))
    exact = exact_log_partition(m).value
    g = gen(device, 0)
    est = ais_log_partition(m, base, linear_schedule(300), 60, g, batch_size=25)
    assert len(est.diagnostics["log_w"]) == 60 and within(est, exact)
    assert m.W.dtype == torch.float32 and base.W.dtype == torch.float32
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())


def test_requires_ais_capability():
    class NotAnEnergyModel(torch.nn.Module):
        capabilities = frozenset()

    with pytest.raises(GenzooError, match="AIS"):
        ais_log_partition(NotAnEnergyModel(), make_rbm().ais_base(data()), [0.0, 1.0], 4)
