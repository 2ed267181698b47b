"""Sampling chains as pictures: a strip of consecutive states and an animated GIF.

A chain is a tensor (T, B, H*W) of T states of B parallel chains (what the Markov-chain
models' ``chain`` methods return). :func:`chain_strip` lays it out as one grid with one row
per chain and one column per kept step; :func:`save_chain_gif` writes one frame per step, each
frame the grid of the B chains at that step (layout of :func:`genzoo.utils.images.tile_images`).
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from PIL import Image

from genzoo.core.errors import InputError
from genzoo.utils.images import save_image_grid, tile_images
from genzoo.utils.io import GENZOO_MARK, atomic_write_bytes


def _check_chain(states: torch.Tensor | np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    if isinstance(states, torch.Tensor):
        a = states.detach().to("cpu", torch.float64).numpy()
    else:
        a = np.asarray(states, dtype=np.float64)
    h, w = image_shape
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] != h * w:
        raise InputError(
            f"chain has shape {a.shape}; expected (T >= 1, B >= 1, {h * w}) for images {(h, w)}"
        )
    return a


def _steps(t: int, every: int) -> list[int]:
    if not isinstance(every, int) or every < 1:
        raise InputError(f"every={every!r} must be a positive integer")
    keep = list(range(0, t, every))
    if keep[-1] != t - 1:
        keep.append(t - 1)  # the last state always shows
    return keep


def chain_strip(
    states: torch.Tensor | np.ndarray, image_shape: tuple[int, int], every: int = 1,
    scale: int = 1,
) -> np.ndarray:
    """Grid in [0, 1] with row b holding chain b's states at steps 0, every, 2 every, ...
    and the last step, left to right. states (T, B, H*W)."""
    a = _check_chain(states, image_shape)
    keep = _steps(a.shape[0], every)
    rows = a[keep].transpose(1, 0, 2).reshape(-1, a.shape[2])  # chain-major, time along a row
    return tile_images(rows, image_shape, nrow=len(keep), scale=scale)


def save_chain_strip(
    states: torch.Tensor | np.ndarray, image_shape: tuple[int, int],
    path: str | os.PathLike, every: int = 1, scale: int = 2,
) -> None:
    """Write :func:`chain_strip` as a greyscale PNG at ``path`` (atomically)."""
    a = _check_chain(states, image_shape)
    keep = _steps(a.shape[0], every)
    rows = a[keep].transpose(1, 0, 2).reshape(-1, a.shape[2])
    save_image_grid(rows, image_shape, path, nrow=len(keep), scale=scale)


def save_chain_gif(
    states: torch.Tensor | np.ndarray, image_shape: tuple[int, int],
    path: str | os.PathLike, every: int = 1, nrow: int | None = None, scale: int = 2,
    duration_ms: int = 100, loop: int = 0,
) -> int:
    """Write an animated GIF at ``path``: one frame per kept step (0, every, ..., last), each
    the grid of the B chains at that step. ``duration_ms`` per frame; ``loop`` 0 repeats
    forever. The GIF's comment says genzoo wrote it. Returns the number of frames."""
    a = _check_chain(states, image_shape)
    if duration_ms < 1:
        raise InputError(f"duration_ms={duration_ms} must be positive")
    frames = [
        Image.fromarray(np.rint(tile_images(a[t], image_shape, nrow=nrow, scale=scale) * 255.0)
                        .astype(np.uint8))
        for t in _steps(a.shape[0], every)
    ]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=duration_ms, loop=loop, comment=GENZOO_MARK)
    atomic_write_bytes(path, buf.getvalue())
    return len(frames)
