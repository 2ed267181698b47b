"""Every registered model refuses malformed data at its public methods with an InputError that
names the fix: a wrong number of columns, an integer dtype, NaN or Inf, non-binary values for a
Bernoulli model, values outside the model's range, and an empty batch to ``loss``.

The models are the conformance suite's tiny instances (each model's ``test_overrides``)."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch

from genzoo.core import protocols
from genzoo.core.errors import InputError
from genzoo.core.registry import get_model_spec, list_models
from genzoo.data import load_data
from genzoo.run_config import RunConfig

COMMON = ["data.name=digits", "data.binarize=threshold", "data.n_train=20", "data.n_eval=10"]
NAMES = [spec.name for spec in list_models()]


@functools.cache
def _build(name: str):
    tiny = list(get_model_spec(name).cls.test_overrides)
    cfg = RunConfig.default(name).with_overrides(COMMON + tiny)
    bundle = load_data(cfg.data)
    model_cfg = cfg.model
    if any(f.name == "n_visible" for f in dataclasses.fields(model_cfg)):
        model_cfg = model_cfg.replace(n_visible=bundle.n_features)
    torch.manual_seed(0)
    model = get_model_spec(name).build(model_cfg)
    model.eval()
    return model, bundle.train.x[:4].to(model.dtype)


def _calls(model):
    """(what, f(x)) for ``loss`` and the data-taking method of each declared capability."""
    g = torch.Generator().manual_seed(0)
    kw = {}
    if model.phases():
        kw["phase"] = model.phases()[0].name

    def loss(x):
        y = {"y": torch.zeros(len(x), dtype=torch.int64)} if model.needs_labels else {}
        return model.loss(x, generator=g, **kw, **y)

    calls = [("loss", loss)]
    caps = model.capabilities
    if protocols.ENERGY in caps:
        calls += [("free_energy", model.free_energy),
                  ("energy", lambda x: model.energy(x, None)),
                  ("gibbs_step", lambda x: model.gibbs_step(x, generator=g))]
    if protocols.AIS in caps:
        calls.append(("ais_base", model.ais_base))
    if protocols.VARIATIONAL in caps:
        calls.append(("variational_free_energy", model.variational_free_energy))
    if protocols.LATENT in caps:
        calls += [("log_joint", lambda x: model.log_joint(x, None)),
                  ("proposal", model.proposal)]
    if protocols.EXACT_LIKELIHOOD in caps:
        calls.append(("log_prob", model.log_prob))
    if protocols.CLASSIFIER in caps or protocols.is_classifier(model):
        calls.append(("predict", model.predict))
    if protocols.INPAINT in caps:
        calls.append(("inpaint", lambda x: model.inpaint(
            x, torch.ones(model.input_width, dtype=torch.bool), g)))
    return calls


def _refused(model, x, match):
    for what, call in _calls(model):
        with pytest.raises(InputError, match=match):
            call(x)
            pytest.fail(f"{what} accepted the input")


@pytest.mark.parametrize("name", NAMES)
def test_wrong_width_is_refused_naming_the_expected_shape(name):
    model, x = _build(name)
    d = x.shape[1]
    _refused(model, x[:, :-1], rf"expects \(B, {d}\) inputs, got \(B, {d - 1}\).*reshape")
    _refused(model, x[0], rf"expects \(B, {d}\) inputs, got shape \({d},\)")


@pytest.mark.parametrize("name", NAMES)
def test_integer_dtype_is_refused_naming_the_conversion(name):
    model, x = _build(name)
    _refused(model, x.long(), r"int64.*convert with x\.float\(\)")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_are_refused(name, bad):
    model, x = _build(name)
    x = x.clone()
    x[1, 2] = bad
    _refused(model, x, "NaN or Inf; clean or impute")


@pytest.mark.parametrize("name", NAMES)
def test_values_outside_the_support_are_refused(name):
    model, x = _build(name)
    if model.binary_input:
        _refused(model, 0.5 * x + 0.25, r"not binary.*binarize it: data\.binarize=")
    elif model.input_range is not None:
        lo, hi = model.input_range
        _refused(model, x + (hi - lo) + 1, r"outside \[0, 1\]; scale it")
    if not model.binary_input:
        for what, call in _calls(model):  # grey levels in range pass the check
            if what in ("energy", "log_joint"):
                continue  # they need a real h or z too
            try:
                call(0.5 * x + 0.25)
            except InputError as e:
                pytest.fail(f"a finite real batch was refused: {e}")


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_to_loss_is_refused(name):
    model, x = _build(name)
    loss = dict(_calls(model))["loss"]
    with pytest.raises(InputError, match="empty batch.*at least one example"):
        loss(x[:0])


def test_nested_calls_are_checked_once(monkeypatch):
    """A training step checks its batch once, not again in each method loss calls."""
    model, x = _build("rbm")
    seen = []
    original = type(model).check_input
    monkeypatch.setattr(type(model), "check_input",
                        lambda self, t, name="x": (seen.append(name), original(self, t, name)))
    model.loss(x)
    model.sample(3)
    assert seen == ["x"]



@pytest.mark.parametrize("name", NAMES)
def test_takes_binary_input_is_known_from_the_config_before_the_model_is_built(name):
    # The command line picks a binarization from it before the data fix n_visible; it must
    # agree with the built model's own binary_input.
    model, _ = _build(name)
    assert type(model).takes_binary_input(model.config) == model.binary_input
