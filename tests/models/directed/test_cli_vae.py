"""The VAE through the command line: train on the 8x8 digits, then evaluate by importance
sampling."""

from __future__ import annotations

import json
import math

from genzoo.cli import main


def test_train_then_evaluate_reports_importance_sampling(tmp_path, capsys):
    run = tmp_path / "vae"
    argv = [
        "train", "vae", "--data", "digits",
        "--set", "data.binarize=threshold",
        "--set", "model.hidden=16",
        "--set", "model.n_latent=4",
        "--set", "train.optimizer=adam",
        "--set", "train.lr=0.001",
        "--set", "train.lr_schedule=constant",
        "--set", "train.epochs=1",
        "--set", "train.progress=false",
        "--out", str(run),
    ]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--set", "eval.is_samples=50"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model"] == "vae"
    assert report["estimator"] == "importance sampling (k=50)" and report["n_samples"] == 50
    assert report["nll_nats"] <= report["elbo_nats"]
    assert 0 < report["nll_nats"] < 64 * math.log(2)  # better than the uniform model
    assert "log_z" not in report and report["dtype"] == "mixed"  # no log Z: absent; the default
    assert main(["evaluate", str(run), "--set", "eval.is_samples=50"]) == 0
    text = capsys.readouterr().out
    assert "importance sampling (k=50)" in text and "negative ELBO" in text


def test_grey_digits_are_refused_by_the_bernoulli_decoder(tmp_path, capsys):
    # Grey levels kept on purpose (with no binarization named, genzoo would pick dynamic).
    argv = ["train", "vae", "--data", "digits", "--set", "data.binarize=none",
            "--set", "model.hidden=4", "--set", "train.epochs=1", "--set", "train.progress=false",
            "--out", str(tmp_path / "grey")]
    code = main(argv)
    assert code != 0
    assert "binarize" in capsys.readouterr().err
