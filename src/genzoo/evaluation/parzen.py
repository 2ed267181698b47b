"""Parzen-window (Gaussian kernel density) log-likelihood of a sampler, as in the GAN paper.

Goodfellow et al. (2014), "Generative adversarial nets", section 5 (after Breuleux, Bengio &
Vincent 2011): fit an isotropic Gaussian Parzen window to S samples s_1..s_S of the model
(the paper: S = 10,000) and report the mean log density of the test set under it::

    log p^(x) = logsumexp_i( -|x - s_i|^2 / (2 sigma^2) ) - log S - (D/2) log(2 pi sigma^2)

in nats per example, with sigma chosen by a grid search on the validation split. Computed in
float64 with a streaming logsumexp over sample chunks, so memory is bounded by
``batch_size x chunk`` distances whatever S and N are.

**A weak measure.** The estimate has high variance in high dimension, is dominated by the
bandwidth, rewards memorising the training set (the training data themselves score far higher
than any model) and can rank a poor sampler above a good one (Theis, van den Oord & Bethge
2016, "A note on the evaluation of generative models", section 3.2). Every result carries
:data:`PARZEN_WARNING`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genzoo.core.errors import InputError
from genzoo.evaluation import progress
from genzoo.evaluation.stats import Estimate

PARZEN_WARNING = (
    "Parzen-window log-likelihood is a weak measure: it depends mostly on the bandwidth, has "
    "high variance in high dimension, and favours samples that copy the training set; it can "
    "rank a worse model higher (Theis et al. 2016). Report it only for comparison with "
    "published numbers."
)

# Goodfellow et al.'s grid: sigma in logspace(-1, 0, 10).
DEFAULT_SIGMAS = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))


def _check(samples: torch.Tensor, x: torch.Tensor) -> None:
    if samples.dim() != 2 or x.dim() != 2 or samples.shape[1] != x.shape[1]:
        raise InputError(
            f"parzen needs samples (S, D) and data (N, D) of one D, got {tuple(samples.shape)} "
            f"and {tuple(x.shape)}"
        )
    if len(samples) == 0 or len(x) == 0:
        raise InputError("parzen needs at least one sample and one data point")


@torch.no_grad()
def parzen_log_density(
    samples: torch.Tensor,
    x: torch.Tensor,
    sigmas: Sequence[float] | float,
    batch_size: int = 500,
    chunk: int = 2000,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """log p^(x) (n_sigma, N) in nats for each bandwidth of ``sigmas`` and each row of x
    (N, D), the window centred on ``samples`` (S, D). Squared distances are computed once per
    (batch, chunk) block and shared by all bandwidths."""
    _check(samples, x)
    sig = torch.tensor([sigmas] if isinstance(sigmas, (int, float)) else list(sigmas),
                       dtype=dtype)
    if sig.numel() == 0 or not bool((sig > 0).all()):
        raise InputError(f"sigmas={sigmas!r}: bandwidths must be positive")
    device = samples.device
    s_all = samples.to(dtype)
    sig = sig.to(device)
    n_s, d = s_all.shape
    out = []
    name = f"Parzen window, {len(sig)} bandwidth{'s' if len(sig) > 1 else ''}, {n_s} samples"
    with progress.Stage(name, len(x), "examples") as st:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device=device, dtype=dtype)
            acc = torch.full((len(sig), len(xb)), -math.inf, dtype=dtype, device=device)
            for j in range(0, n_s, chunk):
                s = s_all[j : j + chunk]
                d2 = (xb * xb).sum(1, keepdim=True) + (s * s).sum(1) - 2.0 * xb @ s.T
                d2 = d2.clamp_min(0)
                logk = -d2[None] / (2.0 * sig[:, None, None] ** 2)  # (n_sigma, B, chunk)
                acc = torch.logaddexp(acc, torch.logsumexp(logk, dim=2))
            norm = math.log(n_s) + 0.5 * d * torch.log(2.0 * math.pi * sig**2)
            out.append(acc - norm[:, None])
            st.advance(len(xb))
    return torch.cat(out, 1)


def parzen_log_likelihood(
    samples: torch.Tensor,
    x: torch.Tensor,
    sigma: float,
    batch_size: int = 500,
    dtype: torch.dtype = torch.float64,
) -> Estimate:
    """Mean Parzen-window log-likelihood of x (N, D) under the window of bandwidth ``sigma``
    on ``samples`` (S, D), nats per example. ``stderr``: standard error over the N examples
    (it ignores the randomness of the samples). Diagnostics: ``sigma``, ``n_model_samples``,
    ``warning`` (:data:`PARZEN_WARNING`, always present)."""
    ll = parzen_log_density(samples, x, [float(sigma)], batch_size, dtype=dtype)[0]
    n = ll.numel()
    return Estimate(
        value=float(ll.mean()),
        stderr=float(ll.std() / math.sqrt(n)) if n > 1 else float("nan"),
        n_samples=n,
        estimator="parzen",
        diagnostics={"sigma": float(sigma), "n_model_samples": len(samples),
                     "warning": PARZEN_WARNING},
        unit="nats per example",
    )


def select_parzen_bandwidth(
    samples: torch.Tensor,
    x_valid: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    batch_size: int = 500,
    dtype: torch.dtype = torch.float64,
) -> tuple[float, dict[float, float]]:
    """The bandwidth of ``sigmas`` maximising the mean Parzen log-likelihood of the
    validation data x_valid (N, D) under ``samples`` (S, D); returns (best sigma, {sigma: mean
    log-likelihood in nats}). Ties go to the first (smallest listed) bandwidth."""
    sig = [float(s) for s in sigmas]
    ll = parzen_log_density(samples, x_valid, sig, batch_size, dtype=dtype).mean(1)
    scores = {s: float(v) for s, v in zip(sig, ll)}
    best = sig[int(torch.argmax(ll))]
    return best, scores


def training_data_parzen(
    train: torch.Tensor,
    x_valid: torch.Tensor,
    x_test: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    batch_size: int = 500,
    dtype: torch.dtype = torch.float64,
) -> Estimate:
    """The ceiling of a Parzen table: the Parzen log-likelihood of x_test (N, D) when the
    "samples" are real training examples ``train`` (S, D), the bandwidth chosen on x_valid
    (M, D) over ``sigmas`` as for a model's samples; nats per example, what a sampler that
    copies the training set reaches. Diagnostics as :func:`parzen_log_likelihood`."""
    sigma, _ = select_parzen_bandwidth(train, x_valid, sigmas, batch_size, dtype)
    return parzen_log_likelihood(train, x_test, sigma, batch_size, dtype)


__all__ = [
    "DEFAULT_SIGMAS",
    "PARZEN_WARNING",
    "parzen_log_density",
    "parzen_log_likelihood",
    "select_parzen_bandwidth",
    "training_data_parzen",
]
