"""The Trainer draws RUN/curves.png beside samples.png at the end of each run; a picture that
cannot be drawn is a warning, never a lost run."""

from __future__ import annotations

import warnings

import pytest

from genzoo.training import Trainer
from genzoo.training.curves import last_value
from genzoo.utils.io import written_by_genzoo


def test_the_trainer_draws_the_curves_of_its_run(toy, bundle, tmp_path):
    cfg = toy.make_config()
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit()
    assert written_by_genzoo(tmp_path / "run" / "curves.png")
    assert (tmp_path / "run" / "samples.png").is_file()


def test_a_failed_drawing_warns_and_keeps_the_run(toy, bundle, tmp_path, monkeypatch):
    from genzoo.training import curves

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    cfg = toy.make_config()
    with monkeypatch.context() as patched:
        patched.setattr(curves, "plot_curves", broken)
        trainer = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run")
        with pytest.warns(RuntimeWarning,
                          match=r"curves.png was not drawn .*no fonts.*genzoo plot"):
            result = trainer.fit()
    assert result["step"] > 0 and not (tmp_path / "run" / "curves.png").exists()
    # The run is whole: it resumes (nothing left to do) without complaint.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run").fit(resume=True)
    assert written_by_genzoo(tmp_path / "run" / "curves.png")


def test_a_run_stopped_with_its_event_files_starts_again(toy, bundle, tmp_path):
    """curves.png and tensorboard/ are genzoo's entries: a fresh run in a folder where an
    earlier attempt left them before its first checkpoint is not refused."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".genzoo.lock").write_text("")
    (run / "tensorboard").mkdir()
    (run / "curves.png").write_bytes(b"")
    cfg = toy.make_config()
    Trainer(toy.build(cfg), cfg, bundle, run).fit()
    assert written_by_genzoo(run / "curves.png")


def test_plot_lines_draws_panels_of_series_with_marks(tmp_path):
    """Series that are not a metrics.csv: one panel per group, a log x axis that leaves out
    x <= 0, a labelled mark; a series with no point left is skipped, not an error."""
    from PIL import Image

    from genzoo.training.curves import plot_lines

    panels = {"N_z = 2": {"train": [(0, -300.0), (100, -200.0), (1000, -150.0)],
                          "valid": [(100, -210.0), (1000, -160.0)]},
              "N_z = 5": {"train": [(10, -250.0), (1000, -140.0)], "valid": [(0, -1.0)]}}
    path = plot_lines(panels, tmp_path / "new" / "curves.png", "bound vs examples", log_x=True,
                      marks={500.0: "half"})
    assert path == tmp_path / "new" / "curves.png" and written_by_genzoo(path)
    width, height = Image.open(path).size
    assert width > height  # two panels side by side


def test_last_value_is_the_last_finite_cell_of_a_column(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss,wall_s\n1,0.5,1.5\n2,0.4,2.5\n3,0.3,\n")
    assert last_value(tmp_path, "wall_s") == 2.5
    assert last_value(tmp_path, "loss") == 0.3
    assert last_value(tmp_path, "no_such_column") is None
    assert last_value(tmp_path / "no_run", "wall_s") is None
