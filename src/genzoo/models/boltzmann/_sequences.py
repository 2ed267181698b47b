"""Pieces shared by the Boltzmann machines over sequences (conditional RBM, RNN-RBM) and over
images (convolutional RBM): the image shape a flat input is reshaped to, images read as
sequences of rows, and the frame RBM whose biases change at every step.

Row sequences. An image of height T and width D, flattened row-major to (B, T*D), is read as the
sequence of its rows v_1..v_T, each a frame of D binary pixels (MNIST: 28 frames of 28 pixels).
Frame t's RBM has weights W (D, H) shared over time and biases b_t (D,), c_t (H,) set by the
past; its free energy and partition function are those of a binary RBM::

    F_t(v) = -b_t^T v - sum_j softplus(c_t,j + (v^T W)_j)
    log Z_t = log sum_v exp(-F_t(v))          (enumerated over the smaller layer)
"""

from __future__ import annotations

import math

import torch

from genzoo.core.errors import ConfigError, GenzooError
from genzoo.models.boltzmann._ops import bernoulli, softplus

# Largest layer whose 2^n states are enumerated to give an exact per-frame log Z.
MAX_ENUMERATED_UNITS = 16


def resolve_image_shape(
    n_pixels: int, height: int | None, width: int | None, what: str = "model.n_visible"
) -> tuple[int, int]:
    """(height, width) with height * width == n_pixels; a missing side is inferred from the
    other, both missing means a square image. Raises ConfigError naming the fix."""
    if height is None and width is None:
        side = math.isqrt(n_pixels)
        if side * side != n_pixels:
            raise ConfigError(
                f"{what}={n_pixels} is not a square image: set model.image_height and "
                "model.image_width (e.g. 28 and 20 for frey-faces)"
            )
        return side, side
    if height is None:
        height = n_pixels // width if width and n_pixels % width == 0 else -1
    if width is None:
        width = n_pixels // height if height and n_pixels % height == 0 else -1
    if height <= 0 or width <= 0 or height * width != n_pixels:
        raise ConfigError(
            f"model.image_height x model.image_width does not give {what}={n_pixels}; "
            "set them to the data set's image shape"
        )
    return height, width


def frame_free_energy(
    v: torch.Tensor, W: torch.Tensor, b_t: torch.Tensor, c_t: torch.Tensor
) -> torch.Tensor:
    """F_t(v) in nats. v, b_t (N, D); c_t (N, H) -> (N,)."""
    return -(v * b_t).sum(-1) - softplus(c_t + v @ W).sum(-1)


@torch.no_grad()
def frame_gibbs(
    v: torch.Tensor,
    W: torch.Tensor,
    b_t: torch.Tensor,
    c_t: torch.Tensor,
    steps: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``steps`` Gibbs sweeps v -> h -> v of the frame RBMs from v (N, D); binary (N, D)."""
    for _ in range(steps):
        h = bernoulli(torch.sigmoid(c_t + v @ W), generator)
        v = bernoulli(torch.sigmoid(b_t + h @ W.T), generator)
    return v


def frame_log_partition(
    W: torch.Tensor, b_t: torch.Tensor, c_t: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """Exact log Z_t of each frame RBM (N,), by enumerating the 2^m states of the smaller layer
    (m <= MAX_ENUMERATED_UNITS); summing out the other layer in closed form."""
    from genzoo.evaluation.exact import binary_states

    d, h = W.shape
    m = min(d, h)
    if m > MAX_ENUMERATED_UNITS:
        raise GenzooError(
            f"exact per-frame log Z enumerates 2^{m} states; it needs a frame width or a hidden "
            f"layer of at most {MAX_ENUMERATED_UNITS} units"
        )
    states = binary_states(torch.arange(2**m, device=W.device), m, W.dtype)  # (M, m)
    out = []
    for s in range(0, b_t.shape[0], chunk):
        b, c = b_t[s : s + chunk], c_t[s : s + chunk]
        if d <= h:  # sum over h in closed form: -F_t(v) for every v
            logits = b @ states.T + softplus(c.unsqueeze(1) + (states @ W).unsqueeze(0)).sum(-1)
        else:  # sum over v in closed form: -F_t(h) for every h
            logits = c @ states.T + softplus(b.unsqueeze(1) + (states @ W.T).unsqueeze(0)).sum(-1)
        out.append(torch.logsumexp(logits, dim=-1))
    return torch.cat(out)


def rows_given(observed_mask: torch.Tensor, x: torch.Tensor, n_frames: int, frame_size: int) -> int:
    """The number of leading rows that ``observed_mask`` ((D,) or (B, D), True = observed)
    keeps, for models that complete images row by row; raises InputError unless the mask keeps
    the same whole first rows of every image and hides everything after them."""
    from genzoo.core.errors import InputError

    mask = torch.as_tensor(observed_mask, dtype=torch.bool, device=x.device)
    mask = mask.expand(x.shape) if mask.dim() == 1 else mask
    if mask.shape != x.shape:
        raise InputError(f"observed_mask has shape {tuple(mask.shape)}; expected {tuple(x.shape)}")
    rows = mask.reshape(len(x), n_frames, frame_size)
    n_given = int(rows[0].all(-1).long().cumprod(0).sum())
    expected = torch.zeros(n_frames, frame_size, dtype=torch.bool, device=x.device)
    expected[:n_given] = True
    if not bool((rows == expected).all()):
        raise InputError(
            "this model completes images row by row: the observed pixels must be the same "
            "whole top rows of every image (e.g. --mask bottom-half)"
        )
    return n_given
