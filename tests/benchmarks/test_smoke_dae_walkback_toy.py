"""benchmarks/dae_walkback_toy.py in its smoke mode: trains plain and walkback DAEs on the 2-D
ring, runs their chains and writes a well-formed MMD result outside benchmarks/results (the
machinery, not the numbers)."""

from __future__ import annotations

import math

from smoke_support import run_script, written_result


def test_dae_walkback_toy_smoke_writes_the_table():
    result = written_result(run_script(["benchmarks/dae_walkback_toy.py", "--smoke"]))
    assert result["smoke"] is True and result["kind"] == "likelihood"
    assert result["metric"]["lower_is_better"] is True
    table = result["extra"]["table"]
    assert [(r["steps"], r["noise"], r["walkback"]) for r in table] == [(30, 0.1, 1), (30, 0.1, 2)]
    for row in table:
        assert math.isfinite(row["mmd2_mean"]) and row["mmd2_sd"] >= 0
        for seed in row["seeds"]:
            assert 0 < seed["p_value"] <= 1 and 0 <= seed["off_mode_fraction"] <= 1
    assert result["value"] == min(r["mmd2_mean"] for r in table)
    assert set(result["extra"]["walkback_minus_plain"]) == {"steps=30,noise=0.1,K=2"}
    assert math.isfinite(result["extra"]["data_vs_data"]["mean"])
