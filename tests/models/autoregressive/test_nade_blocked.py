"""NADE's blocked recursion (k positions per step, see nade.py) against the unblocked one: the
running pre-activation a_{d+1} = a_d + W[:, d] x_d one position at a time, differentiated by
autograd. Values and every gradient must agree to rounding for any D and block size, including
D not a multiple of the block, D smaller than the block and D = 1."""

from __future__ import annotations

import pytest
import torch

from genzoo.models.autoregressive.nade import (
    _BLOCK,
    NADE,
    NADEConfig,
    _forward_recursion,
    _NADELogits,
)

TOL = {torch.float64: {"rtol": 1e-11, "atol": 1e-11}, torch.float32: {"rtol": 1e-5, "atol": 1e-5}}


def _unblocked_logits(x, W, V, b, c):
    """The O(DH) recursion one position at a time (the pre-blocking implementation), built from
    autograd-differentiable ops."""
    a = c.expand(x.shape[0], -1)
    cols = []
    for d in range(x.shape[1]):
        cols.append(torch.sigmoid(a) @ V[d] + b[d])
        a = a + x[:, d:d + 1] * W[:, d]
    return torch.stack(cols, 1)


def _problem(n, d, h, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, d), 0.5, dtype=dtype), generator=g)
    params = [torch.randn(*shape, dtype=dtype, generator=g) for shape in ((h, d), (d, h), (d,), (h,))]
    w = torch.randn(n, d, dtype=dtype, generator=g)  # a generic upstream gradient
    return x, params, w


def _grads(fn, x, params, w, want_x):
    x = x.clone().requires_grad_(want_x)
    params = [p.clone().requires_grad_() for p in params]
    inputs = [x, *params] if want_x else params
    logits = fn(x, *params)
    # materialize_grads: with D = 1 the reference never uses W, its gradient is zero, not None.
    grads = torch.autograd.grad((logits * w).sum(), inputs, allow_unused=True,
                                materialize_grads=True)
    return logits.detach(), ([] if want_x else [None]) + list(grads)


CASES = [  # (D, block)
    (11, 4),  # D not a multiple of the block: the last block is padded
    (12, 4),  # D a multiple of the block
    (3, 8),  # D smaller than the block
    (1, 8),
    (1, 1),
    (7, 1),  # block 1 is the unblocked recursion itself
    (9, _BLOCK),  # the block size the model uses
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("want_x", [False, True])
@pytest.mark.parametrize(("d", "block"), CASES)
def test_blocked_values_and_gradients_equal_the_unblocked_recursion(d, block, want_x, dtype):
    x, params, w = _problem(6, d, 5, dtype, seed=d * 10 + block)
    ref, ref_grads = _grads(_unblocked_logits, x, params, w, want_x)
    out, grads = _grads(lambda *t: _NADELogits.apply(*t, block), x, params, w, want_x)
    torch.testing.assert_close(out, ref, **TOL[dtype])
    names = ["x", "W", "V", "b", "c"]
    for name, got, expected in zip(names, grads, ref_grads):
        if name == "x" and not want_x:
            assert got is None and expected is None
            continue
        assert got.shape == expected.shape, name
        torch.testing.assert_close(got, expected, **TOL[dtype], msg=name)
    with torch.no_grad():  # the evaluation path keeps only the running a, not every block start
        torch.testing.assert_close(_forward_recursion(x, *params, block=block), ref, **TOL[dtype])


@pytest.mark.parametrize("block", [1, 3, 8])
def test_input_gradient_is_exactly_zero_at_and_after_each_conditional(block):
    """d l_i / d x_j = 0 exactly for j >= i, also for j in the same block as i (the in-block
    sums are masked, not cancelled)."""
    x, params, _ = _problem(2, 10, 4, torch.float64, seed=block)
    x.requires_grad_()
    for i in range(10):
        (g_x,) = torch.autograd.grad(_NADELogits.apply(x, *params, block)[:, i].sum(), x)
        assert torch.all(g_x[:, i:] == 0.0), i
        if i > 0:
            assert torch.all(g_x[:, :i].abs().amax(0) > 0), i


def test_a_second_backward_through_the_same_graph_gives_the_same_gradients():
    """The backward pass recomputes h into its own buffer; the saved tensors stay intact, so
    retain_graph (as torch.autograd.functional.jacobian uses it) works."""
    m = NADE(NADEConfig(n_visible=13, n_hidden=6)).double()
    x = torch.bernoulli(torch.full((4, 13), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(0))
    loss = m.loss(x)["loss"]
    first = torch.autograd.grad(loss, list(m.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, list(m.parameters()))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_frozen_parameters_and_an_input_that_requires_grad():
    m = NADE(NADEConfig(n_visible=9, n_hidden=4)).double().requires_grad_(False)
    x, _, w = _problem(3, 9, 4, torch.float64, seed=5)
    x.requires_grad_()
    (m.conditional_logits(x) * w).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    (_unblocked_logits(x_ref, m.W, m.V, m.b, m.c) * w).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-11, atol=1e-11)
