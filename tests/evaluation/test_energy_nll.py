"""energy_nll and evaluate: exact and AIS paths, report keys, dispatch, input errors."""

from __future__ import annotations

import math

import pytest
import torch
from support import fake_bundle, random_rbm

from genzoo.core.errors import GenzooError, InputError
from genzoo.evaluation import energy_nll, evaluate, exact_log_partition
from genzoo.evaluation.config import EvalConfig

KEYS = {
    "nll_nats", "stderr", "stderr_log_z", "stderr_examples", "estimator", "log_z", "n_examples",
    "dtype", "wall_s",
}
# The AIS figures: absent when log Z is exact (a figure that does not apply is not reported).
AIS_KEYS = {"log_z_reverse", "nll_nats_reverse", "ais_ess", "n_samples", "n_betas"}


def make_rbm(d=10, h=6, scale=1.0, seed=0, **kw):
    return random_rbm(d, h, scale, seed, **kw)


def data(n, d=10, seed=1):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


bundle = fake_bundle


def test_exact_path_is_free_energy_plus_log_z():
    m = make_rbm()
    x = data(300)
    r = energy_nll(m, x, data(100, seed=2), EvalConfig(dtype="float64"))
    assert KEYS <= set(r)
    log_z = exact_log_partition(m).value
    with torch.no_grad():
        nll = m.double().free_energy(x.double()) + log_z
    assert r["estimator"] == "exact enumeration" and r["log_z"] == pytest.approx(log_z, abs=1e-12)
    assert r["nll_nats"] == pytest.approx(float(nll.mean()), abs=1e-10)
    se = float(nll.std()) / math.sqrt(len(x))
    assert r["stderr_examples"] == pytest.approx(se) and r["stderr"] == pytest.approx(se)
    assert r["stderr_log_z"] == 0.0 and r["n_examples"] == 300 and r["dtype"] == "float64"
    assert not AIS_KEYS & set(r)
    assert r.log_z_reverse is None and r.nll_reverse is None and r.nll.n_samples is None
    # nats per example of a 10-pixel binary vector: between 0 and 10 log 2 for a sane model
    assert 0 < r["nll_nats"] < 10 * math.log(2) + 5


def test_ais_path_agrees_with_exact_and_brackets():
    m = make_rbm(seed=3)
    x, x_train = data(300), data(500, seed=2)
    exact = energy_nll(m, x, x_train, EvalConfig())
    cfg = EvalConfig(exact_max_units=0, ais_runs=200, ais_betas=1000, reverse_burn_in=200)
    r = energy_nll(m, x, x_train, cfg)
    assert r["estimator"] == "AIS (forward)" and r["n_samples"] == 200 and r["n_betas"] == 1000
    # 4 standard errors of log Z plus its O(se^2) bias (see tests/evaluation/test_ais.py)
    tol = 4 * r["stderr_log_z"] + r["stderr_log_z"] ** 2
    assert abs(r["log_z"] - exact["log_z"]) <= tol
    tol_rev = 4 * r["stderr_log_z_reverse"] + r["stderr_log_z_reverse"] ** 2
    assert abs(r["log_z_reverse"] - exact["log_z"]) <= tol_rev
    assert r["nll_nats"] - r["log_z"] == pytest.approx(exact["nll_nats"] - exact["log_z"], abs=1e-9)
    assert r["nll_nats_reverse"] - r["nll_nats"] == pytest.approx(r["log_z_reverse"] - r["log_z"])
    assert r["stderr"] == pytest.approx(math.hypot(r["stderr_log_z"], r["stderr_examples"]))
    assert 1 <= r["ais_ess"] <= 200
    assert "warnings" not in r  # forward and reverse agree


