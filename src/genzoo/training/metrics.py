"""The figures of a training run and ``metrics.csv``, one row per logged step, appended
crash-safely, cut back on resume.

The columns are fixed once the model's loss figures are known: ``step, epoch, lr, loss``, the
other loss figures (sorted), ``examples_per_s, wall_s``, then the ``valid_*`` figures. Rows
given before that are held back and written with the first row after it.

:class:`MetricsLog` is the file; :class:`RunMetrics` forms the rows the Trainer logs (means
over the log interval, the examples/s rate, the wall clock) and keeps the last value of each
column.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genzoo.core.errors import CheckpointError
from genzoo.utils.io import atomic_write_text

FIXED_COLUMNS = ("step", "epoch", "lr")
RATE_COLUMNS = ("examples_per_s", "wall_s")


class MetricsLog:
    """The metrics file at ``path``; ``columns`` is None until :meth:`fix_columns`."""

    def __init__(
        self, path: str | os.PathLike, columns: list[str] | None = None, *, write: bool = True
    ) -> None:
        self.path = Path(path)
        self.columns = columns
        # False on the ranks of a data-parallel run other than 0: rows are formed, not written.
        self.write = write
        self._pending: list[dict[str, float]] = []

    def fix_columns(self, loss_keys: Iterable[str], valid_keys: Iterable[str]) -> None:
        """Set the header from the loss and validation figure names (once; later calls keep it)."""
        if self.columns is not None:
            return
        others = sorted(k for k in loss_keys if k != "loss")
        self.columns = [*FIXED_COLUMNS, "loss", *others, *RATE_COLUMNS, *valid_keys]

    def append(self, rows: Iterable[dict[str, float]]) -> list[dict[str, float]]:
        """Queue ``rows`` and, once the columns are fixed, write every queued row.

        Returns the rows written now (oldest first); figures not in :attr:`columns` are not
        written, missing ones are left empty.
        """
        self._pending.extend(rows)
        if self.columns is None or not self._pending:
            return []
        rows, self._pending = self._pending, []
        if not self.write:
            return rows
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", restval="")
        if new_file:
            writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(v) for k, v in r.items()})
        # One O_APPEND write() per batch of rows: a killed process cannot leave half a row
        # (a power cut might; resuming drops unparsable rows), and the file never has to be
        # rewritten, so logging stays O(rows).
        # O_NOFOLLOW: a symlink planted as metrics.csv never leads a write out of the run.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
        except OSError as exc:
            raise CheckpointError(
                f"cannot append to {self.path}: {exc.strerror or exc}; genzoo writes only "
                "regular files it created: remove it (it is the run's log), then resume"
            ) from None
        try:
            os.write(fd, buf.getvalue().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows after ``step`` (written after the checkpoint a run resumes from)."""
        if not self.write or self.columns is None or not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            kept = []
            for r in reader:
                try:
                    complete = None not in r and all(v is not None for v in r.values())
                    if complete and int(r["step"]) <= step:
                        kept.append(r)
                except ValueError:
                    continue  # a torn last line from a kill mid-write
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.path, buf.getvalue())


