"""The Trainer: exact resume, divergence handling, metrics.csv, samples.png, config.json; every
run on the device under test (train.device)."""

from __future__ import annotations

import csv
import itertools
import json
import types

import pytest
import torch
from PIL import Image
from support import KillAt, Killed, needs_cpu

from genzoo.core.errors import CheckpointError, ConfigError, TrainingDiverged
from genzoo.training import Callback, Trainer
from genzoo.training.checkpoint import checkpoint_step, load_model, load_trainer_state


@pytest.fixture
def toy(toy, device):
    """The toy helpers of conftest.py, their configs training on the device under test unless a
    test names train.device itself."""
    make = toy.make_config

    def make_config(model=None, **train):
        return make(model, **{"device": str(device), **train})

    return types.SimpleNamespace(**{**vars(toy), "make_config": make_config})


class Recorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.lr: list[float] = []
        self.momentum: list[float] = []

    def on_step_end(self, trainer, loss):
        self.losses.append(loss)
        group = trainer.optimizer.param_groups[0]
        self.lr.append(group["lr"])
        self.momentum.append(group.get("momentum", group.get("betas", (None,))[0]))


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_killed_and_resumed_run_equals_uninterrupted_run(toy, bundle, tmp_path, optimizer):
    # 3 epochs of 7 batches; checkpoints at 5, 10, ...; killed at step 13 (mid-epoch 2),
    # after the metrics row of step 12 was written, so the resumed run drops that row and
    # replays steps 11-13 from the checkpoint at step 10.
    cfg = toy.make_config(epochs=3, optimizer=optimizer, lr_schedule="linear",
                          checkpoint_every=5, log_every=3, lr=0.05)
    full = toy.build(cfg)
    Trainer(full, cfg, bundle, tmp_path / "full").fit()

    first = toy.build(cfg)
    with pytest.raises(Killed):
        Trainer(first, cfg, bundle, tmp_path / "resumed", callbacks=[KillAt(13)]).fit()
    assert checkpoint_step(tmp_path / "resumed") == 10
    _, rows_killed = read_csv(tmp_path / "resumed" / "metrics.csv")
    assert rows_killed[-1]["step"] == "12"
    with open(tmp_path / "resumed" / "metrics.csv", "a") as f:
        f.write("1,0.1")  # a torn row, as a power cut could leave
    resumed = toy.build(cfg)
    trainer = Trainer(resumed, cfg, bundle, tmp_path / "resumed")
    out = trainer.fit(resume=True)
    assert resumed.init_calls == 0  # init_from_data only on a fresh run
    assert out["step"] == 21 and trainer.step == 21
    assert_same_state(full, resumed)

    # metrics.csv: same rows, no duplicates of the replayed steps, identical loss figures.
    cols_full, rows_full = read_csv(tmp_path / "full" / "metrics.csv")
    cols_res, rows_res = read_csv(tmp_path / "resumed" / "metrics.csv")
    assert cols_full == cols_res
    assert [r["step"] for r in rows_res] == [r["step"] for r in rows_full]
    for key in ("loss", "nll", "lr", "valid_nll"):
        assert [r[key] for r in rows_res] == [r[key] for r in rows_full], key


def test_stopping_at_max_steps_then_extending_equals_uninterrupted_run(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=2, checkpoint_every=4)
    full = toy.build(cfg)
    Trainer(full, cfg, bundle, tmp_path / "full").fit()

    short_cfg = toy.make_config(epochs=2, checkpoint_every=4, max_steps=10)  # mid-epoch 2
    part = toy.build(short_cfg)
    assert Trainer(part, short_cfg, bundle, tmp_path / "run").fit()["step"] == 10
    assert load_trainer_state(tmp_path / "run")["step_in_epoch"] == 3
    resumed = toy.build(cfg)
    Trainer(resumed, cfg, bundle, tmp_path / "run").fit(resume=True)
    assert_same_state(full, resumed)
    # The resumed run recorded its new length in config.json, and the checkpoint verifies.
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["max_steps"] is None
    assert load_model(tmp_path / "run")[1] == cfg


