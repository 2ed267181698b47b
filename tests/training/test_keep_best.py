"""train.keep_best: the model with the lowest validation figure is kept in RUN/best/ (a
model-only checkpoint that loads like a run directory), across a kill and resume, and through
the command line; a figure the model does not report is refused with the ones it does."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from support import KillAt, Killed, valid_curve

from genzoo.cli import main
from genzoo.core.errors import CheckpointError, ConfigError
from genzoo.training import Trainer
from genzoo.training.checkpoint import (
    BEST_DIR,
    checkpoint_step,
    load_model,
    load_trainer_state,
)
from genzoo.training.config import TrainConfig
from genzoo.training.manifest import LOCK_FILE


def _valid_curve(run_dir) -> dict[int, float]:
    return valid_curve(run_dir, "nll")


def _config(toy, **train):
    # A large constant step keeps the toy's validation figure going up and down.
    return toy.make_config(epochs=4, lr=1.5, validate_every=3, log_every=3,
                           checkpoint_every=5, keep_best="nll", **train)


def test_best_dir_holds_the_model_with_the_lowest_validation_figure(toy, bundle, tmp_path):
    cfg = _config(toy)
    model = toy.build(cfg)
    out = Trainer(model, cfg, bundle, tmp_path).fit()

    curve = _valid_curve(tmp_path)
    best_step = min(curve, key=curve.get)
    assert best_step not in (0, max(curve))  # selection differs from both ends of the run
    assert out["best_step"] == best_step and out["best_value"] == pytest.approx(curve[best_step])
    best, best_cfg = load_model(tmp_path / BEST_DIR)
    assert checkpoint_step(tmp_path / BEST_DIR) == best_step
    with pytest.raises(CheckpointError, match="model only"):  # nothing to resume there
        load_trainer_state(tmp_path / BEST_DIR)
    assert best_cfg == cfg
    with torch.no_grad():
        figure = best.validation_metrics(bundle.valid.x)["nll"]
    assert figure == pytest.approx(curve[best_step])
    assert not torch.equal(best.theta, model.theta)  # the final model is not the kept one


def test_a_killed_and_resumed_run_keeps_the_same_best_model(toy, bundle, tmp_path):
    cfg = _config(toy)
    full = toy.build(cfg)
    expected = Trainer(full, cfg, bundle, tmp_path / "full").fit()

    with pytest.raises(Killed):
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "cut", callbacks=[KillAt(17)]).fit()
    got = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "cut").fit(resume=True)

    assert got["best_step"] == expected["best_step"]
    a, _ = load_model(tmp_path / "full" / BEST_DIR)
    b, _ = load_model(tmp_path / "cut" / BEST_DIR)
    assert torch.equal(a.theta, b.theta)


def test_unknown_figure_and_missing_validation_are_refused(toy, bundle, tmp_path):
    cfg = toy.make_config(keep_best="elbo")
    model = toy.build(cfg)
    with pytest.raises(ConfigError, match=r"keep_best='elbo'.*mean_p, nll"):
        Trainer(model, cfg, bundle, tmp_path / "a").fit()
    assert int(model.calls) == 0  # refused before the first step (on every process alike)
    no_valid = toy.make_bundle(n_valid=0)
    cfg = toy.make_config(keep_best="nll")
    with pytest.raises(ConfigError, match="no validation figures"):
        Trainer(toy.build(cfg), cfg, no_valid, tmp_path / "b").fit()
    with pytest.raises(ConfigError, match="without the valid_ prefix"):
        TrainConfig(keep_best="valid_nll")


def test_stale_best_dir_of_a_failed_run_is_dropped_by_a_fresh_run(toy, bundle, tmp_path):
    (tmp_path / BEST_DIR).mkdir(parents=True)
    (tmp_path / BEST_DIR / "model.safetensors").write_bytes(b"left by a run that failed")
    (tmp_path / LOCK_FILE).touch()  # a run leaves its lock file: the folder is genzoo's
    cfg = toy.make_config()
    Trainer(toy.build(cfg), cfg, bundle, tmp_path).fit()
    assert not (tmp_path / BEST_DIR).exists()


def test_cli_trains_with_keep_best_and_evaluates_the_kept_model(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "nade", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", "data.n_train=300", "--set", "data.n_eval=100",
                 "--set", "model.n_hidden=8", "--set", "train.epochs=3",
                 "--set", "train.progress=false", "--set", "train.grid_samples=0",
                 "--set", "train.keep_best=nll", "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "best valid_nll" in printed and str(run / BEST_DIR) in printed
    with open(run / "metrics.csv", newline="") as f:
        curve = [float(r["valid_nll"]) for r in csv.DictReader(f) if r.get("valid_nll")]
    assert main(["evaluate", str(run / BEST_DIR), "--split", "valid", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nll_nats"] == pytest.approx(min(curve), rel=1e-5)
