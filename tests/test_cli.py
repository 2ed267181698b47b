"""Every CLI command, run the way a user runs it, including the errors a user can cause; runs
train and evaluate on the device under test (train.device, --device)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import selected_device

from genzoo.cli import main

DEVICE = str(selected_device())
ON_DEVICE = ["--device", DEVICE]  # evaluate, sample
TINY = [
    "--data", "digits",
    "--set", "data.binarize=threshold",
    "--set", "model.n_hidden=12",
    "--set", "train.epochs=1",
    "--set", "train.batch_size=50",
    "--set", "train.progress=false",
    "--set", "train.grid_samples=16",
    "--set", "model.sample_burn_in=20",
    "--set", f"train.device={DEVICE}",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "rbm"
    assert main(["train", "rbm", *TINY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("cmd", [[], ["models"], ["data"], ["train"], ["evaluate"], ["sample"]])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: genzoo" in capsys.readouterr().out


def test_models_lists_rbm_with_paper(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "rbm" in out and "boltzmann" in out and "Hinton" in out


def test_train_writes_a_complete_run_directory(tiny_run):
    for name in ("config.json", "model.safetensors", "metrics.csv", "samples.png"):
        assert (tiny_run / name).is_file(), name
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["model_name"] == "rbm" and cfg["model"]["n_visible"] == 64
    assert cfg["model"]["n_hidden"] == 12 and cfg["data"]["binarize"] == "threshold"


def test_evaluate_json_exact(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--json", *ON_DEVICE]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("nll_nats", "stderr", "estimator", "split", "n_examples"):
        assert key in report, key
    assert report["split"] == "test" and "exact" in report["estimator"]
    # 64 binary pixels: any sensible model lies between 0 and 64 log 2 nats per example.
    assert 0 < report["nll_nats"] < 64 * 0.6931471805599453
    assert report["stderr"] > 0


def test_evaluate_refuses_model_changes_of_a_model_without_evaluation_choices(tiny_run, capsys):
    """An RBM's every model.* field fixes its parameters: evaluate refuses them by name."""
    assert main(["evaluate", str(tiny_run), "--set", "model.k=5"]) != 0
    err = capsys.readouterr().err
    assert "model.k=5" in err and "none of its model.* fields" in err


def test_evaluate_text_and_ais(tiny_run, capsys, tmp_path):
    out_json = tmp_path / "report.json"
    args = ["evaluate", str(tiny_run), "--split", "valid", "--set", "eval.exact_max_units=0",
            "--set", "eval.ais_betas=500", "--set", "eval.ais_runs=20",
            "--set", "eval.reverse_burn_in=50", "--out", str(out_json), *ON_DEVICE]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "nats per example" in text and "AIS" in text and "reverse AIS" in text
    report = json.loads(out_json.read_text())
    assert report["split"] == "valid" and report["n_samples"] == 20
    assert report["log_z_reverse"] is not None


def test_sample_writes_png(tiny_run, tmp_path):
    from PIL import Image

    out = tmp_path / "s.png"
    assert main(["sample", str(tiny_run), "-n", "9", "--out", str(out), *ON_DEVICE]) == 0
    with Image.open(out) as img:
        assert img.size[0] > 8 and img.size[1] > 8