class RunMetrics:
    """The figures of a run: the mean of each training figure over the steps since the last
    row, the examples/s rate of those steps (not counting the time spent in :meth:`excluded`
    blocks: validation, checkpoints), the wall clock, the best training loss, and the last
    logged value of each metrics.csv column (``metrics``).

    ``loss_keys`` (the training figures, fixed by the first step; None before it) and
    ``valid_keys`` (the validation figures, fixed by the first validation) name the columns.
    ``write``: False on the ranks of a data-parallel run other than 0 (rows are formed, and
    ``metrics`` kept, but nothing is written).
    """

    def __init__(self, path: str | os.PathLike, *, write: bool = True) -> None:
        self.file = MetricsLog(path, write=write)
        self.metrics: dict[str, float] = {}
        self.loss_keys: list[str] | None = None
        self.valid_keys: list[str] = []
        self.best_loss: dict[str, float] | None = None  # lowest logged loss and its step
        self._sums: dict[str, float] = {}
        self._steps = 0
        self._examples = 0  # examples since the rate clock started (not checkpointed)
        self._interval_t0 = 0.0
        self._excluded_s = 0.0
        self._wall_offset = 0.0  # wall seconds of the run before the checkpoint resumed
        self._t0 = 0.0

    # ------------------------------------------------------------------ clocks

    def start_clock(self) -> None:
        """Start the wall clock (it continues the resumed run's ``wall_s``)."""
        self._t0 = time.perf_counter()

    def start_interval(self) -> None:
        """Start the rate clock of the first logged interval."""
        self._interval_t0 = time.perf_counter()
        self._excluded_s = 0.0

    def wall(self) -> float:
        """Seconds the run has trained, over all of its resumed parts."""
        return self._wall_offset + time.perf_counter() - self._t0

    @contextmanager
    def excluded(self) -> Iterator[None]:
        """Time spent in this block does not count in ``examples_per_s``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self._excluded_s += time.perf_counter() - t

    # ------------------------------------------------------------------ rows

    def add(self, values: dict[str, float], n_examples: int) -> None:
        """Count one training step: its figures ``values`` on ``n_examples`` examples."""
        for k, v in values.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        if self.loss_keys is None:
            self.loss_keys = list(self._sums)
        self._steps += 1
        self._examples += n_examples

    def train_row(self, step: int) -> dict[str, float]:
        """The training figures' means since the last row and ``examples_per_s``; starts the
        next interval."""
        n = max(self._steps, 1)
        row = {k: s / n for k, s in self._sums.items()}
        elapsed = time.perf_counter() - self._interval_t0 - self._excluded_s
        row["examples_per_s"] = self._examples / elapsed if elapsed > 0 else float("nan")
        if self.best_loss is None or row["loss"] < self.best_loss["loss"]:
            self.best_loss = {"loss": row["loss"], "step": step}
        self._sums, self._steps, self._examples = {}, 0, 0
        self.start_interval()
        return row

    def validated(self, figures: dict[str, float]) -> None:
        """Take the validation columns from the first validation's ``figures``."""
        if not self.valid_keys:
            self.valid_keys = sorted(figures)

    def hold(self, row: dict[str, float]) -> None:
        """Queue ``row`` for :meth:`log` to write (the step-0 baseline, formed before the
        training figures, hence the columns, are known)."""
        self.file.append([row])

    def log(self, row: dict[str, float] | None) -> list[dict[str, float]]:
        """Append ``row`` (None: only fix the columns once the loss keys are known, writing
        the rows held until then); returns the rows written now, whose figures are now
        ``metrics``."""
        if self.file.columns is None and self.loss_keys is not None:
            self.file.fix_columns(self.loss_keys, self.valid_keys)
        rows = self.file.append([row] if row is not None else [])
        for r in rows:
            self.metrics.update({k: float(v) for k, v in r.items() if k in self.file.columns})
        return rows

    @property
    def columns_fixed(self) -> bool:
        return self.file.columns is not None

    # ------------------------------------------------------------------ checkpoint

    def state_dict(self) -> dict:
        """The checkpointed figures (the keys are part of the trainer state's format)."""
        return {
            "wall_s": self.wall(),
            "last_metrics": dict(self.metrics),
            "best": self.best_loss,
            "csv_columns": self.file.columns,
            "loss_keys": self.loss_keys,
            "valid_keys": list(self.valid_keys),
            "interval": {"sums": dict(self._sums), "steps": self._steps},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self._wall_offset = float(state["wall_s"])
        self.metrics = dict(state["last_metrics"])
        self.best_loss = state["best"]
        self.file.columns = state["csv_columns"]
        self.loss_keys = state["loss_keys"]
        self.valid_keys = list(state["valid_keys"])
        self._sums = dict(state["interval"]["sums"])
        self._steps = int(state["interval"]["steps"])

    def truncate_after(self, step: int) -> None:
        """Drop the rows of metrics.csv after ``step`` (the checkpoint a run resumes from)."""
        self.file.truncate_after(step)


def _fmt(v: Any) -> str:
    # repr() round-trips a float exactly; bools as 0/1 so the column stays numeric.
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    return repr(float(v))
