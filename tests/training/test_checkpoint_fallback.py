"""The previous checkpoint is kept in previous/ and used, with a warning, when the current one
is damaged: any file of it truncated at any of several offsets, a missing manifest, or a save
killed with SIGKILL at a random moment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch
from support import killed_at_rename

from genzoo.core.errors import CheckpointError
from genzoo.training import checkpoint as ckpt
from genzoo.training.checkpoint import (
    CheckpointFallbackWarning,
    checkpoint_step,
    has_checkpoint,
    load_model,
    load_trainer_state,
    read_run_config,
    save_checkpoint,
    write_config,
)

CURRENT_FILES = ("checkpoint.json", "config.json", "model.safetensors", "trainer_state.json",
                 "trainer_state.safetensors")


def save(toy, run: Path, step: int, fill: float, cfg=None):
    cfg = cfg or toy.make_config()
    model = toy.build(cfg)
    with torch.no_grad():
        model.theta.fill_(fill)
    save_checkpoint(run, model, cfg, {"step": step, "fill": fill})
    return cfg


def two_saves(toy, run: Path):
    cfg = save(toy, run, 1, 0.5)
    save(toy, run, 2, 2.0, cfg)
    return cfg


def assert_loads(run: Path, step: int, fill: float) -> None:
    model, _ = load_model(run)
    assert torch.equal(model.theta, torch.full_like(model.theta, fill))
    state = load_trainer_state(run)
    assert state["step"] == step and state["fill"] == fill
    assert checkpoint_step(run) == step


def test_the_previous_checkpoint_is_kept_with_its_own_manifest(toy, tmp_path):
    run = tmp_path / "run"
    save(toy, run, 1, 0.5)
    assert not (run / "previous").exists()  # nothing to keep after the first save
    two_saves(toy, tmp_path / "run2")
    run = tmp_path / "run2"
    assert sorted(p.name for p in (run / "previous").iterdir()) == sorted(CURRENT_FILES)
    assert json.loads((run / "previous" / "checkpoint.json").read_text())["step"] == 1
    assert_loads(run, 2, 2.0)
    assert_loads(run / "previous", 1, 0.5)  # previous/ is itself a loadable checkpoint
    save(toy, run, 3, -1.0)
    assert_loads(run / "previous", 2, 2.0)
    assert not [p for p in run.iterdir() if p.name.endswith((".tmp", ".pending"))]


@pytest.mark.parametrize("name", CURRENT_FILES)
def test_a_truncated_file_falls_back_to_the_previous_checkpoint(toy, tmp_path, name):
    template = tmp_path / "template"
    two_saves(toy, template)
    size = (template / name).stat().st_size
    # Every offset of the manifest but its last byte: without its final newline it is still
    # the complete JSON document, so nothing is lost.
    offsets = sorted({0, 1, 8, size // 3, size // 2, size - 2, size - 1})
    if name == "checkpoint.json":
        offsets.remove(size - 1)
    for offset in offsets:
        run = tmp_path / f"cut{offset}"
        shutil.copytree(template, run)
        with open(run / name, "r+b") as f:
            f.truncate(offset)
        with pytest.warns(CheckpointFallbackWarning) as record:
            assert_loads(run, 1, 0.5)  # model, trainer state and step, all from previous/
        message = str(record[0].message)
        assert "the current checkpoint failed verification" in message
        assert f"previous checkpoint (step 1) kept in {run / 'previous'}" in message
        assert name in message
        assert has_checkpoint(run)
        with pytest.warns(CheckpointFallbackWarning):
            assert read_run_config(run) == read_run_config(run / "previous")
        # The next save (a resumed run) replaces the damage and keeps a sound previous one:
        # step 1, or step 2 when the new save's pending copy of the damaged file happens to
        # be byte-identical to the lost one (the same config), which makes step 2 whole again.
        save(toy, run, 3, -1.0)
        assert_loads(run, 3, -1.0)
        prev_step = checkpoint_step(run / "previous")
        assert prev_step in (1, 2)
        assert_loads(run / "previous", prev_step, {1: 0.5, 2: 2.0}[prev_step])


def test_a_resumed_run_makes_the_previous_checkpoint_current_again(toy, tmp_path):
    """A resume loads previous/ (with a warning), then records its config with write_config:
    the previous checkpoint is committed as the current one, so loading no longer warns."""
    run = tmp_path / "run"
    cfg = two_saves(toy, run)
    (run / "checkpoint.json").write_bytes(b'{"format": "genzoo-ch')
    with pytest.warns(CheckpointFallbackWarning):
        assert read_run_config(run) == cfg
    write_config(run, cfg.with_overrides(["train.epochs=9"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointFallbackWarning)
        assert_loads(run, 1, 0.5)
        assert read_run_config(run).train.epochs == 9
    assert_loads(run / "previous", 1, 0.5)


def test_trainer_resumes_from_the_previous_checkpoint_when_the_last_is_truncated(
    toy, bundle, tmp_path
):
    from genzoo.training import Trainer

    cfg = toy.make_config(epochs=3, checkpoint_every=5)  # 7 batches an epoch: saves 5..20, 21
    run = tmp_path / "run"
    Trainer(toy.build(cfg), cfg, bundle, run).fit()
    assert (checkpoint_step(run), checkpoint_step(run / "previous")) == (21, 20)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    longer = toy.make_config(epochs=4, checkpoint_every=5)
    with pytest.warns(CheckpointFallbackWarning, match=r"previous checkpoint \(step 20\)"):
        out = Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    assert out["step"] == 28 and checkpoint_step(run) == 28
    assert checkpoint_step(run / "previous") == 25


def test_missing_manifest_falls_back(toy, tmp_path):
    run = tmp_path / "run"
    two_saves(toy, run)
    (run / "checkpoint.json").unlink()
    assert has_checkpoint(run) and checkpoint_step(run) == 1
    with pytest.warns(CheckpointFallbackWarning, match="checkpoint.json is missing"):
        assert_loads(run, 1, 0.5)


def test_both_damaged_is_refused_naming_both(toy, tmp_path):
    run = tmp_path / "run"
    two_saves(toy, run)
    for where in (run, run / "previous"):
        data = (where / "model.safetensors").read_bytes()
        (where / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_model(run)
    msg = str(info.value)
    assert f"checkpoint in {run} is incomplete or was modified: model.safetensors" in msg
    assert f"the previous checkpoint kept in {run / 'previous'} is damaged too" in msg
    assert checkpoint_step(run) is None


def test_a_config_only_commit_keeps_the_previous_checkpoint(toy, tmp_path):
    run = tmp_path / "run"
    cfg = two_saves(toy, run)
    write_config(run, cfg.with_overrides(["train.epochs=9"]))
    assert read_run_config(run).train.epochs == 9
    assert read_run_config(run / "previous").train.epochs == cfg.train.epochs
    assert checkpoint_step(run / "previous") == 1


def test_a_kill_between_the_renames_of_the_rotation_is_repaired(toy, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = two_saves(toy, run)
    with killed_at_rename(monkeypatch, ckpt, ".previous.new.tmp"):
        save(toy, run, 3, -1.0, cfg)
    assert not (run / "previous").exists()  # moved aside, the new one not yet in place
    assert_loads(run, 2, 2.0)  # the current checkpoint was never touched
    save(toy, run, 3, -1.0, cfg)
    assert_loads(run, 3, -1.0)
    assert checkpoint_step(run / "previous") == 2
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


SAVER = textwrap.dedent(
    """
    import sys, torch
    from genzoo.training.checkpoint import save_checkpoint
    sys.path.insert(0, sys.argv[2])
    import conftest as toy
    from genzoo.core import registry
    registry._REGISTRY[toy.TOY_NAME] = registry.ModelSpec(
        toy.TOY_NAME, toy.ToyBernoulli, toy.ToyConfig, "test", "toy", "none")
    cfg = toy.make_config(model={"n_visible": 20000})
    model = toy.build(cfg)
    step = 0
    while True:
        step += 1
        with torch.no_grad():
            model.theta.fill_(float(step))
        save_checkpoint(sys.argv[1], model, cfg, {"step": step, "fill": float(step)})
        print(step, flush=True)
    """
)


def test_sigkill_during_saves_leaves_a_loadable_consistent_checkpoint(toy, tmp_path):
    """A process saving checkpoints back to back (each ~0.4 MB, so a kill often lands inside
    a save) is killed with SIGKILL at two moments; every time the current checkpoint loads
    without a fallback, agrees with its own trainer state and is the last or the next save,
    and previous/ holds the save before it."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    here = str(Path(__file__).parent)
    for delay in (0.0, 0.17):
        run = tmp_path / f"run{delay}"
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(run), here],
                                stdout=subprocess.PIPE, text=True, env=env)
        lines = [proc.stdout.readline() for _ in range(3)]  # 3 saves done: in the loop
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines += proc.stdout.read().split()
        last = int(lines[-1])
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointFallbackWarning)
            model, _ = load_model(run)
            state = load_trainer_state(run)
        assert float(model.theta[0].detach()) == state["fill"] == state["step"]
        assert state["step"] in (last, last + 1)
        if not (run / "previous").exists():
            # The kill fell between the two renames of the rotation: the next commit's
            # recovery moves the complete staged copy into place.
            ckpt._recover(run)
        prev = load_trainer_state(run / "previous")
        assert prev["step"] in (state["step"] - 1, state["step"])