def test_resume_refuses_a_changed_config_or_a_missing_checkpoint(toy, bundle, tmp_path):
    cfg = toy.make_config(max_steps=3)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "empty").fit(resume=True)
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    changed = toy.make_config(max_steps=6, lr=0.2)
    with pytest.raises(CheckpointError, match=r"train\.lr is 0\.2 now but 0\.1 in the checkpoint"):
        Trainer(toy.build(changed), changed, bundle, tmp_path / "run").fit(resume=True)
    # A fresh run must not silently overwrite an existing checkpoint.
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()


def test_model_built_from_another_config_is_refused(toy, bundle, tmp_path):
    cfg = toy.make_config(max_steps=2)
    other = toy.Model(toy.Config(nan_at_call=99))
    with pytest.raises(ConfigError, match="run_config.model"):
        Trainer(other, cfg, bundle, tmp_path / "run").fit()


def test_nan_loss_keeps_last_good_checkpoint(toy, bundle, tmp_path):
    cfg = toy.make_config(model={"nan_at_call": 8}, checkpoint_every=3, epochs=5)
    run = tmp_path / "run"
    model = toy.build(cfg)
    with pytest.raises(TrainingDiverged) as info:
        Trainer(model, cfg, bundle, run).fit()
    msg = str(info.value)
    assert "diverged at step 8" in msg and "loss=nan" in msg
    assert "(step 6)" in msg and str(run) in msg and "train.lr" in msg
    assert checkpoint_step(run) == 6
    loaded, _ = load_model(run)
    assert int(loaded.calls) == 6 and torch.isfinite(loaded.theta).all()
    assert not (run / "samples.png").exists()


def test_nan_parameters_are_never_checkpointed(toy, bundle, tmp_path):
    # At step 5 a buffer turns Inf while every loss stays finite; the check before the
    # checkpoint at step 8 must refuse to write that state.
    cfg = toy.make_config(model={"poison_buffer_at_call": 5}, checkpoint_every=4, log_every=100)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"diverged at step 8 \('scratch' is not finite\)"):
        Trainer(toy.build(cfg), cfg, bundle, run).fit()
    assert checkpoint_step(run) == 4
    assert torch.isfinite(load_model(run)[0].scratch).all()


def test_model_error_on_nan_parameters_is_reported_as_divergence(toy, bundle, tmp_path, device):
    needs_cpu(device, "torch.bernoulli of NaN probabilities is a RuntimeError on the CPU but a "
                      "device-side assert on CUDA, which would end the test session")
    # Here the model itself fails on the NaN parameters (torch.bernoulli of NaN) at step 6.
    cfg = toy.make_config(model={"bad_grad_at_call": 5, "strict": True}, checkpoint_every=4)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5 \('theta' is not finite\)"):
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    assert checkpoint_step(tmp_path / "run") == 4


def test_model_errors_on_finite_parameters_propagate_unchanged(toy, bundle, tmp_path):
    class Broken(toy.Model):
        def loss(self, x, generator=None):
            raise RuntimeError("a bug in the model")

    cfg = toy.make_config(max_steps=2)
    with pytest.raises(RuntimeError, match="a bug in the model"):
        Trainer(Broken(cfg.model), cfg, bundle, tmp_path / "run").fit()


def test_config_json_is_written_before_training(toy, bundle, tmp_path):
    cfg = toy.make_config(model={"nan_at_call": 1})
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written yet"):
        Trainer(toy.build(cfg), cfg, bundle, run).fit()
    assert json.loads((run / "config.json").read_text()) == cfg.to_dict()


def test_metrics_csv_columns_rows_and_interval_means(toy, bundle, tmp_path):
    # 2 epochs x 7 batches, log every 4 steps, validate at each epoch end and at step 0.
    cfg = toy.make_config(epochs=2, log_every=4)
    rec = Recorder()
    out = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run", callbacks=[rec]).fit()
    cols, rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert cols == ["step", "epoch", "lr", "loss", "nll", "examples_per_s", "wall_s",
                    "valid_mean_p", "valid_nll"]
    assert [int(r["step"]) for r in rows] == [0, 4, 7, 8, 12, 14]
    train_rows = {int(r["step"]): r for r in rows if r["loss"]}
    valid_rows = {int(r["step"]): r for r in rows if r["valid_nll"]}
    assert sorted(train_rows) == [4, 8, 12, 14] and sorted(valid_rows) == [0, 7, 14]
    assert float(rows[2]["epoch"]) == 1.0
    # Each logged loss is the mean over its interval of the per-step losses.
    bounds = [0, 4, 8, 12, 14]
    for lo, hi in itertools.pairwise(bounds):
        expected = sum(rec.losses[lo:hi]) / (hi - lo)
        assert float(train_rows[hi]["loss"]) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert all(float(r["examples_per_s"]) > 0 for r in train_rows.values())
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls)
    assert out["step"] == 14 and out["loss"] == float(rows[-1]["loss"])
    assert out["valid_nll"] == float(rows[-1]["valid_nll"]) and out["wall_s"] >= walls[-1]


