"""Conformance suite: every registered model honours the contracts of the capabilities it
declares (genzoo.core.protocols), trains, samples, round-trips through a checkpoint and is
deterministic under a seed.

The checks are :mod:`genzoo.testing`'s, the same a plug-in's own tests call
(``genzoo.testing.check_model``); each is a test of its own here. Each model carries the
settings that make it tiny on the 8x8 digits (``test_overrides``), so a new model needs no
entry here.

Every check runs on the device under test (``GENZOO_TEST_DEVICE``, the ``device`` fixture): the
model is built on the CPU and moved there, its inputs, generators and training follow it.
"""

from __future__ import annotations

import pytest
import torch

from genzoo import testing
from genzoo.core import protocols
from genzoo.core.registry import get_model_spec, list_models

NAMES = [spec.name for spec in list_models()]
# Discriminative models (capability CLASSIFIER only) have no distribution over x to sample.
CLASSIFIERS = {"dbm-classifier", "discriminant-gsn"}
GENERATIVE = [name for name in NAMES if name not in CLASSIFIERS]


def test_every_model_carries_tiny_settings():
    missing = []
    for name in NAMES:
        try:
            testing.check_tiny_settings(name)
        except AssertionError:
            missing.append(name)
    assert not missing, f"set test_overrides on {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_conform_to_their_protocols(name, device):
    testing.check_protocols(name, device=device)
    _, _, model = testing.build_tiny(name)
    # The helper tells classifiers from generative models by their capabilities; the names
    # listed here must agree with it.
    assert testing.is_classifier_only(model) == (name in CLASSIFIERS)
    assert (protocols.CLASSIFIER in model.capabilities) == (name in CLASSIFIERS)


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_behave_on_a_tiny_instance(name, device):
    """What each capability promises beyond its signature: shapes, finiteness, and the
    identities the estimators rely on."""
    testing.check_capabilities_behave(name, device=device)


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_changes_parameters(name, tmp_path, device):
    testing.check_training_step(name, tmp_path / "run", device=device)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_dict_with_a_differentiable_scalar(name, device):
    testing.check_loss(name, device=device)


@pytest.mark.parametrize("name", GENERATIVE)
def test_sample_shape_dtype_device_and_determinism(name, device):
    testing.check_sample(name, device=device)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_through_a_checkpoint(name, tmp_path, device):
    testing.check_checkpoint_round_trip(name, tmp_path, device=device)


@pytest.mark.parametrize("name", NAMES)
def test_building_is_deterministic_under_a_seed(name, device):
    testing.check_building_is_deterministic(name, device=device)


def test_check_model_runs_every_check_and_names_a_failure(tmp_path, monkeypatch, device):
    """The helper a plug-in's tests call: every check passes on a genzoo model, and a model
    whose declared capability lacks its method fails with an AssertionError."""
    testing.check_model("nade", tmp_path / "ok", device=device)
    cls = get_model_spec("nade").cls
    # NADE declaring ENERGY, whose free_energy and gibbs_step it does not have.
    monkeypatch.setattr(cls, "capabilities", cls.capabilities | {protocols.ENERGY})
    with pytest.raises(AssertionError):
        testing.check_model("nade", tmp_path / "bad", device=device)


@pytest.mark.parametrize("name", ["rbm", "nade", "vae"])
def test_the_checks_follow_a_model_moved_to_another_dtype(name, device):
    """``dtype`` moves the model; the checks' inputs and generators follow it (sample in
    float64 on float64 parameters), on the device under test."""
    testing.check_loss(name, device=device, dtype=torch.float64)
    testing.check_sample(name, device=device, dtype=torch.float64)
    _, _, model = testing.build_tiny(name, device=device, dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == device.type
               for p in model.parameters())
