"""`genzoo chain` (sampling chains as a GIF or a PNG strip) and `genzoo filters` (first-layer
weights as images), in process, on tiny runs; and the errors a user can cause."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main


def _train(tmp_path_factory, model: str, *sets: str):
    out = tmp_path_factory.mktemp("runs") / model
    args = ["train", model, "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "data.n_train=200", "--set", "train.epochs=1", "--set",
            "train.progress=false", "--set", "train.grid_samples=4"]
    for s in sets:
        args += ["--set", s]
    assert main(args + ["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    return _train(tmp_path_factory, "rbm", "model.n_hidden=12", "model.sample_burn_in=5")


@pytest.fixture(scope="module")
def dae_run(tmp_path_factory):
    return _train(tmp_path_factory, "dae", "model.n_hidden=12", "model.sample_steps=3")


def test_gibbs_chain_of_an_energy_model_as_a_gif(rbm_run, tmp_path, capsys):
    gif = tmp_path / "chain.gif"
    assert main(["chain", str(rbm_run), "-n", "4", "--steps", "10", "--every", "5",
                 "--out", str(gif)]) == 0
    assert "3 frames" in capsys.readouterr().out
    im = Image.open(gif)
    assert im.n_frames == 3  # states 0, 5, 10
    # The first frame is the binary noise start, the later ones Gibbs states: they differ.
    im.seek(0)
    first = np.asarray(im.convert("L"), dtype=float)
    im.seek(2)
    last = np.asarray(im.convert("L"), dtype=float)
    assert first.shape == last.shape and not np.array_equal(first, last)


def test_dae_chain_from_data_as_a_strip_is_deterministic(dae_run, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for png in (a, b):
        assert main(["chain", str(dae_run), "-n", "3", "--steps", "4", "--every", "2",
                     "--start", "data", "--seed", "7", "--out", str(png)]) == 0
    pa, pb = np.asarray(Image.open(a)), np.asarray(Image.open(b))
    assert np.array_equal(pa, pb)
    # One row per chain, three kept states (0, 2, 4) per row, 8x8 images at scale 2.
    assert pa.shape == (3 * 17 + 1, 3 * 17 + 1)


@pytest.mark.parametrize("start", ["noise", "data"])
def test_chain_of_a_real_valued_model_on_image_patches(tmp_path, start):
    """The GRBM runs its chain on the 63 DC-removed values of a patch; the strip shows 8x8
    pixels, as `genzoo sample` draws them, not the clamped model-space values."""
    run = tmp_path / "grbm"
    assert main(["train", "grbm", "--data", "image-patches", "--set", "data.n_train=300",
                 "--set", "data.n_eval=50", "--set", "model.n_hidden=8", "--set",
                 "train.epochs=1", "--set", "train.progress=false", "--set",
                 "train.grid_samples=0", "--out", str(run)]) == 0
    png = tmp_path / "chain.png"
    assert main(["chain", str(run), "-n", "2", "--steps", "4", "--every", "2", "--start",
                 start, "--out", str(png)]) == 0
    strip = np.asarray(Image.open(png), dtype=float)
    assert strip.shape == (2 * 17 + 1, 3 * 17 + 1)  # 2 chains x 3 kept states of 8x8 at scale 2
    # Patches are drawn around mid-grey (their DC level added back), not clipped to black.
    assert 60 < strip.mean() < 200


def test_chain_of_a_grey_level_model_starts_inside_its_input_range(tmp_path, tmp_path_factory):
    """The hybrid discriminative RBM reads grey levels in [0, 1] as Bernoulli means: its
    chain starts from uniform grey levels there (standard normal values would be refused)."""
    run = _train(tmp_path_factory, "disc-rbm", "data.binarize=none", "model.n_hidden=12")
    png = tmp_path / "chain.png"
    assert main(["chain", str(run), "-n", "2", "--steps", "4", "--every", "2", "--out",
                 str(png)]) == 0
    strip = np.asarray(Image.open(png), dtype=float)
    assert strip.shape == (2 * 17 + 1, 3 * 17 + 1)
    first = strip[1:17, 1:17]  # the first chain's start: grey levels, not only black or white
    assert ((first > 0) & (first < 255)).mean() > 0.5


def test_filters_of_an_rbm_one_tile_per_hidden_unit(rbm_run, tmp_path):
    png = tmp_path / "f.png"
    assert main(["filters", str(rbm_run), "--out", str(png)]) == 0
    a = np.asarray(Image.open(png))
    # 12 filters in a near-square grid (4 columns, 3 rows), each scaled to its own range;
    # 8x8 filters are magnified 4x (to about 36 pixels a side): 33-pixel tiles.
    assert a.shape == (3 * 33 + 1, 4 * 33 + 1)
    assert a.max() == 255 and a.min() == 0


def test_user_errors_are_named(rbm_run, dae_run, tmp_path, capsys):
    assert main(["chain", str(rbm_run), "--steps", "0", "--out", str(tmp_path / "x.gif")]) == 2
    assert "--steps 0" in capsys.readouterr().err
    assert main(["filters", str(dae_run), "--out", str(tmp_path / "x.png")]) == 2
    assert "no first-layer weight matrix" in capsys.readouterr().err


def test_a_run_that_failed_before_training_can_be_started_again(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "rbm", "--data", "digits", "--set", "data.n_train=100", "--set",
            "train.epochs=1", "--set", "train.progress=false", "--set", "model.n_hidden=4",
            "--set", "model.sample_burn_in=2", "--set", "train.grid_samples=4"]
    # Grey digits kept (data.binarize=none) for a Bernoulli model: refused by the data check,
    # after config.json was written. The same command with the fix named in the error then
    # runs in the same place.
    assert main(base + ["--set", "data.binarize=none", "--out", str(out)]) == 2
    assert "binarize" in capsys.readouterr().err
    assert main(base + ["--set", "data.binarize=threshold", "--out", str(out)]) == 0
    # A directory holding a trained run is still refused.
    assert main(base + ["--set", "data.binarize=threshold", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
