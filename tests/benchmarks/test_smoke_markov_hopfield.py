"""benchmarks/markov_mnist_parzen.py and benchmarks/hopfield_capacity.py in their smoke modes:
each runs end to end and writes a well-formed result outside benchmarks/results."""

from __future__ import annotations

import json
import math
import sys

from PIL import Image
from smoke_support import BENCH, read_result, run_script, step_heads


def test_markov_parzen_smoke_reports_parzen_and_mmd(tmp_path):
    # The digits need no data files, so this runs everywhere.
    run_script(["benchmarks/markov_mnist_parzen.py", "--model", "dae-walkback", "--smoke",
                "--out", str(tmp_path / "run"), "--results", str(tmp_path)])
    result = read_result(tmp_path / "markov_mnist_parzen_dae-walkback.json")
    assert result["smoke"] is True and result["metric"]["lower_is_better"] is False
    assert math.isfinite(result["value"]) and result["stderr"] > 0
    assert result["extra"]["mmd2"] is not None and result["training"]["settings"][
        "model.walkback"] == 2
    assert "planned_epochs" not in result["training"]  # a finished run is not flagged

    # --evaluate-only re-evaluates the finished run without training again
    run_script(["benchmarks/markov_mnist_parzen.py", "--model", "dae-walkback", "--smoke",
                "--evaluate-only", "--out", str(tmp_path / "run"),
                "--results", str(tmp_path / "again")])
    again = read_result(tmp_path / "again" / "markov_mnist_parzen_dae-walkback.json")
    assert step_heads(again) == [["genzoo", "evaluate"]]
    assert "planned_epochs" not in again["training"]


def test_a_run_stopped_early_is_reported_with_the_epochs_its_checkpoint_saw(tmp_path):
    sys.path.insert(0, str(BENCH))
    import markov_mnist_parzen as script

    (tmp_path / "trainer_state.json").write_text(json.dumps(
        {"format_version": 1, "state": {"step": 4500, "batches_per_epoch": 500}}))
    done = script.trained_epochs(tmp_path)
    assert done == 9.0 and script.trained_epochs(tmp_path / "none") is None
    note = script.early_stop_note(done, 18)
    assert "stopped after 9 of the 18 planned epochs" in note
    assert script.early_stop_note(18.0, 18) is None and script.early_stop_note(None, 18) is None


def test_hopfield_capacity_smoke_writes_a_curve_and_a_plot(tmp_path):
    run_script(["benchmarks/hopfield_capacity.py", "--smoke", "--out", str(tmp_path)])
    result = read_result(tmp_path / "hopfield_capacity.json")
    assert result["references"][0]["value"] == 0.138
    assert set(result["extra"]["critical_load_by_n"]) == {"50", "100"}
    assert Image.open(tmp_path / "hopfield_capacity.png").size == (640, 420)
