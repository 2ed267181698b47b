"""VAE options: the DReG gradient for IWAE (Tucker et al. 2019) and the convolutional
encoder/decoder for 28x28 images."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.models.directed.vae import VAE, VAEConfig


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(seed=0, **kw) -> VAE:
    kw.setdefault("hidden", (8,))
    kw.setdefault("init_std", 0.7)
    return VAE(VAEConfig(n_visible=6, n_latent=2, objective="iwae", **kw), gen(seed)).double()


def binary(n=5, d=6, seed=1):
    return (torch.rand(n, d, generator=gen(seed)) < 0.4).double()


def grads(model, x, seed):
    model.zero_grad()
    out = model.loss(x, gen(seed))
    out["loss"].backward()
    return out, {k: p.grad.clone() for k, p in model.named_parameters()}


def test_dreg_keeps_the_value_and_the_decoder_gradient_of_iwae():
    x = binary()
    iwae, dreg = make(iwae_k=8), make(iwae_k=8, iwae_gradient="dreg")
    out_i, g_i = grads(iwae, x, 3)
    out_d, g_d = grads(dreg, x, 3)
    for key in ("loss", "iwae", "elbo", "kl"):
        assert torch.allclose(out_i[key].detach(), out_d[key].detach()), key
    for k in g_i:
        if k.startswith("decoder"):
            assert torch.allclose(g_i[k], g_d[k]), k
    assert any(not torch.allclose(g_i[k], g_d[k]) for k in g_i if k.startswith("encoder"))


def _encoder_grads(model, x, reps, offset):
    rows = []
    for r in range(reps):
        _, g = grads(model, x, offset + r)
        rows.append(torch.cat([v.flatten() for k, v in g.items() if k.startswith("encoder")]))
    return torch.stack(rows)


def test_dreg_encoder_gradient_is_unbiased_for_iwae():
    x = binary(n=6)
    k, reps = 20, 600
    g_i = _encoder_grads(make(iwae_k=k), x, reps, 0)
    g_d = _encoder_grads(make(iwae_k=k, iwae_gradient="dreg"), x, reps, 10_000)
    # Same expectation: the standardised differences of the means behave like N(0, 1), so
    # their sum of squares is about the number of parameters p (chi-square, sd sqrt(2p)).
    se = torch.sqrt(g_i.var(0) / reps + g_d.var(0) / reps)
    zscores = (g_i.mean(0) - g_d.mean(0)) / se
    p = len(zscores)
    assert float((zscores**2).sum()) < p + 5 * (2 * p) ** 0.5, zscores


def test_dreg_encoder_gradient_vanishes_at_the_exact_posterior():
    # Linear-Gaussian toy with one latent: p(x|z) = N(w z + b, s^2 I) has the Gaussian
    # posterior N(m(x), 1/prec), prec = 1 + |w|^2 / s^2, which a linear encoder represents
    # exactly. There log w_i = log p(x) for every draw, so the DReG encoder gradient is 0 on
    # every draw while IWAE's still carries the score-function noise (Tucker et al. 2019, 4).
    cfg = {"hidden": (), "decoder": "gaussian", "iwae_k": 20}
    models = [VAE(VAEConfig(n_visible=3, n_latent=1, objective="iwae", iwae_gradient=g, **cfg),
                  gen(0)).double() for g in ("iwae", "dreg")]
    w = torch.tensor([1.0, -0.5, 0.8], dtype=torch.float64)
    b = torch.tensor([0.2, 0.0, -0.3], dtype=torch.float64)
    x = torch.randn(4, 3, generator=gen(5), dtype=torch.float64)
    for model in models:
        with torch.no_grad():
            dec = model.decoder[0]
            dec.weight.zero_()
            dec.weight[:3, 0] = w
            dec.bias.zero_()
            dec.bias[:3] = b
            s2 = float(model.decode(torch.zeros(1, 1, dtype=torch.float64))[1, 0, 0].exp())
            prec = 1 + float(w @ w) / s2
            enc = model.encoder[0]
            enc.weight.zero_()
            enc.weight[0] = w / (s2 * prec)
            enc.bias.zero_()
            enc.bias[0] = -float(w @ b) / (s2 * prec)
            enc.bias[1] = -math.log(prec)
    g_i = _encoder_grads(models[0], x, 50, 0)
    g_d = _encoder_grads(models[1], x, 50, 0)
    assert float(g_d.abs().max()) < 1e-10
    assert float(g_i.var(0).sum()) > 1e-4


def test_dreg_needs_the_iwae_objective():
    with pytest.raises(ConfigError, match="objective=iwae"):
        VAEConfig(iwae_gradient="dreg")


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_conv_architecture_shapes_training_and_many_draws(decoder):
    cfg = VAEConfig(n_visible=784, n_latent=3, architecture="conv", conv_channels=(4, 8),
                    decoder=decoder)
    model = VAE(cfg, gen(0))
    x = (torch.rand(3, 784, generator=gen(1)) < 0.3).float()
    if decoder == "gaussian":
        x = torch.rand(3, 784, generator=gen(1))
    z = torch.randn(5, 3, 3, generator=gen(2))
    many = model.log_joint(x, z)
    assert many.shape == (5, 3)
    assert torch.allclose(many[1], model.log_joint(x, z[1]), atol=1e-4)
    assert model.sample(2, gen(3)).shape == (2, 784)
    model.init_from_data(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(model.loss(x, gen(4))["loss"].detach())
    for step in range(6):
        opt.zero_grad()
        model.loss(x, gen(step))["loss"].backward()
        opt.step()
    assert float(model.loss(x, gen(4))["loss"].detach()) < first
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def test_conv_architecture_refuses_other_image_sizes():
    with pytest.raises(ConfigError, match="28x28"):
        VAEConfig(n_visible=64, architecture="conv")
