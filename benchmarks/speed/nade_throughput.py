"""NADE throughput: genzoo's O(DH) recursion (Larochelle & Murray 2011, algorithm 1, with its
hand-written backward pass) against a straightforward per-conditional implementation that
computes each hidden layer h_d = sigmoid(c + W[:, <d] x_<d) from scratch (O(D^2 H) per example,
differentiated by autograd). Both compute the same log-likelihood (checked before timing).

Two results: ``nade_throughput_train`` (one training step: forward, backward, plain SGD update)
and ``nade_throughput_eval`` (exact log-likelihood without gradients), each the median of
interleaved repetitions over the same minibatches of binarized MNIST, in one process.

    python benchmarks/run.py nade_throughput            # 784-500, batch 100, 1 thread
    python benchmarks/run.py nade_throughput --smoke    # seconds; temp dir"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from functools import partial

import common
import torch

from genzoo.models.autoregressive.nade import NADE, NADEConfig, per_conditional_logits
from genzoo.ops.numerics import bernoulli_log_likelihood
from genzoo.utils.timing import interleaved_medians, limit_threads, median_ratios


def _nll(m: NADE, x: torch.Tensor, naive: bool) -> torch.Tensor:
    logits = per_conditional_logits(m, x) if naive else m.conditional_logits(x)
    return -bernoulli_log_likelihood(logits, x).mean()


def run(row: dict, args: argparse.Namespace, dirs: common.RunDirs) -> Iterator[dict]:
    limit_threads(args.threads)
    x, data = common.binarized_mnist_rows(args.batch_size * args.n_batches, args.smoke, args.seed)
    if args.smoke:
        x = x[:, :64].contiguous()
    data["n_features"] = x.shape[1]
    torch.manual_seed(args.seed)
    m = NADE(NADEConfig(n_visible=x.shape[1], n_hidden=args.n_hidden))
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    batches = list(x.split(args.batch_size))
    with torch.no_grad():
        fast, slow = _nll(m, batches[0], False), _nll(m, batches[0], True)
    if not torch.allclose(fast, slow, rtol=1e-4):
        raise SystemExit(f"nade_throughput: the two implementations disagree ({fast} vs {slow})")

    def train(naive: bool) -> None:
        for xb in batches:
            opt.zero_grad(set_to_none=True)
            _nll(m, xb, naive).backward()
            opt.step()

    @torch.no_grad()
    def evaluate(naive: bool) -> None:
        for xb in batches:
            _nll(m, xb, naive)

    for kind, job, what in (("train", train, "one training step (forward, backward, SGD update)"),
                            ("eval", evaluate, "exact log-likelihood without gradients")):
        timings = interleaved_medians(
            {"genzoo": partial(job, False), "per-conditional": partial(job, True)},
            args.repetitions, row["descriptions"])
        for t in timings.values():
            t.update(dtype="float32", per_batch_ms=1e3 * t["median_s"] / args.n_batches)
        ratio = median_ratios(timings)["genzoo / per-conditional"]
        yield common.speed_result(
            row, args, f"nade_throughput_{kind}", f"NADE {what}: O(DH) against "
            f"per-conditional, {args.threads} thread(s)", timings,
            {"criterion": "the O(DH) computation is faster than the per-conditional one (the "
                          "issue asks for the comparison, not a bound)",
             "passed": ratio < 1.0, "why": f"genzoo / per-conditional = {ratio:.3f}"}, [],
            data=data,
            config={"setting": (f"NADE {data['n_features']}-{args.n_hidden}, batch "
                                f"{args.batch_size}, {args.n_batches} batches per repetition, "
                                f"float32, {args.threads} thread(s), median of "
                                f"{args.repetitions}")})
