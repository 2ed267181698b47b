"""genzoo plot: the learning curves of one or several runs as a PNG, and the errors a user
can cause (one line naming the fix, exit status 2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main
from genzoo.training.curves import figure_names, read_metrics
from genzoo.utils.io import written_by_genzoo

HEADER = ("step,epoch,lr,loss,free_energy_gap,recon_error,examples_per_s,wall_s,"
          "valid_free_energy,valid_recon_error")
ORANGE = (255, 127, 14)  # matplotlib's C1: the second run's colour


def _run(path, n=6, lr=lambda step: 0.01, shift=0.0):
    """A run directory whose metrics.csv is laid out as the Trainer writes it: a step-0
    validation row, training rows, a validation at the end of each epoch of 4 steps."""
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}\n")  # marks a run directory
    lines = [HEADER, f"0,0.0,{lr(0)},,,,,0.0,-340.0,{0.2 + shift}"]
    for step in range(1, n + 1):
        valid = f"{-340.0 - step},{0.2 - 0.01 * step + shift}" if step % 4 == 0 else ","
        loss = 1.0 / step + shift
        lines.append(f"{step},{step / 4},{lr(step)},{loss},{loss},{0.15 + shift},1000.0,"
                     f"{step * 0.1},{valid}")
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _has_colour(pixels, rgb, tol=8):
    return bool((np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tol).any())


def test_one_run_gives_a_panel_per_figure(tmp_path, capsys):
    run = _run(tmp_path / "rbm")
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "4 panels (loss, free_energy_gap, recon_error, free_energy) of 1 run" in said
    assert written_by_genzoo(out)  # so a second plot replaces it without --force
    pixels = _pixels(out)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 800
    assert _has_colour(pixels, (31, 119, 180)) and not _has_colour(pixels, ORANGE)
    assert main(["plot", str(run), "--out", str(out), "--x", "epoch"]) == 0
    assert "against epochs" in capsys.readouterr().out


def test_several_runs_are_overlaid(tmp_path, capsys):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b", shift=0.05)
    out = tmp_path / "both.png"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    assert "of 2 runs" in capsys.readouterr().out
    assert _has_colour(_pixels(out), ORANGE)


def test_the_figures_drawn():
    """Training and validation columns of one figure share a panel; the axes and the
    bookkeeping columns are no panels; lr is one only when it changes (a schedule)."""
    nan = float("nan")
    curves = {"step": [0, 1], "epoch": [0, 1], "lr": [0.1, 0.1], "loss": [nan, 1.0],
              "examples_per_s": [nan, 9.0], "wall_s": [0, 1], "valid_nll": [90.0, 89.0],
              "nll": [nan, 88.0], "valid_error": [0.1, 0.1]}
    assert figure_names([("a", curves)]) == ["loss", "nll", "error"]
    assert figure_names([("a", curves), ("b", {**curves, "lr": [0.1, 0.05]})]) == [
        "loss", "nll", "error", "lr"]


def test_a_torn_last_line_is_left_out(tmp_path):
    run = _run(tmp_path / "r", n=3)
    with open(run / "metrics.csv", "a") as f:
        f.write("4,1.0,0.01,0.2")  # a run killed mid-write
    assert read_metrics(run)["step"] == [0.0, 1.0, 2.0, 3.0]


def _fails(argv, capsys, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genzoo: error:"), err
    for text in expected:
        assert text in err, err


def test_user_errors_name_the_fix(tmp_path, capsys):
    run = _run(tmp_path / "run")
    out = str(tmp_path / "c.png")
    _fails(["plot", str(tmp_path / "nowhere"), "--out", out], capsys, "does not exist",
           "genzoo train --out")
    (tmp_path / "empty_dir").mkdir()
    _fails(["plot", str(tmp_path / "empty_dir"), "--out", out], capsys, "has no metrics.csv")
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "metrics.csv").write_text("")
    _fails(["plot", str(blank), "--out", out], capsys, "is empty", "train.log_every")
    (blank / "metrics.csv").write_text(HEADER + "\n")
    _fails(["plot", str(blank), "--out", out], capsys, "holds no rows yet")
    (blank / "metrics.csv").write_text("a,b\n1,2\n")
    _fails(["plot", str(blank), "--out", out], capsys, "no step column")
    _fails(["plot", str(run), "--out", str(tmp_path / "c.jpg")], capsys, "ending in .png")
    _fails(["plot", str(run), "--out", str(tmp_path)], capsys, "is a directory")
    for own in ("metrics.csv", "samples.png", "curves.png"):
        _fails(["plot", str(run), "--out", str(run / own)], capsys, "file of the run directory")
    (tmp_path / "mine.png").write_bytes(b"\x89PNG not genzoo's")
    _fails(["plot", str(run), "--out", str(tmp_path / "mine.png")], capsys, "--force")
    assert (tmp_path / "mine.png").read_bytes() == b"\x89PNG not genzoo's"
    assert main(["plot", str(run), "--out", str(tmp_path / "mine.png"), "--force"]) == 0


def test_runs_with_one_name_are_told_apart_by_their_paths(tmp_path):
    from genzoo.cli.plot import _labels

    a, b = tmp_path / "a" / "best", tmp_path / "b" / "best"
    assert _labels([a, b, tmp_path / "c"]) == [str(a), str(b), "c"]


@pytest.mark.parametrize("argv", [["plot", "--out", "x.png"], ["plot", "r"]])
def test_plot_needs_a_run_and_an_out(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
