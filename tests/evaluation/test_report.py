"""The capability dispatch table of ``evaluate`` and the EvaluationReport's JSON view."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from support import random_rbm

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import (
    AIS,
    CLASSIFIER,
    ENERGY,
    EXACT_LIKELIHOOD,
    EXACT_LOG_PARTITION,
    IMPLICIT,
    LATENT,
    PROTOCOLS,
    VARIATIONAL,
)
from genzoo.evaluation import (
    ESTIMATORS,
    EvalConfig,
    EvaluationReport,
    SampleMeasures,
    energy_nll,
    estimator_for,
    evaluate,
    exact_nll,
    importance_nll,
)
from genzoo.evaluation.stats import Estimate
from genzoo.models.autoregressive.nade import NADE, NADEConfig
from genzoo.models.directed.vae import VAE, VAEConfig


def declaring(*caps: str) -> torch.nn.Module:
    model = torch.nn.Linear(2, 2)
    model.capabilities = frozenset(caps)
    return model


@pytest.mark.parametrize(
    ("caps", "chosen"),
    [
        ((VARIATIONAL, ENERGY, AIS), VARIATIONAL),  # a DBM: the bound, not F(x)
        ((ENERGY, AIS), ENERGY),
        ((ENERGY, EXACT_LOG_PARTITION), ENERGY),
        ((ENERGY,), None),  # no way to its log Z
        ((EXACT_LIKELIHOOD,), EXACT_LIKELIHOOD),
        ((EXACT_LIKELIHOOD, LATENT), EXACT_LIKELIHOOD),  # exact beats importance sampling
        ((LATENT,), LATENT),
        ((LATENT, IMPLICIT), LATENT),  # a likelihood estimate beats sample-based measures
        ((IMPLICIT,), IMPLICIT),
        ((CLASSIFIER,), None),
        ((), None),
    ],
)
def test_the_first_row_that_applies_is_chosen(caps, chosen):
    entry = estimator_for(declaring(*caps))
    assert (entry.capability if entry else None) == chosen


def test_the_table_is_keyed_on_declared_capabilities():
    for entry in ESTIMATORS:
        assert entry.capability in PROTOCOLS and set(entry.with_any) <= set(PROTOCOLS)
        assert entry.what


def tiny_bundle(d=10, n=20):
    x = (torch.rand(n, d, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    split = SimpleNamespace(x=x, y=None)
    return SimpleNamespace(
        train=split, train_x=lambda epoch: x, valid=split, test=split, split=lambda name: split
    )


def test_evaluate_calls_the_row_of_the_table(monkeypatch):
    import genzoo.evaluation as ev

    calls = []

    def estimate(model, bundle, cfg, generator, distributed):
        calls.append((model, cfg.split, distributed))
        return EvaluationReport(estimator="stub", n_examples=3)

    model = declaring(IMPLICIT)
    row = ev.EstimatorEntry(IMPLICIT, estimate, "a stub")
    monkeypatch.setattr(ev, "ESTIMATORS", (row,))
    report = evaluate(model, tiny_bundle(), EvalConfig(split="valid"))
    assert calls == [(model, "valid", False)]
    assert report.estimator == "stub" and report.split == "valid"
    assert dict(report) == {"estimator": "stub", "n_examples": 3, "split": "valid"}


def test_the_error_names_what_can_be_evaluated_and_the_fix():
    with pytest.raises(GenzooError) as err:
        evaluate(declaring(INPAINT := "inpaint"), tiny_bundle(), EvalConfig())
    text = str(err.value)
    assert f"capabilities: {INPAINT}" in text
    for entry in ESTIMATORS:
        assert f"{entry.capability} -> {entry.what}" in text
    assert "predicts them" in text and "genzoo.core.protocols" in text


def make_nade(d=10):
    m = NADE(NADEConfig(n_visible=d, n_hidden=4))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 1.0, generator=g)
    return m


def reports() -> dict[str, EvaluationReport]:
    b = tiny_bundle()
    x = b.test.x
    ais = EvalConfig(exact_max_units=0, ais_runs=8, ais_betas=20, reverse_burn_in=2)
    vae = VAE(VAEConfig(n_visible=10, hidden=(8,), n_latent=3, init_std=0.3),
              generator=torch.Generator().manual_seed(6))
    parzen = Estimate(-7.0, 0.5, 20, "parzen", {"sigma": 0.2}, "nats per example")
    sampled = EvaluationReport(
        estimator="parzen window (sample-based)", n_examples=20,
        samples=SampleMeasures(
            parzen=parzen, parzen_valid_scores={"0.2": -7.5},
            mmd2=Estimate(0.01, math.nan, 10, "mmd", {"p_value": 0.3, "sigmas": [1.0]}),
            mmd_points=10, n_model_samples=100,
        ),
        dtype="float64", warnings=("a Parzen warning",), split="test",
    )
    return {
        "exact": exact_nll(make_nade(), x, EvalConfig()),
        "energy, exact log Z": energy_nll(random_rbm(10, 4), x, x, EvalConfig()),
        "energy, AIS": energy_nll(random_rbm(10, 4), x, x, ais),
        "importance": importance_nll(vae, x, EvalConfig(is_samples=5),
                                     torch.Generator().manual_seed(0)),
        "sample-based": sampled,
        "classification and data space": EvaluationReport(
            estimator="exact log-likelihood (log_prob)", n_examples=20,
            nll=Estimate(3.0, 0.1, None, "exact log-likelihood (log_prob)",
                         {"stderr_examples": 0.1}, "nats per example"),
            classification=Estimate(0.25, 0.1, 20, "classification error",
                                    unit="fraction of examples"),
            data_space={"log_det_jacobian_nats": -1.5, "likelihood_space": "pixels"},
            split="valid",
        ),
    }


def test_json_round_trip():
    for name, report in reports().items():
        d = report.to_dict()
        back = EvaluationReport.from_dict(json.loads(json.dumps(d)))
        assert back.to_dict() == d, name
        assert back == report, name  # == compares the JSON views
        if report.nll is not None:
            assert back.nll.value == report.nll.value and back.nll.unit == "nats per example"
        for field in ("log_z", "log_z_reverse", "nll_reverse", "classification", "samples"):
            assert (getattr(back, field) is None) == (getattr(report, field) is None), name
        # A figure that does not apply is absent, not null.
        assert None not in d.values(), (name, [k for k, v in d.items() if v is None])


def test_the_report_is_typed_and_its_mapping_view_read_only():
    r = reports()["energy, AIS"]
    assert r.log_z.unit == "nats" and r.log_z.n_samples == 8
    assert r["log_z"] == r.log_z.value and r["n_betas"] == 20 == r.log_z.diagnostics["n_betas"]
    assert r["nll_nats_reverse"] == r.nll_reverse.value and r["n_samples"] == r.nll.n_samples
    with pytest.raises(TypeError):
        r["nll_nats"] = 0.0  # type: ignore[index]
    d = r.to_dict()
    d["nll_nats"] = 0.0  # a copy: the report is unchanged
    assert r["nll_nats"] != 0.0
    # The CLI's run keys are not part of a report.
    assert EvaluationReport.from_dict({**r.to_dict(), "model": "rbm", "world_size": 1}) == r
