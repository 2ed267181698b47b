"""benchmarks/dbm_mnist_nll.py in smoke mode: pretraining, training and `genzoo evaluate` run
end to end and write a well-formed result outside benchmarks/results (the machinery, not the
number)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"


def _common():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("_bench_common_dbm", BENCH / "_common.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_dbm_smoke_writes_a_complete_result(tmp_path, binarized_mnist_available):
    before = {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/dbm_mnist_nll.py", "--smoke", "--out", str(tmp_path / "run"),
         "--results-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")} == before

    result = json.loads((tmp_path / "dbm_mnist_nll.json").read_text())
    _common().validate_result(result)
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
