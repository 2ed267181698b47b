"""Conditional RBM over row sequences: histories, conditionals and free energies against
enumeration, the exact log-likelihood normalised over every image of a tiny model, CD
training on the digits lowering the exact test NLL, generation by iterated sampling."""

from __future__ import annotations

import math

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
from genzoo.models.boltzmann.crbm import CRBM, CRBMConfig


def tiny(n_hidden=2, order=2, scale=1.0) -> CRBM:
    # 4 rows of 3 pixels: 12 pixels, 4096 images.
    cfg = CRBMConfig(
        n_visible=12, image_height=4, image_width=3, n_hidden=n_hidden, order=order, sample_gibbs=5
    )
    return randomise(CRBM(cfg), scale)


def test_registered_and_shapes():
    spec = get_model_spec("crbm")
    m = spec.build(CRBMConfig(n_visible=64, n_hidden=5))
    assert spec.cls is CRBM and (m.n_frames, m.frame_size) == (8, 8)
    assert m.capabilities == {EXACT_LIKELIHOOD, INPAINT, FRAME_RBMS}
    assert CRBM(CRBMConfig(n_visible=784, n_hidden=50)).capabilities == {INPAINT, FRAME_RBMS}
    assert m.A.shape == (16, 8) and m.B.shape == (16, 5)


def test_config_errors():
    with pytest.raises(ConfigError, match="image_height"):
        CRBM(CRBMConfig(n_visible=28 * 20))
    with pytest.raises(ConfigError, match="order"):
        CRBM(CRBMConfig(n_visible=64, order=8))
    with pytest.raises(ConfigError, match="image_height"):
        CRBM(CRBMConfig(n_visible=64, image_width=7))


def test_histories_are_the_previous_rows_with_blank_rows_before_the_image():
    m = tiny(order=2)
    x = torch.arange(12, dtype=torch.float64).reshape(1, 4, 3)
    hist = m.histories(x)
    assert hist.shape == (1, 4, 6)
    assert torch.equal(hist[0, 0], torch.zeros(6))
    assert torch.equal(hist[0, 1], torch.cat([torch.zeros(3), x[0, 0]]))
    assert torch.equal(hist[0, 3], torch.cat([x[0, 1], x[0, 2]]))


@pytest.mark.parametrize("n_hidden", [2, 5])
def test_conditionals_and_free_energy_match_enumeration(n_hidden):
    m = tiny(n_hidden=n_hidden)
    V, H = states(3), states(n_hidden)
    hist = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    v = V.repeat_interleave(len(H), 0)
    h = H.repeat(len(V), 1)
    logw = -m.energy(v, h, hist.expand(len(v), -1)).reshape(len(V), len(H))
    p_h = torch.softmax(logw, 1) @ H  # p(h_j = 1 | v, hist) for every v
    torch.testing.assert_close(m.p_h_given_v(V, hist.expand(len(V), -1)), p_h)
    p_v = torch.softmax(logw, 0).T @ V  # p(v_i = 1 | h, hist) for every h
    torch.testing.assert_close(m.p_v_given_h(H, hist.expand(len(H), -1)), p_v)
    f = -torch.logsumexp(logw, 1)
    torch.testing.assert_close(m.conditional_free_energy(V, hist.expand(len(V), -1)), f)


@pytest.mark.parametrize("n_hidden", [2, 5])
def test_log_prob_is_normalised_over_all_images(n_hidden):
    m = tiny(n_hidden=n_hidden, scale=1.5)
    lp = m.log_prob(states(12))
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(torch.logsumexp(lp, 0), torch.tensor(0.0, dtype=torch.float64))


def test_cd_training_on_digits_lowers_the_exact_test_nll(tmp_path):
    bundle = binary_digits()
    torch.manual_seed(0)
    m = CRBM(CRBMConfig(n_visible=64, n_hidden=16, order=2, sample_gibbs=20))
    assert_training_lowers_test_nll(m, bundle, "crbm", tmp_path / "crbm.png")


def test_complete_keeps_the_given_rows_and_is_deterministic():
    m = tiny()
    x = (torch.rand(5, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    a = m.complete(x, 2, torch.Generator().manual_seed(1))
    b = m.complete(x, 2, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(a[:, :6], x[:, :6])
    assert torch.equal(m.complete(x, 4), x)
    with pytest.raises(InputError):
        m.complete(x, 5)


def test_generated_rows_follow_the_frame_conditional():
    # One row given blank history: many Gibbs sweeps draw from p(v_1), exactly enumerable.
    m = tiny(n_hidden=2, scale=1.0)
    m.config = m.config.replace(sample_gibbs=30)
    x = torch.zeros(20000, 12, dtype=torch.float64)
    first = m.complete(x, 0, torch.Generator().manual_seed(0))[:, :3]
    V = states(3)
    f = m.conditional_free_energy(V, torch.zeros(8, 6, dtype=torch.float64))
    p = torch.softmax(-f, 0)
    codes = (first * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(codes, minlength=8).double() / len(first)
    assert math.isclose(float(freq.sum()), 1.0)
    torch.testing.assert_close(freq, p, atol=0.015, rtol=0)


def test_inpaint_completes_the_hidden_bottom_rows_and_rejects_other_masks():
    m = tiny()
    x = (torch.rand(4, 12, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    mask = torch.zeros(12, dtype=torch.bool)
    mask[:6] = True
    out = m.inpaint(x, mask, torch.Generator().manual_seed(1), n_samples=2)
    assert out.shape == (2, 4, 12) and torch.equal(out[:, :, :6], x[:, :6].expand(2, -1, -1))
    again = m.complete(x, 2, torch.Generator().manual_seed(1))
    assert torch.equal(out[0], again)
    with pytest.raises(InputError, match="row by row"):
        m.inpaint(x, ~mask)
    # n_steps: the Gibbs sweeps per drawn row, in place of model.sample_gibbs.
    one = m.inpaint(x, mask, torch.Generator().manual_seed(1), n_steps=1)[0]
    assert torch.equal(one, m.complete(x, 2, torch.Generator().manual_seed(1), n_steps=1))
    with pytest.raises(InputError, match="n_steps"):
        m.inpaint(x, mask, n_steps=0)
