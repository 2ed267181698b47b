"""Image grids of samples and filters.

:func:`tile_images` lays ``n`` flattened images out on a grid with 1-pixel grey separators
(and a 1-pixel border); :func:`save_image_grid` writes that grid as a greyscale PNG,
atomically. Each image pixel becomes a ``scale x scale`` block; separators stay 1 pixel wide,
so a grid of ``rows x cols`` images of shape (H, W) is
``(rows * H * scale + rows + 1) x (cols * W * scale + cols + 1)`` pixels.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from genzoo.core.errors import InputError
from genzoo.utils.io import GENZOO_MARK, atomic_write_bytes

SEPARATOR = 0.5  # grey, distinct from the black and white of binary samples


def tile_images(
    x: torch.Tensor | np.ndarray,
    image_shape: tuple[int, int],
    nrow: int | None = None,
    scale: int = 1,
    normalize: bool = False,
) -> np.ndarray:
    """Tile (n, H*W) images into one float32 array in [0, 1] of shape
    ``(rows * H * scale + rows + 1, nrow * W * scale + nrow + 1)``.

    ``x`` holds grey levels in [0, 1] (values outside are clipped), one flattened row-major
    image per row. ``nrow`` is the number of images per grid row (default ``ceil(sqrt(n))``).
    ``normalize`` rescales each image to its own [min, max] first (for filters such as RBM
    weight columns, whose values are not grey levels).
    """
    if isinstance(x, torch.Tensor):
        a = x.detach().to("cpu", torch.float64).numpy()
    else:
        a = np.asarray(x, dtype=np.float64)
    h, w = (int(s) for s in image_shape)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] != h * w:
        raise InputError(
            f"images have shape {a.shape}; expected (n >= 1, {h * w}) for image_shape {(h, w)}"
        )
    if not np.isfinite(a).all():
        raise InputError("images contain NaN or Inf; nothing sensible can be drawn")
    if scale < 1:
        raise InputError(f"scale={scale} must be a positive integer")
    n = a.shape[0]
    cols = nrow if nrow is not None else math.ceil(math.sqrt(n))
    if cols < 1:
        raise InputError(f"nrow={nrow} must be positive")
    rows = math.ceil(n / cols)
    if normalize:
        lo = a.min(axis=1, keepdims=True)
        span = a.max(axis=1, keepdims=True) - lo
        a = (a - lo) / np.where(span > 0, span, 1.0)
    tiles = np.clip(a, 0.0, 1.0).reshape(n, h, w)
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = h * scale, w * scale
    grid = np.full((rows * th + rows + 1, cols * tw + cols + 1), SEPARATOR, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = 1 + r * (th + 1), 1 + c * (tw + 1)
        grid[top : top + th, left : left + tw] = tiles[i]
    return grid


def save_image_grid(
    x: torch.Tensor | np.ndarray,
    image_shape: tuple[int, int],
    path: str | os.PathLike,
    nrow: int | None = None,
    scale: int = 2,
    normalize: bool = False,
) -> None:
    """Write (n, H*W) images in [0, 1] as one greyscale PNG grid at ``path`` (atomically).

    See :func:`tile_images` for the layout and the pixel size. The PNG's ``Software`` text
    chunk says genzoo wrote it (:func:`genzoo.utils.io.written_by_genzoo`).
    """
    grid = tile_images(x, image_shape, nrow=nrow, scale=scale, normalize=normalize)
    pixels = np.rint(grid * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", GENZOO_MARK)
    Image.fromarray(pixels).save(buf, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buf.getvalue())
