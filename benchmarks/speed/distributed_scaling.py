"""Data-parallel training speed: examples/s of ``genzoo train`` on 1 and 2 processes of one
machine, for the 784-500 RBM (CD-1) and the VAE (784-200-200-50, SGVB), and the scaling
efficiency.

What is run, per model, each a real ``genzoo train`` on binarized MNIST (50,000 training rows,
global batch 100, float32, CPU, ``--threads`` BLAS threads per process, 1 by default):

``1p``
    one process, ``train.shards=1``: the default single-process run.
``1p-2shards``
    one process, ``train.shards=2``: the same arithmetic as the 2-process run (two half
    batches in turn), i.e. what the two processes divide between them.
``2p``
    ``torchrun --nproc-per-node 2`` (gloo), ``train.shards=2``: one half batch per process and
    one all-reduce of the gradients per step.

The figure is the Trainer's own ``examples_per_s`` column of metrics.csv (global-batch rows per
second of the training loop, validation and checkpoints excluded), the median over the logging
intervals after the first (a warm-up). Scaling efficiency = examples/s(2p) /
(2 x examples/s(1p)); the same against ``1p-2shards`` separates the cost of the half-size
batches from the cost of the communication.

Run ``python benchmarks/distributed_scaling.py`` (needs the binarized MNIST files in
GENZOO_DATA and 2 free cores; a few minutes) or ``--smoke`` for a seconds-long check on the
digits data written to a temporary directory.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

BENCHMARK = "distributed_scaling"
MODELS = {
    "rbm": ["model.n_hidden=500", "model.k=1", "train.lr=0.01"],
    "vae": ["train.optimizer=adam", "train.lr=0.001"],
}
SMOKE_MODELS = {
    "rbm": ["model.n_hidden=32", "model.k=1", "train.lr=0.01"],
    "vae": ["model.hidden=[32]", "model.n_latent=4", "train.optimizer=adam", "train.lr=0.001"],
}
SETTINGS = {  # name -> (processes, shards)
    "1p": (1, 1),
    "1p-2shards": (1, 2),
    "2p": (2, 2),
}
ACCEPT_SPEEDUP = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(model: str, setting: str, out: Path, args: argparse.Namespace) -> list[str]:
    procs, shards = SETTINGS[setting]
    data = ["--data", "digits", "--set", "data.binarize=threshold"] if args.smoke else [
        "--data", "binarized-mnist"]
    sets = [*(SMOKE_MODELS if args.smoke else MODELS)[model],
            f"train.batch_size={args.batch_size}", f"train.max_steps={args.steps}",
            "train.epochs=1000", f"train.log_every={args.log_every}",
            f"train.checkpoint_every={args.steps}", "train.validate_every=0",
            "train.grid_samples=0", "train.progress=false", f"train.shards={shards}"]
    genzoo = ["train", model, *data, "--out", str(out)]
    for s in sets:
        genzoo += ["--set", s]
    if procs == 1:
        return [sys.executable, "-m", "genzoo", *genzoo]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
            "--master-port", str(_free_port()), "-m", "genzoo", *genzoo]


def _rates(run: Path) -> list[float]:
    with open(run / "metrics.csv", newline="") as f:
        return [float(r["examples_per_s"]) for r in csv.DictReader(f)
                if r.get("examples_per_s") not in (None, "", "nan")]


def run(args: argparse.Namespace, dirs: common.RunDirs) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS":
           str(args.threads), **({"GENZOO_OFFLINE": "1"} if args.smoke else {})}
    timings: dict[str, dict] = {}
    ratios: dict[str, float] = {}
    commands = []
    t_start = time.perf_counter()
    for model in args.models:
        for setting in SETTINGS:
            out = dirs.run / f"{model}-{setting}"
            shutil.rmtree(out, ignore_errors=True)  # a rerun starts its runs afresh
            cmd = _command(model, setting, out, args)
            commands.append(" ".join(shlex.quote(c) for c in cmd))
            name = f"{model}/{setting}"
            entry = {"processes": SETTINGS[setting][0], "shards": SETTINGS[setting][1]}
            with open(dirs.log, "a") as log:
                log.write(f"$ {commands[-1]}\n")
                log.flush()
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      check=False)
            entry["wall_s"] = time.perf_counter() - t0
            if proc.returncode != 0:
                entry.update(status="error", reason=f"exit status {proc.returncode}; see "
                             f"{dirs.log}")
            else:
                rates = _rates(out)
                kept = rates[1:] if len(rates) > 1 else rates
                if not kept:
                    entry.update(status="error", reason="no examples_per_s in metrics.csv")
                else:
                    eps = statistics.median(kept)
                    entry.update(status="ok", examples_per_s=eps, intervals=kept,
                                 median_s=args.batch_size / eps)
            timings[name] = entry
        one, half, two = (timings.get(f"{model}/{s}", {}).get("examples_per_s")
                          for s in SETTINGS)
        if one and two:
            ratios[f"{model}: speedup 2p / 1p"] = two / one
            ratios[f"{model}: scaling efficiency"] = two / (2 * one)
        if half and two:
            ratios[f"{model}: scaling efficiency vs 1p-2shards"] = two / (2 * half)
    wall = time.perf_counter() - t_start

    speedups = {m: ratios.get(f"{m}: speedup 2p / 1p") for m in args.models}
    slow = [m for m, s in speedups.items() if s is None or s <= ACCEPT_SPEEDUP]
    acceptance = {
        "criterion": f"2 processes train faster than 1 (speedup > {ACCEPT_SPEEDUP}, scaling "
                     "efficiency > 0.5) for every model",
        "passed": not slow,
        "why": "met" if not slow else "not faster on 2 processes: " + ", ".join(slow),
    }
    notes = [
        ("examples/s is the Trainer's own metrics.csv column (training loop only), the median "
         "over the logging intervals after the first."),
        (f"Every process uses {args.threads} BLAS thread(s), so 2 processes use twice the "
         "cores of 1: the efficiency measures data parallelism, not thread scaling."),
        "The 2-process and 1p-2shards runs compute the same parameters (train.shards=2).",
    ]
    if args.smoke:
        notes.insert(0, "SMOKE RUN: tiny models on the digits data; not a benchmark.")
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and load > 0.5 * cores:
        notes.insert(0, f"The machine was busy (1-minute load average {load:.2f} on {cores} "
                     "cores at the end): rerun on a quiet machine before quoting these.")
    return {
        "schema_version": common.SCHEMA_VERSION,
        "benchmark": BENCHMARK,
        "title": "Data-parallel training, 1 vs 2 processes (gloo, CPU): RBM 784-500 CD-1 "
                 "and VAE, global batch 100",
        "row": "distributed_scaling",
        "kind": "speed",
        "command": common.command_line(),
        "git": common.run_git(),
        "date": common.now_iso(),
        "machine": common.machine_info(),
        "data": {"name": "digits" if args.smoke else "binarized-mnist",
                 "binarization": "threshold" if args.smoke else "fixed", "split": "train"},
        "config": {
            "models": {m: (SMOKE_MODELS if args.smoke else MODELS)[m] for m in args.models},
            "batch_size": args.batch_size,
            "steps": args.steps,
            "log_every": args.log_every,
            "threads_per_process": args.threads,
            "settings": {k: {"processes": p, "shards": s} for k, (p, s) in SETTINGS.items()},
            "commands": commands,
        },
        "timings": timings,
        "ratios": ratios,
        "acceptance": acceptance,
        "wall_s": {"all_runs": wall},
        "smoke": bool(args.smoke),
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per run (default 1000; 40 with --smoke)")
    p.add_argument("--log-every", type=int, default=None,
                   help="steps per logging interval (default 100; 10 with --smoke)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads per process")
    common.add_output_args(p, "tiny models on the digits data, a few dozen steps")
    args = p.parse_args(argv)
    args.steps = args.steps or (40 if args.smoke else 1000)
    args.log_every = args.log_every or (10 if args.smoke else 100)
    dirs = common.run_dirs(p, args, BENCHMARK)
    dirs.run.mkdir(parents=True, exist_ok=True)
    result = run(args, dirs)
    path = common.write_result(result, dirs.results)
    for name, t in result["timings"].items():
        rate = f"{t['examples_per_s']:.0f} examples/s" if t["status"] == "ok" else t["reason"]
        print(f"{name:>16}: {rate}")
    for name, r in result["ratios"].items():
        print(f"{name}: {r:.3f}")
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
