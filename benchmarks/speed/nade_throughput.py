"""NADE throughput: genzoo's O(DH) recursion (Larochelle & Murray 2011, algorithm 1, with its
hand-written backward pass) against a straightforward per-conditional implementation that
computes each hidden layer h_d = sigmoid(c + W[:, <d] x_<d) from scratch (O(D^2 H) per example,
differentiated by autograd). Both compute the same log-likelihood (checked before timing).

Two results: ``nade_throughput_train`` (one training step: forward, backward, plain SGD update)
and ``nade_throughput_eval`` (exact log-likelihood without gradients), each the median of
interleaved repetitions over the same minibatches of binarized MNIST, in one process.

    python benchmarks/nade_throughput.py                 # 784-500, batch 100, 1 thread
    python benchmarks/nade_throughput.py --smoke         # seconds; temp dir
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
import torch

from genzoo.ops.numerics import bernoulli_log_likelihood
from genzoo.models.autoregressive.nade import NADE, NADEConfig

BENCHMARK = "nade_throughput"


def per_conditional_logits(m: NADE, x: torch.Tensor) -> torch.Tensor:
    """Each conditional's hidden layer from scratch: the O(D^2 H) definition."""
    cols = [m.b[0] + torch.sigmoid(m.c).expand(len(x), -1) @ m.V[0]]
    for d in range(1, m.n_visible):
        h_d = torch.sigmoid(torch.addmm(m.c, x[:, :d], m.W[:, :d].T))
        cols.append(m.b[d] + h_d @ m.V[d])
    return torch.stack(cols, dim=1)


def _nll(m: NADE, x: torch.Tensor, naive: bool) -> torch.Tensor:
    logits = per_conditional_logits(m, x) if naive else m.conditional_logits(x)
    return -bernoulli_log_likelihood(logits, x).mean()


def _time(fn, batches) -> float:
    t0 = time.perf_counter()
    for xb in batches:
        fn(xb)
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    x, data = _load(args)
    torch.manual_seed(args.seed)
    m = NADE(NADEConfig(n_visible=x.shape[1], n_hidden=args.n_hidden))
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)
    batches = list(x.split(args.batch_size))[: args.n_batches]
    with torch.no_grad():
        fast, slow = _nll(m, batches[0], False), _nll(m, batches[0], True)
    if not torch.allclose(fast, slow, rtol=1e-4):
        raise SystemExit(f"nade_throughput: the two implementations disagree ({fast} vs {slow})")

    def train(naive: bool):
        def step(xb):
            opt.zero_grad(set_to_none=True)
            _nll(m, xb, naive).backward()
            opt.step()
        return step

    def evaluate(naive: bool):
        def step(xb):
            with torch.no_grad():
                _nll(m, xb, naive)
        return step

    jobs = {"train": {"genzoo": train(False), "per-conditional": train(True)},
            "eval": {"genzoo": evaluate(False), "per-conditional": evaluate(True)}}
    times = {(k, n): [] for k in jobs for n in jobs[k]}
    for rep in range(args.repetitions):
        for kind, impls in jobs.items():
            names = list(impls) if rep % 2 == 0 else list(impls)[::-1]  # interleave the order
            for name in names:
                times[kind, name].append(_time(impls[name], batches))
    return [_result(args, kind, times, data) for kind in jobs]


def _result(args, kind: str, times: dict, data: dict) -> dict:
    what = {"train": "one training step (forward, backward, SGD update)",
            "eval": "exact log-likelihood without gradients"}[kind]
    timings = {}
    for name in ("genzoo", "per-conditional"):
        ts = times[kind, name]
        timings[name] = {
            "status": "ok", "dtype": "float32", "median_s": statistics.median(ts),
            "times_s": ts, "per_batch_ms": 1e3 * statistics.median(ts) / args.n_batches,
            "description": ("genzoo NADE: O(DH) recursion blocked over 8 positions, "
                            "algorithm 1 backward" if name == "genzoo"
                            else "each h_d from scratch, O(D^2 H), autograd"),
        }
    ratio = timings["genzoo"]["median_s"] / timings["per-conditional"]["median_s"]
    notes = ["Median over interleaved repetitions; same minibatches and parameters for both."]
    if args.smoke:
        notes.insert(0, "SMOKE RUN: tiny sizes; not a benchmark.")
    return {
        "schema_version": common.SCHEMA_VERSION,
        "benchmark": f"{BENCHMARK}_{kind}",
        "title": f"NADE {what}: O(DH) against per-conditional, {args.threads} thread(s)",
        "row": "nade_throughput",
        "kind": "speed",
        "command": common.command_line(),
        "git": common.run_git(),
        "date": common.now_iso(),
        "machine": common.machine_info(),
        "data": data,
        "config": {
            "setting": (f"NADE {data['n_features']}-{args.n_hidden}, batch {args.batch_size}, "
                        f"{args.n_batches} batches per repetition, float32, "
                        f"{args.threads} thread(s), median of {args.repetitions}"),
            "n_hidden": args.n_hidden, "batch_size": args.batch_size,
            "n_batches": args.n_batches, "repetitions": args.repetitions,
            "threads": args.threads,
        },
        "timings": timings,
        "ratios": {"genzoo / per-conditional": ratio},
        "acceptance": {"criterion": "the O(DH) computation is faster than the per-conditional "
                                    "one (the issue asks for the comparison, not a bound)",
                       "passed": ratio < 1.0,
                       "why": f"genzoo / per-conditional = {ratio:.3f}"},
        "wall_s": {"timed": sum(sum(ts) for (k, _), ts in times.items() if k == kind)},
        "smoke": bool(args.smoke),
        "notes": notes,
    }


def _load(args) -> tuple[torch.Tensor, dict]:
    n = args.batch_size * args.n_batches
    try:
        x, loader = common.load_binarized_mnist_train()
        x = torch.from_numpy(x[:n].copy()).float()
        data = {"name": "binarized-mnist", "binarization": "fixed (Larochelle & Murray 2011)",
                "split": "train", "loader": loader}
    except FileNotFoundError as exc:
        if not args.smoke:
            raise SystemExit(f"nade_throughput: {exc}") from None
        g = torch.Generator().manual_seed(args.seed)
        x = (torch.rand(n, 784, generator=g) < 0.13).float()
        data = {"name": "synthetic-bernoulli(0.13)", "binarization": "synthetic",
                "split": "train", "loader": f"synthetic, real data unavailable: {exc}"}
    if args.smoke:
        x = x[:, : args.smoke_features].contiguous()
    data.update(n_examples=len(x), n_features=x.shape[1])
    return x, data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-hidden", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--n-batches", type=int, default=5)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--smoke", action="store_true", help="seconds; writes to a temp dir")
    args = p.parse_args(argv)
    args.smoke_features = 64
    if args.smoke:
        args.n_hidden, args.n_batches, args.repetitions = 16, 2, 2
    out = args.out or (Path(tempfile.mkdtemp(prefix="genzoo-bench-smoke-")) if args.smoke
                       else common.RESULTS_DIR)
    for result in run(args):
        path = common.write_result(result, out)
        t = result["timings"]
        print(f"{result['benchmark']}: genzoo {t['genzoo']['per_batch_ms']:.1f} ms/batch, "
              f"per-conditional {t['per-conditional']['per_batch_ms']:.1f} ms/batch, "
              f"{result['acceptance']['why']}; wrote {path}")
    if not args.smoke and out.resolve() == common.RESULTS_DIR.resolve():
        print("regenerate RESULTS.md: python benchmarks/make_results.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
