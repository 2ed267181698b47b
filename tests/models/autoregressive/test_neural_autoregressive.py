"""Neural autoregressive network specifics: the masked layer equals the paper's group-by-group
definition, it reduces to the FVSBN without hidden units, and masks never touch the weights."""

from __future__ import annotations

import pytest
import torch
from test_autoregressive_properties import randomize

from genzoo.core.errors import ConfigError
from genzoo.models.autoregressive.fvsbn import FVSBN, FVSBNConfig
from genzoo.models.autoregressive.neural_autoregressive import (
    NANConfig,
    NeuralAutoregressiveNetwork,
)


def _random_nan(d: int = 7, g: int = 3, seed: int = 0, **kw) -> NeuralAutoregressiveNetwork:
    m = NeuralAutoregressiveNetwork(NANConfig(n_visible=d, hidden_per_group=g, **kw))
    return randomize(m, seed)


def _batch(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, d), 0.5, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(seed))


def test_masked_layer_equals_the_group_by_group_definition():
    d, g = 7, 3
    m = _random_nan(d, g)
    x = _batch(10, d, 1)
    # Group j: its own weights on x_0 .. x_j; output i: groups j < i and inputs x_<i.
    groups = [torch.tanh(m.c[j * g:(j + 1) * g] + x[:, : j + 1] @ m.W[j * g:(j + 1) * g, : j + 1].T)
              for j in range(d - 1)]
    cols = []
    for i in range(d):
        logit = m.b[i] + x[:, :i] @ m.A[i, :i]
        for j in range(i):
            logit = logit + groups[j] @ m.V[i, j * g:(j + 1) * g]
        cols.append(logit)
    with torch.no_grad():
        assert torch.allclose(m.conditional_logits(x), torch.stack(cols, 1), rtol=0, atol=1e-12)


def test_without_hidden_units_it_is_the_fvsbn():
    m = _random_nan(6, 0)
    f = FVSBN(FVSBNConfig(n_visible=6)).double()
    with torch.no_grad():
        f.W.copy_(m.A)
        f.b.copy_(m.b)
    x = _batch(20, 6, 2)
    with torch.no_grad():
        assert torch.allclose(m.log_prob(x), f.log_prob(x), rtol=0, atol=1e-12)


def test_masked_weights_get_no_gradient_and_are_never_edited():
    m = _random_nan(6, 2, direct=True)
    stored = {k: v.detach().clone() for k, v in m.named_parameters()}
    m.loss(_batch(16, 6, 3))["loss"].backward()
    for weight, mask in ((m.W, m.mask_in), (m.V, m.mask_out), (m.A, m.mask_direct)):
        off = mask == 0
        assert off.any() and torch.all(weight.grad[off] == 0)
        assert weight.grad[~off].abs().sum() > 0
    for k, v in m.named_parameters():
        assert torch.equal(v.detach(), stored[k]), k
    assert not any(k.startswith("mask") for k in m.state_dict())


def test_without_direct_connections_the_model_still_normalises():
    m = _random_nan(5, 2, direct=False)
    assert m.A is None
    from genzoo.ops.enumeration import binary_states

    with torch.no_grad():
        log_p = m.log_prob(binary_states(torch.arange(32), 5, torch.float64))
    assert abs(float(torch.logsumexp(log_p, 0).exp()) - 1.0) < 1e-6


def test_config_errors():
    with pytest.raises(ConfigError, match="hidden_per_group"):
        NANConfig(n_visible=4, hidden_per_group=-1)
    with pytest.raises(ConfigError, match="direct"):
        NANConfig(n_visible=4, hidden_per_group=0, direct=False)
