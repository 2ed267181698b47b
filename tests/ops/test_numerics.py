"""The shared Bernoulli log-likelihood: its evaluation path (float64, no gradient: a product
form of the softplus sum, draws broadcast against x) against the plain formula."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.ops.numerics import bernoulli_log_likelihood


def plain(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_d [x_d l_d - log(1 + e^l_d)], with log1p(e^-|l|) so it is exact at any |l|."""
    sp = logits.clamp_min(0) + torch.log1p(torch.exp(-logits.abs()))
    return (x * logits - sp).sum(-1)


@pytest.mark.parametrize("d", [1, 7, 784, 2500])
def test_evaluation_path_equals_the_plain_formula(d):
    g = torch.Generator().manual_seed(d)
    logits = torch.randn(6, d, generator=g, dtype=torch.float64) * 8
    logits[0, 0] = 700.0  # e^700 would overflow a plain product; e^-|l| does not
    logits[1, 0] = -700.0
    x = (torch.rand(6, d, generator=g) < 0.4).double()
    with torch.no_grad():
        fast = bernoulli_log_likelihood(logits, x)
    assert torch.allclose(fast, plain(logits, x), rtol=0, atol=1e-10 * max(1, d / 100))
    assert torch.isfinite(fast).all()


def test_draws_axis_broadcasts_against_x():
    """logits (S, B, D) against x (B, D) equals replicating x S times."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 11, generator=g, dtype=torch.float64)
    x = (torch.rand(3, 11, generator=g) < 0.5).double()
    with torch.no_grad():
        out = bernoulli_log_likelihood(logits, x)
    assert out.shape == (5, 3)
    assert torch.allclose(out, plain(logits, x.expand(5, 3, 11)), rtol=0, atol=1e-12)


def test_shared_logits_broadcast_against_draws():
    """logits (B, D) shared by draws x (S, B, D) (a proposal's first layer) and a bias (D,)
    shared by everything equal the logits replicated."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 11, generator=g, dtype=torch.float64) * 5
    bias = torch.randn(11, generator=g, dtype=torch.float64)
    x = (torch.rand(4, 3, 11, generator=g) < 0.5).double()
    with torch.no_grad():
        out = bernoulli_log_likelihood(logits, x)
        top = bernoulli_log_likelihood(bias, x)
    assert out.shape == top.shape == (4, 3)
    assert torch.allclose(out, plain(logits.expand(4, 3, 11), x), rtol=0, atol=1e-12)
    assert torch.allclose(top, plain(bias.expand(4, 3, 11), x), rtol=0, atol=1e-12)


def test_training_path_keeps_autograd_and_float32():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 9, generator=g, requires_grad=True)
    x = (torch.rand(4, 9, generator=g) < 0.5).float()
    out = bernoulli_log_likelihood(logits, x)
    out.sum().backward()
    # d/dl [x l - softplus(l)] = x - sigmoid(l)
    assert torch.allclose(logits.grad, x - torch.sigmoid(logits.detach()), atol=1e-6)
    assert out.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(bernoulli_log_likelihood(logits, x), out.detach(), atol=1e-5)
    # a probability: at most 0, and log 2 per variable at logit 0
    zero = bernoulli_log_likelihood(torch.zeros(1, 9, dtype=torch.float64), x[:1].double())
    assert math.isclose(float(zero), -9 * math.log(2), rel_tol=1e-12)
