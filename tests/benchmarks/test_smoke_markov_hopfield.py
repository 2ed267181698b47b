"""benchmarks/markov_mnist_parzen.py and benchmarks/hopfield_capacity.py in their smoke modes:
each runs end to end and writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))
import _common

sys.path.remove(str(BENCH))


def _results_snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


def _run(args: list[str]) -> None:
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_markov_parzen_smoke_reports_parzen_and_mmd(tmp_path):
    # The digits need no data files, so this runs everywhere.
    before = _results_snapshot()
    _run(["benchmarks/markov_mnist_parzen.py", "--model", "dae-walkback", "--smoke",
          "--out", str(tmp_path / "run"), "--results", str(tmp_path)])
    assert _results_snapshot() == before, "a smoke run touched benchmarks/results"
    result = json.loads((tmp_path / "markov_mnist_parzen_dae-walkback.json").read_text())
    _common.validate_result(result)
    assert result["smoke"] is True and result["metric"]["lower_is_better"] is False
    assert math.isfinite(result["value"]) and result["stderr"] > 0
    assert result["extra"]["mmd2"] is not None and result["training"]["settings"][
        "model.walkback"] == 2


def test_hopfield_capacity_smoke_writes_a_curve_and_a_plot(tmp_path):
    before = _results_snapshot()
    _run(["benchmarks/hopfield_capacity.py", "--smoke", "--out", str(tmp_path)])
    assert _results_snapshot() == before, "a smoke run touched benchmarks/results"
    result = json.loads((tmp_path / "hopfield_capacity.json").read_text())
    _common.validate_result(result)
    assert result["references"][0]["value"] == 0.138
    assert set(result["extra"]["critical_load_by_n"]) == {"50", "100"}
    assert Image.open(tmp_path / "hopfield_capacity.png").size == (640, 420)
