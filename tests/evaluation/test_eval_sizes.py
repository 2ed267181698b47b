"""Evaluation settings whose memory exceeds the machine's are refused before any work, with the
number, the memory it implies and the fix."""

from __future__ import annotations

import time

import pytest

from genzoo.cli import main
from genzoo.core.errors import GenzooError
from genzoo.evaluation.config import EvalConfig

GIB = 2**30


@pytest.mark.parametrize(("setting", "value"), [
    ("ais_runs", 10**12), ("ais_betas", 10**13), ("batch_size", 10**10),
])
def test_huge_ais_settings_are_refused_naming_the_number_memory_and_fix(setting, value):
    cfg = EvalConfig(**{setting: value, **({"ais_runs": 10**10} if setting == "batch_size"
                                          else {})})
    with pytest.raises(GenzooError) as info:
        cfg.check_memory(784, 500, available=16 * GIB)
    message = str(info.value)
    named = "ais_runs" if setting == "batch_size" else setting  # runs <= batch: runs drive it
    assert f"eval.{named}={getattr(cfg, named)}" in message
    assert "TiB" in message and "16.0 GiB available" in message
    assert f"--set eval.{named}=" in message


def test_default_and_paper_settings_fit():
    EvalConfig().check_memory(784, 1500, available=1 * GIB)  # SM08: 100 runs, 14,500 betas
    parts = EvalConfig().ais_memory(784, 500)
    assert sum(parts.values()) < 64 * 2**20


def test_memory_grows_with_each_setting():
    base = sum(EvalConfig().ais_memory(784, 500).values())
    for change in ({"ais_runs": 1000}, {"ais_betas": 10**6}, {"ais_runs": 10**4,
                                                                "batch_size": 10**4}):
        assert sum(EvalConfig(**change).ais_memory(784, 500).values()) > base


def _train_rbm(run, n_hidden):
    assert main(["train", "rbm", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", f"model.n_hidden={n_hidden}", "--set", "train.max_steps=2",
                 "--set", "train.progress=false", "--set", "train.grid_samples=0",
                 "--out", str(run)]) == 0


def test_genzoo_evaluate_refuses_huge_ais_runs_before_the_work(tmp_path, capsys):
    run = tmp_path / "run"
    _train_rbm(run, 24)  # more hidden units than eval.exact_max_units: AIS estimates log Z
    capsys.readouterr()
    start = time.perf_counter()
    status = main(["evaluate", str(run), "--set", f"eval.ais_runs={10**14}",
                   "--set", "eval.batch_size=1000"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"eval.ais_runs={10**14}" in err and "PiB of memory" in err
    assert "available" in err and "--set eval.ais_runs=" in err
    assert "Traceback" not in err
    assert time.perf_counter() - start < 60  # refused up front, not after a run of 1e14 chains


def test_exactly_enumerated_model_ignores_the_ais_settings(tmp_path, capsys):
    run = tmp_path / "run"
    _train_rbm(run, 6)  # log Z enumerated: the AIS settings are not used, so not refused
    assert main(["evaluate", str(run), "--set", f"eval.ais_runs={10**14}"]) == 0
