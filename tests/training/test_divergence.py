"""train.divergence_factor: a run whose validation figure explodes (more than the factor times
its best) is warned about, naming the step and the last good checkpoint; a normal run is not,
and the factor 0 turns the warning off."""

from __future__ import annotations

import warnings

import pytest

from genzoo.core.errors import ConfigError
from genzoo.training import Trainer
from genzoo.training.config import TrainConfig


def _exploding(model, after_calls: int):
    """Make the toy's validation nll 100 times larger from validation call ``after_calls`` + 1
    on (the step-0 baseline is call 1); returns the list the calls are counted in."""
    plain = model.validation_metrics
    calls = []

    def validation_metrics(x):
        calls.append(1)
        figures = plain(x)
        if len(calls) > after_calls:
            figures["nll"] *= 100.0
        return figures

    model.validation_metrics = validation_metrics
    return calls


def _fit(model, cfg, bundle, run_dir, resume=False) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(model, cfg, bundle, run_dir).fit(resume=resume)
    return [str(w.message) for w in caught
            if issubclass(w.category, RuntimeWarning) and "diverging" in str(w.message)]


# 50 examples in batches of 10: 5 steps an epoch; validations at steps 0, 2, 4, 6, ...
def _config(toy, **train):
    return toy.make_config(**{"epochs": 3, "batch_size": 10, "validate_every": 2,
                              "checkpoint_every": 4, **train})


def test_an_exploding_validation_figure_is_warned_about_with_step_and_checkpoint(
    toy, bundle, tmp_path
):
    cfg = _config(toy)
    model = toy.build(cfg)
    calls = _exploding(model, after_calls=3)  # fine at steps 0, 2, 4; exploded from step 6
    run = tmp_path / "run"
    found = _fit(model, cfg, bundle, run)
    assert len(calls) > 5 and len(found) == 1, found  # once per onset, not every validation
    message = found[0]
    assert message.startswith("step 6: valid_nll=")
    assert "the last good checkpoint is step 4" in message and str(run) in message
    assert "train.lr" in message and "train.divergence_factor=0" in message


def test_the_best_before_a_resume_still_counts(toy, bundle, tmp_path):
    run = tmp_path / "run"
    first = toy.build(_config(toy, max_steps=4))
    assert _fit(first, _config(toy, max_steps=4), bundle, run) == []
    cfg = _config(toy)
    model = toy.build(cfg)
    _exploding(model, after_calls=0)  # every validation after the resume is exploded
    found = _fit(model, cfg, bundle, run, resume=True)
    # The best comes from metrics.csv (steps 0 to 4), the good checkpoint from the run.
    assert len(found) == 1 and found[0].startswith("step 6:"), found
    assert "at step 6" not in found[0] and "the last good checkpoint is step 4" in found[0]


def test_a_normal_run_and_a_factor_of_zero_warn_nothing(toy, bundle, tmp_path):
    cfg = _config(toy)
    assert _fit(toy.build(cfg), cfg, bundle, tmp_path / "normal") == []
    off = _config(toy, divergence_factor=0.0)
    model = toy.build(off)
    _exploding(model, after_calls=2)
    assert _fit(model, off, bundle, tmp_path / "off") == []


@pytest.mark.parametrize("factor", [-1.0, 0.5, 1.0])
def test_a_factor_must_exceed_one(factor):
    with pytest.raises(ConfigError, match="divergence_factor"):
        TrainConfig(divergence_factor=factor)
