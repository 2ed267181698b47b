"""genzoo.fit and score: a tiny model trained on an array, a file and a Dataset through the one
Trainer into a normal run directory; score equal to the exact log-likelihood where there is
one, with its standard error; settings given by section; the refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import genzoo
from genzoo.core.errors import ConfigError, DataError, GenzooError
from genzoo.core.registry import get_model_spec
from genzoo.evaluation import Estimate, exact_log_partition

RNG = np.random.default_rng(0)
X = (RNG.random((120, 6)) > 0.5).astype(np.float32)
TINY = {"model": {"n_hidden": 3}, "train": {"epochs": 2, "progress": False, "grid_samples": 4}}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "rbm"
    return genzoo.fit("rbm", X, out=out, **TINY)


def test_fit_returns_the_model_and_a_normal_run(fitted):
    model, run = fitted
    assert type(model).__name__ == "RBM" and model.config.n_hidden == 3
    assert model.config.n_visible == 6 and not model.training
    assert run.model is model and run.metrics["epoch"] == 2
    for name in ("config.json", "model.safetensors", "metrics.csv"):
        assert (run.path / name).is_file()
    data = json.loads((run.path / "config.json").read_text())["data"]
    assert data["name"] == "in-memory" and data["file_kind"] == "binary"
    assert data["file_shape"] == [120, 6]
    # The run directory holds the same model.
    again = genzoo.load(run.path)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 model.state_dict().values()))


def test_score_is_the_exact_mean_log_likelihood_with_its_stderr(fitted):
    model, _ = fitted
    x = torch.from_numpy(X[:40])
    log_z = exact_log_partition(model).value
    with torch.no_grad():
        per_example = -model.free_energy(x).double() - log_z  # log p(x) = -F(x) - log Z
    value = model.score(x)
    assert isinstance(value, float) and value == pytest.approx(float(per_example.mean()), rel=1e-5)
    assert genzoo.score(model, X[:40]) == pytest.approx(value, rel=1e-12)
    est = model.score(x, estimate=True)
    assert isinstance(est, Estimate) and est.value == pytest.approx(value, rel=1e-12)
    assert est.estimator == "exact enumeration" and est.unit == "nats per example"
    assert est.stderr == pytest.approx(float(per_example.std() / math.sqrt(40)), rel=1e-4)


def test_score_by_ais_and_by_importance_sampling(fitted):
    model, _ = fitted
    est = model.score(X[:20], estimate=True, exact_max_units=0, ais_runs=8, ais_betas=200,
                      reverse=False, generator=torch.Generator().manual_seed(0))
    assert est.estimator.startswith("AIS") and est.n_samples == 8 and est.stderr > 0
    assert est.value == pytest.approx(model.score(X[:20]), abs=0.5)
    spec = get_model_spec("vae")
    vae = spec.build(spec.config_cls(n_visible=6, hidden=(8,), n_latent=2))
    est = vae.score(X[:10], estimate=True, is_samples=20)
    assert "importance" in est.estimator and est.n_samples == 20 and est.value < 0


def test_run_evaluate_reports_the_test_split(fitted):
    model, run = fitted
    report = run.evaluate()
    assert report.split == "test" and report.n_examples == len(run.bundle.test)
    assert report["nll_nats"] == pytest.approx(-model.score(run.bundle.test.x), rel=1e-9)


def test_fit_on_a_file_and_on_a_dataset(tmp_path):
    y = RNG.integers(0, 2, len(X))
    np.savez(tmp_path / "d.npz", x=X, y=y)
    model, run = genzoo.fit("rbm", tmp_path / "d.npz", out=tmp_path / "a", **TINY)
    assert run.config.data.name == str(tmp_path / "d.npz")
    assert run.config.data.file_sha256 is not None and run.bundle.train.y is not None
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model2, run2 = genzoo.fit("rbm", ds, out=tmp_path / "b", **TINY)
    # The same examples and seed: the same split and the same model.
    assert torch.equal(run.bundle.test.x, run2.bundle.test.x)
    assert torch.allclose(model.W, model2.W)
    _model3, run3 = genzoo.fit("rbm", X, y=y, out=tmp_path / "c", **TINY)
    assert torch.equal(run3.bundle.test.y, run.bundle.test.y)


def test_fit_refusals(tmp_path):
    grey = RNG.random((30, 4))
    with pytest.raises(DataError, match="grey levels.*data.binarize=dynamic"):
        genzoo.fit("rbm", grey, out=tmp_path / "g", **TINY)
    _model, run = genzoo.fit("rbm", grey, out=tmp_path / "g2", data={"binarize": "dynamic"},
                            **TINY)
    assert run.config.data.binarize == "dynamic"
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) optimizer.*model=\{\.\.\.\}"):
        genzoo.fit("rbm", X, out=tmp_path / "x", optimizer={"lr": 1})
    with pytest.raises(ConfigError, match="unknown config key.*model.n_hiden.*model.n_hidden"):
        genzoo.fit("rbm", X, out=tmp_path / "x", model={"n_hiden": 3})
    with pytest.raises(ConfigError, match="n_hidden"):
        genzoo.fit("rbm", X, out=tmp_path / "x", model={"n_hidden": "many"})
    with pytest.raises(DataError, match="y= goes with an array"):
        genzoo.fit("rbm", "digits", y=np.zeros(3), out=tmp_path / "x")


def test_score_refusals(fitted):
    model, _ = fitted
    with pytest.raises(DataError, match="batch of examples"):
        model.score(X[0])
    spec = get_model_spec("gmmn")
    gmmn = spec.build(spec.config_cls(n_visible=6, hidden=(8,), n_latent=2))
    with pytest.raises(GenzooError, match="no likelihood estimator"):
        gmmn.score(X)


def test_fit_pretrains_a_dbm_as_the_command_line_does(tmp_path):
    # model.pretrain_epochs > 0 on a fresh run: greedy layerwise pretraining into out/pretrain,
    # the pretrained visible bias kept (recorded), then the DBM's own training.
    _, run = genzoo.fit(
        "dbm", "digits", out=tmp_path / "dbm",
        model={"hidden": [8, 4], "pretrain_epochs": 1},
        data={"binarize": "threshold", "n_train": 100},
        train={"epochs": 1, "batch_size": 25, "progress": False, "grid_samples": 0},
    )
    assert sorted(p.name for p in (tmp_path / "dbm" / "pretrain").iterdir()) == ["rbm_0", "rbm_1"]
    saved = json.loads((tmp_path / "dbm" / "config.json").read_text())
    assert saved["model"]["pretrain_epochs"] == 1 and saved["model"]["init_visible_bias"] is False
    assert run.config.model.init_visible_bias is False and run.metrics["step"] > 0
    # A resumed run never pretrains again.
    genzoo.fit("dbm", "digits", out=tmp_path / "dbm", resume=True, train={"epochs": 2})
    assert sorted(p.name for p in (tmp_path / "dbm" / "pretrain").iterdir()) == ["rbm_0", "rbm_1"]
