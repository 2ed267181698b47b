"""The variational NLL bound (mean field + log Z) of deep Boltzmann machines: exact and AIS
log Z, the report's shape, and the dispatch in evaluate()."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.data.datasets import Split
from genzoo.evaluation import EvalConfig, evaluate
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.variational import variational_nll
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.ops.enumeration import binary_states


def _dbm(seed: int = 0) -> DBM:
    g = torch.Generator().manual_seed(seed)
    m = DBM(DBMConfig(n_visible=10, hidden=(8, 6), init_std=0.8, n_chains=100), generator=g)
    with torch.no_grad():
        for b in m.b:
            b.normal_(0.0, 0.5, generator=g)
    return m


def _data(n: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 10), 0.4), generator=torch.Generator().manual_seed(seed))


def test_exact_bound_is_mean_field_plus_log_z_and_above_the_exact_nll():
    m, x = _dbm(), _data(40, 1)
    report = variational_nll(m, x, _data(100, 2), EvalConfig(dtype="float64"))
    md = m.double()
    log_z = exact_log_partition(md).value
    with torch.no_grad():
        f_q = md.variational_free_energy(x.double())
        nll_exact = md.exact_free_energy(x.double()) + log_z
    assert report["estimator"] == "mean-field bound, exact log Z"
    assert report["log_z"] == pytest.approx(log_z, abs=1e-9)
    assert report["nll_nats"] == pytest.approx(float((f_q + log_z).mean()), abs=1e-9)
    assert report["nll_nats"] >= float(nll_exact.mean()) - 1e-9
    assert report["stderr"] == pytest.approx(float((f_q + log_z).std()) / math.sqrt(40), rel=1e-6)
    assert report["stderr_log_z"] == 0.0 and report["n_examples"] == 40


def test_ais_bound_agrees_with_the_exact_bound_within_error_bars():
    m, x, x_train = _dbm(3), _data(40, 4), _data(200, 5)
    exact = variational_nll(m, x, x_train, EvalConfig())
    cfg = EvalConfig(exact_max_units=0, ais_runs=100, ais_betas=1000, schedule="linear",
                     reverse_burn_in=50)
    m.start_chains(x_train, torch.Generator().manual_seed(0))
    ais = variational_nll(m, x, x_train, cfg)
    assert ais["estimator"] == "mean-field bound, AIS (forward) log Z"
    assert ais["n_samples"] == 100 and ais["n_betas"] == 1000 and ais["ais_ess"] > 1
    for key in ("log_z", "log_z_reverse"):
        assert abs(ais[key] - exact["log_z"]) < 0.1, key
    assert abs(ais["nll_nats"] - exact["nll_nats"]) < 4 * ais["stderr_log_z"] + 0.05
    assert ais["nll_nats_reverse"] is not None and ais["stderr"] > ais["stderr_log_z"]


def test_evaluate_dispatches_variational_models_and_leaves_the_model_alone():
    m = _dbm(6)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    bundle = SimpleNamespace(train=Split(_data(50, 7)), train_x=lambda epoch: _data(50, 7),
                             valid=Split(_data(10, 8)),
                             test=Split(_data(20, 9)),
                             split=lambda name: {"test": Split(_data(20, 9))}[name])
    report = evaluate(m, bundle, EvalConfig())
    assert report["split"] == "test" and report["n_examples"] == 20
    assert math.isfinite(report["nll_nats"])
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_model_without_the_capability_is_refused():
    rbm = RBM(RBMConfig(n_visible=10, n_hidden=3))
    with pytest.raises(GenzooError, match="variational"):
        variational_nll(rbm, _data(5, 0), _data(5, 1), EvalConfig())


def test_bound_is_tight_for_a_one_layer_dbm():
    # With one hidden layer the posterior factorises, so mean field is exact: bound == NLL.
    g = torch.Generator().manual_seed(0)
    m = DBM(DBMConfig(n_visible=10, hidden=(7,), init_std=1.0), generator=g).double()
    v = binary_states(torch.arange(0, 1024, 13), 10, torch.float64)
    log_z = exact_log_partition(m).value
    report = variational_nll(m, v, v, EvalConfig(dtype="float64"))
    with torch.no_grad():
        exact = float((m.exact_free_energy(v) + log_z).mean())
    assert report["nll_nats"] == pytest.approx(exact, abs=1e-8)
