"""Reverse AIS per frame for the sequence models (conditional RBM, RNN-RBM): forward and
reverse figures that bracket the NLL, each within 0.1 nats per frame of per-frame enumeration
on a tiny instance, and both in the report, its JSON and its text."""

from __future__ import annotations

import math

import pytest
from test_sequence import TINY_SEQUENCE_MODELS, random_sequence_model

from genzoo.evaluation import EvalConfig, sequence_nll
from genzoo.evaluation.report import EvaluationReport
from genzoo.models.boltzmann.crbm import CRBM, CRBMConfig

AIS = {"exact_max_units": 0, "frame_ais_betas": 500, "frame_ais_runs": 20,
       "reverse_burn_in": 200, "dtype": "float64"}


@pytest.mark.parametrize("cls, cfg", [
    # More hidden than frame units: the hidden layer is annealed (the transposed path).
    *TINY_SEQUENCE_MODELS,
    # Fewer: the frame's own units are annealed.
    (CRBM, CRBMConfig(n_visible=24, image_height=4, image_width=6, n_hidden=4, order=1)),
])
def test_forward_and_reverse_bracket_the_enumerated_nll(cls, cfg):
    m, x = random_sequence_model(cls, cfg)
    exact = sequence_nll(m, x, EvalConfig())
    both = sequence_nll(m, x, EvalConfig(**AIS))
    assert exact.nll_reverse is None and "nll_nats_reverse" not in exact
    frames = both["n_frames"]
    forward, reverse, truth = (both["nll_nats"] / frames, both["nll_nats_reverse"] / frames,
                               exact["nll_nats"] / frames)
    print(f"{cls.__name__} H={cfg.n_hidden}: nats per frame forward {forward:.4f}, exact "
          f"{truth:.4f}, reverse {reverse:.4f}")
    assert abs(forward - truth) < 0.1 and abs(reverse - truth) < 0.1
    # Forward low, reverse high, up to 3 Monte Carlo standard errors.
    mc = 3 * both["stderr_mc"] / frames
    assert forward <= truth + mc and reverse >= truth - mc
    assert both["estimator"].startswith("AIS per frame (forward and reverse")
    assert not both.warnings


def test_the_reverse_figure_is_in_the_json_and_the_text():
    m, x = random_sequence_model(CRBM, CRBMConfig(n_visible=24, image_height=4, image_width=6, n_hidden=20,
                                   order=2))
    report = sequence_nll(m, x, EvalConfig(**{**AIS, "frame_ais_betas": 50,
                                              "reverse_burn_in": 10}))
    d = report.to_dict()
    assert d["nll_nats_reverse"] == report.nll_reverse.value and d["stderr_reverse"] > 0
    assert "log_z" not in d  # one log Z per frame, none for the model
    back = EvaluationReport.from_dict(d)
    assert back.to_dict() == d and back.nll_reverse.value == report.nll_reverse.value
    assert "reverse AIS per frame: NLL = " in report.to_text("crbm on digits")
    off = sequence_nll(m, x, EvalConfig(**{**AIS, "frame_ais_betas": 50, "reverse": False}))
    assert off.nll_reverse is None and math.isfinite(off["nll_nats"])
