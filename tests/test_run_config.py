"""RunConfig: the settings a saved run does not hold."""

from __future__ import annotations

from genzoo.run_config import RunConfig


def test_mismatches_name_every_setting_the_run_does_not_hold():
    cfg = RunConfig.default("fvsbn").with_overrides(["train.lr=0.01", "data.binarize=threshold"])
    settings = {"train.lr": 0.02, "data.binarize": "threshold", "train.progress": False,
                "eval.dtype": "float32", "model.no_such_field": 3}
    out = cfg.mismatches(settings)
    assert out[0] == "train.lr: recipe 0.02, run 0.01"
    assert out[1] == "train.progress: recipe False, run True"  # a bool as --set spells it
    assert out[2].startswith("model.no_such_field: recipe 3, not a setting of this run (")
    assert len(out) == 3  # held settings and evaluation-time ones are not named
    assert cfg.mismatches({"train.lr": 0.01, "data.binarize": "threshold"}) == []
