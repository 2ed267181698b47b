"""`genzoo evaluate` on energy models trained with dynamic binarization (grey-level train.x).

The AIS base model is fitted to the training data the model saw (a Bernoulli draw of the grey
levels), so evaluation must not refuse the grey levels themselves.
"""

from __future__ import annotations

import json
import math

import pytest

from genzoo.cli import main

TRAIN = [
    "--data", "digits", "--set", "data.binarize=dynamic", "--set", "data.n_train=200",
    "--set", "data.n_eval=50", "--set", "train.epochs=1", "--set", "train.progress=false",
    "--set", "train.grid_samples=0",
]  # fmt: skip


@pytest.mark.parametrize(
    "name,model_sets",
    [("rbm", ["model.n_hidden=8"]), ("dbm", ["model.hidden=[8,6]", "model.n_chains=10"])],
)
def test_evaluate_energy_model_trained_with_dynamic_binarization(tmp_path, name, model_sets):
    run = tmp_path / name
    sets = [a for s in model_sets for a in ("--set", s)]
    assert main(["train", name, *TRAIN, *sets, "--out", str(run)]) == 0
    out = tmp_path / "report.json"
    ais = ["--set", "eval.ais_runs=4", "--set", "eval.ais_betas=200"]
    assert main(["evaluate", str(run), *ais, "--json", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    # 64 binary pixels: a proper model's NLL lies in (0, 64 log 2] per example give or take
    # the AIS error; a refusal or a NaN would fail before this.
    assert math.isfinite(report["nll_nats"]) and 0 < report["nll_nats"] < 64 * math.log(2) * 2
    assert report["split"] == "test"
