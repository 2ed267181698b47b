"""NVIL pieces of the sigmoid belief network (Mnih & Gregor 2014): per-layer terms of
log p(x, h) and log q(h|x), the local learning signals built from them, the baseline networks,
and the running mean / variance normalisation of a learning signal.

Layers are numbered as in :mod:`genzoo.models.directed.sbn`: h_0 = x, h_1 next to x, .. h_L.
The local learning signal of layer l (l = 1..L) keeps the terms of
log p(x, h) - log q(h|x) that depend on h_l or a layer above it::

    l_l = log p(h_{l-1} | h_l) + sum_{k > l} log p(h_{k-1} | h_k) + log p(h_L)
          - sum_{k >= l} log q(h_k | h_{k-1})
        = log p(h_{l-1}, .., h_L) - log q(h_l, .., h_L | h_{l-1}),

so l_1 is the global signal log p(x, h) - log q(h|x). See sbn.py for why the dropped terms
leave the gradient estimator unbiased.
"""

from __future__ import annotations

import torch
from torch import nn

from genzoo.ops.numerics import bernoulli_log_likelihood


def baseline_net(n_in: int, n_hidden: int) -> nn.Sequential:
    """C(input): an MLP with one tanh layer of ``n_hidden`` units and a scalar output."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, 1))


def layer_terms(
    hs: list[torch.Tensor],
    generative: nn.ModuleList,
    top_bias: torch.Tensor,
    recognition: nn.ModuleList,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer log-probabilities in nats for the layers hs = [h_0 = x, h_1, .., h_L], each
    (..., n_l) and carrying no gradient.

    Returns ``log_p`` (..., L + 1) with log_p[..., k] = log p(h_k | h_{k+1}) for k < L and
    log_p[..., L] = log p(h_L), and ``log_q`` (..., L) with log_q[..., l - 1] =
    log q(h_l | h_{l-1}); log_p depends on the generative parameters only, log_q on the
    recognition parameters only."""
    n = len(recognition)
    log_p = [bernoulli_log_likelihood(generative[k](hs[k + 1]), hs[k]) for k in range(n)]
    log_p.append(bernoulli_log_likelihood(top_bias.expand_as(hs[n]), hs[n]))
    log_q = [bernoulli_log_likelihood(recognition[l](hs[l]), hs[l + 1]) for l in range(n)]
    return torch.stack(log_p, -1), torch.stack(log_q, -1)


def _reverse_cumsum(t: torch.Tensor) -> torch.Tensor:
    return t.flip(-1).cumsum(-1).flip(-1)


def local_signals(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Local learning signals l_l (..., L), l = 1..L (module docstring), from the per-layer
    terms of :func:`layer_terms`: l_l = sum_{k >= l-1} log_p[k] - sum_{k >= l} log_q[k-1]."""
    n = log_q.shape[-1]
    return _reverse_cumsum(log_p)[..., :n] - _reverse_cumsum(log_q)


@torch.no_grad()
def update_moments(
    mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor, centred: torch.Tensor,
    alpha: float,
) -> None:
    """Fold the batch mean / variance over axis 0 of ``centred`` (B, *mean.shape) into the
    running buffers in place: c <- alpha c + (1 - alpha) mean, same for v. While ``count`` is
    0 the batch values are copied, so the estimate is not biased towards the start."""
    batch_mean = centred.mean(0).to(mean)
    batch_var = (centred.var(0, unbiased=False).to(var) if centred.shape[0] > 1
                 else torch.zeros_like(var))
    if int(count) == 0:
        mean.copy_(batch_mean)
        var.copy_(batch_var)
    else:
        mean.mul_(alpha).add_((1 - alpha) * batch_mean)
        var.mul_(alpha).add_((1 - alpha) * batch_var)
    count += 1


def normalise(centred: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """(centred - c) / max(1, sqrt v), detached; c, v broadcast over the leading axis."""
    scale = torch.clamp(var.sqrt(), min=1.0).to(centred)
    return ((centred - mean.to(centred)) / scale).detach()
