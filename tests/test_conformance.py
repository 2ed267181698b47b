"""Conformance suite: every registered model honours the contracts of the capabilities it
declares (genzoo.core.protocols), trains, samples, round-trips through a checkpoint and is
deterministic under a seed.

Each model carries the settings that make it tiny on the 8x8 digits (``test_overrides``), so a
new model needs no entry here.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genzoo.core import protocols
from genzoo.core.registry import get_model_spec, list_models
from genzoo.data import load_data
from genzoo.run_config import RunConfig

COMMON = ["data.name=digits", "data.binarize=threshold", "data.n_train=200", "data.n_eval=50",
          "train.max_steps=3", "train.batch_size=20", "train.progress=false",
          "train.grid_samples=4"]
NAMES = [spec.name for spec in list_models()]
# Discriminative models (capability CLASSIFIER only) have no distribution over x to sample.
CLASSIFIERS = {"dbm-classifier"}
GENERATIVE = [name for name in NAMES if name not in CLASSIFIERS]


def _build(name: str, seed: int = 0):
    tiny = list(get_model_spec(name).cls.test_overrides)
    cfg = RunConfig.default(name).with_overrides(COMMON + tiny + [f"train.seed={seed}"])
    bundle = load_data(cfg.data)
    model_cfg = cfg.model
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        model_cfg = model_cfg.replace(n_visible=bundle.n_features)
    cfg = dataclasses.replace(cfg, model=model_cfg)
    torch.manual_seed(seed)  # parameter initialisation of nn.Module uses the global generator
    return cfg, bundle, get_model_spec(name).build(cfg.model)


def test_every_model_carries_tiny_settings():
    missing = [n for n in NAMES if not get_model_spec(n).cls.test_overrides]
    assert not missing, f"set test_overrides on {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_conform_to_their_protocols(name):
    _, _, model = _build(name)
    caps = set(model.capabilities)
    assert caps and caps <= protocols.CAPABILITIES
    assert protocols.conformance_problems(model) == []
    assert isinstance(model, protocols.GenerativeModel)
    assert isinstance(model, protocols.TrainingHooks)
    for cap in caps:
        assert isinstance(model, protocols.PROTOCOLS[cap]), cap
    if name in CLASSIFIERS:
        assert caps == {protocols.CLASSIFIER}
        assert model.needs_labels
        assert not callable(getattr(model, "sample", None))
    else:
        assert protocols.CLASSIFIER not in caps


def _x(bundle, model, n=6):
    return bundle.train.x[:n].to(dtype=next(model.parameters()).dtype)


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_behave_on_a_tiny_instance(name):
    """What each capability promises beyond its signature: shapes, finiteness, and the
    identities the estimators rely on."""
    _, bundle, model = _build(name)
    model = model.double()
    model.eval()
    x = _x(bundle, model)
    b = len(x)
    g = torch.Generator().manual_seed(0)
    caps = model.capabilities
    if protocols.ENERGY in caps:
        f = model.free_energy(x)
        assert f.shape == (b,) and torch.isfinite(f).all()
        v = model.gibbs_step(x, generator=g)
        assert v.shape == x.shape
    if protocols.AIS in caps:
        base = model.ais_base(bundle.train.x.to(x.dtype))
        log_za = base.log_partition()
        assert log_za.dim() == 0 and torch.isfinite(log_za)
        s = base.sample(b, g)
        # The path starts at the base (its own free energy, constants included: beta = 0).
        f0 = model.annealed_free_energy(s, 0.0, base)
        assert f0.shape == (b,) and torch.isfinite(f0).all()
        inc, s2 = model.annealed_step(s, 0.0, 0.5, base, g, transition=True)
        assert inc.shape == (b,) and s2.shape == s.shape
        expected = f0 - model.annealed_free_energy(s, 0.5, base)
        torch.testing.assert_close(inc, expected)
        assert model.annealed_gibbs_step(s, 0.5, base, g).shape == s.shape
        if protocols.ENERGY in caps:
            # ...and ends at the model (beta = 1).
            torch.testing.assert_close(model.annealed_free_energy(x, 1.0, base),
                                       model.free_energy(x))
    if protocols.EXACT_LOG_PARTITION in caps:
        free_energy, n_units = model.enumerable_free_energy()
        assert isinstance(n_units, int) and n_units > 0
        states = (torch.rand(4, n_units, generator=g, dtype=x.dtype) < 0.5).to(x.dtype)
        assert free_energy(states).shape == (4,)
    if protocols.VARIATIONAL in caps:
        f = model.variational_free_energy(x)
        assert f.shape == (b,) and torch.isfinite(f).all()
        assert model.ais_model_states(3, 2, g).shape[0] == 3
    if protocols.LATENT in caps:
        q = model.proposal(x)
        assert isinstance(q, torch.distributions.Distribution) and q.batch_shape == (b,)
        z = q.sample((2,))
        lj = model.log_joint(x, z)
        assert lj.shape == (2, b) and torch.isfinite(lj).all()
    if protocols.EXACT_LIKELIHOOD in caps:
        lp = model.log_prob(x)
        assert lp.shape == (b,) and torch.isfinite(lp).all()
        if model.binary_input:
            assert (lp <= 0).all()  # a probability of a discrete x
    if protocols.CLASSIFIER in caps or protocols.is_classifier(model):
        y = model.predict(x)
        assert y.shape == (b,) and y.dtype == torch.int64
    if protocols.INPAINT in caps:
        observed = torch.zeros(x.shape[1], dtype=torch.bool)
        observed[: x.shape[1] // 2] = True
        out = model.inpaint(x, observed, g, n_samples=2)
        assert out.shape == (2, *x.shape)
        assert torch.equal(out[:, :, observed], x[:, observed].expand(2, -1, -1))


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_changes_parameters(name, tmp_path):
    from genzoo.training import Trainer

    cfg, bundle, model = _build(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, cfg, bundle, tmp_path / "run").fit()
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_dict_with_a_differentiable_scalar(name):
    _, bundle, model = _build(name)
    # A model that learns from labels gets them, as the Trainer gives them (needs_labels).
    extra = {"y": bundle.train.y[:10]} if getattr(model, "needs_labels", False) else {}
    out = model.loss(bundle.train.x[:10], generator=torch.Generator().manual_seed(0), **extra)
    assert isinstance(out, dict) and out["loss"].dim() == 0 and out["loss"].requires_grad
    for key, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value), key


@pytest.mark.parametrize("name", GENERATIVE)
def test_sample_shape_dtype_device_and_determinism(name):
    _, bundle, model = _build(name)
    first = model.sample(5, generator=torch.Generator().manual_seed(3))
    again = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert first.shape == (5, bundle.n_features)
    assert first.dtype == next(model.parameters()).dtype
    assert first.device == next(model.parameters()).device
    assert torch.equal(first, again)
    model_double = model.double()
    assert model_double.sample(2, generator=torch.Generator().manual_seed(0)).dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_through_a_checkpoint(name, tmp_path):
    from genzoo.training.checkpoint import load_model, save_checkpoint

    cfg, _, model = _build(name)
    save_checkpoint(tmp_path, model, cfg, None)
    loaded, loaded_cfg = load_model(tmp_path)
    assert loaded_cfg == cfg
    original = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    if name in CLASSIFIERS:
        x = torch.rand(3, model.dbm.n_visible).round()
        assert torch.equal(model.predict(x), loaded.predict(x))
        return
    a = model.sample(3, generator=torch.Generator().manual_seed(1))
    b = loaded.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_building_is_deterministic_under_a_seed(name):
    _, _, m1 = _build(name, seed=5)
    _, _, m2 = _build(name, seed=5)
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
