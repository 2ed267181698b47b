"""The L&B08 protocol of the disc-RBM rows on a tiny problem: online SGD (batch 1) through the
Trainer, early stopping on the validation error (train.keep_best=error, train.patience), the
kept model being the one with the lowest validation error; the discriminative model
(alpha = 0) trains on the exact gradient alone."""

from __future__ import annotations

import pytest
import torch
from support import valid_curve

import genzoo
from genzoo.data import load_data
from genzoo.data.config import DataConfig
from genzoo.evaluation.classification import classification_error
from genzoo.training.checkpoint import BEST_DIR, checkpoint_step, load_model


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_online_sgd_stops_early_on_the_validation_error_and_keeps_the_best(alpha, tmp_path):
    data = {"n_train": 40, "n_eval": 60}
    model, run = genzoo.fit(
        "disc-rbm", "digits", out=tmp_path / "run",
        model={"n_hidden": 16, "alpha": alpha},
        data=data,
        # A large constant step at batch 1 makes the validation error wander, so it stalls.
        train={"epochs": 60, "batch_size": 1, "optimizer": "sgd", "lr": 2.0, "momentum": 0.0,
               "initial_momentum": 0.0, "keep_best": "error", "patience": 3,
               "divergence_factor": 0, "progress": False, "grid_samples": 0},
    )
    errors = valid_curve(tmp_path / "run", "error")
    steps = sorted(errors)
    assert run.metrics["step"] == steps[-1] < 60 * 40  # stopped before the 60 epochs
    best_step = min(steps, key=lambda s: (errors[s], s))
    # The run ends exactly `patience` validations after the best one.
    assert steps.index(steps[-1]) - steps.index(best_step) == 3
    assert checkpoint_step(tmp_path / "run" / BEST_DIR) == best_step
    best, _ = load_model(tmp_path / "run" / BEST_DIR)
    valid = load_data(DataConfig(name="digits", **data)).valid
    assert classification_error(best, valid.x, valid.y) == pytest.approx(errors[best_step])
    assert errors[best_step] < 0.9  # it learned something (10 classes: chance is 0.9)
    if alpha == 0.0:  # the discriminative model: no generative term is logged
        assert "free_energy_gap" not in model.loss(valid.x[:4], y=valid.y[:4])
    assert torch.isfinite(best.W).all()
