"""RNN-RBM: a recurrent network whose state sets the biases of an RBM at every step.

Boulanger-Lewandowski, Bengio & Vincent (2012), "Modeling temporal dependencies in
high-dimensional sequences: application to polyphonic music generation and transcription", ICML.

Frames v_t in {0,1}^D, RBM hidden units h_t in {0,1}^H, RNN state u_t in (-1,1)^U, u_0 = 0
(the paper's eqs. 7-12, its u_0 a learned vector; here 0 plus the learned biases)::

    b_v^t = b_v + W_uv u_{t-1}            (visible biases of step t's RBM)
    b_h^t = b_h + W_uh u_{t-1}            (hidden biases)
    u_t   = tanh(b_u + W_uu u_{t-1} + W_vu v_t)
    P(v_t | v_{<t}) = exp(-F_t(v_t)) / Z_t,  F_t(v) = -b_v^t·v - sum_j softplus(b_h^t_j + (v^T W)_j)

Learning (the paper's section 3): run the RNN over the data to get every u_t; draw v_t^- by
k-step block Gibbs sampling from step t's RBM; the cost C = sum_t F_t(v_t) - F_t(v_t^-) with
v_t^- held fixed has, with respect to W, b_v^t and b_h^t, the CD estimate of the negative
log-likelihood gradient, and backpropagation through time carries the bias gradients into
W_uv, W_uh and then W_uu, W_vu, b_u. ``loss`` returns C averaged over frames.

Data: images as sequences of rows, as in :mod:`genzoo.models.boltzmann.crbm`. Generation runs
the RNN forward and samples each row from its RBM by ``sample_gibbs`` Gibbs sweeps. With a
frame width or hidden layer of at most 16 units, :meth:`log_prob` is exact.
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
)
from genzoo.nn.init import normal_or_zero_


@dataclasses.dataclass(frozen=True)
class RNNRBMConfig(RowSequenceConfig):
    """The fields of :class:`RowSequenceConfig` and ``n_recurrent``: the RNN units U.
    ``init_std``: all weights ~ N(0, init_std^2)."""

    n_recurrent: int = 100

    def validate(self) -> None:
        super().validate()
        check(self.n_recurrent > 0, f"model.n_recurrent={self.n_recurrent} must be positive")


@register_model("rnn-rbm", family="boltzmann", paper="Boulanger-Lewandowski, Bengio & Vincent 2012")
class RNNRBM(RowSequenceModel):
    """RNN-RBM over image rows: an RNN sets each step's RBM biases, CD through time.

    RNN-RBM over row sequences of flat (B, T*D) binary images. Generation (``complete``,
    ``inpaint``, ``sample``) is :class:`RowSequenceModel`'s, each row's RBM biases set by the
    RNN state of the rows before it."""

    config_class = RNNRBMConfig
    train_defaults = train_recipe(optimizer="sgd", lr=0.01)
    test_overrides = ("model.n_hidden=8", "model.n_recurrent=8", "model.sample_gibbs=3")

    def __init__(self, config: RNNRBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        d, h, u = self.frame_size, config.n_hidden, config.n_recurrent
        self.W = nn.Parameter(torch.zeros(d, h))
        self.b_v = nn.Parameter(torch.zeros(d))
        self.b_h = nn.Parameter(torch.zeros(h))
        self.W_uv = nn.Parameter(torch.zeros(u, d))
        self.W_uh = nn.Parameter(torch.zeros(u, h))
        self.W_uu = nn.Parameter(torch.zeros(u, u))
        self.W_vu = nn.Parameter(torch.zeros(d, u))
        self.b_u = nn.Parameter(torch.zeros(u))
        with torch.no_grad():
            for p in (self.W, self.W_uv, self.W_uh, self.W_uu, self.W_vu):
                normal_or_zero_(p, config.init_std, generator)

    def step_biases(self, u_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b_v^t, b_h^t) from u_{t-1} (..., U) -> (..., D), (..., H)."""
        return self.b_v + u_prev @ self.W_uv, self.b_h + u_prev @ self.W_uh

    def recur(self, u_prev: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """u_t = tanh(b_u + W_uu u_{t-1} + W_vu v_t). (B, U), (B, D) -> (B, U)."""
        return torch.tanh(self.b_u + u_prev @ self.W_uu + v @ self.W_vu)

    def biases(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every step's RBM biases given the data: (B, T, D) -> (B, T, D), (B, T, H)."""
        u = seq.new_zeros(len(seq), self.config.n_recurrent)
        states = []
        for t in range(seq.shape[1]):
            states.append(u)
            u = self.recur(u, seq[:, t])
        return self.step_biases(torch.stack(states, dim=1))

    def _frame_biases(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.biases(seq)

    def _flat_frames(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every frame of x (B, T*D) with its RBM's biases given the data, flattened over the
        batch and time: v (B*T, D), b_v^t (B*T, D), b_h^t (B*T, H)."""
        seq = self.frames(x)
        b_v, b_h = self.biases(seq)
        n, d = len(seq) * self.n_frames, self.frame_size
        return seq.reshape(n, d), b_v.reshape(n, d), b_h.reshape(n, -1)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k through time on x (B, T*D). ``loss``: mean over frames of F_t(v_t) - F_t(v_t^-)
        (nats per frame), differentiable through the biases into the RNN; ``recon_error``: mean
        squared error of p(v_t | h_t), h_t ~ p(h_t | v_t)."""
        v, b_v, b_h = self._flat_frames(x)
        return frame_cd_loss(v, self.W, b_v, b_h, self.config.k, generator)

    @torch.no_grad()
    @checks_input
    def validation_metrics(self, x: torch.Tensor) -> dict[str, float]:
        """Mean-field one-step reconstruction error of every frame given its true past."""
        seq = self.frames(x)
        b_v, b_h = self.biases(seq)
        ph = torch.sigmoid(b_h + seq @ self.W)
        recon = ((seq - torch.sigmoid(b_v + ph @ self.W.T)) ** 2).mean()
        return {"recon_error": float(recon)}

    def _draw_rows(self, seq, n_given, sweeps, generator):
        # The RNN runs over the given rows, then each drawn row is fed back.
        u = seq.new_zeros(len(seq), self.config.n_recurrent)
        for t in range(self.n_frames):
            if t >= n_given:
                seq[:, t] = self._draw_frame(*self.step_biases(u), sweeps, generator)
            u = self.recur(u, seq[:, t])
