"""`genzoo train dbm-classifier --set model.dbm_run=RUN`: the DBM classifier fine-tuned from a
trained DBM run through the CLI alone, then `genzoo evaluate --task classify`. The classifier
run records the source DBM's config and carries its frozen copy, so it loads without the DBM
run. Tiny runs on the bundled digits."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from genzoo.cli import EXIT_USER_ERROR, main
from genzoo.core.errors import ConfigError
from genzoo.data import load_data
from genzoo.evaluation import classification_error
from genzoo.models.boltzmann.dbm_classifier import DBMClassifier
from genzoo.training.checkpoint import load_model, read_run_config

DATA = ["--data", "digits", "--set", "data.binarize=threshold", "--set", "data.n_train=500",
        "--set", "data.n_eval=200", "--set", "train.progress=false",
        "--set", "train.grid_samples=0"]


def _train_dbm(run, model: str = "dbm") -> None:
    assert main(["train", model, *DATA, "--set", "model.hidden=32,16", "--set",
                 "model.n_chains=50", "--set", "train.max_steps=60", "--set", "train.lr=0.1",
                 "--set", "train.lr_schedule=constant", "--out", str(run)]) == 0


def _train_classifier(run, dbm_run, *extra: str) -> int:
    return main(["train", "dbm-classifier", *DATA, "--set", f"model.dbm_run={dbm_run}",
                 "--set", "train.optimizer=adam", "--set", "train.lr=0.01",
                 "--set", "train.lr_schedule=constant",
                 "--set", "train.batch_size=50", "--set", "train.epochs=30",
                 "--out", str(run), *extra])


@pytest.mark.parametrize("source", ["dbm", "centered-dbm"])
def test_cli_fine_tune_from_a_dbm_run_then_evaluate_classify(tmp_path, capsys, source):
    dbm_run, clf_run = tmp_path / "dbm", tmp_path / "clf"
    _train_dbm(dbm_run, source)
    dbm, dbm_cfg = load_model(dbm_run)
    assert _train_classifier(clf_run, dbm_run) == 0

    cfg = read_run_config(clf_run)
    assert cfg.model_name == "dbm-classifier" and cfg.model.dbm_model == source
    assert json.loads(cfg.model.dbm_config) == dbm_cfg.model.to_dict()

    # Self-contained: the classifier loads, and gives the same predictions, without the DBM run.
    shutil.rmtree(dbm_run)
    clf, _ = load_model(clf_run)
    assert isinstance(clf, DBMClassifier)
    for key, value in dbm.state_dict().items():
        assert torch.equal(clf.dbm.state_dict()[key], value), key  # q_2 from the frozen DBM
    assert not torch.equal(clf.W[0], dbm.W[0])  # the MLP moved away from the DBM's weights

    capsys.readouterr()
    assert main(["evaluate", str(clf_run), "--task", "classify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    test = load_data(cfg.data).test
    assert report["estimator"] == "classification only" and report["split"] == "test"
    assert report["classification_error"] == pytest.approx(
        classification_error(clf, test.x, test.y)
    )
    assert report["classification_error"] < 0.3  # chance is 0.9
    assert 0 < report["classification_stderr"] < 0.05

    _fails(capsys, "use --task classify",
           ["evaluate", str(clf_run), "--task", "likelihood"])
    _fails(capsys, "classifier with no samples",
           ["sample", str(clf_run), "-n", "4", "--out", str(tmp_path / "s.png")])


def test_classifier_starts_from_the_dbm_and_resumes(tmp_path):
    dbm_run = tmp_path / "dbm"
    _train_dbm(dbm_run)
    dbm, _ = load_model(dbm_run)
    start = tmp_path / "start"
    assert _train_classifier(start, dbm_run, "--set", "train.max_steps=1",
                             "--set", "train.lr=1e-12") == 0
    clf, _ = load_model(start)
    for l in range(dbm.n_layers):
        torch.testing.assert_close(clf.W[l], dbm.W[l])
        torch.testing.assert_close(clf.b[l], dbm.bias(l + 1))

    # A resumed run continues from its checkpoint, not from the DBM run, and ends where an
    # uninterrupted one does.
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert _train_classifier(whole, dbm_run, "--set", "train.epochs=2") == 0
    assert _train_classifier(part, dbm_run, "--set", "train.epochs=1") == 0
    assert main(["train", "dbm-classifier", "--out", str(part), "--resume",
                 "--set", "train.epochs=2"]) == 0
    a, b = load_model(whole)[0].state_dict(), load_model(part)[0].state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _fails(capsys, message: str, argv: list[str]) -> None:
    """The CLI turns a user's mistake into exit code 2 and one line naming the fix."""
    capsys.readouterr()
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "genzoo: error:" in err and message in err, err


def test_clear_errors(tmp_path, capsys):
    _fails(capsys, "model.dbm_run", ["train", "dbm-classifier", *DATA, "--out",
                                     str(tmp_path / "none")])
    rbm_run = tmp_path / "rbm"
    assert main(["train", "rbm", *DATA, "--set", "model.n_hidden=8", "--set",
                 "train.max_steps=2", "--out", str(rbm_run)]) == 0
    capsys.readouterr()
    assert _train_classifier(tmp_path / "a", rbm_run) == EXIT_USER_ERROR
    assert "holds a 'rbm' run" in capsys.readouterr().err
    dbm_run = tmp_path / "dbm"
    assert main(["train", "dbm", *DATA, "--set", "model.hidden=8,4", "--set",
                 "train.max_steps=2", "--out", str(dbm_run)]) == 0
    _fails(capsys, "64 visible units but the data have 63 features", [
        "train", "dbm-classifier", "--data", "image-patches", "--set", "data.n_train=100",
        "--set", f"model.dbm_run={dbm_run}", "--out", str(tmp_path / "b")])
    capsys.readouterr()
    assert _train_classifier(tmp_path / "c", dbm_run, "--set", "model.n_classes=3") == 2
    assert "set model.n_classes=10" in capsys.readouterr().err
    _fails(capsys, "does not predict labels", ["evaluate", str(dbm_run), "--task", "classify"])


def test_building_needs_the_source_config():
    from genzoo.models.boltzmann.dbm_classifier import DBMClassifierConfig

    with pytest.raises(ConfigError, match="from_dbm"):
        DBMClassifier(DBMClassifierConfig(dbm_run="somewhere"))
    with pytest.raises(ConfigError, match="needs model.dbm_model"):
        DBMClassifierConfig(dbm_config="{}")
    with pytest.raises(ConfigError, match="n_classes"):
        DBMClassifierConfig(n_classes=1)
