"""benchmarks/disc_rbm_mnist.py in its smoke mode: the script trains through the CLI, classifies
the test split from the checkpoint and writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from smoke_support import REPO, read_result, run_script, step_heads
from support import real_data_file


@pytest.mark.parametrize("data", ["digits", "mnist"])
def test_smoke_writes_a_complete_result(tmp_path, data):
    if data == "mnist":
        real_data_file("mnist/t10k-images-idx3-ubyte.gz")
    run_script(["benchmarks/disc_rbm_mnist.py", "--smoke", "--data", data,
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "disc_rbm_mnist.json")
    assert result["smoke"] is True and result["metric"]["unit"] == "%"
    assert 0.0 <= result["value"] <= 100.0 and math.isfinite(result["stderr"])
    assert result["data"]["name"] == data and result["data"]["n_examples"] == 200
    assert result["references"][0]["value"] == 1.81
    assert step_heads(result, 3) == [["genzoo", "train", "disc-rbm"]]


def test_full_run_refuses_digits():
    proc = subprocess.run([sys.executable, "benchmarks/disc_rbm_mnist.py", "--data", "digits"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "--smoke" in proc.stderr
