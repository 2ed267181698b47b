"""train.patience: early stopping on train.keep_best's validation figure. The run ends after
``patience`` validations in a row that do not lower the figure, its last checkpoint at that
step and RUN/best/ the model of the best step; a killed and resumed run stops at the same step;
patience without keep_best, or with several processes, is refused."""

from __future__ import annotations

import pytest
import torch
from support import KillAt, Killed, valid_curve

from genzoo.core.errors import ConfigError
from genzoo.training import Trainer
from genzoo.training.checkpoint import BEST_DIR, checkpoint_step, load_model
from genzoo.training.config import TrainConfig


def _valid_curve(run_dir) -> dict[int, float]:
    return valid_curve(run_dir, "nll")


def _config(toy, **train):
    # A large constant step keeps the toy's validation figure going up and down.
    return toy.make_config(epochs=6, lr=1.5, validate_every=3, log_every=3,
                           checkpoint_every=5, keep_best="nll", divergence_factor=0, **train)


def _expected_stop(curve: dict[int, float], patience: int) -> tuple[int, int]:
    """(step where ``patience`` stale validations in a row end the run, best step before it)."""
    best, best_step, stale = float("inf"), None, 0
    for step in sorted(curve):
        if curve[step] < best:
            best, best_step, stale = curve[step], step, 0
        else:
            stale += 1
            if stale == patience:
                return step, best_step
    raise AssertionError("the toy curve never stalls that long: lengthen the run")


def test_the_run_ends_after_patience_validations_without_improvement(toy, bundle, tmp_path):
    full_cfg = _config(toy)
    full = Trainer(toy.build(full_cfg), full_cfg, bundle, tmp_path / "full").fit()
    assert "stopped_early" not in full
    stop, best_step = _expected_stop(_valid_curve(tmp_path / "full"), patience=2)
    assert stop < full["step"]  # the stop comes before the schedule's end

    cfg = _config(toy, patience=2)
    model = toy.build(cfg)
    out = Trainer(model, cfg, bundle, tmp_path / "early").fit()
    assert out["step"] == stop and out["stopped_early"] == 1
    assert out["best_step"] == best_step
    assert checkpoint_step(tmp_path / "early") == stop
    assert checkpoint_step(tmp_path / "early" / BEST_DIR) == best_step
    # The same steps as the full run up to the stop: the curves agree there.
    assert _valid_curve(tmp_path / "early") == {
        s: v for s, v in _valid_curve(tmp_path / "full").items() if s <= stop}
    best, _ = load_model(tmp_path / "early" / BEST_DIR)
    assert not torch.equal(best.theta, model.theta)  # the final model is not the kept one


def test_a_killed_and_resumed_run_stops_at_the_same_step(toy, bundle, tmp_path):
    cfg = _config(toy, patience=2)
    expected = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "full").fit()
    with pytest.raises(Killed):
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "cut",
                callbacks=[KillAt(expected["step"] - 1)]).fit()
    got = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "cut").fit(resume=True)
    assert got["step"] == expected["step"] and got["best_step"] == expected["best_step"]
    # Resuming a run that stopped early trains no further step.
    again = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "cut").fit(resume=True)
    assert again["step"] == expected["step"]


def test_patience_needs_keep_best_and_is_nonnegative():
    with pytest.raises(ConfigError, match="train.keep_best"):
        TrainConfig(patience=3)
    with pytest.raises(ConfigError, match="patience=-1"):
        TrainConfig(patience=-1, keep_best="nll")
    assert TrainConfig(patience=3, keep_best="nll").patience == 3
