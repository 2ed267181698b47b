"""`genzoo inpaint` and the order-agnostic deep NADE through the command line, in process:
train (with the hidden-layer tuple given as 16,16), evaluate with the exact estimator, inpaint;
and the errors a user can cause."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main


@pytest.fixture(scope="module")
def deep_nade_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "deep-nade"
    args = ["train", "deep-nade", "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "model.hidden=16,16", "--set", "train.optimizer=adam",
            "--set", "train.lr=0.001", "--set", "train.epochs=1",
            "--set", "train.progress=false", "--out", str(out)]
    assert main(args) == 0
    return out


def test_train_then_evaluate_reports_an_exact_nll(deep_nade_run, capsys):
    cfg = json.loads((deep_nade_run / "config.json").read_text())
    assert cfg["model_name"] == "deep-nade" and cfg["model"]["hidden"] == [16, 16]
    capsys.readouterr()
    assert main(["evaluate", str(deep_nade_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "exact" in report["estimator"] and report["split"] == "test"
    # 64 binary pixels: the model starts at the data marginals, far below 64 log 2.
    assert math.isfinite(report["nll_nats"]) and 0 < report["nll_nats"] < 64 * math.log(2)
    assert report["stderr"] > 0


def test_evaluate_an_ensemble_the_run_was_not_trained_to_report(deep_nade_run, capsys):
    """--set model.n_eval_orderings=3 evaluates the 3-ordering ensemble of the trained model:
    the log-mean-exp of its three orderings' exact likelihoods, computed here directly."""
    import torch

    import genzoo
    from genzoo.data import load_data
    from genzoo.run_config import RunConfig

    capsys.readouterr()
    assert main(["evaluate", str(deep_nade_run), "--json", "--set", "model.n_eval_orderings=3",
                 "--set", "model.ensemble_seed=5", "--set", "eval.dtype=float64"]) == 0
    report = json.loads(capsys.readouterr().out)
    cfg = RunConfig.from_dict(json.loads((deep_nade_run / "config.json").read_text()))
    x = load_data(cfg.data).test.x.double()
    m = genzoo.load(deep_nade_run).double()
    g = torch.Generator().manual_seed(5)
    orderings = [m.default_ordering] + [torch.randperm(64, generator=g) for _ in range(2)]
    with torch.no_grad():
        expected = -float(m.log_prob_ensemble(x, orderings).mean())
    assert math.isclose(report["nll_nats"], expected, rel_tol=0, abs_tol=1e-9)
    # The model's own one-ordering figure differs, and the run's config is untouched.
    assert main(["evaluate", str(deep_nade_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nll_nats"] != report["nll_nats"]
    assert json.loads((deep_nade_run / "config.json").read_text())["model"]["n_eval_orderings"] == 1


@pytest.mark.parametrize("item", ["model.hidden=8,8", "data.name=mnist"])
def test_evaluate_refuses_changes_that_are_not_evaluation_choices(deep_nade_run, item, capsys):
    assert main(["evaluate", str(deep_nade_run), "--set", item]) != 0
    err = capsys.readouterr().err
    assert item in err
    assert ("model.n_eval_orderings" in err) if item.startswith("model.") else "eval.*" in err


def _tiles(png, n: int) -> np.ndarray:
    """The (3, n, 8, 8) images of a grid of 3 rows x n columns of 8x8 images at scale 2."""
    a = np.asarray(Image.open(png), dtype=np.float64) / 255.0
    assert a.shape == (3 * 16 + 4, n * 16 + n + 1)
    out = np.empty((3, n, 8, 8))
    for r in range(3):
        for c in range(n):
            top, left = 1 + r * 17, 1 + c * 17
            out[r, c] = a[top : top + 16 : 2, left : left + 16 : 2]
    return out


def test_inpaint_bottom_half_writes_original_masked_and_completion(deep_nade_run, tmp_path,
                                                                   capsys):
    png = tmp_path / "x.png"
    assert main(["inpaint", str(deep_nade_run), "-n", "4", "--mask", "bottom-half",
                 "--out", str(png)]) == 0
    assert "rows original / masked input / completion" in capsys.readouterr().out
    original, masked, completion = _tiles(png, 4)
    assert np.array_equal(masked[:, :4], original[:, :4])  # top half shown as is
    assert np.all(masked[:, 4:] == 128 / 255)  # bottom half hidden (grey)
    assert np.array_equal(completion[:, :4], original[:, :4])  # observed pixels kept
    assert np.all((completion == 0) | (completion == 1))  # filled with bits


def test_inpaint_random_mask_is_reproducible(deep_nade_run, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for png in (a, b):
        assert main(["inpaint", str(deep_nade_run), "-n", "3", "--mask", "random:0.5",
                     "--seed", "7", "--split", "valid", "--out", str(png)]) == 0
    assert a.read_bytes() == b.read_bytes()
    original, masked, completion = _tiles(a, 3)
    seen = masked != 128 / 255
    assert np.array_equal(completion[seen], original[seen])


@pytest.mark.parametrize("mask", ["diagonal", "random:1.5", "random:x"])
def test_inpaint_rejects_bad_masks(deep_nade_run, tmp_path, capsys, mask):
    assert main(["inpaint", str(deep_nade_run), "-n", "2", "--mask", mask,
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "--mask" in capsys.readouterr().err


def test_inpaint_refuses_models_that_cannot(tmp_path, capsys):
    run = tmp_path / "fvsbn"
    assert main(["train", "fvsbn", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", "train.max_steps=1", "--set", "train.progress=false",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["inpaint", str(run), "-n", "2", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot inpaint" in err and "deep-nade" in err
    assert not (tmp_path / "x.png").exists()


def test_inpaint_rejects_a_nonpositive_count(deep_nade_run, tmp_path, capsys):
    assert main(["inpaint", str(deep_nade_run), "-n", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "-n 0" in capsys.readouterr().err


def test_inpaint_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["inpaint", "--help"])
    assert exc.value.code == 0 and "bottom-half" in capsys.readouterr().out
