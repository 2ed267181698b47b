"""benchmarks/dbm_mnist_nll.py in smoke mode: pretraining, training and `genzoo evaluate` run
end to end and write a well-formed result outside benchmarks/results (the machinery, not the
number)."""

from __future__ import annotations

import argparse
import math

from smoke_support import read_result, run_script
from support import load_benchmark


def test_dbm_smoke_writes_a_complete_result(tmp_path, binarized_mnist_available):
    run_script(["benchmarks/dbm_mnist_nll.py", "--smoke", "--out", str(tmp_path / "run"),
                "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "dbm_mnist_nll.json")
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert "AIS" in result["estimator"]["name"] and "bound" in result["estimator"]["name"]
    assert result["estimator"]["ais_runs"] == 10 and result["estimator"]["ais_betas"] == 100
    assert result["estimator"]["reverse"] is True
    assert math.isfinite(result["value"]) and result["value"] > 0
    assert result["data"]["n_examples"] == 200
    assert (tmp_path / "run_pretrain" / "rbm_0").is_dir()
    assert (tmp_path / "run_pretrain" / "rbm_1").is_dir()
    ref = result["references"][0]
    assert ref["value"] == 84.62 and math.isclose(ref["gap"], result["value"] - 84.62)


def test_dbm_smoke_resume_continues_the_finished_run(tmp_path, binarized_mnist_available):
    """--resume reuses the pretrained RBMs and the DBM's checkpoint: same numbers, and the
    training time is the Trainer's logged one."""
    args = ["benchmarks/dbm_mnist_nll.py", "--smoke", "--out", str(tmp_path / "run"),
            "--results-dir", str(tmp_path)]
    run_script(args)
    first = read_result(tmp_path / "dbm_mnist_nll.json")
    run_script([*args, "--resume"])
    again = read_result(tmp_path / "dbm_mnist_nll.json")
    assert again["value"] == first["value"]
    assert "train_logged" in again["wall_s"] and "train" not in again["wall_s"]


def test_only_the_pretrained_mode_claims_the_recipe_pretraining():
    bench = load_benchmark("dbm_mnist_nll")
    assert "weight-doubling" in bench.recipe_notes("pretrained")[0]
    for mode in ("scratch", "centered"):
        matched = bench.recipe_notes(mode)[0]
        assert "pretraining" not in matched and matched.startswith("Matched: 784-500-1000")


def test_a_pretrained_budget_run_keeps_its_own_result_name():
    bench = load_benchmark("dbm_mnist_nll")

    def name(mode, epochs, smoke=False):
        return bench.result_name(argparse.Namespace(mode=mode, epochs=epochs, smoke=smoke))

    assert name("pretrained", bench.DEFAULT_EPOCHS) == "dbm_mnist_nll"
    assert name("pretrained", 10) == "dbm_mnist_nll_pretrained_e10"
    assert name("pretrained", 1, smoke=True) == "dbm_mnist_nll"
    assert name("scratch", 10) == "dbm_mnist_nll_scratch"
