"""Chain strips and GIFs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.core.errors import InputError
from genzoo.utils.animation import chain_strip, save_chain_gif, save_chain_strip


def _chain(t=5, b=3, h=4, w=2):
    # State t of every chain is the grey level t / (T - 1): frames are all different.
    levels = torch.linspace(0, 1, t).reshape(t, 1, 1)
    return levels.expand(t, b, h * w).clone()


def test_strip_has_one_row_per_chain_and_one_column_per_kept_step():
    grid = chain_strip(_chain(), (4, 2), every=2)  # steps 0, 2, 4
    assert grid.shape == (3 * 4 + 4, 3 * 2 + 4)
    # Row 0, column 1 is step 2: grey level 0.5.
    assert np.allclose(grid[1:5, 4:6], 0.5)


def test_strip_always_shows_the_last_state(tmp_path):
    grid = chain_strip(_chain(t=4), (4, 2), every=2)  # steps 0, 2 and the last, 3
    assert grid.shape[1] == 3 * 2 + 4 and np.allclose(grid[1:5, -3:-1], 1.0)
    save_chain_strip(_chain(t=4), (4, 2), tmp_path / "s.png", every=2, scale=1)
    assert Image.open(tmp_path / "s.png").size == (grid.shape[1], grid.shape[0])


def test_gif_has_one_frame_per_step(tmp_path):
    n = save_chain_gif(_chain(), (4, 2), tmp_path / "c.gif", nrow=3, scale=1, duration_ms=50)
    img = Image.open(tmp_path / "c.gif")
    assert n == 5 and img.n_frames == 5
    img.seek(4)
    assert np.asarray(img.convert("L"))[1, 1] == 255


def test_bad_chains_are_refused(tmp_path):
    with pytest.raises(InputError, match="expected"):
        chain_strip(torch.zeros(3, 8), (4, 2))
    with pytest.raises(InputError, match="every"):
        chain_strip(_chain(), (4, 2), every=0)
