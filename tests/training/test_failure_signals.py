"""Failure signals a model reports among its validation figures (``<what>_collapsed`` = 1, e.g.
a GAN's discriminator winning outright) reach the user as a warning, once per onset, and stay
in metrics.csv."""

from __future__ import annotations

import csv
import warnings

from genzoo.training import Trainer


def test_a_collapse_flag_is_warned_about_once_and_logged(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=4, batch_size=10, validate_every=2)
    model = toy.build(cfg)
    plain = model.validation_metrics
    calls = []

    def validation_metrics(x):
        calls.append(1)
        # Healthy at the step-0 baseline and the first validation, collapsed from then on.
        return {**plain(x), "d_collapsed": float(len(calls) > 2)}

    model.validation_metrics = validation_metrics
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(model, cfg, bundle, tmp_path / "run").fit()
    collapse = [w for w in caught if "d_collapsed" in str(w.message)]
    assert len(calls) > 3 and len(collapse) == 1
    assert issubclass(collapse[0].category, RuntimeWarning)
    assert "training is failing" in str(collapse[0].message)
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    flags = [float(r["valid_d_collapsed"]) for r in rows if r.get("valid_d_collapsed")]
    assert flags[0] == 0.0 and flags[-1] == 1.0


def test_healthy_runs_warn_nothing(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=2, batch_size=10, validate_every=2)
    model = toy.build(cfg)
    plain = model.validation_metrics
    model.validation_metrics = lambda x: {**plain(x), "d_collapsed": 0.0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(model, cfg, bundle, tmp_path / "run").fit()
    assert not [w for w in caught if "collapsed" in str(w.message)]
