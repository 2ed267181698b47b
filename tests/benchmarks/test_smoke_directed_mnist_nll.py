"""benchmarks/directed_mnist_nll.py in its smoke mode: the CLI end to end (train, then
importance-sampled evaluation) writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import math

import pytest
from smoke_support import run_script, step_heads, written_result
from support import real_data_file

# One model per data path: the VAE code on dynamically binarized MNIST, the SBN on the fixed
# binarization (the other recipes differ only in settings).
CASES = [("iwae", "mnist/train-images-idx3-ubyte.gz", 84.78),
         ("sbn-nvil", "binarized_mnist/binarized_mnist.npz", 96.7)]


@pytest.mark.parametrize("model, data_file, reference", CASES)
def test_directed_smoke_reports_an_importance_sampled_nll(model, data_file, reference, tmp_path):
    real_data_file(data_file)
    result = written_result(run_script(
        ["benchmarks/directed_mnist_nll.py", "--model", model, "--smoke",
         "--out", str(tmp_path / "run")], timeout=300))
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"] == "importance sampling (k=50)"
    assert result["data"]["n_examples"] == 50 and result["data"]["split"] == "test"
    assert "binarization" in result["data"]
    # Never below the ELBO of the same draws; a barely trained model is better than the
    # uniform distribution over 784 bits but far from the reference.
    assert result["value"] <= result["extra"]["elbo_nats"] + 1e-9
    assert 0 < result["value"] < 784 * math.log(2)
    assert math.isclose(result["references"][0]["gap"], result["value"] - reference)
    assert step_heads(result) == [["genzoo", "train"], ["genzoo", "evaluate"]]


def test_burda_recipe_resumes_through_the_cli(tmp_path):
    """vae-burda runs the staged schedule; --resume on a finished run continues it through
    `genzoo train --resume` (no retraining) and reports the Trainer's cumulative time."""
    real_data_file("mnist/train-images-idx3-ubyte.gz")
    args = ["benchmarks/directed_mnist_nll.py", "--model", "vae-burda", "--smoke",
            "--out", str(tmp_path / "run")]
    first = written_result(run_script(args, timeout=300))
    assert first["training"]["settings"]["train.lr_schedule"] == "staged"
    assert "Burda et al.'s schedule" in " ".join(first["notes"])
    again = written_result(run_script([*args, "--resume"], timeout=300))
    assert "--resume" in again["steps"][0]
    assert again["value"] == first["value"]
    assert again["wall_s"]["train_logged"] == first["wall_s"]["train_logged"]
