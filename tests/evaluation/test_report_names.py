"""``nll_nats`` only ever holds a negative log-likelihood: the Parzen score of a model with no
density has its own name in the typed report, the JSON and the text, and JSON written before
(``nll_nats`` = -Parzen beside ``parzen_log_likelihood``) is still read."""

from __future__ import annotations

import math

from genzoo.evaluation.report import EvaluationReport, SampleMeasures
from genzoo.evaluation.stats import Estimate


def _sampled() -> EvaluationReport:
    return EvaluationReport(
        estimator="parzen window (sample-based)", n_examples=20,
        samples=SampleMeasures(
            parzen=Estimate(-56.7, 0.5, 20, "parzen", {"sigma": 0.2}, "nats per example"),
            parzen_valid_scores={"0.2": -57.5},
            mmd2=Estimate(0.01, math.nan, 10, "mmd", {"p_value": 0.3, "sigmas": [1.0]}),
            mmd_points=10, n_model_samples=100,
        ),
        dtype="float64", split="test",
    )


def test_the_parzen_score_is_never_called_an_nll():
    report = _sampled()
    d = report.to_dict()
    assert "nll_nats" not in d and "stderr" not in d
    assert d["parzen_log_likelihood"] == -56.7 and d["parzen_stderr"] == 0.5
    text = report.to_text("dcgan on mnist")
    assert "Parzen log-likelihood = -56.700 +/- 0.500" in text and "not an NLL" in text
    assert "NLL =" not in text and "NLL <=" not in text


def test_old_json_with_the_negated_parzen_as_nll_nats_is_read():
    old = {k: v for k, v in _sampled().to_dict().items() if k != "parzen_stderr"}
    old.update(nll_nats=56.7, stderr=0.5)
    back = EvaluationReport.from_dict(old)
    assert back.nll is None and back.samples.parzen.value == -56.7
    assert back.samples.parzen.stderr == 0.5
    assert back.data_space is None  # nothing left over: both old keys were accounted for
    assert back.to_dict() == _sampled().to_dict()
