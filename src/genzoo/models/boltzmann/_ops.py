"""Numerical pieces shared by the Boltzmann machines: Bernoulli draws, a float64-accurate
softplus, data-marginal logits, bounded parameterisations, and the contrastive free-energy
surrogate with a closed-form backward (the CD / PCD learning rule)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Hinton's guide clamps the data marginals before taking logits so that a pixel that is never on
# in the training set does not get an infinite bias.
MARGINAL_CLAMP = 1e-3


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # u < p with u uniform draws the same law as torch.bernoulli, several times faster on CPU;
    # the in-place comparison writes 0./1. into u without another allocation.
    u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return u.lt_(p)


def softplus_threshold(dtype: torch.dtype) -> float:
    # torch's softplus returns x itself above `threshold`, an error of log1p(exp(-threshold)):
    # 2e-9 at the default 20 is below float32 resolution but not float64's, so float64 (the
    # evaluation precision) switches over only at 40 (error 4e-18).
    return 40.0 if dtype == torch.float64 else 20.0


def softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x, threshold=softplus_threshold(x.dtype))


def bounded(logit: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """lo + (hi - lo) * sigmoid(logit): a smooth parameterisation of a quantity (a log variance
    or log precision) that must stay inside [lo, hi] whatever the optimiser does."""
    return lo + (hi - lo) * torch.sigmoid(logit)


def bounded_logit(value: torch.Tensor, lo: float, hi: float, eps: float = 1e-6) -> torch.Tensor:
    """The inverse of :func:`bounded`, with ``value`` first clipped to just inside [lo, hi] so
    the logit is finite."""
    u = ((value - lo) / (hi - lo)).clamp(eps, 1.0 - eps)
    return torch.log(u) - torch.log1p(-u)


def data_logits(x: torch.Tensor) -> torch.Tensor:
    p = x.mean(dim=0).clamp(MARGINAL_CLAMP, 1.0 - MARGINAL_CLAMP)
    return torch.log(p) - torch.log1p(-p)


class ContrastiveFreeEnergy(torch.autograd.Function):
    """Returns the precomputed ``value`` of mean F(v_pos) - mean F(v_neg); its backward gives the
    gradient with respect to (W, b, c) in closed form from the hidden statistics s = p(h | v)
    (dF/dW = -v s^T, dF/db = -v, dF/dc = -s)::

        dW = (v_neg^T s_neg / N_neg - v_pos^T s_pos / N_pos),  db, dc likewise

    Two products, accumulated in place, instead of autograd's two products plus a sum of two
    (D, H) gradients and the graph of two free energies."""

    @staticmethod
    def forward(ctx, W, b, c, value, v_pos, s_pos, v_neg, s_neg):
        ctx.save_for_backward(v_pos, s_pos, v_neg, s_neg)
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        v_pos, s_pos, v_neg, s_neg = ctx.saved_tensors
        n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
        s_neg = s_neg * (grad / n_neg)
        s_pos = s_pos * (grad / n_pos)
        g_W = torch.mm(v_neg.T, s_neg).addmm_(v_pos.T, s_pos, alpha=-1.0)
        g_b = (v_neg.sum(0) / n_neg - v_pos.sum(0) / n_pos) * grad
        g_c = s_neg.sum(0) - s_pos.sum(0)
        return g_W, g_b, g_c, None, None, None, None, None
