"""Corruption processes and reconstruction distributions shared by the chain models."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.models.markov import base as M


def test_salt_and_pepper_statistics():
    # A unit changes only when it is replaced (probability p) AND the coin differs (1/2).
    g = torch.Generator().manual_seed(0)
    n, d, p = 4000, 50, 0.4
    x = (torch.rand(n, d, generator=g) < 0.3).double()
    xt = M.salt_and_pepper(x, p, g)
    assert bool(((xt == 0) | (xt == 1)).all())
    flipped = (xt != x).double().mean()
    se = math.sqrt(p / 2 * (1 - p / 2) / (n * d))
    assert abs(float(flipped) - p / 2) < 5 * se
    # Among replaced units the value is a fair coin, whatever x was: P(x~=1 | x=0) = p / 2.
    ones_from_zero = xt[x == 0].mean()
    assert abs(float(ones_from_zero) - p / 2) < 0.01


def test_salt_and_pepper_extremes_and_dtype():
    x = torch.ones(3, 7, dtype=torch.float64)
    assert torch.equal(M.salt_and_pepper(x, 0.0, torch.Generator().manual_seed(0)), x)
    out = M.salt_and_pepper(x, 1.0, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float64 and out.shape == x.shape


def test_gaussian_corruption_statistics():
    g = torch.Generator().manual_seed(1)
    x = torch.full((20000, 5), 2.0, dtype=torch.float64)
    xt = M.gaussian_corruption(x, 0.5, g)
    eps = (xt - x).flatten()
    assert abs(float(eps.mean())) < 5 * 0.5 / math.sqrt(eps.numel())
    assert abs(float(eps.std()) - 0.5) < 0.01


def test_corrupt_is_deterministic_under_a_generator():
    x = torch.zeros(4, 6)
    a = M.corrupt(x, "salt_and_pepper", 0.5, torch.Generator().manual_seed(3))
    b = M.corrupt(x, "salt_and_pepper", 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_reconstruction_log_probs_match_torch_distributions():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64)
    x = (torch.rand(5, 4, generator=g) < 0.5).double()
    ref = torch.distributions.Bernoulli(logits=a).log_prob(x).sum(-1)
    assert torch.allclose(M.reconstruction_log_prob(x, a, "bernoulli"), ref)
    log_sigma = torch.randn(4, generator=g, dtype=torch.float64)
    y = torch.randn(5, 4, generator=g, dtype=torch.float64)
    ref = torch.distributions.Normal(a, log_sigma.exp()).log_prob(y).sum(-1)
    assert torch.allclose(M.reconstruction_log_prob(y, a, "gaussian", log_sigma), ref)


def test_unknown_corruption_is_refused():
    with pytest.raises(Exception, match="salt_and_pepper"):
        M.corrupt(torch.zeros(1, 2), "dropout", 0.1)
