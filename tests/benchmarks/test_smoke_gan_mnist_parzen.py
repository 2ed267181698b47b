"""benchmarks/gan_mnist_parzen.py in smoke mode: the CLI train + evaluate path of an implicit
model end to end, and a well-formed result written outside benchmarks/results."""

from __future__ import annotations

import math

from smoke_support import run_script, smoke_env, step_heads, written_result


def test_smoke_reports_parzen_mmd_and_frechet(tmp_path):
    # One model: the run is mostly two CLI start-ups; the other models share every code path
    # of the script but their recipe, and train through the same Trainer phases in the tests.
    model, reference = "gan", 225.0
    result = written_result(run_script(
        ["benchmarks/gan_mnist_parzen.py", "--model", model, "--smoke",
         "--out", str(tmp_path / "run")],
        timeout=300, env=smoke_env(GENZOO_CACHE=str(tmp_path / "cache"))))
    assert result["smoke"] is True and result["metric"]["lower_is_better"] is False
    assert step_heads(result) == [["genzoo", "train"], ["genzoo", "evaluate"]]
    assert math.isfinite(result["value"]) and result["estimator"]["n_model_samples"] == 10_000
    extra = result["extra"]
    assert 0 < extra["mmd_p_value"] <= 1 and extra["frechet_distance"] >= 0
    assert 0 <= extra["classes_covered"] <= 10
    # The training data themselves score far above a 20-step model: Parzen's weakness shown.
    assert extra["training_data_parzen"]["value"] > result["value"]
    assert any("weak measure" in w for w in extra["warnings"])
    assert extra["baseline"]["frechet_distance"] > 0
    assert math.isclose(result["references"][0]["gap"], result["value"] - reference)
    # --evaluate-only: the same checkpoint evaluated again, no training step, the same value
    again = written_result(run_script(
        ["benchmarks/gan_mnist_parzen.py", "--model", model, "--smoke", "--evaluate-only",
         "--out", str(tmp_path / "run")],
        timeout=300, env=smoke_env(GENZOO_CACHE=str(tmp_path / "cache"))))
    assert step_heads(again) == [["genzoo", "evaluate"]]
    assert again["value"] == result["value"]
    assert any("--evaluate-only" in n for n in again["notes"])
