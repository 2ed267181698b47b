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

Run ``python benchmarks/run.py distributed_scaling`` (needs the binarized MNIST files in
GENZOO_DATA and 2 free cores; a few minutes) or add ``--smoke`` for a seconds-long check on
the digits data written to a temporary directory."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

from genzoo.training.curves import read_metrics
from genzoo.utils.provenance import busy_notes

RUN_NAME = "distributed_scaling"
ACCEPT_SPEEDUP = 1.0


def _command(model: str, recipe: list[str], procs: int, shards: int, out: Path,
             args: argparse.Namespace) -> list[str]:
    data = ["--data", "digits", "--set", "data.binarize=threshold"] if args.smoke else [
        "--data", "binarized-mnist"]
    sets = [*recipe,
            f"train.batch_size={args.batch_size}", f"train.max_steps={args.steps}",
            "train.epochs=1000", f"train.log_every={args.log_every}",
            f"train.checkpoint_every={args.steps}", "train.validate_every=0",
            "train.grid_samples=0", "train.progress=false", f"train.shards={shards}"]
    genzoo = ["train", model, *data, "--out", str(out), *(a for s in sets for a in ("--set", s))]
    if procs == 1:
        return [sys.executable, "-m", "genzoo", *genzoo]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
            "--standalone", "-m", "genzoo", *genzoo]  # --standalone: a free port of its own


def _timed_run(cmd: list[str], out: Path, log_path: Path, env: dict[str, str],
               batch_size: int) -> dict:
    """Run one ``genzoo train`` into ``out``, its output appended to the log: its wall time and
    the median examples/s of metrics.csv over the logging intervals after the first (a
    warm-up), or why there is none."""
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    entry = {"wall_s": time.perf_counter() - t0}
    if proc.returncode != 0:
        return {**entry, "status": "error",
                "reason": f"exit status {proc.returncode}; see {log_path}"}
    rates = [v for v in read_metrics(out).get("examples_per_s", []) if math.isfinite(v)]
    kept = rates[1:] if len(rates) > 1 else rates
    if not kept:
        return {**entry, "status": "error", "reason": "no examples_per_s in metrics.csv"}
    eps = statistics.median(kept)
    return {**entry, "status": "ok", "examples_per_s": eps, "intervals": kept,
            "median_s": batch_size / eps}


def add_arguments(p: argparse.ArgumentParser, row: dict) -> None:  # --threads: per process
    p.add_argument("--models", nargs="+", choices=sorted(row["models"]),
                   default=sorted(row["models"]))


def run(row: dict, args: argparse.Namespace, dirs: common.RunDirs) -> list[dict]:
    dirs.run.mkdir(parents=True, exist_ok=True)
    settings = row["compared"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS":
           str(args.threads), **({"GENZOO_OFFLINE": "1"} if args.smoke else {})}
    timings: dict[str, dict] = {}
    ratios: dict[str, float] = {}
    commands = []
    recipes = row["smoke_models" if args.smoke else "models"]  # model -> --set overrides
    t_start = time.perf_counter()
    for model in args.models:
        for setting, sizes in settings.items():
            out = dirs.run / f"{model}-{setting}"
            shutil.rmtree(out, ignore_errors=True)  # a rerun starts its runs afresh
            cmd = _command(model, recipes[model], sizes["processes"], sizes["shards"], out, args)
            commands.append(shlex.join(cmd))
            timings[f"{model}/{setting}"] = {
                **sizes, **_timed_run(cmd, out, dirs.log, env, args.batch_size)}
        one, half, two = (timings.get(f"{model}/{s}", {}).get("examples_per_s") for s in settings)
        if one and two:
            ratios[f"{model}: speedup 2p / 1p"] = two / one
            ratios[f"{model}: scaling efficiency"] = two / (2 * one)
        if half and two:
            ratios[f"{model}: scaling efficiency vs 1p-2shards"] = two / (2 * half)
    wall = time.perf_counter() - t_start

    speedups = {m: ratios.get(f"{m}: speedup 2p / 1p") for m in args.models}
    slow = [m for m, s in speedups.items() if s is None or s <= ACCEPT_SPEEDUP]
    acceptance = common.acceptance(
        f"2 processes train faster than 1 (speedup > {ACCEPT_SPEEDUP}, scaling efficiency > "
        "0.5) for every model", ["not faster on 2 processes: " + ", ".join(slow)] if slow else [])
    return [common.speed_result(
        row, args, "distributed_scaling", row["title"], timings, acceptance,
        busy_notes("at the end", "rerun on a quiet machine before quoting these."),
        ratios=ratios,
        data={"name": "digits" if args.smoke else "binarized-mnist",
              "binarization": "threshold" if args.smoke else "fixed", "split": "train"},
        config={  # and the options: batch_size, steps, log_every, threads (per process)
            "models": {m: recipes[m] for m in args.models},
            "threads_per_process": args.threads,
            "settings": settings,
            "commands": commands},
        wall_s={"all_runs": wall})]
