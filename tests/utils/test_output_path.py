"""genzoo.utils.io.check_output_path and written_by_genzoo (the command line's use of them is
tested in tests/cli/test_robustness.py)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from genzoo.core.errors import GenzooError
from genzoo.utils.animation import save_chain_gif
from genzoo.utils.images import save_image_grid
from genzoo.utils.io import check_output_path, written_by_genzoo


def test_genzoo_pictures_and_reports_are_known_by_their_mark(tmp_path):
    save_image_grid(torch.rand(4, 64), (8, 8), tmp_path / "g.png")
    save_chain_gif(torch.rand(3, 2, 64), (8, 8), tmp_path / "g.gif")
    (tmp_path / "r.json").write_text(json.dumps(
        {"estimator": "exact", "model": "rbm", "data": "digits", "run_dir": "r"}))
    Image.new("L", (4, 4)).save(tmp_path / "u.png")
    Image.new("L", (4, 4)).save(tmp_path / "u.gif")
    (tmp_path / "u.json").write_text('{"estimator": "mine"}')
    for name in ("g.png", "g.gif", "r.json"):
        assert written_by_genzoo(tmp_path / name), name
    for name in ("u.png", "u.gif", "u.json", "missing.png"):
        assert not written_by_genzoo(tmp_path / name), name


def test_a_good_path_is_returned_and_its_parent_created(tmp_path):
    out = check_output_path(str(tmp_path / "new" / "x.PNG"), (".png",))
    assert out == tmp_path / "new" / "x.PNG" and out.parent.is_dir() and not out.exists()
    assert [p.name for p in out.parent.iterdir()] == []  # the write probe left nothing


def test_a_run_directory_is_found_by_its_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GenzooError, match="file of the run directory"):
        check_output_path(tmp_path / "metrics.csv", (".csv",), force=True)
    assert check_output_path(tmp_path / "mine.png", (".png",)).name == "mine.png"
