"""Image grids: layout, pixel size, separators, atomic PNG writes, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.core.errors import InputError
from genzoo.utils.images import SEPARATOR, save_image_grid, tile_images


def test_tile_layout_separators_and_scale():
    x = torch.stack([torch.full((6,), v) for v in (0.0, 1.0, 0.25, 0.75, 1.0)])  # 5 images 2x3
    grid = tile_images(x, (2, 3), nrow=2, scale=2)
    # 3 rows x 2 columns of 4x6 tiles with 1-px separators and border.
    assert grid.shape == (3 * 4 + 4, 2 * 6 + 3) and grid.dtype == np.float32
    assert (grid[0] == SEPARATOR).all() and (grid[:, 0] == SEPARATOR).all()
    assert (grid[1:5, 1:7] == 0.0).all() and (grid[1:5, 8:14] == 1.0).all()
    assert (grid[6:10, 1:7] == 0.25).all() and (grid[11:15, 1:7] == 1.0).all()
    assert (grid[11:15, 8:14] == SEPARATOR).all()  # the unused sixth cell stays blank
    # Row-major flattening: pixel (r, c) of an image is x[r * W + c].
    ramp = torch.arange(6, dtype=torch.float32)[None] / 10
    tile = tile_images(ramp, (2, 3), scale=1)[1:3, 1:4]
    assert np.allclose(tile, ramp.reshape(2, 3).numpy())


def test_default_grid_is_square_and_normalize_rescales_each_image():
    grid = tile_images(np.zeros((10, 4)), (2, 2))
    assert grid.shape == (3 * 2 + 4, 4 * 2 + 5)  # ceil(sqrt(10)) = 4 per row, 3 rows
    filters = np.array([[-2.0, 0.0, 2.0, 4.0]])
    tile = tile_images(filters, (2, 2), normalize=True)[1:3, 1:3]
    assert np.allclose(tile.ravel(), [0, 1 / 3, 2 / 3, 1])
    assert tile_images(np.array([[5.0, -1.0, 0.5, 0.5]]), (2, 2)).max() == 1.0  # clipped


def test_save_image_grid_writes_a_grey_png_of_the_right_size(tmp_path):
    x = torch.rand(6, 12, generator=torch.Generator().manual_seed(0)).round()
    path = tmp_path / "samples.png"
    save_image_grid(x, (3, 4), path, scale=3)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "L"
        assert im.size == (3 * 4 * 3 + 4, 2 * 3 * 3 + 3)
        pixels = np.asarray(im)
    assert set(np.unique(pixels)) <= {0, 128, 255}
    assert pixels[1, 1] == (255 if x[0, 0] == 1 else 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.png"]  # no temp files left


def test_bad_inputs_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="expected"):
        tile_images(np.zeros((2, 5)), (2, 3))
    with pytest.raises(InputError, match="NaN"):
        tile_images(np.full((1, 6), np.nan), (2, 3))
    with pytest.raises(InputError):
        save_image_grid(np.zeros((0, 6)), (2, 3), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
