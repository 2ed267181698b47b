"""Conditional restricted Boltzmann machine (CRBM).

Taylor, Hinton & Roweis (2007), "Modeling human motion using binary latent variables", NIPS.

Frames v_t in {0,1}^D, hidden units h_t in {0,1}^H, and the history of the n previous frames
v_{<t} = [v_{t-n}; ...; v_{t-1}] (n*D,). The past enters only through dynamic biases: the
autoregressive weights A (n*D, D) and the past-to-hidden weights B (n*D, H)::

    b_t = b + A^T v_{<t},    c_t = c + B^T v_{<t}
    E(v_t, h_t | v_{<t}) = -v_t^T W h_t - b_t^T v_t - c_t^T h_t
    p(h_t,j = 1 | v_t, v_{<t}) = sigmoid(c_t,j + (v_t^T W)_j)
    p(v_t,i = 1 | h_t, v_{<t}) = sigmoid(b_t,i + (W h_t)_i)
    p(v_1..v_T) = prod_t exp(-F_t(v_t)) / Z_t

Learning: CD-k on every frame with its history clamped to the data (the paper's rule), written
as the surrogate mean_t F_t(v_t) - F_t(v_t^-) with the negative frames detached; its gradient
moves W, b, c and, through the biases, A and B.

Data (genzoo's sequence set). An image of height T and width D (``image_height`` /
``image_width``; none = square) is read as the sequence of its T rows, each a frame of D
pixels: MNIST gives 28 frames of 28 pixels, the 8x8 digits 8 frames of 8. The n frames before
the first row are blank (zeros), so the first rows are modelled too and :meth:`sample` can draw
whole images. Generation is iterated sampling: each row by ``sample_gibbs`` Gibbs sweeps of its
frame RBM given the rows drawn so far (:meth:`complete` continues real first rows).

With a frame width or hidden layer of at most 16 units, each Z_t is enumerated and
:meth:`log_prob` is the exact log-likelihood of the image (capability ``exact_likelihood``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genzoo.core.config import check
from genzoo.core.registry import register_model
from genzoo.models.base import checks_input, train_recipe
from genzoo.models.boltzmann._sequences import (
    RowSequenceConfig,
    RowSequenceModel,
    frame_cd_loss,
    frame_free_energy,
)
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class CRBMConfig(RowSequenceConfig):
    """The fields of :class:`RowSequenceConfig` and ``order``: n, the number of past frames the
    biases depend on. ``init_std``: W, A, B ~ N(0, init_std^2)."""

    order: int = 2

    def validate(self) -> None:
        super().validate()
        check(self.order >= 1, f"model.order={self.order} must be >= 1 (past frames)")


@register_model("crbm", family="boltzmann", paper="Taylor, Hinton & Roweis 2007")
class CRBM(RowSequenceModel):
    """Conditional RBM over image rows as a sequence, biases set by the past n rows.

    Conditional RBM over row sequences of flat (B, T*D) binary images; generation
    (``complete``, ``inpaint``, ``sample``) as :class:`RowSequenceModel` gives it, each row's
    biases set by the ``order`` rows before it."""

    config_class = CRBMConfig
    train_defaults = train_recipe(optimizer="sgd", lr=0.01)
    test_overrides = ("model.n_hidden=8", "model.sample_gibbs=3")

    def __init__(self, config: CRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        check(
            config.order < self.n_frames,
            f"model.order={config.order} must be below the number of rows ({self.n_frames})",
        )
        d, h, n = self.frame_size, config.n_hidden, config.order
        self.W = nn.Parameter(torch.zeros(d, h))
        self.b = nn.Parameter(torch.zeros(d))
        self.c = nn.Parameter(torch.zeros(h))
        self.A = nn.Parameter(torch.zeros(n * d, d))
        self.B = nn.Parameter(torch.zeros(n * d, h))
        with torch.no_grad():
            for p in (self.W, self.A, self.B):
                normal_or_zero_(p, config.init_std, generator)

    # -- sequences ----------------------------------------------------------------------------

    def histories(self, seq: torch.Tensor) -> torch.Tensor:
        """v_{<t} for every t: (B, T, D) -> (B, T, n*D), blank rows before the image."""
        n, d = self.config.order, self.frame_size
        padded = torch.cat([seq.new_zeros(len(seq), n, d), seq], dim=1)
        # Window t holds rows t-n..t-1 of the original sequence, oldest first.
        return torch.cat([padded[:, i : i + seq.shape[1]] for i in range(n)], dim=-1)

    def dynamic_biases(self, hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b_t, c_t) from histories (..., n*D) -> (..., D), (..., H)."""
        return self.b + hist @ self.A, self.c + hist @ self.B

    def _frame_biases(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dynamic_biases(self.histories(seq))

    # -- conditionals -------------------------------------------------------------------------

    def p_h_given_v(self, v: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """p(h_t = 1 | v_t, v_{<t}). v (N, D), hist (N, n*D) -> (N, H)."""
        _, c_t = self.dynamic_biases(hist)
        return torch.sigmoid(c_t + v @ self.W)

    def p_v_given_h(self, h: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """p(v_t = 1 | h_t, v_{<t}). h (N, H), hist (N, n*D) -> (N, D)."""
        b_t, _ = self.dynamic_biases(hist)
        return torch.sigmoid(b_t + h @ self.W.T)

    def energy(self, v: torch.Tensor, h: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """E(v_t, h_t | v_{<t}). v (N, D), h (N, H), hist (N, n*D) -> (N,)."""
        b_t, c_t = self.dynamic_biases(hist)
        return -((v @ self.W) * h).sum(-1) - (v * b_t).sum(-1) - (h * c_t).sum(-1)

    def conditional_free_energy(self, v: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        """F_t(v_t | v_{<t}) in nats. v (N, D), hist (N, n*D) -> (N,)."""
        b_t, c_t = self.dynamic_biases(hist)
        return frame_free_energy(v, self.W, b_t, c_t)

    # -- learning -----------------------------------------------------------------------------

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k on every frame of x (B, T*D), history clamped to the data. ``loss``: mean over
        frames of F_t(v_t) - F_t(v_t^-) (nats per frame); ``recon_error``: mean squared error of
        p(v_t | h_t), h_t ~ p(h_t | v_t, v_{<t})."""
        seq = self.frames(x)
        v = seq.reshape(-1, self.frame_size)
        b_t, c_t = self.dynamic_biases(self.histories(seq).reshape(len(v), -1))
        return frame_cd_loss(v, self.W, b_t, c_t, self.config.k, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean-field one-step reconstruction error of every frame given its true history."""
        seq = self.frames(x)
        v = seq.reshape(-1, self.frame_size)
        hist = self.histories(seq).reshape(len(v), -1)
        recon = ((v - self.p_v_given_h(self.p_h_given_v(v, hist), hist)) ** 2).mean()
        return {"recon_error": float(recon)}

    # -- generation ---------------------------------------------------------------------------

    def _draw_rows(self, seq, n_given, sweeps, generator):
        # Row t's biases from the n rows before it, blank rows before the image.
        n, d = self.config.order, self.frame_size
        for t in range(n_given, self.n_frames):
            past = torch.cat([seq.new_zeros(len(seq), n, d), seq[:, :t]], dim=1)[:, -n:]
            b_t, c_t = self.dynamic_biases(past.reshape(len(seq), n * d))
            seq[:, t] = self._draw_frame(b_t, c_t, sweeps, generator)
