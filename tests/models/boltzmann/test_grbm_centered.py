"""The centred Gaussian-Bernoulli RBM (model.centered): the same distributions as the plain GRBM
with hidden bias c - W^T (mu / sigma^2), the centred CD gradient against autograd, the offset set
by init_from_data and carried by checkpoints, and training from it."""

from __future__ import annotations

import dataclasses
import itertools

import torch
from _sequence_checks import assert_cd1_backward_is_autograd, exact_nll

from genzoo.evaluation import exact_log_partition
from genzoo.models.boltzmann.grbm import GRBM, GRBMConfig


def centred_grbm(d=3, h=4, seed=0, **kw) -> GRBM:
    g = torch.Generator().manual_seed(seed)
    cfg = GRBMConfig(n_visible=d, n_hidden=h, init_std=0.7, centered=True, **kw)
    m = GRBM(cfg, generator=g).double()
    with torch.no_grad():
        m.b.copy_(torch.randn(d, generator=g, dtype=torch.float64))
        m.c.copy_(torch.randn(h, generator=g, dtype=torch.float64))
        m.mu.copy_(2.0 * torch.randn(d, generator=g, dtype=torch.float64))
        m.set_log_var(0.5 * torch.randn(d, generator=g, dtype=torch.float64))
    return m


def plain_twin(m: GRBM) -> GRBM:
    """The uncentred GRBM with the centred one's W, b, sigma and hidden bias c - W^T mu/sigma^2."""
    p = GRBM(dataclasses.replace(m.config, centered=False)).double()
    with torch.no_grad():
        p.W.copy_(m.W)
        p.b.copy_(m.b)
        p.log_var_logit.copy_(m.log_var_logit)
        p.c.copy_(m.hidden_bias())
    return p


@torch.no_grad()
def test_centred_model_is_the_plain_model_with_the_effective_hidden_bias():
    m = centred_grbm()
    p = plain_twin(m)
    assert p.mu is None and "mu" not in p.state_dict()
    v = torch.randn(6, 3, dtype=torch.float64)
    h = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    torch.testing.assert_close(m.free_energy(v), p.free_energy(v))
    torch.testing.assert_close(m.p_h_given_v(v), p.p_h_given_v(v))
    torch.testing.assert_close(m.energy(v[:1].expand(16, -1), h), p.energy(v[:1].expand(16, -1), h))
    torch.testing.assert_close(m.hidden_free_energy(h), p.hidden_free_energy(h))
    assert exact_log_partition(m).value == exact_log_partition(p).value
    # and the hidden input really reads v - mu
    prec = torch.exp(-m.log_var)
    torch.testing.assert_close(m.p_h_given_v(v), torch.sigmoid(m.c + ((v - m.mu) * prec) @ m.W))


def test_centred_cd_gradient_equals_autograd_of_the_centred_surrogate():
    """Autograd through the centred parameterisation (c, W, sigma enter the effective hidden bias)
    is the centred gradient; the closed-form backward must equal it for every parameter."""
    m = centred_grbm(std_lr_scale=1.0)
    x = torch.randn(9, 3, dtype=torch.float64) + 1.5
    v_model = assert_cd1_backward_is_autograd(m, x)
    # the W-gradient differs from the plain model's (same samples): centring changes learning
    p = plain_twin(m)
    (p.free_energy(x).mean() - p.free_energy(v_model).mean()).backward()
    assert not torch.allclose(p.W.grad, m.W.grad)


@torch.no_grad()
def test_init_from_data_sets_the_offset_to_the_data_mean():
    x = torch.randn(200, 3, dtype=torch.float64) * 2 + torch.tensor([5.0, -3.0, 0.5])
    m = GRBM(GRBMConfig(n_visible=3, n_hidden=4, centered=True)).double()
    assert torch.equal(m.mu, torch.zeros(3, dtype=torch.float64))
    m.init_from_data(x)
    torch.testing.assert_close(m.mu, x.mean(0))
    # at the start (small W) the hidden inputs sit near c whatever the data offset
    assert float((m._hidden_input(x * torch.exp(-m.log_var)) - m.c).abs().max()) < 0.1


def test_training_from_the_offset_lowers_the_exact_nll_and_checkpoints_carry_it(tmp_path):
    """Digits grey levels, uncentred (pixels in [0, 1], many constant): 16 centred hidden units
    trained by the Trainer lower the exact held-out NLL; the checkpoint restores mu exactly."""
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer
    from genzoo.training.checkpoint import load_model

    cfg = RunConfig.default("grbm").with_overrides(
        ["data.name=digits", "data.binarize=none", "model.n_hidden=16", "model.centered=true",
         "train.epochs=4", "train.progress=false", "train.grid_samples=0"]
    )
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)
    m = GRBM(cfg.model)
    m.init_from_data(bundle.train.x)
    before = exact_nll(m, bundle.valid.x)
    Trainer(m, cfg, bundle, tmp_path / "run").fit()
    torch.testing.assert_close(m.mu, bundle.train.x.to(m.mu).mean(0))  # the offset stays put
    after = exact_nll(m, bundle.valid.x)
    assert after < before - 1.0
    loaded, _ = load_model(tmp_path / "run")
    assert loaded.config.centered and torch.equal(loaded.mu, m.mu)
    x = bundle.valid.x[:50].to(m.W)
    torch.testing.assert_close(loaded.free_energy(x), m.eval().free_energy(x))
