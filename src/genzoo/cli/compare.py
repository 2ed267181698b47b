"""``genzoo compare``: train several models at one budget on one data set, evaluate each with
its honest estimator on the same test split, and write a leaderboard (:mod:`genzoo.compare`).

Under ``torchrun`` every process runs this command; the models are spread over them and each
process takes its share of the CPU cores, cores / processes on this machine, unless
OMP_NUM_THREADS is set (:func:`genzoo.distributed.balance_threads`, as for training).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch


def _cmd_compare(args: argparse.Namespace) -> int:
    from genzoo.compare import (
        LEADERBOARD_MD,
        Budget,
        CompareSettings,
        check_settings,
        parse_models,
        run_compare,
        split_overrides,
    )
    from genzoo.distributed import balance_threads, launched_by_torchrun

    budget = Budget.parse(args.budget, args.epochs)
    models = parse_models(args.models)
    common, per_model = split_overrides(args.overrides, models)
    settings = CompareSettings(data=args.data, models=models, budget=budget, common=common,
                               per_model=per_model, curve_sets=tuple(args.curve_set),
                               curve_points=args.curve_points)
    check_settings(settings)  # a bad --set is refused before anything is printed or written
    rank, world = 0, 1
    if launched_by_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        # The processes on this machine share its cores: processes x threads <= cores.
        balance_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))

    def note(message: str) -> None:
        prefix = f"genzoo compare[{rank}]" if world > 1 else "genzoo compare"
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    note(f"{', '.join(models)} on {args.data}, {budget.describe()}"
         + (f"; this process: rank {rank} of {world}, {torch.get_num_threads()} threads"
            if world > 1 else ""))
    board = run_compare(settings, args.out, rank, world, note)
    if board is None:
        note(f"rank {rank} done; rank 0 writes the leaderboard in {args.out}")
        return 0
    for row in board["likelihood"]:
        print(f"{row['rank']:>3}. {row['model']:<16} {row['nll_nats']:9.3f} +/- "
              f"{row['stderr']:.3f} nats  {row['bits_per_dim']:.4f} bits/dim  "
              f"[{row['estimator']}]  {row['train_s']:.1f} s")
    for row in board["sample_only"]:
        print(f"     {row['model']:<16} MMD^2 {row['mmd2']:.4g}  (no likelihood; sample-based)")
    for row in board["not_compared"]:
        print(f"     {row['model']:<16} {row['status']}: {row['reason']}")
    print(f"leaderboard: {args.out / LEADERBOARD_MD}")
    return 0
