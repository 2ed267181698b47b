"""The maximum-likelihood Gaussian baselines against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.evaluation.baselines import gaussian_baseline_nll


def test_gaussian_baseline_nll_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.9, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0]])
    x_train, x_test = (torch.randn(n, 3, generator=g) @ mix for n in (500, 40))
    full, diag = gaussian_baseline_nll(x_train, x_test)
    x = x_train.double()
    mean, cov = x.mean(0), (x - x.mean(0)).T @ (x - x.mean(0)) / len(x)
    d = x_test.double() - mean
    maha = (d @ torch.linalg.inv(cov) * d).sum(-1)
    expected = 0.5 * (maha + torch.logdet(cov) + 3 * math.log(2 * math.pi))
    assert full == pytest.approx(float(expected.mean()), rel=1e-9)
    var = torch.diagonal(cov)
    expected_diag = 0.5 * ((d**2 / var).sum(-1) + var.log().sum() + 3 * math.log(2 * math.pi))
    assert diag == pytest.approx(float(expected_diag.mean()), rel=1e-9)
    assert full < diag  # correlated data: the full covariance fits it better
    shifted = gaussian_baseline_nll(x_train, x_test, torch.full((40,), 2.0))
    assert shifted == pytest.approx((full - 2.0, diag - 2.0))