def test_unknown_set_key_is_rejected_and_nothing_is_created(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "rbm", *TINY, "--set", "model.n_hiden=5", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.n_hiden" in err and "model.n_hidden" in err  # lists the valid keys
    assert not out.exists()


def test_out_of_range_hyperparameter(tmp_path, capsys):
    code = main(["train", "rbm", *TINY, "--set", "train.lr=-0.1", "--out", str(tmp_path / "r")])
    assert code == 2 and "train.lr" in capsys.readouterr().err


def test_non_binary_data_for_bernoulli_model(tmp_path, capsys):
    # Grey levels kept on purpose (data.binarize=none) are refused by a Bernoulli model.
    grey = ["--data", "digits", "--set", "data.binarize=none", "--set", "model.n_hidden=12",
            "--set", "train.epochs=1", "--set", "train.progress=false"]
    code = main(["train", "rbm", *grey, "--out", str(tmp_path / "r")])
    assert code == 2
    assert "not binary" in capsys.readouterr().err


@pytest.mark.parametrize("name,extra,binarize", [
    ("rbm", [], "dynamic"),  # binary units on the grey-level default data set
    ("vae", ["--set", "model.decoder=gaussian"], "none"),  # real-valued: grey levels kept
    ("rbm", ["--set", "data.binarize=threshold"], "threshold"),  # the user's choice stands
])  # fmt: skip
def test_train_with_no_data_named_picks_a_binarization_for_binary_units(
    tmp_path, capsys, name, extra, binarize
):
    run = tmp_path / "r"
    args = ["--set", "train.epochs=1", "--set", "train.progress=false", "--set",
            "train.grid_samples=0", "--set", f"train.device={DEVICE}", *extra]  # fmt: skip
    assert main(["train", name, *args, "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["name"] == "digits" and config["data"]["binarize"] == binarize
    assert ("data.binarize=dynamic" in capsys.readouterr().err) == (binarize == "dynamic")


def test_refuses_to_overwrite_a_run(tiny_run, capsys):
    assert main(["train", "rbm", *TINY, "--out", str(tiny_run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_corrupt_checkpoint_gives_clear_error(tiny_run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert main(["evaluate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint error" in err and "model.safetensors" in err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2


def test_missing_data_file_names_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GENZOO_OFFLINE", "1")
    code = main(["train", "rbm", "--data", "binarized-mnist", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "binarized_mnist.npz" in err and "GENZOO_DATA" in err


@pytest.mark.integration
def test_console_script_train_then_evaluate_binarized_mnist(tmp_path, binarized_mnist_available):
    """The acceptance path of the foundation issue, through the installed `genzoo` script."""
    exe = Path(sys.executable).with_name("genzoo")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "genzoo"]
    out = tmp_path / "rbm"
    env = dict(os.environ)
    train = subprocess.run(
        [*cmd, "train", "rbm", "--data", "binarized-mnist", "--set", "model.n_hidden=20",
         "--set", "data.n_train=2000", "--set", "data.n_eval=500", "--set", "train.epochs=1",
         "--set", "train.progress=false", "--set", "model.sample_burn_in=50",
         "--set", f"train.device={DEVICE}", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert train.returncode == 0, train.stderr
    ev = subprocess.run([*cmd, "evaluate", str(out), "--json", *ON_DEVICE], capture_output=True,
                        text=True, env=env, timeout=300, check=False)
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert report["n_examples"] == 500 and report["split"] == "test"
    # A barely trained 20-hidden RBM: worse than a good model (~100) but far better than
    # uniform pixels (784 log 2 = 543 nats).
    assert 90 < report["nll_nats"] < 400


def test_resume_through_the_cli_equals_an_uninterrupted_run(tmp_path, capsys):
    from safetensors.torch import load_file

    i = TINY.index("train.epochs=1")
    # without "--set train.epochs=1"; a constant rate, because a decaying schedule spans the
    # run's length, so a run extended on resume is not the longer run from the start
    base = [*TINY[: i - 1], *TINY[i + 1 :], "--set", "train.lr_schedule=constant"]
    short = ["--set", "train.max_steps=7", "--set", "train.checkpoint_every=3"]
    full = ["--set", "train.max_steps=14", "--set", "train.checkpoint_every=3"]
    assert main(["train", "rbm", *base, *short, "--out", str(tmp_path / "a")]) == 0
    assert main(["train", "rbm", *base, *full, "--out", str(tmp_path / "b")]) == 0
    # Only the run length may change on resume; anything else is refused, naming the key.
    assert main(["train", "rbm", "--out", str(tmp_path / "a"), "--resume",
                 "--set", "model.k=2"]) == 2
    assert "model.k" in capsys.readouterr().err
    assert main(["train", "rbm", "--out", str(tmp_path / "a"), "--resume",
                 "--set", "train.max_steps=14"]) == 0
    resumed = load_file(str(tmp_path / "a" / "model.safetensors"))
    uninterrupted = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key


def test_data_lists_the_data_sets(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist", "binarized-mnist", "frey-faces", "caltech-silhouettes"):
        assert name in out
    assert "GENZOO_DATA" in out
