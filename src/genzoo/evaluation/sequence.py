"""Negative log-likelihood of sequence models whose every frame is an RBM (``FRAME_RBMS``: the
conditional RBM, the RNN-RBM), in nats per sequence (per example) and per frame::

    -log p(x) = sum_t F_t(v_t) + log Z_t

with F_t and Z_t those of frame t's RBM, whose biases the frames before it set
(:mod:`genzoo.ops.frame_rbm`). log Z_t is exact, by enumerating the smaller layer of the frame
RBM, when that layer has at most min(``eval.exact_max_units``, 16) units; otherwise it is
estimated by forward AIS from the frame's own RBM with W = 0 (the larger layer annealed, the
smaller summed out), ``eval.frame_ais_runs`` runs over ``eval.frame_ais_betas`` evenly spaced
temperatures, the runs of all frames of ``eval.batch_size`` sequences annealed together as one
batch of chains (split in chunks of at most ``MAX_CHAINS``, each with its own generator, that
the CPU threads run side by side: genzoo.evaluation.shards). Forward AIS
underestimates each log Z_t in expectation, so the NLL is then a stochastic lower bound; the
AIS noise of each frame is independent, so the spread of the per-sequence NLL over the split
(``stderr``) already contains it (``stderr_mc`` is that part alone).

With ``eval.reverse`` (the default) each frame is also annealed the other way, from 1 to 0
over the same temperatures, its runs started from approximate samples of the frame RBM:
``eval.reverse_burn_in`` block Gibbs sweeps started at the observed frame v_t. The reverse
weights estimate Z_A,t / Z_t without bias, so log Z_t = log Z_A,t - log mean_r w_r
overestimates log Z_t in expectation (as far as the chains have mixed) and the NLL it gives,
``nll_nats_reverse``, is a stochastic upper bound: forward and reverse bracket the NLL.
"""

from __future__ import annotations

import math
import time

import torch

from genzoo.core.protocols import FRAME_RBMS
from genzoo.evaluation import progress
from genzoo.evaluation._common import (
    DTYPES,
    ais_disagreement,
    default_generator,
    evaluation_copy,
    example_stderr,
    require_finite,
)
from genzoo.evaluation.ais import linear_schedule
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.report import NLL_UNIT, EvaluationReport
from genzoo.evaluation.shards import map_shards
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


def _bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)


