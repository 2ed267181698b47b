"""benchmarks/grbm_nll.py in smoke mode: trains and evaluates through the CLI, writes a
well-formed likelihood result outside benchmarks/results (the machinery, not the number)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"


def test_grbm_nll_smoke_runs_the_cli_end_to_end(tmp_path):
    before = {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/grbm_nll.py", "--smoke", "--out", str(tmp_path / "run"),
         "--results-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}
    assert after == before, "a smoke run touched benchmarks/results"

    sys.path.insert(0, str(BENCH))
    try:
        import _common
    finally:
        sys.path.remove(str(BENCH))
    result = json.loads((tmp_path / "grbm_nll.json").read_text())
    _common.validate_result(result)
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["estimator"]["name"] == "AIS (forward)" and result["estimator"]["reverse"]
    assert result["estimator"]["ais_runs"] == 10 and result["estimator"]["ais_betas"] == 100
    assert result["data"]["name"] == "image-patches" and result["data"]["n_examples"] == 200
    assert math.isfinite(result["value"]) and result["stderr"] >= 0
    assert math.isfinite(result["extra"]["value_reverse"])
    # a full covariance fits the training patches at least as well as a diagonal one does
    assert result["extra"]["gaussian_nll"] < result["extra"]["diagonal_gaussian_nll"]
    # the Jacobian of the unit-variance scaling was applied: 63 log(std) with std ~ 0.09
    assert result["extra"]["log_det_jacobian_nats"] > 100
    assert result["references"] == []
    assert [s.split()[:2] for s in result["steps"]] == [["genzoo", "train"],
                                                         ["genzoo", "evaluate"]]
