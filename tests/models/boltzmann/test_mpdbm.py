"""The multi-prediction DBM: its unrolled inference is the DBM's mean field, the loss
back-propagates through it, fill-in keeps the observed pixels, and it learns to classify."""

from __future__ import annotations

import pytest
import torch
from _sequence_checks import train_on_binary_digits

from genzoo.core.errors import ConfigError, InputError
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.mpdbm import MPDBM, MPDBMConfig


def _mpdbm(**cfg) -> MPDBM:
    g = torch.Generator().manual_seed(0)
    m = MPDBM(MPDBMConfig(n_visible=6, hidden=(5, 4), n_classes=3, init_std=1.0, **cfg),
              generator=g).double()
    with torch.no_grad():
        for b in m.b:
            b.normal_(0.0, 0.5, generator=g)
    return m


def test_inference_with_v_observed_and_no_label_coupling_is_dbm_mean_field():
    m = _mpdbm(mf_steps=300)
    with torch.no_grad():
        m.U.zero_()
    dbm = DBM(DBMConfig(n_visible=6, hidden=(5, 4))).double()
    dbm.load_state_dict({**dbm.state_dict(), **{k: v for k, v in m.state_dict().items()
                                                if k.startswith(("W.", "b."))}})
    v = torch.bernoulli(torch.full((7, 6), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, q_mp, _ = m.infer(v, torch.ones_like(v, dtype=torch.bool))
        q_dbm, _ = dbm.mean_field(v, max_iters=1000, tol=1e-13)
    for a, b in zip(q_mp, q_dbm):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=0)


def test_loss_backpropagates_through_the_unrolled_inference():
    m = _mpdbm(mf_steps=3)
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((20, 6), 0.5, dtype=torch.float64), generator=g)
    out = m.loss(x, generator=g, y=torch.arange(20) % 3)
    out["loss"].backward()
    assert out["loss"] > 0 and {"visible_nll", "label_nll", "label_error"} <= set(out)
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(InputError):
        m.loss(x, y=torch.full((20,), 3))


def test_label_weight_scales_the_label_term_only():
    x = torch.bernoulli(torch.full((20, 6), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(2))
    y = torch.arange(20) % 3
    plain = _mpdbm(mf_steps=3).loss(x, torch.Generator().manual_seed(3), y)
    heavy = _mpdbm(mf_steps=3, label_weight=7.0).loss(x, torch.Generator().manual_seed(3), y)
    torch.testing.assert_close(heavy["visible_nll"], plain["visible_nll"])
    torch.testing.assert_close(heavy["label_nll"], plain["label_nll"])
    assert plain["label_nll"] > 0
    torch.testing.assert_close(heavy["loss"], plain["visible_nll"] + 7.0 * plain["label_nll"])
    with pytest.raises(ConfigError, match="label_weight"):
        MPDBMConfig(n_visible=6, label_weight=0.0)


def test_fill_in_keeps_observed_pixels():
    m = _mpdbm()
    v = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64),
                        generator=torch.Generator().manual_seed(2))
    observed = torch.zeros_like(v, dtype=torch.bool)
    observed[:, :3] = True
    out = m.fill_in(v, observed)
    assert torch.equal(out[:, :3], v[:, :3])
    assert ((out[:, 3:] > 0) & (out[:, 3:] < 1)).all()
    v_nan = v.clone()
    v_nan[:, 3:] = float("nan")
    draws = m.inpaint(v_nan, observed, generator=torch.Generator().manual_seed(0), n_samples=2)
    assert draws.shape == (2, 4, 6) and torch.equal(draws[:, :, :3], v[:, :3].expand(2, -1, -1))
    assert ((draws == 0) | (draws == 1)).all()


def test_learns_to_classify_digits(tmp_path):
    model, bundle = train_on_binary_digits("mp-dbm", MPDBM, [
        "model.hidden=32,32", "model.mf_steps=5", "train.max_steps=200", "train.epochs=1000",
        "train.batch_size=50", "train.lr=0.01", "train.optimizer=adam", "train.lr_schedule=constant",
    ], tmp_path / "run")
    error = float((model.classify(bundle.valid.x) != bundle.valid.y).double().mean())
    assert error < 0.5  # chance is 0.9 on ten classes
