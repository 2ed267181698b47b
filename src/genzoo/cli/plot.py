"""``genzoo plot``: the learning curves of one or more runs as one PNG
(:func:`genzoo.training.curves.plot_curves`: every figure of each run's metrics.csv against
steps or epochs, one panel per figure, the runs overlaid and named in the legend).

Every run's metrics.csv is read, and ``--out`` checked (:func:`genzoo.utils.io.
check_output_path`: a .png name, never a file of a run directory), before anything is drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_plot(args: argparse.Namespace) -> int:
    from genzoo.training.curves import plot_curves, read_metrics
    from genzoo.utils.io import check_output_path

    runs = [(label, read_metrics(run)) for label, run in zip(_labels(args.runs), args.runs)]
    out = check_output_path(args.out, (".png",), force=args.force)
    figures = plot_curves(runs, out, x=args.x)
    print(f"wrote {len(figures)} panels ({', '.join(figures)}) of {len(runs)} "
          f"run{'s' if len(runs) > 1 else ''} against {args.x}s to {out}")
    return 0


def _labels(runs: list[Path]) -> list[str]:
    """The legend's name of each run: its folder's name, or the path as given where two runs
    share a folder name (runs/a/best and runs/b/best)."""
    names = [Path(run).resolve().name or str(run) for run in runs]
    return [name if names.count(name) == 1 else str(run) for name, run in zip(names, runs)]
