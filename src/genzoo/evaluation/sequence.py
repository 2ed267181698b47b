"""Negative log-likelihood of sequence models whose every frame is an RBM (``FRAME_RBMS``: the
conditional RBM, the RNN-RBM), in nats per sequence (per example) and per frame::

    -log p(x) = sum_t F_t(v_t) + log Z_t

with F_t and Z_t those of frame t's RBM, whose biases the frames before it set
(:mod:`genzoo.ops.frame_rbm`). log Z_t is exact, by enumerating the smaller layer of the frame
RBM, when that layer has at most min(``eval.exact_max_units``, 16) units; otherwise it is
estimated by forward AIS from the frame's own RBM with W = 0 (the larger layer annealed, the
smaller summed out), ``eval.frame_ais_runs`` runs over ``eval.frame_ais_betas`` evenly spaced
temperatures, the runs of all frames of ``eval.batch_size`` sequences annealed together as one
batch of chains (split in batches of at most ``MAX_CHAINS``). Forward AIS
underestimates each log Z_t in expectation, so the NLL is then a stochastic lower bound; the
AIS noise of each frame is independent, so the spread of the per-sequence NLL over the split
(``stderr``) already contains it (``stderr_mc`` is that part alone).
"""

from __future__ import annotations

import math
import time

import torch

from genzoo.core.protocols import FRAME_RBMS
from genzoo.evaluation import progress
from genzoo.evaluation._common import (
    DTYPES,
    default_generator,
    evaluation_copy,
    example_stderr,
    require_finite,
)
from genzoo.evaluation.ais import linear_schedule
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.report import NLL_UNIT, EvaluationReport
from genzoo.evaluation.stats import Estimate
from genzoo.ops.frame_rbm import (
    frame_ais_log_weights,
    frame_base_log_partition,
    frame_free_energy,
    frame_log_partition,
)

# Enumerating 2^m states for every frame of a split is affordable up to m = 16 (2^16 states x
# the other layer per frame); above, each frame is annealed.
FRAME_EXACT_MAX_UNITS = 16
# At most this many chains (runs x frames) are annealed in one batch: (chains, H) float32
# states of 26 MB at H = 100 (on one CPU thread, 1.2 us per chain and temperature at 65536
# chains, 1.5 us at twice as many).
MAX_CHAINS = 1 << 16


def frame_log_mean_exp(log_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log mean_r w_r, its delta-method standard error) for every frame of log-weights
    log_w (R, N): two (N,) float64 tensors, column by column what
    :func:`~genzoo.evaluation.stats.log_mean_exp_stderr` is for one set of weights."""
    log_w = log_w.to(torch.float64)
    top = log_w.max(0).values
    w = torch.exp(log_w - top)
    mean_w = w.mean(0)
    return top + torch.log(mean_w), w.std(0, unbiased=True) / (math.sqrt(len(w)) * mean_w)


def enumerable(W: torch.Tensor, eval_config: EvalConfig) -> bool:
    """Whether the frame RBMs of weights W (D, H) have their log Z enumerated."""
    return min(W.shape) <= min(eval_config.exact_max_units, FRAME_EXACT_MAX_UNITS)


def frame_log_partitions(
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log Z_n, its standard error) (N,) float64 of the frame RBMs with weights W (D, H) and
    biases b (N, D), c (N, H): exact (stderr 0) for a small enough layer, else forward AIS
    (module docstring)."""
    if enumerable(W, eval_config):
        log_z = frame_log_partition(W, b, c)
        return log_z, torch.zeros_like(log_z)
    if W.shape[1] > W.shape[0]:
        # The layers' roles are symmetric: anneal the larger one and sum the smaller one out
        # (fewer terms per increment, and lower variance).
        W, b, c = W.T, c, b
    # Evenly spaced temperatures: the path from W = 0 with the frame's own biases has no
    # long easy start for SM08's schedule to skip (on MNIST rows, 100 hidden units, SM08's
    # spacing gave 3.6 times the standard error of the linear one).
    betas = linear_schedule(eval_config.frame_ais_betas).tolist()
    runs = eval_config.frame_ais_runs
    log_z, se = [], []
    step = max(1, MAX_CHAINS // runs)
    for s in range(0, len(b), step):
        bs, cs = b[s : s + step], c[s : s + step]
        p = torch.sigmoid(bs).expand(runs, -1, -1)
        v = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)
        est, err = frame_log_mean_exp(frame_ais_log_weights(W, bs, cs, betas, v, generator))
        log_z.append(frame_base_log_partition(bs, cs) + est)
        se.append(err)
    return torch.cat(log_z), torch.cat(se)


def sequence_nll(
    model, x: torch.Tensor, eval_config: EvalConfig, generator: torch.Generator | None = None
) -> EvaluationReport:
    """Mean NLL in nats per sequence of ``x`` (N, D) under a ``FRAME_RBMS`` model, from a copy
    in ``eval_config.dtype`` (the model is not modified), ``eval_config.batch_size`` sequences
    at a time. The report's ``nll`` has the per-sequence mean, stderr over the sequences (AIS
    noise included), n_samples = the AIS runs per frame (None when exact), and diagnostics
    ``nll_nats_per_frame`` (the same NLL divided by the T frames), ``n_frames``,
    ``stderr_examples`` and ``stderr_mc`` (the AIS part of the standard error)."""
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(model, x, FRAME_RBMS, dtype, "has no frame RBMs (frame_rbms)")
    if generator is None:
        generator = default_generator(m, eval_config)
    bs = eval_config.batch_size
    nll_parts, var_mc = [], 0.0
    exact = None
    with torch.no_grad(), progress.Stage(f"frame likelihoods, {len(x)} sequences", len(x),
                                         "sequences") as st:
        for s in range(0, len(x), bs):
            v, W, b, c = m.frame_rbms(x[s : s + bs].to(device=device, dtype=dtype))
            n_seq, n_frames = v.shape[:2]
            v, b, c = v.flatten(0, 1), b.flatten(0, 1), c.flatten(0, 1)
            exact = enumerable(W, eval_config)
            log_z, se = frame_log_partitions(W, b, c, eval_config, generator)
            wide = [t.to(torch.float64) for t in (v, W, b, c)]
            nll_frames = frame_free_energy(*wide) + log_z  # F_t(v_t) + log Z_t, (n_seq * T,)
            nll_parts.append(nll_frames.reshape(n_seq, n_frames).sum(-1))
            var_mc += float((se**2).sum())
            st.advance(n_seq)
    nll = torch.cat(nll_parts)
    require_finite(nll, "log-likelihood under the model")
    se_examples = example_stderr(nll)
    name = (
        "exact enumeration per frame"
        if exact
        else f"AIS per frame (forward, {eval_config.frame_ais_runs} runs x "
        f"{eval_config.frame_ais_betas} temperatures)"
    )
    diagnostics = {
        "stderr_examples": se_examples,
        "stderr_mc": math.sqrt(var_mc) / len(nll),
        "nll_nats_per_frame": float(nll.mean()) / n_frames,
        "n_frames": n_frames,
    }
    return EvaluationReport(
        estimator=name,
        n_examples=len(nll),
        nll=Estimate(float(nll.mean()), se_examples, None if exact else eval_config.frame_ais_runs,
                     name, diagnostics, NLL_UNIT),
        dtype=eval_config.dtype,
        wall_s=time.perf_counter() - start,
    )
