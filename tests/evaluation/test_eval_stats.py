"""Log-space statistics of importance weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genzoo.evaluation import Estimate, effective_sample_size, log_mean_exp, log_mean_exp_stderr


def test_log_mean_exp_matches_naive_and_survives_huge_values():
    g = torch.Generator().manual_seed(0)
    log_w = torch.randn(7, 50, generator=g, dtype=torch.float64)
    naive = torch.log(torch.exp(log_w).mean(1))
    assert torch.allclose(log_mean_exp(log_w, 1), naive, atol=1e-12)
    shifted = log_mean_exp(log_w + 5000.0, 1)
    assert torch.isfinite(shifted).all()
    assert torch.allclose(shifted - 5000.0, naive, atol=1e-9)


def test_stderr_is_delta_method():
    rng = np.random.default_rng(1)
    log_w = rng.normal(size=200)
    w = np.exp(log_w)
    expected_se = w.std(ddof=1) / (math.sqrt(len(w)) * w.mean())
    est, se = log_mean_exp_stderr(torch.from_numpy(log_w))
    assert est == pytest.approx(math.log(w.mean()), abs=1e-12)
    assert se == pytest.approx(expected_se, rel=1e-10)
    est2, se2 = log_mean_exp_stderr(torch.from_numpy(log_w - 1e4))  # exp would underflow
    assert est2 == pytest.approx(est - 1e4, abs=1e-9) and se2 == pytest.approx(se, rel=1e-9)


def test_stderr_covers_the_truth():
    """Over repeated experiments the delta-method interval log mean w +- 2 se covers
    log E[w] about 95% of the time (log-normal weights, sigma = 0.5, n = 400)."""
    rng = np.random.default_rng(2)
    sigma, n, reps = 0.5, 400, 400
    truth = sigma**2 / 2  # log E[exp(N(0, sigma^2))]
    hits = 0
    for _ in range(reps):
        est, se = log_mean_exp_stderr(torch.from_numpy(rng.normal(0, sigma, n)))
        hits += abs(est - truth) < 2 * se
    # binomial(400, 0.95): sd 4.4 hits; 0.90 is 11 sd below, a false alarm is impossible in practice
    assert hits / reps > 0.90


def test_effective_sample_size():
    assert effective_sample_size(torch.zeros(64)) == pytest.approx(64.0)
    one_heavy = torch.full((64,), -1e3)
    one_heavy[3] = 0.0
    assert effective_sample_size(one_heavy) == pytest.approx(1.0)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert effective_sample_size(torch.log(w) + 800.0) == pytest.approx(36 / 14)


def test_stderr_needs_two_weights_and_estimate_to_dict():
    with pytest.raises(ValueError):
        log_mean_exp_stderr(torch.zeros(1))
    e = Estimate(1.0, 0.1, 10, "x", {"ess": 3.0})
    assert e.to_dict() == {
        "value": 1.0, "stderr": 0.1, "n_samples": 10, "estimator": "x", "diagnostics": {"ess": 3.0},
        "unit": None,
    }


def test_mean_stderr_is_the_standard_error_of_the_mean():
    from genzoo.evaluation.stats import mean_stderr

    values = torch.tensor([1.0, 2.0, 4.0, 7.0])
    mean, se = mean_stderr(values)
    assert mean == pytest.approx(3.5)
    assert se == pytest.approx(np.std([1, 2, 4, 7], ddof=1) / 2)
    assert mean_stderr(torch.tensor([5.0])) == (5.0, 0.0)
