"""benchmarks/markov_mnist_parzen.py and benchmarks/hopfield_capacity.py in their smoke modes:
each runs end to end and writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import math

from PIL import Image
from smoke_support import read_result, run_script


def test_markov_parzen_smoke_reports_parzen_and_mmd(tmp_path):
    # The digits need no data files, so this runs everywhere.
    run_script(["benchmarks/markov_mnist_parzen.py", "--model", "dae-walkback", "--smoke",
                "--out", str(tmp_path / "run"), "--results", str(tmp_path)])
    result = read_result(tmp_path / "markov_mnist_parzen_dae-walkback.json")
    assert result["smoke"] is True and result["metric"]["lower_is_better"] is False
    assert math.isfinite(result["value"]) and result["stderr"] > 0
    assert result["extra"]["mmd2"] is not None and result["training"]["settings"][
        "model.walkback"] == 2


def test_hopfield_capacity_smoke_writes_a_curve_and_a_plot(tmp_path):
    run_script(["benchmarks/hopfield_capacity.py", "--smoke", "--out", str(tmp_path)])
    result = read_result(tmp_path / "hopfield_capacity.json")
    assert result["references"][0]["value"] == 0.138
    assert set(result["extra"]["critical_load_by_n"]) == {"50", "100"}
    assert Image.open(tmp_path / "hopfield_capacity.png").size == (640, 420)
