"""Progress of long work (AIS over thousands of temperatures, importance sampling, enumeration,
sampling chains, pretraining), reported to whoever asked for it.

The work opens a :class:`Stage` and updates it from its loop::

    with progress.Stage("forward AIS, 100 runs", total=14_499, unit="temperatures") as st:
        for k in ...:
            ...
            st.advance()

It never prints. A stage reports to the :class:`Reporter` installed by :func:`reporting` (or
:func:`on_stderr`) around it, and does nothing outside one: a library call is silent. The
command line installs :func:`on_stderr`, which draws a tqdm bar per stage when standard error
is a terminal and otherwise writes one line per finished stage (what, count, seconds). Any
caller (``genzoo compare``, a notebook, a test) may open its own stages and install its own
reporter.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Iterator
from typing import Protocol

# A stage forwards its updates at most this often: a loop of 14,500 temperatures calls
# update 14,500 times, a reporter sees a few per second.
UPDATE_INTERVAL_S = 0.2


class Reporter(Protocol):
    """Receives the stages opened inside :func:`reporting`: ``start`` once, ``update`` (at
    most every :data:`UPDATE_INTERVAL_S`), ``end`` once, also when the work raised."""

    def start(self, stage: Stage) -> None: ...

    def update(self, stage: Stage) -> None: ...

    def end(self, stage: Stage) -> None: ...


_reporter: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "genzoo_progress_reporter", default=None
)
# Set for work that runs beside other work (genzoo.evaluation.shards): once the event is set,
# the work's next progress step raises Stopped, so a failed or interrupted estimate does not
# wait for its other shards to finish.
_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "genzoo_progress_stop", default=None
)


class Stopped(Exception):
    """Raised by a progress step of work whose stop event was set (:func:`stopping`)."""


@contextlib.contextmanager
def stopping(event: threading.Event) -> Iterator[None]:
    """Within this scope every stage's next step raises :class:`Stopped` once ``event`` is set."""
    token = _stop.set(event)
    try:
        yield
    finally:
        _stop.reset(token)


class Stage:
    """One phase of ``total`` steps of ``unit`` named ``name``, used as a context manager (it
    reports only once entered); :meth:`advance` or :meth:`update` as the steps get done.
    ``done``, ``elapsed_s`` and ``seconds_left`` (a linear extrapolation, NaN before the first
    step) are for reporters; ``failed`` is True when the work raised.

    A phase with no natural count (one call of a model's sampler, one model of a comparison)
    is a stage of ``total=1`` advanced at its end: the line or bar still says what ran and
    for how long."""

    def __init__(self, name: str, total: int, unit: str = "steps") -> None:
        self.name, self.total, self.unit = name, int(total), unit
        self.done = 0
        self.failed = False
        self._reporter: Reporter | None = None  # the one of the scope it is entered in
        self._start = self._last = time.monotonic()
        self._lock = threading.Lock()

    def __enter__(self) -> Stage:  # noqa: PYI034 (typing.Self needs Python 3.11)
        # A stage of no steps (a burn-in of 0 sweeps) has nothing to say.
        self._reporter = _reporter.get() if self.total > 0 else None
        self._start = self._last = time.monotonic()
        if self._reporter is not None:
            self._reporter.start(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.failed = exc_type is not None
        if self._reporter is not None:
            self._reporter.end(self)

    def update(self, done: int) -> None:
        """``done`` steps of ``total`` are finished."""
        with self._lock:  # shards advance one stage from several threads (evaluation.shards)
            self._set(done)

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps are finished."""
        with self._lock:
            self._set(self.done + steps)

    def _set(self, done: int) -> None:
        stop = _stop.get()
        if stop is not None and stop.is_set():
            raise Stopped(f"{self.name}: stopped, other work of the estimate failed")
        self.done = done
        if self._reporter is None:
            return
        now = time.monotonic()
        if now - self._last >= UPDATE_INTERVAL_S:
            self._last = now
            self._reporter.update(self)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._start

    @property
    def seconds_left(self) -> float:
        # time per step so far x steps left
        return self.elapsed_s * (self.total - self.done) / self.done if self.done else float("nan")


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Within this scope the stages report to ``reporter`` (None: to nobody)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


# name: 42%|#####     | 6090/14499 temperatures [00:35<00:49]  (elapsed < time left)
_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]"


class BarReporter:
    """A tqdm bar on standard error per stage: name, count, rate, elapsed and time left."""

    def __init__(self, file=None) -> None:
        self.file = file
        self._bars: dict[int, object] = {}

    def start(self, stage: Stage) -> None:
        from tqdm import tqdm

        self._bars[id(stage)] = tqdm(
            total=stage.total, desc=stage.name, unit=stage.unit, bar_format=_BAR,
            file=self.file or sys.stderr, dynamic_ncols=True, leave=True, mininterval=0.2,
        )

    def update(self, stage: Stage) -> None:
        bar = self._bars[id(stage)]
        bar.update(stage.done - bar.n)

    def end(self, stage: Stage) -> None:
        bar = self._bars.pop(id(stage))
        bar.update(stage.done - bar.n)
        if stage.failed:
            bar.set_postfix_str("stopped")
        bar.close()


class SummaryReporter:
    """One line on standard error per finished stage: what, the count, the seconds."""

    def __init__(self, file=None) -> None:
        self.file = file

    def start(self, stage: Stage) -> None:
        pass

    def update(self, stage: Stage) -> None:
        pass

    def end(self, stage: Stage) -> None:
        stopped = ", stopped" if stage.failed else ""
        print(f"genzoo: {stage.name}: {stage.done}/{stage.total} {stage.unit} in "
              f"{stage.elapsed_s:.1f} s{stopped}", file=self.file or sys.stderr, flush=True)


def _is_terminal(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_reporter(enabled: bool = True) -> Reporter | None:
    """What the command line shows on standard error: nothing when not ``enabled`` (``--quiet``,
    or a torchrun rank other than 0), bars on a terminal, else one line per stage."""
    if not enabled:
        return None
    return BarReporter() if _is_terminal(sys.stderr) else SummaryReporter()


def on_stderr(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """:func:`reporting` to :func:`stderr_reporter` (``enabled``), the command line's choice."""
    return reporting(stderr_reporter(enabled))


__all__ = [
    "BarReporter",
    "Reporter",
    "Stage",
    "SummaryReporter",
    "on_stderr",
    "reporting",
    "stderr_reporter",
]