def test_forward_and_reverse_disagreeing_is_flagged():
    """Too few temperatures: forward AIS falls far short of the exact log Z with a standard
    error that hides it, so its NLL is flattering; the report must say so. With enough
    temperatures the two agree and nothing is flagged."""
    m = make_rbm(d=20, h=12, scale=3.0, seed=0)
    x = data(300, d=20)
    exact = energy_nll(m, x, x, EvalConfig())
    few = energy_nll(m, x, x, EvalConfig(exact_max_units=0, ais_runs=50, ais_betas=10,
                                          reverse_burn_in=0))
    assert few["log_z"] < exact["log_z"] - 5 * few["stderr_log_z"]  # the silent failure
    (warning,) = few["warnings"]
    assert "AIS is unreliable" in warning and f"{few['log_z']:.2f}" in warning
    assert "eval.ais_betas" in warning
    enough = energy_nll(m, x, x, EvalConfig(exact_max_units=0, ais_runs=50, ais_betas=1000,
                                             reverse_burn_in=100))
    assert "warnings" not in enough
    assert abs(enough["log_z"] - exact["log_z"]) < 4 * enough["stderr_log_z"] + 0.05


def test_disagreement_threshold():
    from genzoo.evaluation._common import ais_disagreement
    from genzoo.evaluation.stats import Estimate

    def report(forward, reverse, se_f=0.1, se_r=0.1):
        return (Estimate(forward, se_f, 10, "AIS (forward)"),
                Estimate(reverse, se_r, 10, "AIS (reverse)"))

    assert ais_disagreement(*report(100.0, 100.9)) is None  # within 1 nat
    assert ais_disagreement(*report(100.0, 101.2)) is not None  # 8.5 combined sigmas, > 1 nat
    assert ais_disagreement(*report(100.0, 104.0, 1.0, 1.0)) is None  # 2.8 sigmas
    assert ais_disagreement(*report(100.0, 95.0, 1.0, 1.0)) is not None  # either direction


def test_reverse_from_persistent_chains_and_model_untouched():
    m = make_rbm(seed=4, persistent=True, n_chains=30)
    x_train = data(200, seed=2)
    m.init_from_data(x_train)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    cfg = EvalConfig(exact_max_units=0, ais_runs=50, ais_betas=200, reverse_burn_in=10)
    r = energy_nll(m, data(50), x_train, cfg)
    assert r["log_z_reverse"] is not None and math.isfinite(r["log_z_reverse"])
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    assert m.W.dtype == torch.float32
    r2 = energy_nll(m, data(50), x_train, cfg)  # the default generator is seeded: reproducible
    assert r2["log_z"] == r["log_z"] and r2["log_z_reverse"] == r["log_z_reverse"]


def test_float32_and_no_reverse():
    m = make_rbm(seed=5)
    cfg = EvalConfig(exact_max_units=0, ais_runs=20, ais_betas=100, reverse=False, dtype="float32")
    r = energy_nll(m, data(40), data(100, seed=2), cfg)
    assert r["dtype"] == "float32" and "log_z_reverse" not in r and "nll_nats_reverse" not in r
    assert r.log_z_reverse is None and r.nll_reverse is None


def test_evaluate_dispatches_on_capabilities():
    m = make_rbm(seed=6)
    b = bundle(data(100, seed=2), data(30, seed=3), data(40, seed=4))
    r = evaluate(m, b, EvalConfig(split="valid"))
    assert r["split"] == "valid" and r["n_examples"] == 30
    direct = energy_nll(m, b.valid.x, b.train.x, EvalConfig())
    assert r["nll_nats"] == pytest.approx(direct["nll_nats"])

    class NoEstimator(torch.nn.Module):
        capabilities = frozenset()

    with pytest.raises(GenzooError, match="has no likelihood estimator") as err:
        evaluate(NoEstimator(), b, EvalConfig())
    assert "energy -> F(x) + log Z" in str(err.value)  # what would give it an estimator

    class EnergyWithoutLogZ(torch.nn.Module):
        capabilities = frozenset({"energy"})

    with pytest.raises(GenzooError, match="ais or exact_log_partition"):
        evaluate(EnergyWithoutLogZ(), b, EvalConfig())


def test_input_errors():
    m = make_rbm()
    good = data(10)
    with pytest.raises(InputError):
        energy_nll(m, torch.full((3, 10), 0.5), good, EvalConfig())
    with pytest.raises(InputError):
        energy_nll(m, good[:, :9], good, EvalConfig())
    with pytest.raises(InputError):
        energy_nll(m, good, torch.full((3, 10), float("nan")), EvalConfig())
