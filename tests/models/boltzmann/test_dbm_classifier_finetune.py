"""Discriminative fine-tuning of the DBM classifier through the one genzoo Trainer: labels reach
``loss(v, y=...)``, the frozen DBM that gives q_2 does not move, and a short fine-tune on the
digits lowers the validation classification error far below chance."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _sequence_checks import train_on_binary_digits

from genzoo.core.errors import GenzooError
from genzoo.evaluation import EvalConfig, classification_error, evaluate
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier, dbm_features
from genzoo.training import Trainer
from genzoo.training.checkpoint import read_run_config


def test_loss_computes_the_fixed_features_itself_and_needs_labels():
    g = torch.Generator().manual_seed(0)
    dbm = DBM(DBMConfig(n_visible=6, hidden=(5, 4), init_std=1.0), generator=g).double()
    v = torch.bernoulli(torch.full((7, 6), 0.5, dtype=torch.float64), generator=g)
    y = torch.randint(3, (7,), generator=g)
    clf = DBMClassifier.from_dbm(dbm, n_classes=3)
    assert clf.needs_labels and not any(p.requires_grad for p in clf.dbm.parameters())
    assert clf.dbm is not dbm and all(p.requires_grad for p in dbm.parameters())
    with torch.no_grad():
        clf.U.normal_(generator=g)
        implicit = clf.loss(v, y=y, generator=g)
        explicit = clf.loss(v, q2=dbm_features(dbm, v), y=y)
    assert float(implicit["loss"]) == pytest.approx(float(explicit["loss"]), rel=1e-12)
    assert torch.equal(clf.predict(v), clf(v, dbm_features(dbm, v)).argmax(-1))
    with pytest.raises(GenzooError, match="labels"):
        clf.loss(v)


def test_trainer_fine_tuning_lowers_the_classification_error(tmp_path):
    dbm, bundle = train_on_binary_digits("dbm", DBM, [
        "model.hidden=32,16", "model.n_chains=50", "train.max_steps=100", "train.epochs=100",
        "train.batch_size=50", "train.lr=0.1", "train.momentum=0.5", "train.lr_schedule=constant",
    ], tmp_path / "dbm")
    clf = DBMClassifier.from_dbm(dbm, n_classes=10)
    valid = bundle.valid
    before = classification_error(clf, valid.x, valid.y)
    frozen = {k: v.clone() for k, v in clf.dbm.state_dict().items()}
    w1 = clf.W[0].detach().clone()

    # The classifier's own run config: its model section is the classifier's config, so the
    # run's config.json rebuilds it.
    cfg = dataclasses.replace(
        read_run_config(tmp_path / "dbm"), model_name="dbm-classifier", model=clf.config
    ).with_overrides([
        "train.optimizer=adam", "train.lr=0.01", "train.momentum=0", "train.epochs=60", "train.lr_schedule=constant",
        "train.max_steps=none", "train.batch_size=50",
    ])
    metrics = Trainer(clf, cfg, bundle, tmp_path / "clf").fit()
    after = classification_error(clf, valid.x, valid.y)
    print(f"DBM classifier digits valid error {before:.3f} -> {after:.3f}")
    assert before > 0.7  # zero-initialised output layer: one class for every input
    assert after < 0.2 and after < before - 0.5, (before, after)
    assert metrics["error"] < 0.2  # the Trainer logged the loss's batch error
    # ... and the validation error of the classifier (needs_labels + predict), from step 0
    import csv

    with open(tmp_path / "clf" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("valid_error")]
    assert float(rows[0]["step"]) == 0
    assert float(rows[0]["valid_error"]) == pytest.approx(before)
    assert float(rows[-1]["valid_error"]) == pytest.approx(after)
    for k, v in clf.dbm.state_dict().items():
        assert torch.equal(v, frozen[k]), k  # q_2 came from the unchanged DBM
    assert not torch.equal(clf.W[0].detach(), w1)  # back-propagation reached the DBM's weights

    report = evaluate(clf, bundle, EvalConfig(split="valid"))
    assert report["estimator"] == "classification only"
    assert report["classification_error"] == pytest.approx(after)
