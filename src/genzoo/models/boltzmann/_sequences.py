"""Pieces shared by the Boltzmann machines over sequences (conditional RBM, RNN-RBM) and over
images (convolutional RBM): the image shape a flat input is reshaped to, images read as
sequences of rows, the frame RBM whose biases change at every step (its CD-k loss and exact
log-likelihood, from :mod:`genzoo.ops.frame_rbm`), and :class:`RowSequenceModel`, the base of
the models that generate an image row by row (its config :class:`RowSequenceConfig`,
inpainting and sampling through ``complete``, the frame RBMs that the evaluator reads).

Row sequences. An image of height T and width D, flattened row-major to (B, T*D), is read as the
sequence of its rows v_1..v_T, each a frame of D binary pixels (MNIST: 28 frames of 28 pixels).
Frame t's RBM has weights W (D, H) shared over time and biases b_t (D,), c_t (H,) set by the
past; its free energy and partition function are those of a binary RBM::

    F_t(v) = -b_t^T v - sum_j softplus(c_t,j + (v^T W)_j)
    log Z_t = log sum_v exp(-F_t(v))          (enumerated over the smaller layer)
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from genzoo.core.config import check, check_nonnegative
from genzoo.core.errors import ConfigError, GenzooError, InputError
from genzoo.core.protocols import EXACT_LIKELIHOOD, FRAME_RBMS, INPAINT
from genzoo.models.base import GenzooModel, VisibleConfig, checks_input
from genzoo.models.boltzmann._ops import bernoulli
from genzoo.ops.frame_rbm import frame_free_energy, frame_log_partition

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


def frame_cd_loss(
    v: torch.Tensor,
    W: torch.Tensor,
    b_t: torch.Tensor,
    c_t: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """CD-k on frames v (N, D) whose RBMs have the biases b_t (N, D), c_t (N, H), each chain
    started at its own data frame. ``loss``: mean F_t(v_t) - F_t(v_t^-) (nats per frame), with
    v_t^- detached, so its gradient is the CD update of W and, through the biases, of whatever
    set them; ``recon_error``: mean squared error of p(v_t | h_t), h_t ~ p(h_t | v_t)."""
    with torch.no_grad():
        h0 = bernoulli(torch.sigmoid(c_t + v @ W), generator)
        p1 = torch.sigmoid(b_t + h0 @ W.T)
        recon = ((v - p1) ** 2).mean()
        v_neg = frame_gibbs(bernoulli(p1, generator), W, b_t, c_t, k - 1, generator)
    gap = (frame_free_energy(v, W, b_t, c_t) - frame_free_energy(v_neg, W, b_t, c_t)).mean()
    return {"loss": gap, "recon_error": recon, "free_energy_gap": gap.detach()}


def frame_log_prob(
    v: torch.Tensor, W: torch.Tensor, b_t: torch.Tensor, c_t: torch.Tensor, n_frames: int
) -> torch.Tensor:
    """Exact log p of whole sequences, sum_t -F_t(v_t) - log Z_t in nats, from their frames
    v (B*T, D) and frame biases b_t (B*T, D), c_t (B*T, H), frames of a sequence adjacent.
    -> (B,)."""
    m = min(W.shape)
    if m > MAX_ENUMERATED_UNITS:
        raise GenzooError(
            f"exact per-frame log Z enumerates 2^{m} states; it needs a frame width or a hidden "
            f"layer of at most {MAX_ENUMERATED_UNITS} units (genzoo evaluate anneals each "
            "frame instead)"
        )
    lp = -frame_free_energy(v, W, b_t, c_t) - frame_log_partition(W, b_t, c_t).to(v.dtype)
    return lp.reshape(-1, n_frames).sum(-1)


def check_n_given(n_given: int, n_frames: int) -> None:
    """InputError unless 0 <= n_given <= n_frames (the rows a completion keeps)."""
    if not 0 <= n_given <= n_frames:
        raise InputError(f"n_given={n_given} must be in [0, {n_frames}]")


def rows_given(mask: torch.Tensor, n_frames: int, frame_size: int) -> int:
    """The number of leading rows that ``mask`` ((B, D) bool, True = observed) keeps, for
    models that complete images row by row; raises InputError unless the mask keeps the same
    whole first rows of every image and hides everything after them."""
    rows = mask.reshape(len(mask), n_frames, frame_size)
    n_given = int(rows[0].all(-1).long().cumprod(0).sum())
    expected = torch.zeros(n_frames, frame_size, dtype=torch.bool, device=mask.device)
    expected[:n_given] = True
    if not bool((rows == expected).all()):
        raise InputError(
            "this model completes images row by row: the observed pixels must be the same "
            "whole top rows of every image (e.g. --mask bottom-half)"
        )
    return n_given


@dataclasses.dataclass(frozen=True)
class RowSequenceConfig(VisibleConfig):
    """Fields of the models of images as sequences of rows: ``n_visible`` pixels per image (from
    the data), read as rows of ``image_width`` (``image_height`` / ``image_width`` none: a square
    image). ``n_hidden``: hidden units of each frame's RBM. ``k``: CD-k per frame.
    ``init_std``: the weights ~ N(0, init_std^2). ``sample_gibbs``: Gibbs sweeps per generated
    frame."""

    image_height: int | None = None
    image_width: int | None = None
    n_hidden: int = 100
    k: int = 1
    init_std: float = 0.01
    sample_gibbs: int = 50

    def validate(self) -> None:
        super().validate()
        check(self.n_hidden > 0, f"model.n_hidden={self.n_hidden} must be positive")
        check(self.k >= 1, f"model.k={self.k} must be >= 1")
        check_nonnegative(self.init_std, "model.init_std")
        check(self.sample_gibbs >= 1, "model.sample_gibbs must be >= 1")


class RowSequenceModel(GenzooModel):
    """Base of the models of images as sequences of rows (CRBM, RNN-RBM): flat binary images
    (B, T*D) of ``n_frames`` rows of ``frame_size`` pixels, generated row by row. A model
    registers the frame RBM's weights ``W`` (D, H) (its dtype is the model's) and implements
    ``_draw_rows`` (its recurrence at generation); this class gives ``frames``,
    :meth:`complete`, ``inpaint`` and ``sample``, and the capabilities: inpainting, and the
    exact likelihood when each frame's log Z can be enumerated."""

    config_class = RowSequenceConfig
    W: nn.Parameter

    def __init__(self, config: RowSequenceConfig) -> None:
        super().__init__(config)
        self.n_frames, self.frame_size = resolve_image_shape(
            config.n_visible, config.image_height, config.image_width
        )
        exact = min(self.frame_size, config.n_hidden) <= MAX_ENUMERATED_UNITS
        caps = {INPAINT, FRAME_RBMS}
        self.capabilities = frozenset(caps | {EXACT_LIKELIHOOD} if exact else caps)

    @checks_input
    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Flat images (B, T*D) -> row sequences (B, T, D)."""
        return x.to(self.W.dtype).reshape(len(x), self.n_frames, self.frame_size)

    def frame_rbms(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every frame of x (B, T*D) with its RBM given the frames before it: v (B, T, D),
        the shared W (D, H), b_t (B, T, D), c_t (B, T, H) (the :class:`FrameRBMs` contract)."""
        seq = self.frames(x)
        b_t, c_t = self._frame_biases(seq)
        return seq, self.W, b_t, c_t

    @checks_input
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = sum_t -F_t(v_t) - log Z_t in nats, x (B, T*D) -> (B,); needs a frame
        width or hidden layer of at most 16 units (Z_t is enumerated)."""
        v, W, b_t, c_t = self.frame_rbms(x)
        return frame_log_prob(
            v.flatten(0, 1), W, b_t.flatten(0, 1), c_t.flatten(0, 1), self.n_frames
        )

    def _frame_biases(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The biases of every frame's RBM given the frames before it (the model's
        recurrence): (B, T, D) -> (B, T, D), (B, T, H)."""
        raise NotImplementedError

    @torch.no_grad()
    def complete(
        self,
        x: torch.Tensor,
        n_given: int,
        generator: torch.Generator | None = None,
        n_steps: int | None = None,
    ) -> torch.Tensor:
        """Keep the first ``n_given`` rows of x (B, T*D) and draw the others in order, each
        given the rows before it by ``n_steps`` Gibbs sweeps of its frame RBM (None:
        ``sample_gibbs``) started from a draw of its visible biases. Binary (B, T*D)."""
        check_n_given(n_given, self.n_frames)
        if n_steps is None:
            n_steps = self.config.sample_gibbs
        elif not isinstance(n_steps, int) or n_steps < 1:
            raise InputError(f"n_steps={n_steps!r} must be a positive integer (Gibbs sweeps)")
        seq = self.frames(x).clone()
        self._draw_rows(seq, n_given, n_steps, generator)
        return seq.reshape(len(x), -1)

    def _draw_rows(
        self, seq: torch.Tensor, n_given: int, sweeps: int, generator: torch.Generator | None
    ) -> None:
        """Overwrite rows n_given.. of seq (B, T, D) in order, each drawn by
        :meth:`_draw_frame` with the biases the rows before it give (the model's recurrence)."""
        raise NotImplementedError

    def _draw_frame(
        self,
        b_t: torch.Tensor,
        c_t: torch.Tensor,
        sweeps: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """One frame (B, D) from the frame RBMs with biases b_t (B, D), c_t (B, H): ``sweeps``
        Gibbs sweeps from v ~ Bernoulli(sigmoid(b_t))."""
        start = bernoulli(torch.sigmoid(b_t), generator)
        return frame_gibbs(start, self.W, b_t, c_t, sweeps, generator)

    @torch.no_grad()
    def inpaint(self, x: torch.Tensor, observed_mask: torch.Tensor, /,
                generator: torch.Generator | None = None, n_samples: int = 1,
                n_steps: int | None = None) -> torch.Tensor:
        """Completions (n_samples, B, D) of x (B, D) whose observed pixels (``observed_mask``,
        True = observed) are whole top rows, the rest drawn row by row by :meth:`complete` with
        ``n_steps`` Gibbs sweeps per row (None: ``sample_gibbs``). Hidden entries of x are
        ignored."""
        observed = self.observed_entries(x, observed_mask, n_samples)
        n_given = rows_given(observed, self.n_frames, self.frame_size)
        x = torch.where(observed, x, torch.zeros_like(x))
        return torch.stack(
            [self.complete(x, n_given, generator, n_steps) for _ in range(n_samples)]
        )

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, T*D) generated row by row from a blank start."""
        if n < 0:
            raise GenzooError(f"sample(n={n}): n must be >= 0")
        return self.complete(self.W.new_zeros(n, self.config.n_visible), 0, generator)
