"""The DBM-initialised classifier: its first layer is the DBM's mean-field update of h_1, and
fine-tuning on digits learns to classify."""

from __future__ import annotations

import pytest
import torch
from _sequence_checks import train_on_binary_digits

from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier, dbm_features


def test_first_layer_is_the_mean_field_update_and_q2_the_fixed_point():
    g = torch.Generator().manual_seed(0)
    dbm = DBM(DBMConfig(n_visible=6, hidden=(5, 4, 3), init_std=1.0), generator=g).double()
    v = torch.bernoulli(torch.full((7, 6), 0.5, dtype=torch.float64), generator=g)
    q2 = dbm_features(dbm, v)
    with torch.no_grad():
        q, _ = dbm.mean_field(v)
    torch.testing.assert_close(q2, q[1])
    clf = DBMClassifier.from_dbm(dbm, n_classes=3)
    with torch.no_grad():
        h = clf.hidden(v, q2)
        torch.testing.assert_close(h[0], dbm.conditional([v, None, q2, None], 1))
        torch.testing.assert_close(clf(v, q2), torch.zeros(7, 3, dtype=torch.float64))


def test_fine_tuning_on_digits_classifies(tmp_path):
    dbm, bundle = train_on_binary_digits("dbm", DBM, [
        "model.hidden=32,16", "model.n_chains=50", "train.max_steps=100", "train.epochs=100",
        "train.batch_size=50", "train.lr=0.1", "train.momentum=0.5", "train.lr_schedule=constant",
    ], tmp_path / "run")
    x, y = bundle.train.x, bundle.train.y
    q2 = dbm_features(dbm, x)
    clf = DBMClassifier.from_dbm(dbm, n_classes=10)
    opt = torch.optim.Adam(clf.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        for idx in torch.randperm(len(x), generator=g).split(50):
            opt.zero_grad()
            clf.loss(x[idx], q2=q2[idx], y=y[idx])["loss"].backward()
            opt.step()
    with torch.no_grad():
        out = clf.loss(bundle.valid.x, q2=dbm_features(dbm, bundle.valid.x), y=bundle.valid.y)
    assert float(out["error"]) < 0.2  # chance is 0.9


def test_from_dbm_records_the_registered_model_of_the_dbm():
    from genzoo.core.errors import ConfigError
    from genzoo.models.boltzmann.centered_dbm import CenteredDBM, CenteredDBMConfig
    from genzoo.models.boltzmann.mpdbm import MPDBM, MPDBMConfig

    dbm = DBM(DBMConfig(n_visible=6, hidden=(4, 3)))
    assert DBMClassifier.from_dbm(dbm, 3).config.dbm_model == "dbm"
    centered = CenteredDBM(CenteredDBMConfig(n_visible=6, hidden=(4, 3)))
    clf = DBMClassifier.from_dbm(centered, 3)
    assert clf.config.dbm_model == "centered-dbm" and type(clf.dbm) is CenteredDBM
    with pytest.raises(ConfigError, match="not a MPDBM"):
        DBMClassifier.from_dbm(MPDBM(MPDBMConfig(n_visible=6, hidden=(4, 3))), 3)
