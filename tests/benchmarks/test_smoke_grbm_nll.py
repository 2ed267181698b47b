"""benchmarks/grbm_nll.py in smoke mode: trains and evaluates through the CLI, writes a
well-formed likelihood result outside benchmarks/results (the machinery, not the number)."""

from __future__ import annotations

import math

from smoke_support import read_result, run_script, step_heads
from support import real_data_file


def test_grbm_nll_smoke_runs_the_cli_end_to_end(tmp_path):
    run_script(["benchmarks/grbm_nll.py", "--smoke", "--out", str(tmp_path / "run"),
                "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "grbm_nll.json")
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"].startswith("AIS (forward)")
    assert result["estimator"]["reverse"]
    # A smoke run's 100 temperatures may leave forward and reverse apart: then the published
    # value is the reverse one, and the estimator's name says so.
    published_reverse = "published: reverse AIS" in result["estimator"]["name"]
    assert (result["value"] == result["extra"]["value_reverse"]) == published_reverse or (
        result["extra"]["value_reverse"] == result["extra"]["value_forward"])
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


def test_grbm_nll_smoke_on_mnist_grey_levels(tmp_path):
    real_data_file("mnist/train-images-idx3-ubyte.gz")
    run_script(["benchmarks/grbm_nll.py", "--data", "mnist", "--smoke",
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "grbm_nll_mnist.json")
    assert result["data"]["name"] == "mnist" and "logit" in result["data"]["binarization"]
    settings = result["training"]["settings"]
    assert settings["data.dequantize"] is True and settings["data.logit_alpha"] == 0.05
    assert math.isfinite(result["value"]) and math.isfinite(result["extra"]["value_reverse"])
    # the logit map stretches [0, 1] (|dy/dx| >= 4 (1 - 2 alpha) per pixel), so carrying the
    # model-space NLL back to pixel space adds a large positive log-Jacobian ...
    assert result["extra"]["log_det_jacobian_nats"] > 784 * math.log(4 * 0.9)
    # ... and bits per dimension refer to the 256-level images: NLL / (D log 2) + 8
    bpd = (result["value"] + 784 * math.log(256)) / (784 * math.log(2))
    assert math.isclose(result["extra"]["bits_per_dim"], bpd, rel_tol=1e-9)
    # (no full-vs-diagonal Gaussian check here: 1000 smoke images over-fit 784x784 covariances)
    assert math.isfinite(result["extra"]["gaussian_nll"])


def test_grbm_nll_smoke_standardized_writes_its_own_result(tmp_path):
    """--standardize: per-pixel standardised logits, the recipe's lr and momentum, its own
    result id and notes."""
    real_data_file("mnist/train-images-idx3-ubyte.gz")
    run_script(["benchmarks/grbm_nll.py", "--data", "mnist", "--standardize", "--smoke",
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "grbm_nll_mnist_standardized.json")
    settings = result["training"]["settings"]
    assert settings["data.standardize"] is True
    assert settings["train.lr"] == 0.001 and settings["train.momentum"] == 0.5
    assert "standardised" in result["title"] and math.isfinite(result["value"])
    assert any("standardisation" in n for n in result["notes"])
