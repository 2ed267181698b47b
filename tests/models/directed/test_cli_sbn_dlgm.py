"""The SBN (NVIL, whose running statistics are buffers) and the DLGM through the command
line: train on the 8x8 digits, reload the run, evaluate by importance sampling."""

from __future__ import annotations

import json
import math

import pytest

from genzoo.cli import main
from genzoo.training.checkpoint import load_model


@pytest.mark.parametrize("model, sets", [
    ("sbn", ["model.hidden=16,8", "model.training=nvil"]),
    ("dlgm", ["model.latent=4,2", "model.hidden=16"]),
])
def test_train_then_evaluate_reports_importance_sampling(model, sets, tmp_path, capsys):
    run = tmp_path / model
    argv = ["train", model, "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "train.optimizer=adam", "--set", "train.lr=0.003",
            "--set", "train.lr_schedule=constant",
            "--set", "train.epochs=2", "--set", "train.progress=false", "--out", str(run)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    capsys.readouterr()
    loaded, _ = load_model(run)
    if model == "sbn":  # the NVIL normalisers were updated and came back from the checkpoint
        assert int(loaded.signal_count) > 0 and float(loaded.signal_var) > 0
    assert main(["evaluate", str(run), "--json", "--set", "eval.is_samples=50"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model"] == model
    assert report["estimator"] == "importance sampling (k=50)"
    assert report["nll_nats"] <= report["elbo_nats"]
    assert 0 < report["nll_nats"] < 64 * math.log(2)  # better than the uniform model
