"""Conformance suite: every registered model honours the shared contracts.

A model added to the registry must add its tiny settings to ``TINY`` below; the first test
fails until it does, so no model escapes the suite.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genzoo.core import protocols
from genzoo.core.registry import get_model_spec, list_models
from genzoo.core.run_config import RunConfig
from genzoo.data import load_data

# Overrides that make each model tiny and fast on the 8x8 digits.
TINY: dict[str, list[str]] = {
    "rbm": ["model.n_hidden=8", "model.sample_burn_in=10"],
    "fvsbn": ["model.init_std=0.01"],
    "nade": ["model.n_hidden=8"],
    "nan": ["model.hidden_per_group=1"],
    "deep-nade": ["model.hidden=8,8"],
    "vae": ["model.hidden=16", "model.n_latent=4"],
    "rnade": ["model.n_hidden=8", "model.n_components=3", "data.binarize=none",
              "data.dequantize=true"],
    "made": ["model.hidden=8", "model.n_masks=2"],
    "grbm": ["data.binarize=none", "model.n_hidden=8", "model.sample_burn_in=10"],
    "ssrbm": ["data.binarize=none", "model.n_hidden=8", "model.sample_burn_in=10"],
    "dae": ["model.n_hidden=8", "model.walkback=2", "model.sample_steps=3"],
    "cae": ["model.n_hidden=8", "model.sample_steps=3"],
    "gsn": ["model.hidden=8,8", "model.sample_steps=3"],
    "hopfield": ["model.sample_sweeps=2"],
    "gan": ["model.g_hidden=8", "model.d_hidden=8", "model.n_latent=4"],
    "conditional-gan": ["model.architecture=dcgan", "model.width=2", "model.n_latent=4"],
    "gmmn": ["model.hidden=8", "model.n_latent=4"],
    "gmmn-ae": ["model.ae_hidden=8", "model.n_code=4", "model.hidden=8", "model.ae_steps=2"],
    "conv-rbm": ["model.n_filters=4", "model.kernel_size=3", "model.sample_burn_in=5"],
    "crbm": ["model.n_hidden=8", "model.sample_gibbs=3"],
    "rnn-rbm": ["model.n_hidden=8", "model.n_recurrent=8", "model.sample_gibbs=3"],
    "disc-rbm": ["model.n_hidden=8", "model.sample_burn_in=5"],
    "dbm": ["model.hidden=8,6", "model.n_chains=10", "model.sample_burn_in=10"],
    "centered-dbm": ["model.hidden=8,6", "model.n_chains=10", "model.sample_burn_in=10"],
    "mp-dbm": ["model.hidden=8,6", "model.mf_steps=2", "model.sample_burn_in=10"],
    "dbm-classifier": ["model.dbm_model=dbm", ('model.dbm_config={"n_visible": 64, '
                                               '"hidden": [8, 6], "n_chains": 10, '
                                               '"mf_max_iters": 5}')],
    "sbn": ["model.hidden=8,4", "model.rws_k=3"],
    "dlgm": ["model.latent=4,2", "model.hidden=8"],
}
COMMON = ["data.name=digits", "data.binarize=threshold", "data.n_train=200", "data.n_eval=50",
          "train.max_steps=3", "train.batch_size=20", "train.progress=false",
          "train.grid_samples=4"]
KNOWN_CAPABILITIES = {
    protocols.ENERGY, protocols.EXACT_LOG_PARTITION, protocols.AIS, protocols.LATENT,
    protocols.EXACT_LIKELIHOOD, protocols.IMPLICIT,
    protocols.VARIATIONAL, protocols.CLASSIFIER,
}
NAMES = [spec.name for spec in list_models()]
# Discriminative models (capability CLASSIFIER only) have no distribution over x to sample.
CLASSIFIERS = {"dbm-classifier"}
GENERATIVE = [name for name in NAMES if name not in CLASSIFIERS]


def _build(name: str, seed: int = 0):
    cfg = RunConfig.default(name).with_overrides(COMMON + TINY[name] + [f"train.seed={seed}"])
    bundle = load_data(cfg.data)
    model_cfg = cfg.model
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        model_cfg = model_cfg.replace(n_visible=bundle.n_features)
    cfg = dataclasses.replace(cfg, model=model_cfg)
    torch.manual_seed(seed)  # parameter initialisation of nn.Module uses the global generator
    return cfg, bundle, get_model_spec(name).build(cfg.model)


def test_every_model_has_tiny_settings():
    assert set(NAMES) <= set(TINY), f"add tiny settings for {sorted(set(NAMES) - set(TINY))}"


@pytest.mark.parametrize("name", NAMES)
def test_declares_known_capabilities_and_methods(name):
    _, _, model = _build(name)
    caps = set(model.capabilities)
    assert caps and caps <= KNOWN_CAPABILITIES
    if name in CLASSIFIERS:
        assert caps == {protocols.CLASSIFIER}
        assert model.needs_labels and callable(model.predict)
        assert not callable(getattr(model, "sample", None))
        return
    assert protocols.CLASSIFIER not in caps
    assert isinstance(model, protocols.GenerativeModel)
    if protocols.ENERGY in caps:
        assert isinstance(model, protocols.EnergyModel)
    if protocols.AIS in caps:
        for method in ("ais_base", "annealed_free_energy", "annealed_gibbs_step"):
            assert callable(getattr(model, method)), method
    if protocols.EXACT_LIKELIHOOD in caps:
        assert callable(model.log_prob)


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
