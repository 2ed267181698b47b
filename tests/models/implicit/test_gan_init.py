"""GAN options against the MNIST collapse (issue 6): initialisation, D's input range, instance
noise, one-sided label smoothing, minibatch standard deviation; and the phased training
contract the collapse was first blamed on."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.models.implicit._maxout import DropoutMLPDiscriminator, minibatch_std_feature
from genzoo.models.implicit.dcgan import MLPDiscriminator
from genzoo.models.implicit.gan import GAN, GANConfig
from genzoo.run_config import RunConfig


def small(**kw) -> GAN:
    kw = {"n_visible": 64, "n_latent": 4, "g_hidden": (8,), "d_hidden": (8,), **kw}
    return GAN(GANConfig(**kw), torch.Generator().manual_seed(0)).double()


def spread_over_z(m: GAN, n: int = 256) -> float:
    """Mean over pixels of the standard deviation of G(z) over z."""
    z = torch.randn(n, m.config.n_latent, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float(m.generate(z).std(0).mean())


def test_dcgan_init_leaves_the_paper_sized_mlp_generator_almost_constant_in_z():
    # G 100 -> 1200 -> 1200 -> 784 (the benchmark's): N(0, 0.02^2) shrinks every layer's
    # activations (the output's spread over z is a few thousandths; MNIST pixels spread ~0.19),
    # He initialisation keeps their scale, so G(z) starts as varied as the data.
    cfg = {"n_visible": 784, "g_hidden": (1200, 1200), "d_hidden": (240, 240)}
    normal = GAN(GANConfig(**cfg), torch.Generator().manual_seed(0))
    he = GAN(GANConfig(**cfg, init="he"), torch.Generator().manual_seed(0))
    assert spread_over_z(normal) < 0.02
    assert spread_over_z(he) > 0.1


@pytest.mark.parametrize("d_activation", ["leaky_relu", "maxout"])
def test_he_init_scales_each_layer_by_its_fan_in_and_activation(d_activation):
    m = GAN(GANConfig(n_visible=400, n_latent=300, g_hidden=(500,), d_hidden=(300,),
                      init="he", d_activation=d_activation, d_dropout=0.5),
            torch.Generator().manual_seed(0))
    leaky = math.sqrt(2.0 / (1.0 + 0.2**2))
    layers = [(m.G.net[0], math.sqrt(2.0)), (m.G.net[2], 1.0)]  # ReLU, then the sigmoid
    first_d = m.D.hidden[0]
    if d_activation == "maxout":
        layers.append((first_d.linear, 1.0))
    else:
        layers.append((first_d[0], leaky))
    layers.append((m.D.out, 1.0))
    for layer, gain in layers:
        want = gain / math.sqrt(layer.in_features)
        assert float(layer.weight.detach().std()) == pytest.approx(want, rel=0.05)
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_glorot_init_is_uniform_with_glorots_range():
    m = GAN(GANConfig(n_visible=400, n_latent=300, g_hidden=(500,), d_hidden=(300,),
                      init="glorot"), torch.Generator().manual_seed(0))
    for layer in (l for l in m.modules() if isinstance(l, nn.Linear)):
        r = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        w = layer.weight.detach()
        assert float(w.abs().max()) <= r
        assert float(w.std()) == pytest.approx(r / math.sqrt(3.0), rel=0.05)


def test_init_is_reproducible_from_the_generator():
    a = small(init="he")
    b = small(init="he")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_symmetric_d_input_is_d_applied_to_2x_minus_1():
    m = small(d_input="symmetric")
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(m.logits(x), m.D(2 * x - 1), rtol=0, atol=1e-14)
    unit = small(d_input="unit")
    assert torch.allclose(unit.logits(x), unit.D(x), rtol=0, atol=0)


def test_label_smoothing_is_cross_entropy_to_target_one_minus_eps_on_data_only():
    eps = 0.1
    m = small(label_smoothing=eps)
    x = torch.rand(6, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = m.loss(x, torch.Generator().manual_seed(3), phase="d")
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    d_real = torch.sigmoid(m.logits(x))
    d_fake = torch.sigmoid(m.logits(m.generate(z)))
    want = (-(1 - eps) * torch.log(d_real) - eps * torch.log(1 - d_real)).mean() \
        - torch.log(1 - d_fake).mean()
    assert float(out["loss"].detach()) == pytest.approx(float(want.detach()), rel=1e-10)
    # The generator's loss and the validation figures keep the unsmoothed value function.
    g = float(m.loss(x, torch.Generator().manual_seed(3), phase="g")["loss"].detach())
    assert g == pytest.approx(float(-torch.log(d_fake).mean().detach()), rel=1e-10)
    assert m.validation_metrics(x) == small().validation_metrics(x)


def test_instance_noise_is_added_to_both_inputs_of_d_in_training_only():
    sigma = 0.3
    m = small(instance_noise=sigma)
    x = torch.rand(6, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    m.train()
    out = m.loss(x, torch.Generator().manual_seed(4), phase="d")
    g = torch.Generator().manual_seed(4)  # z first, then the noise on x, then on G(z)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    e_real = torch.randn(x.shape, generator=g, dtype=torch.float64)
    e_fake = torch.randn(x.shape, generator=g, dtype=torch.float64)
    l_real = m.logits(x + sigma * e_real)
    l_fake = m.logits(m.generate(z) + sigma * e_fake)
    want = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
    assert float(out["loss"].detach()) == pytest.approx(float(want.detach()), rel=1e-10)
    # Evaluation mode, validation and sampling see no noise.
    m.eval()
    clean = m.loss(x, torch.Generator().manual_seed(4), phase="d")["loss"]
    plain = small().eval().loss(x, torch.Generator().manual_seed(4), phase="d")["loss"]
    assert float(clean.detach()) == pytest.approx(float(plain.detach()), rel=1e-12)
    assert m.validation_metrics(x) == small().validation_metrics(x)


def test_minibatch_std_feature_measures_the_batch_and_keeps_gradients_finite():
    h = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = minibatch_std_feature(h)
    assert out.shape == (7, 6) and torch.equal(out[:, :5], h)
    want = torch.sqrt(h.var(0, unbiased=False) + 1e-8).mean()
    assert torch.allclose(out[:, 5], want.expand(7))
    same = h[:1].expand(7, 5).clone().requires_grad_(True)
    s = minibatch_std_feature(same)[0, 5]
    s.backward()
    assert float(s.detach()) == pytest.approx(1e-4) and torch.isfinite(same.grad).all()

    m = small(d_minibatch_std=True)
    assert isinstance(m.D, DropoutMLPDiscriminator) and m.D.out.in_features == 8 + 1
    x = torch.rand(6, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        m.D.out.weight[0, -1] = 1.0
    # The logit of an example depends on the rest of its batch.
    assert not torch.allclose(m.logits(x)[:1], m.logits(torch.cat([x[:1], x[:1]]))[:1])
    out = m.loss(x, torch.Generator().manual_seed(0), phase="g")
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.G.parameters())


def test_new_options_validate_and_default_to_the_old_model():
    for kw in ({"init": "uniform"}, {"init": "he", "architecture": "dcgan"},
               {"label_smoothing": 0.5}, {"label_smoothing": -0.1}, {"instance_noise": -1.0},
               {"d_input": "centered"}, {"d_minibatch_std": True, "architecture": "dcgan"}):
        with pytest.raises(ConfigError):
            GANConfig(n_visible=64, **kw).validate()
    # A config.json written before these options existed loads as the model it trained
    # (d_input: "symmetric" by default now, "unit" for a saved config that does not name it).
    new = ("init", "label_smoothing", "instance_noise", "d_input", "d_minibatch_std")
    old = {k: v for k, v in GANConfig(n_visible=64).to_dict().items() if k not in new}
    cfg = GANConfig.from_dict(old)
    assert (cfg.init, cfg.label_smoothing, cfg.instance_noise, cfg.d_input,
            cfg.d_minibatch_std) == ("normal", 0.0, 0.0, "unit", False)
    assert isinstance(GAN(cfg).D, MLPDiscriminator)


def test_one_trainer_step_updates_g_through_d_with_adam_beta1_from_momentum(tmp_path):
    """The phased step the collapse was first blamed on: each optimizer holds its own network,
    Adam gets beta1 = train.momentum, both networks move in one step, and the generator's
    update raises D(G(z)) under the discriminator it was computed against."""
    cfg = RunConfig.default("gan").with_overrides(
        ["data.name=digits", "data.n_eval=100", "train.max_steps=1", "train.batch_size=64",
         "train.progress=false", "train.grid_samples=0", "train.optimizer=adam",
         "train.lr=1e-2", "train.momentum=0.5", "model.g_hidden=16", "model.d_hidden=16",
         "model.n_latent=4", "model.init=he"])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=64))
    model = get_model_spec("gan").build(cfg.model)
    g0 = [p.detach().clone() for p in model.G.parameters()]
    d0 = [p.detach().clone() for p in model.D.parameters()]
    from genzoo.training import Trainer

    trainer = Trainer(model, cfg, bundle, tmp_path / "run")
    trainer.fit()
    opts = trainer.optimizers
    assert set(opts) == {"d", "g"}
    for name, net in (("d", model.D), ("g", model.G)):
        held = {id(p) for group in opts[name].param_groups for p in group["params"]}
        assert held == {id(p) for p in net.parameters()}
        assert opts[name].param_groups[0]["betas"] == (0.5, 0.999)
    assert all(not torch.equal(p, q) for p, q in zip(model.G.parameters(), g0, strict=True))
    assert all(not torch.equal(p, q) for p, q in zip(model.D.parameters(), d0, strict=True))

    # The generator's step direction: with D fixed, gradient descent on its loss raises
    # D(G(z)) (a sign error in the non-saturating loss would lower it).
    z = torch.randn(256, 4, generator=torch.Generator().manual_seed(9))
    opt = torch.optim.SGD(model.G.parameters(), lr=0.05)

    def d_fake() -> float:
        with torch.no_grad():
            return float(torch.sigmoid(model.logits(model.generate(z))).mean())

    before = d_fake()
    for _ in range(10):
        model.zero_grad(set_to_none=True)
        model.loss(bundle.train.x[:256], torch.Generator().manual_seed(9), phase="g")[
            "loss"].backward()
        opt.step()
    assert d_fake() > before


def test_benchmark_gan_recipe_uses_the_fix_and_gan_paper_stays_the_authors():
    from support import load_benchmark

    run = load_benchmark("run")

    def model_config(recipe):
        sets = run.row_settings(f"gan_mnist_parzen_{recipe}", 50)
        cfg = RunConfig.default("gan").with_overrides([f"{k}={v}" for k, v in sets.items()])
        cfg.model.validate()
        return cfg.model

    gan = model_config("gan")
    assert gan.d_input == "symmetric" and gan.architecture == "mlp"
    assert (gan.g_hidden, gan.d_hidden, gan.init, gan.init_std) == (
        (1200, 1200), (240, 240), "normal", 0.02)
    paper = model_config("gan-paper")
    assert (paper.d_input, paper.instance_noise, paper.label_smoothing, paper.init,
            paper.d_minibatch_std) == ("unit", 0.0, 0.0, "normal", False)
