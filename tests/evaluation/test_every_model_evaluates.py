"""Every registered model gets a figure from ``evaluate``: a likelihood (exact, a bound, AIS,
importance sampling or per-frame), or, for a model with no density, the sample measures (MMD,
Fréchet distance, with Parzen labelled as such), or a classification error for a classifier.
No model is left without one. Tiny instances, cheap estimator settings."""

from __future__ import annotations

import math

import pytest

from genzoo.core.registry import list_models
from genzoo.evaluation import EvalConfig, evaluate
from genzoo.testing import build_tiny

CHEAP = EvalConfig(ais_runs=4, ais_betas=50, reverse_burn_in=10, is_samples=10,
                   frame_ais_runs=2, frame_ais_betas=20, batch_size=100)


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_gets_a_figure(name):
    _, bundle, model = build_tiny(name, overrides=["data.n_eval=50"])
    report = evaluate(model.eval(), bundle, CHEAP).to_dict()
    estimator = report["estimator"]
    if estimator == "classification only":
        assert 0 <= report["classification_error"] <= 1
    elif "sample-based" in estimator:
        # Parzen stands beside the measures that do not mislead, and is named as Parzen.
        assert "parzen" in estimator
        assert math.isfinite(report["mmd2"]) and math.isfinite(report["frechet_distance"])
        # nll_nats only ever holds a negative log-likelihood: a model with no density has none.
        assert "nll_nats" not in report and math.isfinite(report["parzen_log_likelihood"])
    else:
        assert math.isfinite(report["nll_nats"]) and report["nll_nats"] > 0, report
