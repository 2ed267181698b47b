"""`genzoo train dbm --pretrain EPOCHS`: greedy layerwise pretraining before the one Trainer run,
recorded in config.json; the run starts from the composed RBM stack, trains and evaluates, and
a resumed run does not pretrain again. Tiny runs on the bundled digits."""

from __future__ import annotations

import json

import pytest
import torch

from genzoo.cli import main
from genzoo.core.registry import get_model_spec
from genzoo.data import load_data
from genzoo.recipes.dbm_pretraining import compose_dbm, load_composed
from genzoo.training.checkpoint import load_model, read_run_config

SETS = ["--set", "data.binarize=threshold", "--set", "model.hidden=12,6",
        "--set", "model.n_chains=20", "--set", "train.max_steps=5", "--set", "train.lr=0.1",
        "--set", "train.lr_schedule=constant",
        "--set", "train.progress=false", "--set", "train.grid_samples=0"]


def _train(model: str, run, *extra: str) -> None:
    assert main(["train", model, "--data", "digits", *SETS, "--out", str(run), *extra]) == 0


def _step0_valid_free_energy(run) -> float:
    rows = (run / "metrics.csv").read_text().splitlines()
    header, first = rows[0].split(","), rows[1].split(",")
    assert first[header.index("step")] == "0"
    return float(first[header.index("valid_variational_free_energy")])


def _composed_start(run):
    """The model the run should start from: its config, the stack's RBMs composed, then the
    Trainer's init_from_data."""
    cfg = read_run_config(run)
    rbms = [load_model(run / "pretrain" / f"rbm_{l}")[0] for l in range(2)]
    model = get_model_spec(cfg.model_name).build(cfg.model)
    load_composed(model, compose_dbm(rbms, cfg.model))
    bundle = load_data(cfg.data)
    model.init_from_data(bundle.train_x(0))
    return model, bundle


@pytest.mark.parametrize("model_name", ["dbm", "centered-dbm"])
def test_pretrained_run_starts_from_the_composed_stack_and_differs_from_scratch(
    tmp_path, model_name
):
    pre, scratch = tmp_path / "pre", tmp_path / "scratch"
    _train(model_name, pre, "--pretrain", "3")
    _train(model_name, scratch)
    cfg = read_run_config(pre)
    assert cfg.model.pretrain_epochs == 3 and cfg.model.init_visible_bias is False
    assert read_run_config(scratch).model.pretrain_epochs == 0
    rbm0 = read_run_config(pre / "pretrain" / "rbm_0")
    assert rbm0.model_name == "rbm" and rbm0.train.epochs == 3 and rbm0.train.max_steps is None

    start, bundle = _composed_start(pre)
    with torch.no_grad():
        expected = start.validation_metrics(bundle.valid.x)["variational_free_energy"]
    assert _step0_valid_free_energy(pre) == pytest.approx(expected, rel=1e-5, abs=1e-4)
    # A scratch start (W ~ N(0, init_std^2), init_std 0.01) is not the stack's.
    assert _step0_valid_free_energy(scratch) != pytest.approx(expected, rel=1e-3)
    assert float(start.W[0].detach().abs().max()) > 5 * cfg.model.init_std


def test_pretrained_run_trains_evaluates_and_resumes_without_pretraining(tmp_path, capsys):
    run = tmp_path / "run"
    _train("dbm", run, "--pretrain", "3")
    assert "greedy layerwise pretraining" in capsys.readouterr().err
    stack = {p: p.read_bytes() for p in sorted((run / "pretrain").rglob("*")) if p.is_file()}
    start, _ = _composed_start(run)
    trained, _ = load_model(run)
    assert not torch.equal(trained.W[0], start.W[0])  # SML moved the composed weights

    assert main(["evaluate", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["estimator"] == "mean-field bound, exact log Z"
    assert report["nll_nats"] == report["nll_nats"] and 0 < report["nll_nats"] < 64 * 0.7

    for extra in ([], ["--pretrain", "3"]):
        steps = 8 if not extra else 10
        assert main(["train", "dbm", "--out", str(run), "--resume",
                     "--set", f"train.max_steps={steps}", *extra]) == 0
        err = capsys.readouterr().err
        assert "resuming" in err and "pretraining" not in err
        rows = (run / "metrics.csv").read_text().splitlines()
        assert rows[-1].split(",")[0] == str(steps)
    after = {p: p.read_bytes() for p in sorted((run / "pretrain").rglob("*")) if p.is_file()}
    assert after == stack  # the stack was neither retrained nor rewritten


def test_pretrain_is_refused_for_models_without_it(tmp_path, capsys):
    assert main(["train", "rbm", "--data", "digits", "--set", "data.binarize=threshold",
                 "--pretrain", "3", "--out", str(tmp_path / "r")]) != 0
    assert "--pretrain applies to" in capsys.readouterr().err


def test_an_interrupted_pretraining_continues_where_it_stopped(tmp_path, capsys):
    """A run killed during pretraining left only RUN_DIR/pretrain: running the same command
    again finishes the stack from the layers' checkpoints and gives the uninterrupted run."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    _train("dbm", whole, "--pretrain", "3")
    _train("dbm", cut, "--pretrain", "3")
    for p in list(cut.iterdir()):  # keep only the finished bottom RBM (and the run's lock file)
        if p.name not in ("pretrain", ".genzoo.lock"):
            p.unlink()
    for p in (cut / "pretrain" / "rbm_1").iterdir():
        p.unlink()
    (cut / "pretrain" / "rbm_1").rmdir()
    _train("dbm", cut, "--pretrain", "3")
    a, b = load_model(whole)[0], load_model(cut)[0]
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_pretraining_under_torchrun_equals_one_process_with_the_same_shards(tmp_path):
    """Every rank trains the RBMs data-parallel (no rank waits alone in a collective), and the
    run equals a one-process run with train.shards=2, stack and DBM alike."""
    import os
    import socket
    import subprocess
    import sys

    from safetensors.torch import load_file

    one, two = tmp_path / "one", tmp_path / "two"
    _train("dbm", one, "--pretrain", "2", "--set", "train.shards=2")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(port), "-m", "genzoo", "train", "dbm", "--data", "digits",
         *SETS, "--pretrain", "2", "--out", str(two)],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_run_config(two).train.shards == 2
    for f in ("pretrain/rbm_0/model.safetensors", "pretrain/rbm_1/model.safetensors",
              "model.safetensors"):
        a, b = load_file(one / f), load_file(two / f)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (f, k)
