"""Modern (dense) Hopfield network with continuous states, and the Hopfield layer.

Ramsauer et al. (2021), "Hopfield networks is all you need", ICLR. Stored patterns are the
rows of X (N, d); a state (query) xi (d,) has the energy (eq. 2)::

    E(xi) = -lse(beta, X xi) + 1/2 xi^T xi + (1/beta) log N + 1/2 M^2,
    lse(beta, z) = (1/beta) log sum_i exp(beta z_i),   M = max_i ||x_i||

and the update rule (eq. 3), a concave-convex step that never increases E::

    xi_new = X^T softmax(beta X xi)

which retrieves a well-separated pattern in one step. :func:`retrieve` is that rule applied
to the raw patterns: no projections, no normalisation. :class:`HopfieldLayer` is the
layer of section 3 (eq. 10), Z = softmax(beta Q K^T) V with Q = R W_Q, K = Y W_K, V = K W_V;
its projections and layer normalisation are OFF by default, so with the defaults a call is
exactly :func:`retrieve` (turning them on gives an attention layer, not a memory that
returns the stored patterns).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genzoo.core.errors import InputError


def _check(xi: torch.Tensor, X: torch.Tensor) -> None:
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise InputError("patterns X must be a floating (N, d) tensor, one pattern per row")
    if not isinstance(xi, torch.Tensor) or xi.shape[-1] != X.shape[1] or xi.dim() not in (1, 2):
        raise InputError(
            f"state xi has shape {tuple(getattr(xi, 'shape', ()))}; expected (d,) or (B, d) "
            f"with d = {X.shape[1]}"
        )


def energy(xi: torch.Tensor, X: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """E(xi) of states xi (B, d) or (d,) for patterns X (N, d); shape (B,) or ()."""
    _check(xi, X)
    n = X.shape[0]
    lse = torch.logsumexp(beta * xi @ X.T, dim=-1) / beta
    m = X.norm(dim=1).max()
    return -lse + 0.5 * (xi * xi).sum(-1) + math.log(n) / beta + 0.5 * m**2


def retrieve(
    xi: torch.Tensor, X: torch.Tensor, beta: float = 1.0, n_steps: int = 1
) -> torch.Tensor:
    """``n_steps`` updates xi <- X^T softmax(beta X xi) from states xi (B, d) or (d,) with
    patterns X (N, d); same shape as xi. Large beta retrieves single patterns; small beta
    returns averages over similar patterns (metastable states)."""
    _check(xi, X)
    if beta <= 0 or not math.isfinite(beta):
        raise InputError(f"beta={beta} must be a positive finite number")
    for _ in range(n_steps):
        xi = torch.softmax(beta * xi @ X.T, dim=-1) @ X
    return xi


class HopfieldLayer(nn.Module):
    """Z = softmax(beta Q K^T) V for state patterns R (B, d) and stored patterns Y (N, d).

    ``projections=False`` (default): Q = R, K = V = Y, so :meth:`forward` is :func:`retrieve`.
    ``projections=True``: learned Q = R W_Q, K = Y W_K, V = K W_V with ``d_hidden`` columns
    (W_V maps back to d). ``normalize=True`` applies layer normalisation to R and Y first.
    ``beta`` None means 1/sqrt(d_k), the attention scaling.
    """

    def __init__(
        self,
        d: int,
        beta: float | None = None,
        projections: bool = False,
        normalize: bool = False,
        d_hidden: int | None = None,
    ) -> None:
        super().__init__()
        self.d = d
        self.projections = projections
        dk = d_hidden or d
        self.beta = beta if beta is not None else 1.0 / math.sqrt(dk if projections else d)
        if projections:
            self.W_Q = nn.Linear(d, dk, bias=False)
            self.W_K = nn.Linear(d, dk, bias=False)
            self.W_V = nn.Linear(dk, d, bias=False)
        self.norm = nn.LayerNorm(d) if normalize else None

    def forward(self, R: torch.Tensor, Y: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """Retrieved patterns (B, d) for states R (B, d) and stored patterns Y (N, d)."""
        if self.norm is not None:
            R, Y = self.norm(R), self.norm(Y)
        if not self.projections:
            return retrieve(R, Y, self.beta, n_steps)
        K = self.W_K(Y)
        Q = self.W_Q(R)
        return torch.softmax(self.beta * Q @ K.T, dim=-1) @ self.W_V(K)

    def retrieve(self, R: torch.Tensor, Y: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """Plain retrieval, projections and normalisation bypassed: :func:`retrieve`."""
        return retrieve(R, Y, self.beta, n_steps)
