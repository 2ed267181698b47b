"""GMMN and GMMN+AE: the kernel convention, the guarded square root, the two phases, a run;
the paper's recipe options (encoder dropout, layer-wise pre-training, one code bandwidth,
fan-in initialisation) and their resume."""

from __future__ import annotations

import dataclasses
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


def _tiny(**fields):
    return GMMNAE(GMMNAEConfig(n_visible=64, ae_hidden=16, n_code=4, hidden=(8,), **fields),
                  torch.Generator().manual_seed(0))


def test_encoder_dropout_acts_in_training_mode_only():
    m = _tiny(ae_input_dropout=0.2, ae_hidden_dropout=0.5)
    x = torch.rand(200, 64)
    m.train()
    h1, h = m._encode(x, torch.Generator().manual_seed(1))
    h1_again, h_again = m._encode(x, torch.Generator().manual_seed(2))
    assert not torch.equal(h, h_again) and not torch.equal(h1, h1_again)  # masks differ
    m.eval()
    h1_eval, h_eval = m._encode(x, torch.Generator().manual_seed(1))
    assert torch.equal(h1_eval, torch.sigmoid(m.encoder[0](x)))
    assert torch.equal(h_eval, m.encode(x))  # no dropout: the deterministic encoder
    assert torch.equal(h_eval, m._encode(x, torch.Generator().manual_seed(2))[1])
    # Inverted dropout keeps the expected pre-activation: the first layer's input is x on
    # average (about 20% of the pixels zeroed, the rest scaled by 1 / 0.8).
    m.train()
    g = torch.Generator().manual_seed(3)
    from genzoo.models.implicit.gmmn_ae import _dropout

    drops = torch.stack([_dropout(x, 0.2, g) for _ in range(200)])
    assert float((drops == 0).double().mean()) == pytest.approx(0.2, abs=0.01)
    assert float(drops.mean()) == pytest.approx(float(x.mean()), rel=0.01)
    # the "whole" objective in training mode differs from the dropout-free reconstruction
    loss_train = m._reconstruction(x, "whole", torch.Generator().manual_seed(1))
    assert float(loss_train.detach()) != pytest.approx(m.validation_metrics(x)["reconstruction"])


def test_no_dropout_keeps_training_and_evaluation_the_same():
    m = _tiny()
    x = torch.rand(20, 64)
    m.train()
    assert torch.equal(m._encode(x, torch.Generator().manual_seed(1))[1], m.encode(x))


def test_objectives_follow_the_schedule_and_each_trains_its_own_layers():
    m = _tiny(pretrain_steps=3, ae_steps=2)
    (name, _, s_ae), (_, _, s_g) = m.phases()
    expected = ["layer1"] * 3 + ["layer2"] * 3 + ["whole"] * 2 + [None] * 2
    assert [m.ae_objective_at(t) for t in range(10)] == expected
    assert [s_ae(t) for t in range(10)] == [1] * 8 + [0] * 2
    assert [s_g(t) for t in range(10)] == [0] * 8 + [1] * 2
    x = torch.rand(8, 64)
    w1, w2, w3, w4 = m.encoder[0], m.encoder[2], m.decoder[0], m.decoder[2]
    for step, trained in ((0, {w1, w4}), (3, {w2, w3}), (6, {w1, w2, w3, w4})):
        s_ae(step)  # the Trainer asks for the step's updates before the loss
        assert m.ae_objective == expected[step]
        m.zero_grad(set_to_none=True)
        m.loss(x, torch.Generator().manual_seed(0), phase=name)["loss"].backward()
        for layer in (w1, w2, w3, w4):
            assert (layer.weight.grad is not None) == (layer in trained), (step, layer)
    s_ae(9)  # the generator's turn leaves the last objective in place
    assert m.ae_objective == "whole"


