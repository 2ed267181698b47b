"""Every registered capability from the command line, in process, on tiny runs: Hopfield
recall through `genzoo inpaint` (binary, continuous and modern networks), `genzoo sample
--label` for the conditional GAN, `genzoo chain` and `genzoo filters` for the deep Boltzmann
machines; each refusal names what the model lacks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli_chain_filters import _train  # digits, thresholded, 200 examples, 1 epoch

from genzoo.cli import main


@pytest.fixture(scope="module")
def hopfield_run(tmp_path_factory):
    # Two stored digits: well within the capacity of 64 units.
    return _train(tmp_path_factory, "hopfield", "data.n_train=2")


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return _train(tmp_path_factory, "conditional-gan", "model.g_hidden=16", "model.d_hidden=16",
                  "model.n_latent=4")


@pytest.fixture(scope="module")
def dbm_runs(tmp_path_factory):
    return {m: _train(tmp_path_factory, m, "model.hidden=12,8")
            for m in ("dbm", "centered-dbm", "mp-dbm")}


def _recall_line(capsys) -> tuple[float, float, int, int]:
    out = capsys.readouterr().out
    m = re.search(r"mean overlap (\S+) \(cue (\S+), .*?\), (\d+) of (\d+) recovered", out)
    assert m, out
    return float(m[1]), float(m[2]), int(m[3]), int(m[4])


@pytest.mark.parametrize("network, least", [("binary", 0.99), ("continuous", 0.8),
                                            ("modern", 0.99)])
def test_hopfield_recall_from_a_partial_cue(hopfield_run, network, least, tmp_path, capsys):
    png = tmp_path / "recall.png"
    capsys.readouterr()
    assert main(["inpaint", str(hopfield_run), "--network", network, "--mask", "bottom-half",
                 "--out", str(png), "--quiet"]) == 0
    overlap, cue, recovered, n = _recall_line(capsys)
    # The cue keeps the top half (overlap about 1/2; a random state has about 0): the recall
    # completes the stored pattern.
    assert n == 2 and cue < 0.7 and overlap >= least and recovered == n
    a = np.asarray(Image.open(png))
    assert a.shape == (3 * 17 + 1, 2 * 17 + 1)  # rows pattern / cue / recall, 8x8 at scale 2
    # The recall row is the pattern row (binary: exactly).
    if network != "continuous":
        assert np.array_equal(a[1:17], a[2 * 17 + 1 : 3 * 17])


def test_hopfield_recall_from_a_noisy_cue(hopfield_run, tmp_path, capsys):
    png = tmp_path / "recall.png"
    assert main(["inpaint", str(hopfield_run), "--mask", "random:0.2", "--out", str(png),
                 "--quiet"]) == 0
    overlap, cue, recovered, _ = _recall_line(capsys)
    assert overlap > cue and recovered == 2


def test_label_conditioning_of_the_conditional_gan(cgan_run, tmp_path, capsys):
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.images import save_image_grid

    pngs = {}
    for k in (3, 3, 7):
        png = tmp_path / f"s{k}_{len(pngs)}.png"
        assert main(["sample", str(cgan_run), "-n", "6", "--label", str(k), "--seed", "5",
                     "--out", str(png), "--quiet"]) == 0
        assert f"6 samples of class {k}" in capsys.readouterr().out
        pngs[png.name] = np.asarray(Image.open(png))
    a, b, c = pngs.values()
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # same class, seed: same picture
    # The picture is the model's p(x | y=3) draws with the seed: the label reached the sampler.
    model, _ = load_model(cgan_run)
    with torch.no_grad():
        x = model.sample(6, generator=torch.Generator().manual_seed(5),
                         y=torch.full((6,), 3, dtype=torch.int64))
    save_image_grid(x.float().clamp(0, 1), (8, 8), tmp_path / "direct.png")
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "direct.png")))
    assert main(["sample", str(cgan_run), "--label", "10", "--out", str(tmp_path / "x.png")]) == 2
    assert "classes 0..9" in capsys.readouterr().err


def test_label_is_refused_naming_what_the_model_lacks(hopfield_run, tmp_path, capsys):
    assert main(["sample", str(hopfield_run), "--label", "1", "--out",
                 str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "'hopfield' has no class-conditional sampler" in err and "labels y" in err


def test_dbm_chain_and_filters(dbm_runs, tmp_path, capsys):
    for name in ("dbm", "centered-dbm"):
        strips = []
        for i in range(2):
            png = tmp_path / f"{name}{i}.png"
            assert main(["chain", str(dbm_runs[name]), "-n", "3", "--steps", "6", "--every",
                         "3", "--seed", "2", "--out", str(png), "--quiet"]) == 0
            strips.append(np.asarray(Image.open(png)))
        assert np.array_equal(*strips)  # seeded
        a = strips[0]
        assert a.shape == (3 * 17 + 1, 3 * 17 + 1)  # 3 chains x kept states 0, 3, 6
        assert not np.array_equal(a[:, 1:17], a[:, 2 * 17 + 1 : 3 * 17])  # the chain moves
    for name in ("dbm", "centered-dbm", "mp-dbm"):
        png = tmp_path / f"{name}_filters.png"
        assert main(["filters", str(dbm_runs[name]), "--out", str(png)]) == 0
        assert "wrote 12 filters" in capsys.readouterr().out  # the first layer's 12 units
        assert np.asarray(Image.open(png)).shape == (3 * 33 + 1, 4 * 33 + 1)


def test_chain_refusal_names_what_the_model_lacks(dbm_runs, cgan_run, tmp_path, capsys):
    for run in (dbm_runs["mp-dbm"], cgan_run):
        assert main(["chain", str(run), "--out", str(tmp_path / "c.gif")]) == 2
        err = capsys.readouterr().err
        assert "no step-by-step sampling chain" in err and "Gibbs" in err
    assert main(["inpaint", str(cgan_run), "--out", str(tmp_path / "i.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot inpaint" in err and "no Hopfield network" in err
    assert main(["inpaint", str(dbm_runs["dbm"]), "--network", "modern", "--out",
                 str(tmp_path / "i.png")]) == 2
    assert "recall from a hopfield run" in capsys.readouterr().err


def test_discriminant_gsn_classifies_from_the_command_line(tmp_path_factory, capsys):
    run = _train(tmp_path_factory, "discriminant-gsn", "data.n_train=500", "train.epochs=5",
                 "train.batch_size=20", "model.hidden=64,64")
    errors = {}
    for split in ("valid", "test"):
        capsys.readouterr()
        assert main(["evaluate", str(run), "--task", "classify", "--split", split,
                     "--json", "--quiet"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["split"] == split and report["estimator"] == "classification only"
        assert "nll_nats" not in report
        errors[split] = report["classification_error"]
    # Ten classes: chance is 0.9; a few epochs of the chain over the labels do far better.
    assert all(0 <= e < 0.5 for e in errors.values()), errors
    assert main(["sample", str(run), "--out", str(tmp_path_factory.mktemp("s") / "s.png")]) == 2
    assert "a classifier with no samples" in capsys.readouterr().err