def test_validate_every_steps(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=2, log_every=100, validate_every=5)
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    _, rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows if r["valid_nll"]] == [0, 5, 10, 14]


def test_samples_png_has_the_grid_pixel_size(toy, bundle, tmp_path):
    cfg = toy.make_config(max_steps=2, grid_samples=6)
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    with Image.open(tmp_path / "run" / "samples.png") as im:
        # 6 images of 2x3 -> 3 per row, 2 rows; scale 2; 1-px separators and border.
        assert im.mode == "L"
        assert im.size == (3 * 3 * 2 + 4, 2 * 2 * 2 + 3)


def test_schedules_are_applied_per_step(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=3, lr=0.1, lr_schedule="linear", lr_final_factor=0.1,
                          initial_momentum=0.5, momentum=0.9, momentum_warmup_epochs=2)
    rec = Recorder()
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run", callbacks=[rec]).fit()
    total = 21
    assert rec.lr == pytest.approx([0.1 * (1 - 0.9 * s / total) for s in range(total)])
    assert rec.momentum == [0.5] * 14 + [0.9] * 7


def test_adam_uses_momentum_as_beta1(toy, bundle, tmp_path):
    cfg = toy.make_config(optimizer="adam", max_steps=3, momentum=0.8)
    rec = Recorder()
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run", callbacks=[rec]).fit()
    assert rec.momentum == [0.8, 0.8, 0.8]


def test_same_seed_same_run_other_seed_other_run(toy, bundle, tmp_path):
    cfg = toy.make_config(max_steps=6)
    a, b = toy.build(cfg), toy.build(cfg)
    Trainer(a, cfg, bundle, tmp_path / "a").fit()
    Trainer(b, cfg, bundle, tmp_path / "b").fit()
    assert_same_state(a, b)
    other = toy.make_config(max_steps=6, seed=1)
    c = toy.build(other)
    Trainer(c, other, bundle, tmp_path / "c").fit()
    assert not torch.equal(a.theta, c.theta)


def test_resume_on_another_device_is_refused(toy, bundle, tmp_path):
    import hashlib

    cfg = toy.make_config(max_steps=3)
    run = tmp_path / "run"
    Trainer(toy.build(cfg), cfg, bundle, run).fit()
    path = run / "trainer_state.json"
    doc = json.loads(path.read_text())
    doc["state"]["generator_device"] = "cuda:0"  # as if trained with device=auto on a GPU
    data = json.dumps(doc).encode()
    path.write_bytes(data)
    manifest = json.loads((run / "checkpoint.json").read_text())
    manifest["files"]["trainer_state.json"]["sha256"] = hashlib.sha256(data).hexdigest()
    (run / "checkpoint.json").write_text(json.dumps(manifest))
    longer = toy.make_config(max_steps=6, device="auto" if not torch.cuda.is_available() else "cpu")
    with pytest.raises(CheckpointError, match="trained on cuda:0 .* set train.device=cuda:0"):
        Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)


def test_fit_flushes_subnormals_while_it_trains_and_restores_the_mode(toy, bundle, tmp_path,
                                                                     monkeypatch):
    from genzoo.utils import denormals

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    monkeypatch.delenv(denormals.ENV_VAR, raising=False)
    seen = []

    class Probe(Callback):
        def on_step_end(self, trainer, loss):
            seen.append(denormals.flushing())

    cfg = toy.make_config(epochs=1)
    Trainer(toy.build(cfg), cfg, bundle, tmp_path, callbacks=[Probe()]).fit()
    assert seen and all(seen) and not denormals.flushing()
