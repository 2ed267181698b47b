"""RNN-RBM over row sequences: the recurrence and per-step biases, conditionals against
enumeration, the exact log-likelihood normalised over every image of a tiny model, gradients
reaching the RNN through the biases (CD through time), training on the digits, generation."""

from __future__ import annotations

import pytest
import torch
from _sequence_checks import (
    assert_training_lowers_test_nll,
    binary_digits,
    randomise,
    states,
)

from genzoo.core.errors import ConfigError, InputError
from genzoo.core.protocols import EXACT_LIKELIHOOD, FRAME_RBMS, INPAINT
from genzoo.core.registry import get_model_spec
from genzoo.models.boltzmann._sequences import frame_free_energy
from genzoo.models.boltzmann.rnn_rbm import RNNRBM, RNNRBMConfig


def tiny(n_hidden=2, scale=1.0) -> RNNRBM:
    cfg = RNNRBMConfig(
        n_visible=12,
        image_height=4,
        image_width=3,
        n_hidden=n_hidden,
        n_recurrent=3,
        sample_gibbs=5,
    )
    return randomise(RNNRBM(cfg), scale)


def test_registered_and_capabilities():
    spec = get_model_spec("rnn-rbm")
    m = spec.build(RNNRBMConfig(n_visible=64, n_hidden=5, n_recurrent=4))
    assert spec.cls is RNNRBM and (m.n_frames, m.frame_size) == (8, 8)
    assert m.capabilities == {EXACT_LIKELIHOOD, INPAINT, FRAME_RBMS}
    assert RNNRBM(RNNRBMConfig(n_visible=784, n_hidden=50)).capabilities == {INPAINT, FRAME_RBMS}
    with pytest.raises(ConfigError, match="image_height"):
        RNNRBM(RNNRBMConfig(n_visible=28 * 20))


def test_biases_follow_the_recurrence():
    m = tiny()
    x = (torch.rand(2, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    seq = m.frames(x)
    b_v, b_h = m.biases(seq)
    u = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(4):
        torch.testing.assert_close(b_v[:, t], m.b_v + u @ m.W_uv)
        torch.testing.assert_close(b_h[:, t], m.b_h + u @ m.W_uh)
        u = torch.tanh(m.b_u + u @ m.W_uu + seq[:, t] @ m.W_vu)


@pytest.mark.parametrize("n_hidden", [2, 5])
def test_step_free_energy_matches_enumeration(n_hidden):
    m = tiny(n_hidden=n_hidden)
    V, H = states(3), states(n_hidden)
    b_v, b_h = m.step_biases(torch.tensor([[0.3, -0.5, 0.9]], dtype=torch.float64))
    v = V.repeat_interleave(len(H), 0)
    h = H.repeat(len(V), 1)
    energy = -((v @ m.W) * h).sum(-1) - v @ b_v[0] - h @ b_h[0]
    f = -torch.logsumexp(-energy.reshape(len(V), len(H)), 1)
    torch.testing.assert_close(frame_free_energy(V, m.W, b_v.expand(8, -1), b_h.expand(8, -1)), f)


@pytest.mark.parametrize("n_hidden", [2, 5])
def test_log_prob_is_normalised_over_all_images(n_hidden):
    m = tiny(n_hidden=n_hidden, scale=1.5)
    lp = m.log_prob(states(12))
    torch.testing.assert_close(torch.logsumexp(lp, 0), torch.tensor(0.0, dtype=torch.float64))


def test_cd_gradient_flows_through_time_into_the_rnn():
    m = tiny()
    x = (torch.rand(6, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    m.loss(x, torch.Generator().manual_seed(1))["loss"].backward()
    for name in ("W_uu", "W_vu", "b_u", "W_uv", "W_uh", "W", "b_v", "b_h"):
        grad = getattr(m, name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_training_on_digits_lowers_the_exact_test_nll(tmp_path):
    bundle = binary_digits()
    torch.manual_seed(0)
    m = RNNRBM(
        RNNRBMConfig(n_visible=64, n_hidden=16, n_recurrent=16, sample_gibbs=20, init_std=0.05)
    )

    assert_training_lowers_test_nll(m, bundle, "rnn-rbm", tmp_path / "rnn_rbm.png")
    done = m.complete(bundle.test.x[:8], 4, torch.Generator().manual_seed(1))
    assert torch.equal(done[:, :32], bundle.test.x[:8, :32])


def test_complete_checks_and_determinism():
    m = tiny()
    x = (torch.rand(3, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    assert torch.equal(
        m.complete(x, 1, torch.Generator().manual_seed(2)),
        m.complete(x, 1, torch.Generator().manual_seed(2)),
    )
    with pytest.raises(InputError):
        m.complete(x, -1)


def test_inpaint_completes_the_hidden_bottom_rows():
    m = tiny()
    x = (torch.rand(3, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[:, :3] = True
    out = m.inpaint(x, mask, torch.Generator().manual_seed(1))
    assert out.shape == (1, 3, 12) and torch.equal(out[0, :, :3], x[:, :3])
    mask[0, 5] = True
    with pytest.raises(InputError, match="row by row"):
        m.inpaint(x, mask)
