"""Learning curves: every figure of one or more runs' ``metrics.csv`` drawn against steps or
epochs, one panel per figure, the runs overlaid (``genzoo plot``, and ``curves.png`` that the
Trainer writes at the end of each run).

A panel holds one figure: the training column ``name`` as a solid line and the validation
column ``valid_name`` as a dashed one (a figure logged only on one side has only that line),
one colour per run. Drawn: the training figures (``loss`` and the model's others), the
``valid_*`` figures, and ``lr`` when it changes within a run (a schedule). Not drawn: the axes
``step`` and ``epoch`` and the bookkeeping ``wall_s`` and ``examples_per_s``. Empty cells (a
validation-only row, or a training row between validations) and non-finite values are left
out, so each line joins the points where its figure was logged.

:func:`plot_lines` draws series that are not a run's metrics.csv (a figure against a load, or
against the examples seen), one panel per group. matplotlib draws through its Agg canvas (no
screen, no pyplot global state); the PNG carries genzoo's mark
(:data:`genzoo.utils.io.GENZOO_MARK`) and is written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.training.manifest import METRICS_FILE, check_regular
from genzoo.utils.io import GENZOO_MARK, atomic_write_bytes

#: metrics.csv columns that are axes or bookkeeping, never a panel of their own.
NOT_FIGURES = ("step", "epoch", "wall_s", "examples_per_s")
VALID_PREFIX = "valid_"
AXES = ("step", "epoch")

Curves = dict[str, list[float]]  # column -> one value per row (NaN where the cell is empty)


def read_metrics(run_dir: str | os.PathLike) -> Curves:
    """The columns of ``run_dir/metrics.csv``: column -> values, one per row, NaN for an empty
    cell. A torn last line (a run killed mid-write) is left out.

    Raises :class:`GenzooError` naming the fix when the run has no metrics.csv, when it holds
    no rows yet, or when it is not a metrics.csv genzoo wrote (no ``step`` column).
    """
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    fix = "give a run directory that `genzoo train --out` wrote"
    if not check_regular(path, fix):  # a symlink, a FIFO... is refused, never opened
        what = "does not exist" if not os.path.lexists(run_dir) else f"has no {METRICS_FILE}"
        raise GenzooError(f"{run_dir} {what} (the training log of a run); {fix}")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = list(reader)
    if header is None:
        raise GenzooError(f"{path} is empty: the run has logged nothing yet (it logs every "
                          "train.log_every steps); plot it once it has trained a while")
    if "step" not in header:
        raise GenzooError(f"{path} has no step column, so it is not a metrics.csv genzoo "
                          f"wrote; {fix}")
    curves: Curves = {name: [] for name in header}
    for row in rows:
        if len(row) != len(header):
            continue  # torn or foreign line
        try:
            values = [float(v) if v != "" else math.nan for v in row]
        except ValueError:
            continue
        for name, v in zip(header, values):
            curves[name].append(v)
    if not curves["step"]:
        raise GenzooError(f"{path} holds no rows yet: the run has logged nothing (it logs "
                          "every train.log_every steps); plot it once it has trained a while")
    return curves


def last_value(run_dir: str | os.PathLike, column: str) -> float | None:
    """The last finite value of ``column`` in ``run_dir/metrics.csv`` (for ``wall_s``: the
    run's training seconds, cumulative over resumes); None when the run has no readable
    metrics.csv or the column no finite value."""
    try:
        values = [v for v in read_metrics(run_dir).get(column, []) if math.isfinite(v)]
    except GenzooError:
        return None
    return values[-1] if values else None


def figure_names(runs: Sequence[tuple[str, Curves]]) -> list[str]:
    """The panels of :func:`plot_curves`, in the order their columns first appear: each
    figure once, without its ``valid_`` prefix."""
    names: list[str] = []
    for _, curves in runs:
        for column, values in curves.items():
            if column in NOT_FIGURES:
                continue
            if column == "lr" and len({v for v in values if math.isfinite(v)}) < 2:
                continue  # a constant rate is a setting, not a curve
            name = column.removeprefix(VALID_PREFIX)
            if name not in names:
                names.append(name)
    return names


def plot_curves(
    runs: Sequence[tuple[str, Curves]], path: str | os.PathLike, x: str = "step",
) -> list[str]:
    """Draw ``runs`` (label, columns of :func:`read_metrics`) into the PNG ``path``; return
    the figures drawn, one panel each (:func:`figure_names`), at most three panels a row.

    ``x``: ``step`` (optimizer steps) or ``epoch`` (passes over the training set) on the
    horizontal axis. Raises :class:`GenzooError` when the runs have no figure to draw.
    """
    from matplotlib.lines import Line2D

    if x not in AXES:
        raise GenzooError(f"x={x!r}: draw against one of {', '.join(AXES)}")
    names = figure_names(runs)
    if not names:
        raise GenzooError("the runs' metrics.csv hold no figures to draw (only "
                          f"{', '.join(NOT_FIGURES)}); train longer, then plot again")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    width, height = 4.2 * cols, 3.0 * rows + 0.5  # inches; the last 0.5 hold the legend
    fig = _figure(width, height)
    # Fixed margins (a constrained layout would double the drawing time): 0.75 in at the
    # left for the tick labels, 0.4 in above each panel for its title.
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.15 / width, top=1 - 0.3 / height,
                        bottom=0.95 / height, wspace=0.3, hspace=0.55)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(runs))]
    dashed = False
    for ax, name in zip(axes, names):
        for colour, (_, curves) in zip(colours, runs):
            for column, style in ((name, "-"), (VALID_PREFIX + name, "--")):
                points = metric_points(curves, x, column)
                if not points:
                    continue
                dashed |= style == "--"
                xs, ys = zip(*points)
                ax.plot(xs, ys, style, color=colour, linewidth=1.4,
                        marker="o" if len(points) < 20 else None, markersize=3)
        ax.set_title(", ".join(c for c in (name, VALID_PREFIX + name)
                               if any(metric_points(curves, x, c) for _, curves in runs)),
                     fontsize=10)
        ax.set_xlabel(x)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=c, label=label) for c, (label, _) in zip(colours, runs)]
    if dashed:
        handles += [Line2D([], [], color="black", linestyle=s, label=lbl)
                    for s, lbl in (("-", "training"), ("--", "validation"))]
    fig.legend(handles=handles, loc="lower center", ncols=min(len(handles), 4), fontsize=9,
               frameon=False)
    _write_png(fig, path)
    return names


def plot_lines(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    path: str | os.PathLike, title: str = "", log_x: bool = False,
    marks: Mapping[float, str] | None = None, xlabel: str = "", ylabel: str = "",
    marker: str | None = None,
) -> Path:
    """Draw ``panels`` (panel title -> series label -> (x, y) points) into the PNG ``path``:
    one panel each, side by side with a shared y axis, each series a line of its own colour;
    return ``path``.

    ``log_x``: a logarithmic x axis (points at x <= 0 are left out); ``marks``: a dashed
    vertical line at each x, labelled (e.g. a theoretical limit); ``xlabel`` / ``ylabel``:
    the axes' labels; ``marker``: a matplotlib marker at every point (sparse series).
    """
    fig = _figure(4.2 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True).ravel()
    for ax, (label, series) in zip(axes, panels.items()):
        for name, line in series.items():
            kept = [(a, b) for a, b in line if a > 0 or not log_x]
            if kept:
                ax.plot(*zip(*kept), label=name, linewidth=1.4, marker=marker)
        for x, text in (marks or {}).items():
            ax.axvline(x, color="grey", linestyle="--", linewidth=1)
            ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), color="grey",
                        xytext=(3, -12), textcoords="offset points", fontsize=8)
        if log_x:
            ax.set_xscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, frameon=False)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write_png(fig, path)
    return Path(path)


def _figure(width: float, height: float):  # inches, on the Agg canvas (no pyplot state)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _write_png(fig, path: str | os.PathLike) -> None:
    """``fig`` as a PNG carrying genzoo's mark, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": GENZOO_MARK})
    atomic_write_bytes(path, buf.getvalue())


def metric_points(curves: Curves, x: str, column: str) -> list[tuple[float, float]]:
    """(x, value) of the rows where ``column`` and ``x`` are both logged and finite."""
    if column not in curves or x not in curves:
        return []
    return [(a, b) for a, b in zip(curves[x], curves[column])
            if math.isfinite(a) and math.isfinite(b)]
