"""The pseudo-log-likelihood of a binary energy model: a score for models whose partition
function Z is out of reach (a convolutional RBM), and no likelihood.

log PL(v) = sum_i log P(v_i | v_-i) (Besag 1975). Each conditional takes two free energies,
since P(v) is proportional to exp(-F(v)):

    P(v_i | v_-i) = sigmoid(F(v with v_i flipped) - F(v)).

With ``n_units`` < D units drawn at random per example, D / n_units times the sum of their
terms is an unbiased estimate of the full sum (scikit-learn's ``BernoulliRBM.score_samples``
draws one unit).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def pseudo_log_likelihood(model: Any, x: torch.Tensor, n_units: int | None = None,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,) log PL of each binary row of ``x`` (B, D) in nats, from ``model.free_energy``
    (B, D) -> (B,); ``n_units`` units a row, drawn with ``generator`` (None: all D, exact)."""
    b, d = x.shape
    m = d if n_units is None else min(n_units, d)
    idx = torch.rand((b, d), generator=generator, device=x.device).argsort(-1)[:, :m]
    flipped = x.unsqueeze(1).repeat(1, m, 1)
    flipped.scatter_(-1, idx.unsqueeze(-1), 1.0 - flipped.gather(-1, idx.unsqueeze(-1)))
    f_flip = model.free_energy(flipped.reshape(b * m, d)).reshape(b, m)
    return F.logsigmoid(f_flip - model.free_energy(x).unsqueeze(-1)).sum(-1) * (d / m)
