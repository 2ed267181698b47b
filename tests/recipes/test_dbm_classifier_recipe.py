"""Starting the DBM classifier from a trained DBM run (a recipe): the source's config is read
into the classifier's, the DBM's weights into the MLP, and the model refuses to train from a
run it was never started from."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.data import load_data
from genzoo.models.boltzmann.dbm import DBM
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier, DBMClassifierConfig
from genzoo.recipes.dbm_classifier import resolve_source, start_from_run
from genzoo.run_config import RunConfig
from genzoo.training import Trainer


def test_resolve_source_then_start_from_run(tmp_path):
    cfg = RunConfig.default("dbm").with_overrides([
        "data.name=digits", "data.binarize=threshold", "data.n_train=100", "data.n_eval=20",
        "model.hidden=6,4", "model.n_chains=10", "train.max_steps=2", "train.progress=false",
        "train.grid_samples=0",
    ])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)
    dbm = DBM(cfg.model)
    Trainer(dbm, cfg, bundle, tmp_path / "dbm").fit()

    unresolved = DBMClassifierConfig(dbm_run=str(tmp_path / "dbm"))
    with pytest.raises(ConfigError, match="resolve_source"):
        unresolved.resolve_for_data(bundle)
    config = resolve_source(unresolved)
    assert config.dbm_model == "dbm"
    assert json.loads(config.dbm_config) == cfg.model.to_dict()
    assert resolve_source(config) is config  # resolved once

    clf = DBMClassifier(config)
    with pytest.raises(ConfigError, match="start_from_run"):
        clf.init_from_data(bundle.train.x)
    assert start_from_run(clf) is clf
    clf.init_from_data(bundle.train.x)  # started: nothing left to do
    for l in range(dbm.n_layers):
        torch.testing.assert_close(clf.W[l], dbm.W[l])
        torch.testing.assert_close(clf.b[l], dbm.bias(l + 1))
    for key, value in dbm.state_dict().items():
        assert torch.equal(clf.dbm.state_dict()[key], value), key
