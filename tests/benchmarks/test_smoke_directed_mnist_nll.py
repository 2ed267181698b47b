"""benchmarks/directed_mnist_nll.py in its smoke mode: the CLI end to end (train, then
importance-sampled evaluation) writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import real_data_file

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import _common

sys.path.remove(str(BENCH))

# One model per data path: the VAE code on dynamically binarized MNIST, the SBN on the fixed
# binarization (the other recipes differ only in settings).
CASES = [("iwae", "mnist/train-images-idx3-ubyte.gz", 84.78),
         ("sbn-nvil", "binarized_mnist/binarized_mnist.npz", 96.7)]


def _results_snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


@pytest.mark.parametrize("model, data_file, reference", CASES)
def test_directed_smoke_reports_an_importance_sampled_nll(model, data_file, reference, tmp_path):
    real_data_file(data_file)
    before = _results_snapshot()
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/directed_mnist_nll.py", "--model", model, "--smoke",
         "--out", str(tmp_path / "run")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _results_snapshot() == before, "a smoke run touched benchmarks/results"
    written = proc.stdout.strip().splitlines()[-1].removeprefix("wrote ").strip()
    result = json.loads(Path(written).read_text())
    _common.validate_result(result)
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"] == "importance sampling (k=50)"
    assert result["data"]["n_examples"] == 50 and result["data"]["split"] == "test"
    assert "binarization" in result["data"]
    # Never below the ELBO of the same draws; a barely trained model is better than the
    # uniform distribution over 784 bits but far from the reference.
    assert result["value"] <= result["extra"]["elbo_nats"] + 1e-9
    assert 0 < result["value"] < 784 * math.log(2)
    assert math.isclose(result["references"][0]["gap"], result["value"] - reference)
    assert [s.split()[:2] for s in result["steps"]] == [["genzoo", "train"],
                                                         ["genzoo", "evaluate"]]
