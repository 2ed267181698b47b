"""The autoregressive models through the command line, in process: train, evaluate (exact
likelihood), sample."""

from __future__ import annotations

import json
import math

import pytest

from genzoo.cli import main


@pytest.fixture(scope="module")
def nade_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nade"
    args = ["train", "nade", "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "model.n_hidden=16", "--set", "train.epochs=1",
            "--set", "train.optimizer=adam", "--set", "train.lr=0.01",
            "--set", "train.lr_schedule=constant",
            "--set", "train.progress=false", "--out", str(out)]
    assert main(args) == 0
    return out


def test_models_lists_the_autoregressive_family(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "nade" in out and "fvsbn" in out and "autoregressive" in out
    assert "Larochelle & Murray 2011" in out


def test_train_then_evaluate_nade_reports_an_exact_finite_nll(nade_run, capsys):
    cfg = json.loads((nade_run / "config.json").read_text())
    assert cfg["model_name"] == "nade" and cfg["model"]["n_visible"] == 64
    assert cfg["model"]["n_hidden"] == 16
    capsys.readouterr()
    assert main(["evaluate", str(nade_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "exact" in report["estimator"] and report["split"] == "test"
    # 64 binary pixels: a uniform model scores 64 log 2; one epoch of NADE must beat it.
    assert math.isfinite(report["nll_nats"]) and 0 < report["nll_nats"] < 64 * math.log(2)
    assert report["stderr"] > 0 and "log_z" not in report  # no log Z: absent


def test_evaluate_text_output_for_nade(nade_run, capsys):
    assert main(["evaluate", str(nade_run), "--split", "valid"]) == 0
    text = capsys.readouterr().out
    assert "nats per example" in text and "exact log-likelihood (log_prob)" in text
    assert "log Z" not in text


def test_fvsbn_trains_and_samples(tmp_path, capsys):
    out = tmp_path / "fvsbn"
    args = ["train", "fvsbn", "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "train.max_steps=5", "--set", "train.optimizer=adam",
            "--set", "train.progress=false", "--out", str(out)]
    assert main(args) == 0
    assert (out / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    assert "exact" in json.loads(capsys.readouterr().out)["estimator"]
    png = tmp_path / "samples.png"
    assert main(["sample", str(out), "-n", "9", "--out", str(png)]) == 0
    assert png.is_file() and png.stat().st_size > 0
