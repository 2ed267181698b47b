"""Frame RBMs: binary RBMs that share their weights W (D, H) and each have their own biases, as
every frame of a conditional RBM or an RNN-RBM does (the history sets the biases). Their free
energies, log partition functions by enumeration, and annealed importance sampling of all their
log partition functions at once.

Frame n has biases b_n (D,), c_n (H,)::

    F_n(v)  = -b_n^T v - sum_j softplus(c_n,j + (v^T W)_j)
    log Z_n = log sum_v exp(-F_n(v))        (enumerated over the smaller layer)

AIS (Neal 2001; Salakhutdinov & Murray 2008). Frame n's base model is its own RBM with W = 0,
whose units are independent: exact draws v ~ Bernoulli(sigmoid(b_n)) and
log Z_A,n = sum_i softplus(b_n,i) + sum_j softplus(c_n,j). The path scales the weights::

    F_beta,n(v) = -b_n^T v - sum_j softplus(c_n,j + beta (v^T W)_j)

(the base's own free energy at beta = 0, F_n at beta = 1), with the Gibbs transition
h ~ sigmoid(c_n + beta v W), v ~ sigmoid(b_n + beta W h). The frames are independent, so the
R runs of N frames are annealed together as R * N chains in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genzoo.ops.enumeration import binary_states
from genzoo.ops.numerics import softplus


def _bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)


def frame_free_energy(
    v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """F_n(v_n) in nats. v, b (..., N, D); c (..., N, H) -> (..., N)."""
    return -(v * b).sum(-1) - softplus(c + v @ W).sum(-1)


def frame_log_partition(
    W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, max_elements: int = 1 << 22
) -> torch.Tensor:
    """Exact log Z_n of each frame RBM (N,) float64, by enumerating the 2^m states of the
    smaller layer (m = min(D, H)) and summing the other out in closed form. The products of
    the states with W are shared by all frames; frames go in chunks whose (chunk, 2^m, other
    layer) softplus block has at most ``max_elements`` entries. Cost: N 2^m max(D, H) softplus
    evaluations in W's dtype (the logsumexp over the states in float64).
    Differentiable in W, b, c."""
    d, h = W.shape
    m = min(d, h)
    states = binary_states(torch.arange(2**m, device=W.device), m, W.dtype)  # (M, m)
    if d <= h:  # -F_n(v) for every v: b_n^T v + sum_j softplus(c_n + v W)
        own, other, products = b, c, states @ W
    else:  # -F_n(h) for every h: c_n^T h + sum_i softplus(b_n + W h)
        own, other, products = c, b, states @ W.T
    n_states, width = products.shape
    chunk = max(1, max_elements // (n_states * width))
    # Without gradients the (chunk, 2^m, other) block is written into one reused buffer.
    reuse = not (torch.is_grad_enabled() and any(t.requires_grad for t in (W, b, c)))
    buf = None
    out = []
    for s in range(0, own.shape[0], chunk):
        o, t = own[s : s + chunk], other[s : s + chunk]
        if not reuse:
            inputs = t.unsqueeze(1) + products.unsqueeze(0)
        else:
            if buf is None or buf.shape[0] != len(o):
                buf = products.new_empty(len(o), n_states, width)
            inputs = torch.add(t.unsqueeze(1), products.unsqueeze(0), out=buf)
        logits = (o @ states.T + softplus(inputs).sum(-1)).to(torch.float64)
        out.append(torch.logsumexp(logits, dim=-1))
    return torch.cat(out)


def frame_base_log_partition(b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """log Z_A,n of each frame's base model (W = 0): sum softplus(b_n) + sum softplus(c_n),
    (N,) float64."""
    return softplus(b.to(torch.float64)).sum(-1) + softplus(c.to(torch.float64)).sum(-1)


@torch.no_grad()
def frame_ais_log_weights(
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    betas: Sequence[float],
    v: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AIS log-weights (R, N) float64 of R runs for each of N frame RBMs, from start states
    v (R, N, D) over the inverse temperatures ``betas`` (increasing from 0 to 1 for forward
    AIS from base draws, so log Z_n ≈ log Z_A,n + log mean_r w; decreasing from 1 to 0 for
    reverse AIS from model samples, so log Z_n ≈ log Z_A,n - log mean_r w).

    Each step adds F_{beta_prev}(v) - F_beta(v) = sum_j softplus(x_j + (beta - beta_prev) a_j)
    - softplus(x_j), x = c + beta_prev a, a = v W, then moves v by one Gibbs sweep at beta (none
    after the last temperature). The products and draws run in W's dtype (float32 in mixed
    precision); a narrower dtype forms each increment as log1p(sigmoid(x) expm1(d a)), which
    keeps its relative precision (no cancellation), and accumulates it in float64.

    The roles of the layers are symmetric (swap W for W^T and b for c): the hidden units are
    summed out, so a caller anneals the larger layer and sums out the smaller one."""
    betas = [float(x) for x in betas]
    v = v.to(W.dtype)
    log_w = torch.zeros(v.shape[:-1], dtype=torch.float64, device=v.device)
    narrow = W.dtype != torch.float64
    # |a_j| <= sum_i |W_ij| for binary v: bounds the step d a_j without a pass over a.
    reach = float(W.abs().sum(0).max()) if narrow else 0.0
    last = len(betas) - 1
    for k in range(1, len(betas)):
        beta_prev, beta = betas[k - 1], betas[k]
        d = beta - beta_prev
        a = v @ W  # (R, N, H)
        x = torch.add(c, a, alpha=beta_prev)  # c + beta' a
        da = a.mul_(d)
        if narrow and abs(d) * reach < 20.0:  # expm1 far from float32's range
            inc = torch.log1p(torch.sigmoid(x).mul_(torch.expm1(da))).sum(-1)
        else:
            x64, da64 = x.to(torch.float64), da.to(torch.float64)
            inc = (softplus(x64 + da64) - softplus(x64)).sum(-1)
        log_w += inc
        if k < last:
            h = _bernoulli(torch.sigmoid(x.add_(da)), generator)  # x + d a = c + beta a
            v = _bernoulli(torch.sigmoid(torch.add(b, h @ W.T, alpha=beta)), generator)
    return log_w
