"""benchmarks/dbm_mnist_classify.py in smoke mode: a tiny DBM, the classifier fine-tuned from it
and `genzoo evaluate --task classify` (and the MP-DBM's own run) end to end, writing a
well-formed result outside benchmarks/results (the machinery, not the number)."""

from __future__ import annotations

import math

import pytest
from smoke_support import read_result, run_script
from support import real_data_file


@pytest.mark.parametrize("model", ["dbm-classifier", "mp-dbm"])
def test_classification_smoke_writes_a_complete_result(tmp_path, model):
    real_data_file("mnist/train-images-idx3-ubyte.gz")
    run_script(["benchmarks/dbm_mnist_classify.py", "--model", model, "--smoke",
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / f"dbm_mnist_classify_{model}.json")
    assert result["smoke"] is True and result["metric"]["unit"] == "%"
    assert result["data"]["name"] == "mnist" and result["data"]["n_examples"] == 200
    assert 0 <= result["value"] <= 100 and 0 < result["stderr"] < 10
    e = result["value"] / 100
    assert math.isclose(result["stderr"], 100 * math.sqrt(e * (1 - e) / 200))
    reference = {"dbm-classifier": 0.95, "mp-dbm": 0.88}[model]
    ref = result["references"][0]
    assert ref["value"] == reference and math.isclose(ref["gap"], result["value"] - reference)
    if model == "dbm-classifier":
        source = result["training"]["source_dbm"]
        assert source["model"] == "dbm" and source["hidden"] == [20, 30]
        assert (tmp_path / "dbm" / "config.json").is_file()


def test_mp_dbm_resume_continues_the_finished_run(tmp_path):
    """--resume on a finished run goes through `genzoo train --resume` (no retraining): the
    same number, and the Trainer's cumulative clock as the training time."""
    real_data_file("mnist/train-images-idx3-ubyte.gz")
    args = ["benchmarks/dbm_mnist_classify.py", "--model", "mp-dbm", "--smoke",
            "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)]
    run_script(args)
    first = read_result(tmp_path / "dbm_mnist_classify_mp-dbm.json")
    run_script([*args, "--resume"])
    again = read_result(tmp_path / "dbm_mnist_classify_mp-dbm.json")
    assert "--resume" in again["steps"][0]
    assert again["value"] == first["value"]
    assert again["wall_s"]["train_logged"] == first["wall_s"]["train_logged"]
