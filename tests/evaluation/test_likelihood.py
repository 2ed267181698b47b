"""exact_nll and its dispatch from evaluate: values, report keys, precision, batching, errors."""

from __future__ import annotations

import math

import pytest
import torch
from support import fake_bundle, random_rbm

from genzoo.core.errors import GenzooError, InputError
from genzoo.evaluation import evaluate, exact_nll
from genzoo.evaluation.config import EvalConfig
from genzoo.models.autoregressive.nade import NADE, NADEConfig

KEYS = {"nll_nats", "stderr", "stderr_examples", "estimator", "n_examples", "dtype", "wall_s"}


def make_nade(d=10, h=6, seed=0) -> NADE:
    m = NADE(NADEConfig(n_visible=d, n_hidden=h))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 1.0, generator=g)
    return m


def data(n, d=10, seed=1):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def bundle(x):
    return fake_bundle(x, x[:5], x)


def test_report_is_the_float64_mean_nll_with_its_standard_error():
    m = make_nade()
    x = data(301)
    r = exact_nll(m, x, EvalConfig(batch_size=64, dtype="float64"))
    assert KEYS <= set(r)
    with torch.no_grad():
        nll = -m.double().log_prob(x.double())
    assert r["nll_nats"] == pytest.approx(float(nll.mean()), abs=1e-12)
    se = float(nll.std()) / math.sqrt(301)
    assert r["stderr"] == pytest.approx(se, rel=1e-12) and r["stderr_examples"] == r["stderr"]
    assert r["estimator"] == "exact log-likelihood (log_prob)" and "exact" in r["estimator"]
    assert r["n_examples"] == 301 and r["dtype"] == "float64" and r["wall_s"] >= 0
    for key in ("n_samples", "n_betas", "log_z", "log_z_reverse", "nll_nats_reverse", "ais_ess"):
        assert key not in r, key  # no sampling, no log Z: those figures do not apply
    assert r.nll.n_samples is None and r.log_z is None and r.nll.unit == "nats per example"
    assert 0 < r["nll_nats"] < 10 * math.log(2) + 10


def test_the_model_is_left_untouched_and_batching_does_not_matter():
    m = make_nade(seed=2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = data(50, seed=3)
    whole = exact_nll(m, x, EvalConfig(batch_size=1000))["nll_nats"]
    assert exact_nll(m, x, EvalConfig(batch_size=7))["nll_nats"] == pytest.approx(whole, abs=1e-12)
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32
               for k, v in m.state_dict().items())
    r32 = exact_nll(m, x, EvalConfig(dtype="float32"))
    assert r32["dtype"] == "float32" and r32["nll_nats"] == pytest.approx(whole, rel=1e-5)


def test_evaluate_dispatches_exact_likelihood_models_and_names_the_split():
    m = make_nade(seed=4)
    x = data(40, seed=5)
    r = evaluate(m, bundle(x), EvalConfig(split="valid"))
    assert r["split"] == "valid" and r["n_examples"] == 5
    assert r["nll_nats"] == pytest.approx(exact_nll(m, x[:5], EvalConfig())["nll_nats"])
    # Energy models still take the energy path.
    rbm = evaluate(random_rbm(10, 4), bundle(x), EvalConfig())
    assert rbm["estimator"] == "exact enumeration"


def test_errors():
    m = make_nade()
    with pytest.raises(InputError):
        exact_nll(m, torch.full((3, 10), 0.5), EvalConfig())
    with pytest.raises(InputError):
        exact_nll(m, data(3, d=9), EvalConfig())
    with pytest.raises(GenzooError, match="empty"):
        exact_nll(m, torch.zeros(0, 10), EvalConfig())
    with pytest.raises(GenzooError, match="exact likelihood"):
        exact_nll(random_rbm(10, 4), data(3), EvalConfig())
