"""GAN discriminator with maxout units and dropout (Goodfellow et al. 2014, section 5): the
maxout layer, dropout masks from an explicit generator, no dropout outside training, a run."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.models.implicit._maxout import DropoutMLPDiscriminator, Maxout, inverted_dropout
from genzoo.models.implicit.dcgan import MLPDiscriminator
from genzoo.models.implicit.gan import GAN, GANConfig
from genzoo.run_config import RunConfig

PAPER_D = {"d_activation": "maxout", "d_maxout_pieces": 5, "d_dropout": 0.5,
           "d_input_dropout": 0.2}


def tiny(**kw) -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(n_visible=64, n_latent=4, g_hidden=(8,), d_hidden=(6, 5), **kw))


def test_maxout_is_the_max_over_each_units_pieces():
    layer = Maxout(3, n_units=2, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor(
            [[1.0, 0, 0], [0, 1, 0], [0, 0, 1],      # unit 0: pieces v1, v2, v3
             [-1, 0, 0], [0, 0, 0], [1, 1, 1]]))     # unit 1: -v1, 0, v1 + v2 + v3
        layer.linear.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0.5, 0]))
    v = torch.tensor([[2.0, -1.0, 3.0], [-4.0, 1.0, 1.0]])
    want = torch.tensor([[max(2.0, -1.0, 3.0), max(-2.0, 0.5, 4.0)],
                         [max(-4.0, 1.0, 1.0), max(4.0, 0.5, -2.0)]])
    assert torch.equal(layer(v), want)


def test_dropout_masks_come_from_the_generator():
    h = torch.ones(50, 40)
    a = inverted_dropout(h, 0.5, torch.Generator().manual_seed(3))
    b = inverted_dropout(h, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    first, second = inverted_dropout(h, 0.5, g), inverted_dropout(h, 0.5, g)
    assert torch.equal(first, a) and not torch.equal(first, second)
    assert inverted_dropout(h, 0.0, g) is h  # rate 0: no draw, no copy


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_inverted_dropout_keeps_a_fraction_1_minus_p_scaled_by_its_inverse(p):
    h = torch.full((400_000,), 3.0, dtype=torch.float64)
    out = inverted_dropout(h, p, torch.Generator().manual_seed(0))
    kept = out != 0
    se = math.sqrt(p * (1 - p) / len(h))
    assert abs(float(kept.double().mean()) - (1 - p)) < 5 * se
    assert torch.allclose(out[kept], torch.tensor(3.0 / (1 - p), dtype=torch.float64))
    assert abs(float(out.mean()) - 3.0) < 5 * 3.0 / (1 - p) * se  # E[out] = h


def test_paper_discriminator_layout_and_default_unchanged():
    m = tiny(**PAPER_D)
    assert isinstance(m.D, DropoutMLPDiscriminator)
    assert [l.linear.out_features for l in m.D.hidden] == [6 * 5, 5 * 5]
    # The default D is the LeakyReLU MLP with its old parameter names: old checkpoints load.
    plain = tiny()
    assert isinstance(plain.D, MLPDiscriminator)
    assert all(k.startswith(("G.", "D.net.")) for k in plain.state_dict())
    old = {k: v for k, v in GANConfig(n_visible=64).to_dict().items()
           if not k.startswith("d_") or k in ("d_hidden", "d_steps")}
    assert GANConfig.from_dict(old) == GANConfig(n_visible=64, d_input="unit")  # D read x


def test_invalid_settings_raise_config_errors():
    for kw in ({"d_dropout": 1.0}, {"d_input_dropout": -0.1}, {"d_maxout_pieces": 1},
               {"architecture": "dcgan", "d_activation": "maxout"},
               {"architecture": "dcgan", "d_dropout": 0.5}):
        with pytest.raises(ConfigError):
            GANConfig(n_visible=64, **kw).validate()


def test_dropout_only_in_the_training_loss():
    m = tiny(**PAPER_D).double()
    x = torch.rand(32, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def d_loss(seed):
        return float(m.loss(x, torch.Generator().manual_seed(seed), phase="d")["loss"].detach())

    m.train()
    assert d_loss(5) == d_loss(5)  # reproducible given the generator
    z_then_masks = d_loss(5)
    m.eval()
    no_drop = d_loss(5)  # same z (drawn first), no masks
    g = torch.Generator().manual_seed(5)
    z = torch.randn(32, 4, generator=g, dtype=torch.float64)
    l_real, l_fake = m.logits(x), m.logits(m.generate(z))
    want = float((torch.nn.functional.softplus(-l_real).mean()
                  + torch.nn.functional.softplus(l_fake).mean()).detach())
    assert no_drop == pytest.approx(want, rel=1e-12) and no_drop != z_then_masks
    # Validation and sampling never drop anything, whatever the mode.
    m.train()
    assert m.validation_metrics(x) == m.eval().validation_metrics(x)
    s_eval = m.sample(5, torch.Generator().manual_seed(2))
    assert torch.equal(m.train().sample(5, torch.Generator().manual_seed(2)), s_eval)


def test_losses_and_gradients_flow_through_maxout_and_dropout():
    m = tiny(**PAPER_D)
    m.train()
    x = torch.rand(16, 64)
    g = torch.Generator().manual_seed(0)
    m.loss(x, g, phase="d")["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in m.D.parameters())
    assert all(p.grad is None for p in m.G.parameters())  # fakes detached in the D phase
    m.zero_grad(set_to_none=True)
    out = m.loss(x, g, phase="g")
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.G.parameters())


def _run(tmp_path, name, extra, steps):
    """Train a GAN on the 8x8 digits (binarized at 0.5) and return the validation d_loss
    column (every 100 steps, no dropout) and the model."""
    cfg = RunConfig.default("gan").with_overrides(
        ["data.name=digits", "data.binarize=threshold", "data.n_eval=300",
         f"train.max_steps={steps}", "train.epochs=1000", "train.batch_size=64",
         "train.progress=false", "train.grid_samples=0", "train.checkpoint_every=100000",
         "train.log_every=50", "train.validate_every=100", "train.optimizer=adam",
         "train.lr=1e-3", "train.momentum=0.5", "model.n_latent=16", "model.g_hidden=128,128",
         "model.d_hidden=64,64", *extra])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=64))
    torch.manual_seed(0)
    model = get_model_spec("gan").build(cfg.model)
    from genzoo.training import Trainer

    Trainer(model, cfg, bundle, tmp_path / name).fit()
    with open(tmp_path / name / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("valid_d_loss")]
    return model, [float(r["valid_d_loss"]) for r in rows], [float(r["valid_d_collapsed"])
                                                             for r in rows]


def test_short_run_with_the_paper_discriminator(tmp_path):
    steps = 1000
    runs = {
        "leaky": _run(tmp_path, "leaky", [], steps),
        "maxout_dropout": _run(tmp_path, "maxout_dropout",
                               [f"model.{k}={v}" for k, v in PAPER_D.items()], steps),
    }
    for name, (model, d_loss, collapsed) in runs.items():
        print(name, "valid d_loss every 100 steps:", " ".join(f"{v:.3g}" for v in d_loss),
              "d_collapsed:", collapsed[-1])
        assert len(d_loss) == steps // 100 + 1 and all(math.isfinite(v) for v in d_loss)
        assert d_loss[0] == pytest.approx(2 * math.log(2), abs=0.05)  # D(x) ~ 1/2 at init
        assert min(d_loss[1:]) < d_loss[0]  # D learns to tell data from samples
        # No outright win on 8x8 digits in this many steps (the MNIST run collapsed later).
        assert collapsed[-1] == 0.0
    assert isinstance(runs["maxout_dropout"][0].D, DropoutMLPDiscriminator)


def test_benchmark_paper_recipe_is_a_valid_gan_run_config():
    from support import load_benchmark

    run = load_benchmark("run")
    sets = run.row_settings("gan_mnist_parzen_gan-paper", 50)
    cfg = RunConfig.default("gan").with_overrides([f"{k}={v}" for k, v in sets.items()])
    cfg.model.validate()
    cfg.train.validate()
    m, t = cfg.model, cfg.train
    assert (m.d_activation, m.d_maxout_pieces, m.d_dropout, m.d_input_dropout) == (
        "maxout", 5, 0.5, 0.2)
    assert (m.g_hidden, m.d_hidden, m.n_latent) == ((1200, 1200), (240, 240), 100)
    assert (t.optimizer, t.lr, t.batch_size, t.initial_momentum, t.momentum) == (
        "sgd", 0.1, 100, 0.5, 0.7)
    # lr / 1.000004 per update over 50 epochs of 500 updates.
    assert t.lr_final_factor == pytest.approx(1.000004 ** -25_000, rel=1e-9)
    assert run.row_settings("gan_mnist_parzen_gan", 50) == {
        **run.load_row("gan_mnist_parzen_gan")["settings"], "train.epochs": 50}
