"""benchmarks/rnade_patches_nll.py in smoke mode: trains and evaluates RNADE through the CLI and
writes a well-formed likelihood result outside benchmarks/results (the machinery, not the
number)."""

from __future__ import annotations

import math

from smoke_support import read_result, run_script, step_heads


def test_rnade_patches_smoke_runs_the_cli_end_to_end(tmp_path):
    run_script(["benchmarks/rnade_patches_nll.py", "--smoke", "--out", str(tmp_path / "run"),
                "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "rnade_patches_nll.json")
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"] == "exact (autoregressive)"
    assert result["data"]["name"] == "image-patches" and result["data"]["n_examples"] == 200
    assert math.isfinite(result["value"]) and result["stderr"] >= 0
    assert math.isfinite(result["extra"]["gaussian_nll"])
    # the unit-variance scaling's log-Jacobian, -63 log(std) with std ~ 0.09, was applied
    assert result["extra"]["log_det_jacobian_nats"] > 100
    assert step_heads(result, 3) == [["genzoo", "train", "rnade"],
                                     ["genzoo", "evaluate", str(tmp_path / "run")]]
