"""``metrics.csv``: one row per logged step, appended crash-safely, cut back on resume.

The columns are fixed once the model's loss figures are known: ``step, epoch, lr, loss``, the
other loss figures (sorted), ``examples_per_s, wall_s``, then the ``valid_*`` figures. Rows
given before that are held back and written with the first row after it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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


def _fmt(v: Any) -> str:
    # repr() round-trips a float exactly; bools as 0/1 so the column stays numeric.
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    return repr(float(v))
