"""Progress of the long estimators (AIS runs over thousands of temperatures), reported to
whoever asked for it: the command line prints it to stderr, a library call stays silent.

An estimator opens a :func:`stage` and updates it from its loop; inside :func:`reporting`,
the reporter is called at most once every ``every_s`` seconds of wall time, never during the
first ``every_s`` seconds (a quick evaluation prints nothing), and once more at the end of a
stage that has reported.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator

# reporter(stage name, steps done, steps in all, seconds since the stage started)
Reporter = Callable[[str, int, int, float], None]

_reporter: contextvars.ContextVar[tuple[Reporter, float] | None] = contextvars.ContextVar(
    "genzoo_evaluation_progress", default=None
)


@contextlib.contextmanager
def reporting(reporter: Reporter, every_s: float = 10.0) -> Iterator[None]:
    """Within this scope the estimators' stages call ``reporter`` (see the module docstring)."""
    token = _reporter.set((reporter, every_s))
    try:
        yield
    finally:
        _reporter.reset(token)


class Stage:
    """One loop of ``total`` steps of an estimator; :meth:`update` after each step."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self._target = _reporter.get()
        self._start = self._last = time.monotonic()
        self._reported = False

    def update(self, done: int) -> None:
        if self._target is None:
            return
        reporter, every_s = self._target
        now = time.monotonic()
        finished = done >= self.total
        if now - self._last >= every_s or (finished and self._reported):
            reporter(self.name, done, self.total, now - self._start)
            self._last, self._reported = now, True


def stage(name: str, total: int) -> Stage:
    """A progress stage of ``total`` steps named ``name`` (silent outside :func:`reporting`)."""
    return Stage(name, total)
