"""Mean-field inference of the DBM (Salakhutdinov & Hinton 2012, sec. 3.1): the bottom-up
initialisation, the block fixed-point updates and the variational free energy F_Q(v); see
``dbm.py`` for the equations. A mixin of :class:`genzoo.models.boltzmann.dbm.DBM` (and so of
the centered DBM), using its ``n_layers``, ``W``, ``bias(l)``, ``conditional``, ``energy`` and
``config.mf_max_iters`` / ``config.mf_tol``.
"""

from __future__ import annotations

import torch


def bernoulli_entropy(q: torch.Tensor) -> torch.Tensor:
    """H_b(q) = -q log q - (1 - q) log(1 - q) elementwise, in nats (0 at q in {0, 1})."""
    return torch.special.entr(q) + torch.special.entr(1.0 - q)


class DBMMeanField:
    """Fully factorised posterior Q(h | v) = prod_l prod_j Bernoulli(q_lj); q's are
    (B, n_l) probabilities."""

    def mean_field_init(
        self, v: torch.Tensor, vW: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """SH12's bottom-up recognition pass: q_l = sigmoid(b_l + m q_{l-1}^T W_l) with m = 2
        below the top layer (standing in for the top-down input) and 1 at the top. ``vW``:
        v^T W_1 (B, n_1) when the caller has it already."""
        q, prev = [], v
        for l in range(1, self.n_layers + 1):
            m = 2.0 if l < self.n_layers else 1.0
            below = vW if l == 1 and vW is not None else prev @ self.W[l - 1]
            prev = torch.sigmoid(self.bias(l) + m * below)
            q.append(prev)
        return q

    def mean_field_update(
        self, v: torch.Tensor, q: list[torch.Tensor], bottom: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """One fixed-point iteration: all odd hidden layers from their neighbours, then all even
        hidden layers from the new odd ones. Each block update maximises L(Q) over that block,
        so F_Q(v) never increases. Returns a new list. ``bottom``: the clamped part of layer
        1's input, b_1 + v^T W_1, when the caller iterates and has it already (it does not
        change while v is clamped)."""
        x = [v, *q]
        for parity in (1, 0):
            for l in range(1 if parity else 2, self.n_layers + 1, 2):
                if l == 1 and bottom is not None:
                    a = bottom if self.n_layers == 1 else bottom + x[2] @ self.W[1].T
                    x[1] = torch.sigmoid(a)
                else:
                    x[l] = self.conditional(x, l)
        return x[1:]


    def mean_field(
        self,
        v: torch.Tensor,
        max_iters: int | None = None,
        tol: float | None = None,
        q: list[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], int]:
        """Mean-field posterior Q(h | v): ([q_1 (B, n_1), ..., q_L], iterations run). Iterates
        from ``q`` (default: the bottom-up pass) until the largest change of any q is below
        ``tol`` or ``max_iters`` (defaults: model.mf_tol, model.mf_max_iters)."""
        max_iters = self.config.mf_max_iters if max_iters is None else max_iters
        tol = self.config.mf_tol if tol is None else tol
        # b_1 + v^T W_1 is fixed while v is clamped: computed once per run instead of once
        # per iteration (a quarter of an iteration's products for the 784-500-1000 DBM), and
        # shared with the bottom-up initialisation.
        vW = v @ self.W[0]
        bottom = self.bias(1) + vW
        if q is None:
            q = self.mean_field_init(v, vW)
        it = 0
        for it in range(1, max_iters + 1):
            new = self.mean_field_update(v, q, bottom)
            delta = max(float((a - b).abs().max()) for a, b in zip(new, q)) if v.numel() else 0.0
            q = new
            if delta < tol:
                break
        return q, it

    def variational_free_energy(
        self, v: torch.Tensor, q: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """F_Q(v) = E_Q[E(v, h)] - H(Q) (nats, (B,)); log p(v) >= -F_Q(v) - log Z. With ``q``
        None, Q is the converged mean-field posterior (model.mf_tol / mf_max_iters)."""
        if q is None:
            q, _ = self.mean_field(v)
        return self.energy(v, q) - sum(bernoulli_entropy(ql).sum(-1) for ql in q)
