"""Kernel MMD: the estimators against hand computation, unbiasedness, the permutation test."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.evaluation.mmd import mmd, mmd_permutation_test


def k(a, b, sigmas):
    sq = sum((u - v) ** 2 for u, v in zip(a, b))
    return sum(math.exp(-sq / (2 * s * s)) for s in sigmas)


def hand(x, y, sigmas, unbiased):
    x, y = x.tolist(), y.tolist()
    n, m = len(x), len(y)
    if unbiased:
        sxx = sum(k(x[i], x[j], sigmas) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        syy = sum(k(y[i], y[j], sigmas) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    else:
        sxx = sum(k(a, b, sigmas) for a in x for b in x) / n**2
        syy = sum(k(a, b, sigmas) for a in y for b in y) / m**2
    sxy = sum(k(a, b, sigmas) for a in x for b in y) / (n * m)
    return sxx + syy - 2 * sxy


@pytest.mark.parametrize("unbiased", [True, False])
def test_estimators_equal_hand_computation(unbiased):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.3
    sigmas = [0.5, 2.0]
    assert float(mmd(x, y, sigmas, unbiased=unbiased)) == pytest.approx(
        hand(x, y, sigmas, unbiased), rel=1e-12
    )


def test_unbiased_estimate_is_zero_in_expectation_and_biased_is_not():
    g = torch.Generator().manual_seed(1)
    u, b = [], []
    for _ in range(300):
        x = torch.randn(10, 2, generator=g, dtype=torch.float64)
        y = torch.randn(10, 2, generator=g, dtype=torch.float64)
        u.append(float(mmd(x, y, [1.0])))
        b.append(float(mmd(x, y, [1.0], unbiased=False)))
    u_t, b_t = torch.tensor(u), torch.tensor(b)
    se = float(u_t.std()) / math.sqrt(len(u))
    assert abs(float(u_t.mean())) < 3 * se
    assert float(b_t.min()) >= 0 and float(b_t.mean()) > 10 * se  # the V-statistic's bias


def test_permutation_statistic_is_the_unbiased_mmd():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(12, 3, generator=g), torch.randn(9, 3, generator=g)
    est = mmd_permutation_test(x, y, [1.0, 3.0], n_permutations=20, generator=g)
    assert est.value == pytest.approx(float(mmd(x.double(), y.double(), [1.0, 3.0])), rel=1e-10)
    assert 1 / 21 <= est.diagnostics["p_value"] <= 1


def test_permutation_test_level_and_power():
    g = torch.Generator().manual_seed(3)
    p_null, p_alt = [], []
    for _ in range(40):
        x = torch.randn(25, 2, generator=g)
        y = torch.randn(25, 2, generator=g)
        p_null.append(mmd_permutation_test(x, y, [1.0], 99, g).diagnostics["p_value"])
        p_alt.append(mmd_permutation_test(x, y + 1.0, [1.0], 99, g).diagnostics["p_value"])
    # Under the null p is uniform on {1/100, ..., 1}: about 2 of 40 below 0.05 (<= 6 holds
    # with probability > 0.99), and the mean is near 1/2.
    assert sum(p < 0.05 for p in p_null) <= 6
    assert 0.35 < sum(p_null) / len(p_null) < 0.65
    assert sum(p < 0.05 for p in p_alt) >= 36  # a shift of one standard deviation is found
