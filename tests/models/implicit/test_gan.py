"""GAN and conditional GAN: the losses on logits, the DCGAN networks, p(x|y), a real run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genzoo.core.errors import ConfigError, InputError
from genzoo.models.implicit.conditional_gan import ConditionalGAN, ConditionalGANConfig
from genzoo.models.implicit.dcgan import ConvDiscriminator, ConvGenerator
from genzoo.models.implicit.gan import GAN, GANConfig


def tiny(**kw) -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(n_visible=64, n_latent=4, g_hidden=(8,), d_hidden=(8,), **kw))


def test_losses_equal_the_value_function_written_with_probabilities():
    x = torch.rand(6, 64, generator=torch.Generator().manual_seed(1))
    for kind in ("non_saturating", "minimax"):
        m = tiny(generator_loss=kind).double()
        out = {p: m.loss(x.double(), torch.Generator().manual_seed(2), phase=p)
               for p in ("d", "g")}
        g = torch.Generator().manual_seed(2)
        z = torch.randn(6, 4, generator=g, dtype=torch.float64)
        d_real = torch.sigmoid(m.logits(x.double()))
        d_fake = torch.sigmoid(m.logits(m.generate(z)))
        v = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
        assert float(out["d"]["loss"].detach()) == pytest.approx(-float(v.detach()), rel=1e-10)
        want = torch.log(1 - d_fake).mean() if kind == "minimax" else -torch.log(d_fake).mean()
        assert float(out["g"]["loss"].detach()) == pytest.approx(float(want.detach()), rel=1e-10)
        assert float(out["d"]["real_prob"]) == pytest.approx(float(d_real.mean().detach()))


def test_losses_stay_finite_when_the_discriminator_is_certain():
    m = tiny()
    with torch.no_grad():
        m.D.net[-1].bias.fill_(200.0)  # D(x) = 1 - 1e-87: log(1 - D) underflows in probabilities
    x = torch.rand(4, 64)
    for phase in ("d", "g"):
        out = m.loss(x, torch.Generator().manual_seed(0), phase=phase)
        out["loss"].backward()
        assert torch.isfinite(out["loss"])
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert float(m.loss(x, phase="d")["loss"].detach()) == pytest.approx(200.0, rel=1e-3)


def test_non_saturating_loss_keeps_the_generator_gradient_when_d_rejects_samples():
    grads = {}
    for kind in ("non_saturating", "minimax"):
        m = tiny(generator_loss=kind)
        with torch.no_grad():
            m.D.net[-1].bias.fill_(-8.0)  # D(G(z)) ~ 3e-4: the early-training regime
        m.loss(torch.rand(4, 64), torch.Generator().manual_seed(0), phase="g")["loss"].backward()
        grads[kind] = float(sum(p.grad.norm() for p in m.G.parameters()))
    assert grads["non_saturating"] > 100 * grads["minimax"]


def test_phases_are_k_discriminator_steps_then_one_generator_step():
    m = tiny(d_steps=3)
    (d, pd, kd), (g, pg, kg) = m.phases()
    assert (d, kd, g, kg) == ("d", 3, "g", 1)
    assert {id(p) for p in pd} == {id(p) for p in m.D.parameters()}
    assert {id(p) for p in pg} == {id(p) for p in m.G.parameters()}


def test_dcgan_networks_follow_the_paper():
    torch.manual_seed(0)
    m = GAN(GANConfig(n_visible=784, architecture="dcgan", width=64))
    assert isinstance(m.G, ConvGenerator) and isinstance(m.D, ConvDiscriminator)
    convt = [l for l in m.G.modules() if isinstance(l, nn.ConvTranspose2d)]
    assert len(convt) == 2 and all(l.stride == (2, 2) for l in convt)
    slopes = {l.negative_slope for l in m.D.modules() if isinstance(l, nn.LeakyReLU)}
    assert slopes == {0.2}
    w = torch.cat([l.weight.detach().flatten() for l in m.modules()
                   if isinstance(l, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))])
    assert float(w.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(w.std()) == pytest.approx(0.02, rel=0.02)
    x = m.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 784) and float(x.min()) > 0 and float(x.max()) < 1
    with torch.no_grad():
        assert m.logits(x).shape == (3,)
    with pytest.raises(ConfigError, match="side divisible by 4"):
        GAN(GANConfig(n_visible=100, architecture="dcgan"))


def test_conditional_sampling_follows_the_label():
    torch.manual_seed(0)
    m = ConditionalGAN(ConditionalGANConfig(n_visible=64, n_latent=4, g_hidden=(16,),
                                            d_hidden=(16,)))
    y3 = torch.full((5,), 3)
    a = m.sample(5, torch.Generator().manual_seed(0), y=y3)
    b = m.sample(5, torch.Generator().manual_seed(0), y=y3)
    c = m.sample(5, torch.Generator().manual_seed(0), y=torch.full((5,), 7))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert m.sample(4, torch.Generator().manual_seed(0)).shape == (4, 64)
    with pytest.raises(InputError, match="labels"):
        m.loss(torch.rand(4, 64))
    with pytest.raises(InputError):
        m.loss(torch.rand(4, 64), y=torch.full((4,), 10))
    assert m.needs_labels


def test_gan_on_digits_moves_its_samples_towards_the_data(tmp_path, train_on_digits):
    # 300 Adam steps of a small MLP GAN on the 8x8 digits: the unbiased MMD between samples
    # and held-out digits falls well beyond its sampling noise (measured: 1.69 -> 0.67).
    _, before, after = train_on_digits(
        "gan", ["model.g_hidden=64", "model.d_hidden=64", "model.n_latent=8",
                "train.optimizer=adam", "train.lr=1e-3", "train.momentum=0.5"], 300)
    assert math.isfinite(after) and after < 0.5 * before
