"""NADE specifics: the O(DH) recursion equals the paper's per-conditional definition (values,
parameter and input gradients), evaluation without gradients equals the autograd path, and the
sampler's running recursion matches."""

from __future__ import annotations

import torch
from test_autoregressive_properties import randomize

from genzoo.models.autoregressive.nade import NADE, NADEConfig, per_conditional_logits


def _random_nade(d: int = 9, h: int = 6, seed: int = 0) -> NADE:
    return randomize(NADE(NADEConfig(n_visible=d, n_hidden=h)), seed)


def _batch(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, d), 0.5, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(seed))


def test_running_sum_equals_the_per_conditional_definition():
    m = _random_nade()
    x = _batch(32, 9, 1)
    with torch.no_grad():
        fast = m.conditional_logits(x)
        direct = per_conditional_logits(m, x)
    assert torch.allclose(fast, direct, rtol=0, atol=1e-12)


def test_gradients_equal_those_of_the_per_conditional_definition():
    m = _random_nade(seed=2)
    x = _batch(8, 9, 3)
    m.loss(x)["loss"].backward()
    fast = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad()
    from genzoo.ops.numerics import bernoulli_log_likelihood

    (-bernoulli_log_likelihood(per_conditional_logits(m, x), x).mean()).backward()
    for k, p in m.named_parameters():
        assert torch.allclose(fast[k], p.grad, rtol=0, atol=1e-12), k


def test_evaluation_without_gradients_equals_the_autograd_path():
    m = _random_nade(seed=4)
    x = _batch(23, 9, 5)
    with_graph = m.log_prob(x)
    assert with_graph.requires_grad
    with torch.no_grad():
        without = m.log_prob(x)
    assert torch.allclose(without, with_graph.detach(), rtol=0, atol=1e-12)


def test_input_gradients_equal_those_of_the_per_conditional_definition():
    """The hand-written backward also returns d l / d x (used by the autoregressive-property
    checks); compare it with autograd through the literal definition."""
    m = _random_nade(seed=6)
    x = _batch(5, 9, 7).requires_grad_()
    w = torch.randn(5, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    (m.conditional_logits(x) * w).sum().backward()
    fast = x.grad.clone()
    x.grad = None
    (per_conditional_logits(m, x) * w).sum().backward()
    assert torch.allclose(fast, x.grad, rtol=0, atol=1e-12)


def test_sampler_uses_the_same_conditionals():
    """The sampler draws all uniforms u (n, D) first and sets x_d = [u_d < p(x_d = 1 | x_<d)]
    along its running recursion; replaying the same uniforms against conditional_logits of the
    returned samples must give back exactly those samples."""
    m = _random_nade(d=12, h=7, seed=6)
    x = m.sample(20, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        logits = m.conditional_logits(x)
    u = torch.rand((20, 12), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.equal(x, (u < torch.sigmoid(logits)).double())
