"""train.log_to=tensorboard: the TensorBoard event files hold every metrics.csv column, the
sample grids, the first-layer filters and the parameter histograms; the option is refused,
before anything is written, when tensorboard is not installed."""

from __future__ import annotations

import csv
import dataclasses
import sys

import pytest

from genzoo.core.errors import ConfigError
from genzoo.run_config import RunConfig
from genzoo.training import Trainer

TINY = ["data.name=digits", "data.binarize=threshold", "data.n_train=60", "data.n_eval=20",
        "model.n_hidden=8", "train.batch_size=20", "train.epochs=2", "train.log_every=1",
        "train.progress=false", "train.grid_samples=4"]


def _rbm(overrides):
    from genzoo.core.registry import get_model_spec
    from genzoo.data import load_data

    cfg = RunConfig.default("rbm").with_overrides(TINY + overrides)
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    return get_model_spec("rbm").build(cfg.model), cfg, bundle


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0,
                                                        "histograms": 0})
    acc.Reload()
    return acc


def test_the_event_files_hold_the_scalars_images_and_histograms(tmp_path):
    pytest.importorskip("tensorboard")
    model, cfg, bundle = _rbm(["train.log_to=tensorboard"])
    Trainer(model, cfg, bundle, tmp_path / "run").fit()

    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    acc = _events(tmp_path / "run" / "tensorboard")
    tags = acc.Tags()
    # Every metrics.csv column but the step (the axis) is a scalar, at the steps it was logged.
    assert set(tags["scalars"]) == set(rows[0]) - {"step"}
    for column in ("loss", "valid_recon_error", "lr"):
        logged = [(int(r["step"]), float(r[column])) for r in rows if r[column] != ""]
        assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars(column)] == \
            [(s, pytest.approx(v, rel=1e-6)) for s, v in logged]
    # The pictures: at each validation (the end of each epoch, and the step-0 baseline).
    assert {"samples", "filters"} <= set(tags["images"])
    assert [e.step for e in acc.Images("samples")] == [0, 3, 6]
    assert acc.Images("filters")[-1].width > 0
    assert {"parameters/W", "parameters/b", "parameters/c"} <= set(tags["histograms"])
    assert (tmp_path / "run" / "curves.png").is_file()  # beside, as with csv


def test_a_resumed_run_hides_the_events_after_its_checkpoint(tmp_path):
    """The interrupted part logged past its last checkpoint; the resumed run replays those
    steps, and TensorBoard shows each step once (purge_step)."""
    pytest.importorskip("tensorboard")
    from support import KillAt, Killed

    model, cfg, bundle = _rbm(["train.log_to=tensorboard", "train.checkpoint_every=2"])
    with pytest.raises(Killed):
        Trainer(model, cfg, bundle, tmp_path / "run", callbacks=[KillAt(5)]).fit()
    model, _, _ = _rbm(["train.log_to=tensorboard", "train.checkpoint_every=2"])
    Trainer(model, cfg, bundle, tmp_path / "run").fit(resume=True)
    steps = [e.step for e in _events(tmp_path / "run" / "tensorboard").Scalars("loss")]
    assert steps == sorted(set(steps)) == list(range(1, 7))


def test_tensorboard_missing_is_refused_with_the_install_command(tmp_path, monkeypatch):
    # An import of a module whose sys.modules entry is None raises ImportError.
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    model, cfg, bundle = _rbm(["train.log_to=tensorboard"])
    with pytest.raises(ConfigError, match=r"pip install 'genzoo\[tensorboard\]'"):
        Trainer(model, cfg, bundle, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_log_to_is_validated():
    with pytest.raises(ConfigError, match="expected one of 'csv', 'tensorboard'"):
        RunConfig.default("rbm").with_overrides(["train.log_to=wandb"])
