"""What a result publishes when forward and reverse AIS disagree: the higher NLL, either way."""

from __future__ import annotations

import pytest
from support import load_benchmark

from genzoo.evaluation._common import ais_disagreement
from genzoo.evaluation.report import EvaluationReport
from genzoo.evaluation.stats import Estimate

run = load_benchmark("run")


def _report(nll_forward: float, nll_reverse: float) -> EvaluationReport:
    # NLL = mean F + log Z: the lower log Z gives the lower NLL.
    z_f, z_r = (Estimate(nll - 100.0, 0.05, 100, "AIS", {"n_betas": 1000, "ess": 90.0})
                for nll in (nll_forward, nll_reverse))
    warning = ais_disagreement(z_f, z_r)
    return EvaluationReport(
        estimator="AIS (forward)", n_examples=10, split="test", dtype="mixed",
        nll=Estimate(nll_forward, 0.5, 10, "AIS"), nll_reverse=Estimate(nll_reverse, 0.6, 10, "AIS"),
        log_z=z_f, log_z_reverse=z_r, warnings=(warning,) if warning else (),
    )


@pytest.mark.parametrize("forward, reverse, side", [(80.0, 90.0, "reverse"),
                                                    (95.0, 85.0, "forward")])
def test_the_higher_nll_is_published_when_ais_disagrees(forward, reverse, side):
    out = run.published({"metric": "nll"}, {"evaluate": {}}, _report(forward, reverse))
    assert out["value"] == max(forward, reverse)
    assert out["stderr"] == (0.6 if side == "reverse" else 0.5)
    assert f"published: {side} AIS" in out["estimator"]["name"]
    assert f"forward AIS ({forward:.2f}" in out["notes"][0]
    assert f"reverse AIS ({reverse:.2f}" in out["notes"][0]


def test_agreeing_ais_publishes_forward_without_a_note():
    out = run.published({"metric": "nll"}, {"evaluate": {}}, _report(85.0, 85.2))
    assert out["value"] == 85.0 and out["notes"] == []
    assert "published" not in out["estimator"]["name"]


def test_per_frame_ais_keeps_both_nlls_without_a_log_z():
    report = EvaluationReport(
        estimator="AIS per frame (forward and reverse)", n_examples=10, split="test",
        nll=Estimate(106.30, 1.1, 16, "AIS"), nll_reverse=Estimate(106.35, 1.1, 16, "AIS"))
    out = run.published({"metric": "nll"}, {"evaluate": {}}, report)
    assert out["value"] == 106.30
    assert (out["extra"]["value_forward"], out["extra"]["value_reverse"]) == (106.30, 106.35)