def frame_model_states(
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    start: torch.Tensor,
    burn_in: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Approximate samples (R, N, D) of the frame RBMs of weights W (D, H) and biases b (N, D),
    c (N, H): ``burn_in`` block Gibbs sweeps h ~ sigmoid(c_n + v W), v ~ sigmoid(b_n + h W^T)
    from the start states ``start`` (R, N, D), in W's dtype."""
    v = start.to(W.dtype)
    for _ in range(burn_in):
        h = _bernoulli(torch.sigmoid(torch.add(c, v @ W)), generator)
        v = _bernoulli(torch.sigmoid(torch.add(b, h @ W.T)), generator)
    return v


def frame_log_partitions(
    W: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None,
    v: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """(log Z_n, its standard error, reverse) of the frame RBMs with weights W (D, H) and
    biases b (N, D), c (N, H), each (N,) float64: exact (stderr 0, reverse None) for a small
    enough layer, else forward AIS, and with ``eval_config.reverse`` and the observed frames
    ``v`` (N, D) also reverse AIS: reverse is then (log Z_n, its standard error) by the reverse
    runs (module docstring), else None."""
    if enumerable(W, eval_config):
        log_z = frame_log_partition(W, b, c)
        return log_z, torch.zeros_like(log_z), None
    transposed = W.shape[1] > W.shape[0]
    if transposed:
        # The layers' roles are symmetric: anneal the larger one and sum the smaller one out
        # (fewer terms per increment, and lower variance).
        W, b, c = W.T, c, b
    # Evenly spaced temperatures: the path from W = 0 with the frame's own biases has no
    # long easy start for SM08's schedule to skip (on MNIST rows, 100 hidden units, SM08's
    # spacing gave 3.6 times the standard error of the linear one).
    betas = linear_schedule(eval_config.frame_ais_betas).tolist()
    runs = eval_config.frame_ais_runs
    reverse = eval_config.reverse and v is not None

    def chunk(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        """(log Z, stderr, reverse log Z, its stderr) (hi - lo, 4) of frames lo..hi-1 (NaN
        without reverse), drawing from ``g`` only."""
        bs, cs = b[lo:hi], c[lo:hi]
        log_z_a = frame_base_log_partition(bs, cs)
        start = _bernoulli(torch.sigmoid(bs).expand(runs, -1, -1), g)
        est, err = frame_log_mean_exp(frame_ais_log_weights(W, bs, cs, betas, start, g))
        rev_cols = 2 * [torch.full_like(err, math.nan)]  # (log Z, stderr) of reverse AIS
        if reverse:
            # Chains start at the observed frame; annealing the hidden layer (transposed), at
            # a draw of it given that frame.
            vs = v[lo:hi].to(W.dtype).expand(runs, -1, -1)
            if transposed:
                vs = _bernoulli(torch.sigmoid(torch.add(bs, vs @ W.T)), g)
            model = frame_model_states(W, bs, cs, vs, eval_config.reverse_burn_in, g)
            est_r, err_r = frame_log_mean_exp(
                frame_ais_log_weights(W, bs, cs, betas[::-1], model, g)
            )
            rev_cols = [log_z_a - est_r, err_r]
        return torch.stack([t.to(torch.float64) for t in (log_z_a + est, err, *rev_cols)], dim=-1)

    # Chunks of at most MAX_CHAINS chains, each with its own generator: shards that the CPU
    # threads run side by side (genzoo.evaluation.shards).
    parts = map_shards(len(b), max(1, MAX_CHAINS // runs), chunk, 4, generator).to(b.device)
    rev = (parts[:, 2], parts[:, 3]) if reverse else None
    return parts[:, 0], parts[:, 1], rev


def sequence_nll(
    model, x: torch.Tensor, eval_config: EvalConfig, generator: torch.Generator | None = None
) -> EvaluationReport:
    """Mean NLL in nats per sequence of ``x`` (N, D) under a ``FRAME_RBMS`` model, from a copy
    in ``eval_config.dtype`` (the model is not modified), ``eval_config.batch_size`` sequences
    at a time. The report's ``nll`` has the per-sequence mean, stderr over the sequences (AIS
    noise included), n_samples = the AIS runs per frame (None when exact), and diagnostics
    ``nll_nats_per_frame`` (the same NLL divided by the T frames), ``n_frames``,
    ``stderr_examples`` and ``stderr_mc`` (the AIS part of the standard error). With AIS and
    ``eval_config.reverse`` the report also has ``nll_reverse``, the NLL by reverse AIS per
    frame (an upper bound in expectation, the forward one a lower), and a warning when the
    two disagree beyond their Monte Carlo errors
    (:func:`~genzoo.evaluation._common.ais_disagreement` on the sums of log Z_t)."""
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(model, x, FRAME_RBMS, dtype, "has no frame RBMs (frame_rbms)")
    if generator is None:
        generator = default_generator(m, eval_config)
    bs = eval_config.batch_size
    nll_parts, rev_parts, z_parts, z_rev_parts = [], [], [], []
    var_mc = var_mc_rev = 0.0
    exact = None
    with torch.no_grad(), progress.Stage(f"frame likelihoods, {len(x)} sequences", len(x),
                                         "sequences") as st:
        for s in range(0, len(x), bs):
            v, W, b, c = m.frame_rbms(x[s : s + bs].to(device=device, dtype=dtype))
            n_seq, n_frames = v.shape[:2]
            v, b, c = v.flatten(0, 1), b.flatten(0, 1), c.flatten(0, 1)
            exact = enumerable(W, eval_config)
            log_z, se, rev = frame_log_partitions(W, b, c, eval_config, generator, v)
            wide = [t.to(torch.float64) for t in (v, W, b, c)]
            f = frame_free_energy(*wide)  # F_t(v_t), (n_seq * T,)
            nll_parts.append((f + log_z).reshape(n_seq, n_frames).sum(-1))  # + log Z_t
            z_parts.append(log_z.reshape(n_seq, n_frames).sum(-1))
            var_mc = var_mc + (se**2).sum()  # on the device: read once, after the loop
            if rev is not None:
                rev_parts.append((f + rev[0]).reshape(n_seq, n_frames).sum(-1))
                z_rev_parts.append(rev[0].reshape(n_seq, n_frames).sum(-1))
                var_mc_rev = var_mc_rev + (rev[1] ** 2).sum()
            st.advance(n_seq)
    var_mc, var_mc_rev = float(var_mc), float(var_mc_rev)
    nll = torch.cat(nll_parts)
    require_finite(nll, "log-likelihood under the model")
    se_examples = example_stderr(nll)
    name = (
        "exact enumeration per frame"
        if exact
        else f"AIS per frame (forward{' and reverse' if rev_parts else ''}, "
        f"{eval_config.frame_ais_runs} runs x {eval_config.frame_ais_betas} temperatures)"
    )
    diagnostics = {
        "stderr_examples": se_examples,
        "stderr_mc": math.sqrt(var_mc) / len(nll),
        "nll_nats_per_frame": float(nll.mean()) / n_frames,
        "n_frames": n_frames,
    }
    runs = None if exact else eval_config.frame_ais_runs
    nll_reverse, warnings = None, ()
    if rev_parts:
        nll_rev = torch.cat(rev_parts)
        require_finite(nll_rev, "reverse-AIS log-likelihood under the model")
        reverse_name = "AIS per frame (reverse)"
        nll_reverse = Estimate(float(nll_rev.mean()), example_stderr(nll_rev), runs,
                               reverse_name, unit=NLL_UNIT)
        # The mean over the sequences of sum_t log Z_t, each way, with its Monte Carlo error.
        z, z_rev = torch.cat(z_parts), torch.cat(z_rev_parts)
        warning = ais_disagreement(
            Estimate(float(z.mean()), math.sqrt(var_mc) / len(z), runs, name, unit="nats"),
            Estimate(float(z_rev.mean()), math.sqrt(var_mc_rev) / len(z), runs, reverse_name,
                     unit="nats"),
        )
        warnings = (warning,) if warning else ()
    return EvaluationReport(
        estimator=name,
        n_examples=len(nll),
        nll=Estimate(float(nll.mean()), se_examples, runs, name, diagnostics, NLL_UNIT),
        nll_reverse=nll_reverse,
        dtype=eval_config.dtype,
        wall_s=time.perf_counter() - start,
        warnings=warnings,
    )
