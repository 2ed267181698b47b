"""FVSBN specifics: each conditional is the logistic regression of the paper, and the mask is
applied in the forward pass, never to the stored weights."""

from __future__ import annotations

import torch

from genzoo.models.autoregressive.fvsbn import FVSBN, FVSBNConfig


def _model(d: int = 6) -> FVSBN:
    return FVSBN(FVSBNConfig(n_visible=d, init_std=1.0), generator=torch.Generator().manual_seed(0))


def test_conditionals_are_logistic_regressions_on_the_preceding_variables():
    m = _model().double()
    x = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        m.b.normal_(generator=torch.Generator().manual_seed(2))
        logits = m.conditional_logits(x)
    for d in range(6):
        direct = m.b[d] + sum((m.W[d, j] * x[:, j] for j in range(d)), torch.zeros(4).double())
        assert torch.allclose(logits[:, d], direct, atol=1e-12)


def test_mask_is_applied_in_the_forward_pass_not_to_the_weights():
    m = _model()
    upper = torch.ones(6, 6, dtype=torch.bool).triu()
    stored = m.W.detach()[upper].clone()
    assert stored.abs().sum() > 0  # the initialiser wrote the whole matrix
    x = torch.bernoulli(torch.full((8, 6), 0.5), generator=torch.Generator().manual_seed(3))
    m.loss(x)["loss"].backward()
    assert torch.all(m.W.grad[upper] == 0) and m.W.grad[~upper].abs().sum() > 0
    with torch.no_grad():
        m.W.sub_(0.1 * m.W.grad)
    assert torch.equal(m.W.detach()[upper], stored)
    assert "mask" not in m.state_dict()  # rebuilt from n_visible, not checkpointed
