"""data.grey_eval: the train split is binarized, valid and test keep their grey levels, and
models whose mean-field inference reads inputs as Bernoulli means (MP-DBM, DBM classifier)
classify them (the papers' grey-level test protocol); other binary models refuse them, and
outside the classification scope the MP-DBM still demands binary inputs."""

from __future__ import annotations

import pytest
import torch

import genzoo
from genzoo.core.errors import ConfigError, DataError, InputError
from genzoo.data import load_data
from genzoo.data.config import DataConfig
from genzoo.evaluation.classification import classification_error, classification_estimate
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier
from genzoo.models.boltzmann.mpdbm import MPDBM, MPDBMConfig


@pytest.mark.parametrize("binarize", ["dynamic", "threshold"])
def test_train_is_binarized_and_valid_test_keep_their_grey_levels(binarize):
    grey = load_data(DataConfig(name="digits", n_train=60, n_eval=40))
    bundle = load_data(DataConfig(name="digits", n_train=60, n_eval=40, binarize=binarize,
                                  grey_eval=True))
    plain = load_data(DataConfig(name="digits", n_train=60, n_eval=40, binarize=binarize))
    x0 = bundle.train_x(0)
    assert bool(((x0 == 0) | (x0 == 1)).all())
    assert torch.equal(x0, plain.train_x(0))  # train is binarized exactly as without it
    for name in ("valid", "test"):
        got, want = bundle.split(name), grey.split(name)
        assert torch.equal(got.x, want.x) and torch.equal(got.y, want.y)
        assert not bool(((got.x == 0) | (got.x == 1)).all())  # really grey levels
    assert not bundle.binary and bundle.grey_eval and "grey_eval" in bundle.description


def test_grey_eval_needs_a_binarized_grey_level_set():
    with pytest.raises(ConfigError, match="grey_eval"):
        DataConfig(name="digits", grey_eval=True)  # binarize none: nothing to keep grey
    with pytest.raises(ConfigError, match="grey_eval"):
        DataConfig(name="binarized-mnist", grey_eval=True)


def _mpdbm() -> MPDBM:
    g = torch.Generator().manual_seed(0)
    return MPDBM(MPDBMConfig(n_visible=64, hidden=(12, 8), n_classes=10, init_std=0.5,
                             mf_steps=4), generator=g).double()


def test_mp_dbm_classifies_grey_levels_by_mean_field_on_them():
    bundle = load_data(DataConfig(name="digits", n_eval=50, binarize="dynamic", grey_eval=True))
    model = _mpdbm()
    test = bundle.test
    x = test.x.double()
    with pytest.raises(InputError):  # outside the classification scope: binary inputs only
        model.predict(x)
    with torch.no_grad():
        observed = torch.ones_like(x, dtype=torch.bool)
        expected = model.infer(x, observed)[2].argmax(-1)  # Q(y | v) with v the grey levels
    err = float((expected != test.y).double().mean())
    assert classification_error(model, x, test.y) == pytest.approx(err)
    est = classification_estimate(model, test)
    assert est.value == pytest.approx(err) and est.n_samples == len(test.y)
    # Values outside [0, 1] are still refused in the scope.
    with pytest.raises(InputError):
        classification_error(model, x * 2, test.y)


def test_dbm_classifier_classifies_grey_levels():
    bundle = load_data(DataConfig(name="digits", n_eval=50, binarize="dynamic", grey_eval=True))
    dbm = DBM(DBMConfig(n_visible=64, hidden=(12, 8), mf_max_iters=5),
              generator=torch.Generator().manual_seed(1))
    clf = DBMClassifier.from_dbm(dbm, n_classes=10)
    x = bundle.test.x
    with torch.no_grad():
        expected = clf(x, clf.features(x)).argmax(-1)
    err = float((expected != bundle.test.y).double().mean())
    assert classification_error(clf, x, bundle.test.y) == pytest.approx(err)


def test_training_with_grey_eval_validates_on_grey_levels(tmp_path):
    model, run = genzoo.fit(
        "mp-dbm", "digits", out=tmp_path / "run",
        model={"hidden": [12, 8], "mf_steps": 2},
        data={"binarize": "dynamic", "grey_eval": True, "n_train": 100, "n_eval": 40},
        train={"epochs": 1, "batch_size": 50, "progress": False, "grid_samples": 0,
               "keep_best": "error"},
    )
    bundle = load_data(DataConfig(name="digits", n_train=100, n_eval=40, binarize="dynamic",
                                  grey_eval=True))
    assert run.metrics["valid_error"] == pytest.approx(
        classification_error(model, bundle.valid.x, bundle.valid.y))


def test_binary_only_models_refuse_grey_eval(tmp_path):
    with pytest.raises(DataError, match="grey_eval"):
        genzoo.fit("rbm", "digits", out=tmp_path / "rbm",
                   data={"binarize": "dynamic", "grey_eval": True, "n_train": 50},
                   train={"epochs": 1, "progress": False})
