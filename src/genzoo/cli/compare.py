"""``genzoo compare``: train several models at one budget on one data set, evaluate each with
its honest estimator on the same test split, and write a leaderboard (:mod:`genzoo.compare`).

Under ``torchrun`` every process runs this command; the models are spread over them and each
process uses its share of the CPU cores (processes x threads <= cores).
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_per_process(world_size: int, local_world_size: int) -> int | None:
    """Torch threads for each of ``local_world_size`` processes on this machine so that they
    do not oversubscribe its cores; None for a single process (torch's own choice)."""
    if world_size <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // max(1, local_world_size))


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
    from genzoo.distributed import launched_by_torchrun

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
    threads = _threads_per_process(world, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    def note(message: str) -> None:
        prefix = f"genzoo compare[{rank}]" if world > 1 else "genzoo compare"
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    note(f"{', '.join(models)} on {args.data}, {budget.describe()}"
         + (f"; this process: rank {rank} of {world}, {threads} threads" if world > 1 else ""))
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
