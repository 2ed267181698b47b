"""benchmarks/grbm_nll.py in smoke mode: trains and evaluates through the CLI, writes a
well-formed likelihood result outside benchmarks/results (the machinery, not the number)."""

from __future__ import annotations

import math

from smoke_support import read_result, run_script, step_heads


def test_grbm_nll_smoke_runs_the_cli_end_to_end(tmp_path):
    run_script(["benchmarks/grbm_nll.py", "--smoke", "--out", str(tmp_path / "run"),
                "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "grbm_nll.json")
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"] == "AIS (forward)" and result["estimator"]["reverse"]
    assert result["estimator"]["ais_runs"] == 10 and result["estimator"]["ais_betas"] == 100
    assert result["data"]["name"] == "image-patches" and result["data"]["n_examples"] == 200
    assert math.isfinite(result["value"]) and result["stderr"] >= 0
    assert math.isfinite(result["extra"]["value_reverse"])
    # a full covariance fits the training patches at least as well as a diagonal one does
    assert result["extra"]["gaussian_nll"] < result["extra"]["diagonal_gaussian_nll"]
    # the Jacobian of the unit-variance scaling was applied: 63 log(std) with std ~ 0.09
    assert result["extra"]["log_det_jacobian_nats"] > 100
    assert result["references"] == []
    assert step_heads(result) == [["genzoo", "train"], ["genzoo", "evaluate"]]
