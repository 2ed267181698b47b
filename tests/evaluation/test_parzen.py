"""Parzen-window log-likelihood: brute force, bandwidth selection, the warning."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import InputError
from genzoo.evaluation.parzen import (
    PARZEN_WARNING,
    parzen_log_density,
    parzen_log_likelihood,
    select_parzen_bandwidth,
    training_data_parzen,
)


def brute_force(samples, x, sigma):
    """log (1/S) sum_i N(x; s_i, sigma^2 I), one example at a time, with plain math."""
    out = []
    d = samples.shape[1]
    for xi in x.tolist():
        total = 0.0
        for si in samples.tolist():
            sq = sum((a - b) ** 2 for a, b in zip(xi, si))
            total += math.exp(-sq / (2 * sigma**2)) / (2 * math.pi * sigma**2) ** (d / 2)
        out.append(math.log(total / len(samples)))
    return out


def test_matches_brute_force_on_a_tiny_case_across_chunks():
    g = torch.Generator().manual_seed(0)
    samples = torch.rand(7, 3, generator=g)
    x = torch.rand(5, 3, generator=g)
    for sigma in (0.2, 0.5, 1.3):
        want = brute_force(samples, x, sigma)
        # chunk and batch sizes that do not divide S and N exercise the streaming logsumexp
        got = parzen_log_density(samples, x, [sigma], batch_size=2, chunk=3)[0]
        assert got.dtype == torch.float64
        assert got.tolist() == pytest.approx(want, rel=1e-12, abs=1e-12)
        est = parzen_log_likelihood(samples, x, sigma)
        assert est.value == pytest.approx(sum(want) / len(want), rel=1e-12)
        assert est.diagnostics["warning"] == PARZEN_WARNING
        assert est.n_samples == 5 and est.diagnostics["n_model_samples"] == 7


def test_far_points_do_not_underflow():
    samples = torch.zeros(3, 2)
    x = torch.full((1, 2), 50.0)
    ll = parzen_log_density(samples, x, [0.1])[0, 0]
    want = -(2 * 50.0**2) / (2 * 0.01) - math.log(2 * math.pi * 0.01)
    assert float(ll) == pytest.approx(want, rel=1e-12)


def test_bandwidth_is_the_validation_argmax_and_tracks_the_spread():
    g = torch.Generator().manual_seed(1)
    sigmas = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2]
    chosen = []
    for scale in (0.1, 1.0):
        samples = scale * torch.randn(400, 2, generator=g)
        x_valid = scale * torch.randn(200, 2, generator=g)
        best, scores = select_parzen_bandwidth(samples, x_valid, sigmas)
        assert best == max(scores, key=scores.get)
        for s in sigmas:
            assert scores[s] == pytest.approx(parzen_log_likelihood(samples, x_valid, s).value)
        assert best not in (sigmas[0], sigmas[-1])  # an interior optimum on this grid
        chosen.append(best)
    assert chosen[0] < chosen[1]  # ten times the spread, a wider window


def test_training_data_parzen_scores_the_test_split_at_the_validation_bandwidth():
    g = torch.Generator().manual_seed(2)
    train, x_valid, x_test = (torch.randn(n, 3, generator=g) for n in (300, 100, 50))
    sigmas = [0.1, 0.3, 1.0, 3.0]
    est = training_data_parzen(train, x_valid, x_test, sigmas)
    sigma, _ = select_parzen_bandwidth(train, x_valid, sigmas)
    assert est.diagnostics["sigma"] == sigma and est.diagnostics["n_model_samples"] == 300
    assert est.value == pytest.approx(parzen_log_likelihood(train, x_test, sigma).value)
    assert est.value > training_data_parzen(train, x_valid, 3.0 + x_test, sigmas).value


def test_bad_inputs_raise():
    with pytest.raises(InputError):
        parzen_log_density(torch.zeros(3, 2), torch.zeros(3, 4), [0.1])
    with pytest.raises(InputError):
        parzen_log_density(torch.zeros(3, 2), torch.zeros(3, 2), [0.0])