def test_layerwise_pretraining_lowers_the_reconstruction_error():
    """On the digits, 150 updates of each layer alone before 50 of the whole auto-encoder
    reconstruct held-out digits better than the 50 whole updates from scratch."""
    from genzoo.data import DataConfig, load_data

    bundle = load_data(DataConfig(name="digits", binarize="none"))
    x, test = bundle.train.x, bundle.test.x

    def trained(pretrain_steps):
        m = GMMNAE(GMMNAEConfig(n_visible=64, ae_hidden=32, n_code=8, hidden=(8,),
                                pretrain_steps=pretrain_steps, ae_steps=50),
                   torch.Generator().manual_seed(0))
        (name, params, schedule), _ = m.phases()
        opt = torch.optim.Adam(params, lr=3e-3)
        g = torch.Generator().manual_seed(0)
        for step in range(2 * pretrain_steps + 50):
            assert schedule(step) == 1
            batch = x[torch.randint(len(x), (20,), generator=g)]
            opt.zero_grad(set_to_none=True)
            m.loss(batch, g, phase=name)["loss"].backward()
            opt.step()
        return m.validation_metrics(test)["reconstruction"]

    scratch, pretrained = trained(0), trained(150)
    assert pretrained < scratch - 0.5, (pretrained, scratch)  # nats per digit


def test_one_code_bandwidth_is_the_kernel_of_the_loss():
    m = _tiny()
    assert m.config.bandwidths_sq == (1.0,)  # the paper's code-space kernel variance
    x = torch.rand(6, 64, dtype=torch.float64)
    m = m.double()
    g = torch.Generator().manual_seed(0)
    codes = m.G(m.noise(6, torch.Generator().manual_seed(0)))
    h = m.encode(x)
    loss = m.loss(x, g, phase="gmmn")["loss"]

    def k(a, b):  # exp(-|a - b|^2 / 2): one Gaussian kernel of variance 1
        return torch.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / 2)

    v = k(codes, codes).mean() + k(h, h).mean() - 2 * k(codes, h).mean()
    assert float(loss.detach()) == pytest.approx(math.sqrt(float(v.detach())), rel=1e-10)
    wider = GMMNAE(dataclasses.replace(m.config, bandwidths_sq=(1.0, 4.0))).double()
    wider.load_state_dict(m.state_dict())
    wide = wider.loss(x, torch.Generator().manual_seed(0), phase="gmmn")["loss"].detach()
    assert float(wide) != pytest.approx(float(loss.detach()))


@torch.no_grad()
def test_lecun_initialisation_scales_with_fan_in():
    m = _tiny(init="lecun")
    assert m.config.init == GMMNAEConfig().init == "lecun"
    w = GMMNAE(GMMNAEConfig(n_visible=400, ae_hidden=300, n_code=4, hidden=(8,)),
               torch.Generator().manual_seed(0)).encoder[0].weight
    assert float(w.std()) == pytest.approx(1 / math.sqrt(400), rel=0.02)
    assert float(m.encoder[0].bias.abs().sum()) == 0
    normal = _tiny(init="normal").encoder[0].weight
    assert float(normal.std()) == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("fields,match", [
    ({"ae_input_dropout": 1.0}, "ae_input_dropout"),
    ({"ae_hidden_dropout": -0.1}, "ae_hidden_dropout"),
    ({"pretrain_steps": -1}, "pretrain_steps"),
    ({"bandwidths_sq": ()}, "bandwidths_sq"),
    ({"init": "he"}, "init"),
])
def test_recipe_fields_are_validated(fields, match):
    from genzoo.core.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        GMMNAEConfig(n_visible=64, **fields)


def test_gmmn_lecun_init_needs_the_mlp():
    from genzoo.core.errors import ConfigError
    from genzoo.models.implicit.gmmn import GMMNConfig

    with pytest.raises(ConfigError, match="init=lecun"):
        GMMNConfig(n_visible=64, architecture="dcgan", init="lecun")


def test_pretraining_and_dropout_resume_exactly(tmp_path):
    from genzoo.core.registry import get_model_spec
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer

    cfg = RunConfig.default("gmmn-ae").with_overrides(
        ["data.name=digits", "data.binarize=none", "data.n_train=120", "data.n_eval=30",
         "train.batch_size=20", "train.epochs=3", "train.checkpoint_every=5",
         "train.progress=false", "train.grid_samples=0", "model.ae_hidden=16",
         "model.n_code=4", "model.hidden=8", "model.n_latent=4", "model.pretrain_steps=3",
         "model.ae_steps=4", "model.ae_input_dropout=0.2", "model.ae_hidden_dropout=0.5"])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=64))

    def build():
        torch.manual_seed(0)
        return get_model_spec("gmmn-ae").build(cfg.model)

    full = build()
    Trainer(full, cfg, bundle, tmp_path / "full").fit()
    short = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=5))
    Trainer(build(), short, bundle, tmp_path / "res").fit()  # stops inside layer 2
    resumed = build()
    Trainer(resumed, cfg, bundle, tmp_path / "res").fit(resume=True)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
