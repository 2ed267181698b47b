"""GMMN and GMMN+AE: the kernel convention, the guarded square root, the two phases, a run."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.models.implicit.gmmn import sqrt_mmd
from genzoo.models.implicit.gmmn_ae import GMMNAE, GMMNAEConfig


def test_bandwidths_are_variances_as_in_the_paper():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    s = 5.0  # the paper's kernel exp(-|a - b|^2 / (2 s))

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * s))

    v = (sum(k(a, b) for a in x for b in x) / 4 + k(y[0], y[0])
         - 2 * sum(k(a, y[0]) for a in x) / 2)
    assert float(sqrt_mmd(x, y, (s,))) == pytest.approx(math.sqrt(v), rel=1e-12)


def test_square_root_is_guarded_at_zero():
    x = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    loss = sqrt_mmd(x, x.detach(), (1.0, 4.0))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.sqrt(1e-12)) and torch.isfinite(x.grad).all()


def test_gmmn_ae_phases_train_the_autoencoder_then_only_the_generator():
    torch.manual_seed(0)
    m = GMMNAE(GMMNAEConfig(n_visible=64, ae_hidden=16, n_code=4, hidden=(8,), ae_steps=10))
    (ae, p_ae, s_ae), (gm, p_g, s_g) = m.phases()
    assert (ae, gm) == ("ae", "gmmn")
    assert [s_ae(t) for t in (0, 9, 10)] == [1, 1, 0] and [s_g(t) for t in (0, 9, 10)] == [0, 0, 1]
    x = torch.rand(8, 64)
    m.loss(x, torch.Generator().manual_seed(0), phase="gmmn")["loss"].backward()
    assert all(p.grad is None for p in p_ae)  # codes of the fixed encoder
    assert all(p.grad is not None for p in p_g)
    assert m.sample(3, torch.Generator().manual_seed(0)).shape == (3, 64)


def test_gmmn_on_digits_moves_its_samples_towards_the_data(train_on_digits):
    _, before, after = train_on_digits(
        "gmmn", ["model.hidden=32,64", "model.n_latent=4", "model.bandwidths_sq=1,4,16",
                 "train.optimizer=adam", "train.lr=3e-3"], 200)
    assert math.isfinite(after) and after < 0.3 * before


def test_gmmn_ae_on_digits_learns_to_reconstruct_and_then_to_sample(train_on_digits):
    _model, before, after = train_on_digits(
        "gmmn-ae", ["model.ae_hidden=64", "model.n_code=8", "model.hidden=32,64",
                    "model.ae_steps=200", "model.bandwidths_sq=0.1,0.5,2",
                    "train.optimizer=adam", "train.lr=3e-3"], 400)
    assert math.isfinite(after) and after < 0.3 * before
