"""The distributed_scaling row (benchmarks/speed/distributed_scaling.py) in smoke mode: real 1- and 2-process `genzoo train` runs
(torchrun, gloo) on the digits data, and a well-formed speed result outside
benchmarks/results (the machinery, not the numbers)."""

from __future__ import annotations

import math

from smoke_support import read_result, run_script


def test_distributed_scaling_smoke_measures_one_and_two_processes(tmp_path):
    run_script(["benchmarks/run.py", "distributed_scaling", "--smoke", "--", "--models", "rbm",
                "--out", str(tmp_path / "runs"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "distributed_scaling.json")
    assert result["smoke"] is True and result["kind"] == "speed"
    assert set(result["timings"]) == {"rbm/1p", "rbm/1p-2shards", "rbm/2p"}
    for t in result["timings"].values():
        assert t["status"] == "ok", t
        assert t["examples_per_s"] > 0 and math.isfinite(t["median_s"])
    assert result["timings"]["rbm/2p"]["processes"] == 2
    eff = result["ratios"]["rbm: scaling efficiency"]
    speedup = result["ratios"]["rbm: speedup 2p / 1p"]
    assert math.isclose(eff, speedup / 2)
    assert "torch.distributed.run" in result["config"]["commands"][2]
    # the 2-process run and the 1-process run with 2 shards trained the same parameters
    import torch
    from safetensors.torch import load_file

    a = load_file(tmp_path / "runs" / "rbm-1p-2shards" / "model.safetensors")
    b = load_file(tmp_path / "runs" / "rbm-2p" / "model.safetensors")
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], rtol=1e-6, atol=1e-7)
