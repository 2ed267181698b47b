"""benchmarks/gan_mnist_parzen.py in smoke mode: the CLI train + evaluate path of an implicit
model end to end, and a well-formed result written outside benchmarks/results."""

from __future__ import annotations

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
        import _common

        return _common
    finally:
        sys.path.remove(str(BENCH))


def test_smoke_reports_parzen_mmd_and_frechet(tmp_path):
    # One model: the run is mostly two CLI start-ups; the other models share every code path
    # of the script but their recipe, and train through the same Trainer phases in the tests.
    model, reference = "gan", 225.0
    before = {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "GENZOO_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "benchmarks/gan_mnist_parzen.py", "--model", model, "--smoke",
         "--out", str(tmp_path / "run")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}
    assert after == before, "a smoke run touched benchmarks/results"
    written = proc.stdout.strip().splitlines()[-1].removeprefix("wrote ").strip()
    result = json.loads(Path(written).read_text())
    _common().validate_result(result)
    assert result["smoke"] is True and result["metric"]["lower_is_better"] is False
    assert [s.split()[:2] for s in result["steps"]] == [["genzoo", "train"],
                                                         ["genzoo", "evaluate"]]
    assert math.isfinite(result["value"]) and result["estimator"]["n_model_samples"] == 10_000
    extra = result["extra"]
    assert 0 < extra["mmd_p_value"] <= 1 and extra["frechet_distance"] >= 0
    assert 0 <= extra["classes_covered"] <= 10
    # The training data themselves score far above a 20-step model: Parzen's weakness shown.
    assert extra["training_data_parzen"]["value"] > result["value"]
    assert any("weak measure" in w for w in extra["warnings"])
    assert extra["baseline"]["frechet_distance"] > 0
    assert math.isclose(result["references"][0]["gap"], result["value"] - reference)
