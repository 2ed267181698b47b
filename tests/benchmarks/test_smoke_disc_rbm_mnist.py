"""benchmarks/disc_rbm_mnist.py in its smoke mode: the script trains through the CLI, classifies
the test split from the checkpoint and writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"


def _common():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("_bench_common_disc", BENCH / "_common.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


@pytest.mark.parametrize("data", ["digits", "mnist"])
def test_smoke_writes_a_complete_result(tmp_path, data):
    if data == "mnist":
        root = os.environ.get("GENZOO_DATA")
        if not root or not (Path(root) / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
            pytest.skip("GENZOO_DATA with mnist/ is needed for the mnist smoke run")
    before = _snapshot()
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/disc_rbm_mnist.py",
            "--smoke",
            "--data",
            data,
            "--out",
            str(tmp_path / "run"),
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _snapshot() == before, "a smoke run touched benchmarks/results"
    result = json.loads((tmp_path / "disc_rbm_mnist.json").read_text())
    _common().validate_result(result)
    assert result["smoke"] is True and result["metric"]["unit"] == "%"
    assert 0.0 <= result["value"] <= 100.0 and math.isfinite(result["stderr"])
    assert result["data"]["name"] == data and result["data"]["n_examples"] == 200
    assert result["references"][0]["value"] == 1.81
    assert [s.split()[:3] for s in result["steps"]] == [["genzoo", "train", "disc-rbm"]]


def test_full_run_refuses_digits():
    proc = subprocess.run(
        [sys.executable, "benchmarks/disc_rbm_mnist.py", "--data", "digits"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "--smoke" in proc.stderr
