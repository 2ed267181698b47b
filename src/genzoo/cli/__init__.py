"""The ``genzoo`` command line: list models and data sets, train, evaluate, sample.

Errors a user can cause (:class:`~genzoo.core.errors.GenzooError`, a bad command line, memory
or disk space running out) print one line naming the fix and exit with status 2; anything else
is a bug and keeps its traceback. Ctrl-C exits with status 130.

The parser lives in :mod:`.parser` and the commands in :mod:`.info`, :mod:`.train`,
:mod:`.evaluate`, :mod:`.images` and :mod:`.compare`; the names re-exported here are the
ones the console script (``genzoo.cli:main``), ``python -m genzoo`` and the tests import
from ``genzoo.cli``.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence

from genzoo.cli.compare import _cmd_compare
from genzoo.cli.evaluate import _cmd_evaluate, _format_report
from genzoo.cli.images import _cmd_chain, _cmd_filters, _cmd_inpaint, _cmd_sample, _hidden_pixels
from genzoo.cli.info import _cmd_data, _cmd_models
from genzoo.cli.parser import _build_parser
from genzoo.cli.plot import _cmd_plot
from genzoo.cli.train import _cmd_train
from genzoo.core.errors import CheckpointError, GenzooError
from genzoo.utils import denormals

__all__ = [
    "EXIT_USER_ERROR",
    "_build_parser",
    "_format_report",
    "_hidden_pixels",
    "main",
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

_COMMANDS = {
    "models": _cmd_models,
    "data": _cmd_data,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "sample": _cmd_sample,
    "inpaint": _cmd_inpaint,
    "chain": _cmd_chain,
    "filters": _cmd_filters,
    "compare": _cmd_compare,
    "plot": _cmd_plot,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        # Before any tensor work, so that torch's worker threads, which inherit the mode of
        # the thread that starts them, flush subnormals too (genzoo.utils.denormals).
        with denormals.flushed():
            return _COMMANDS[args.command](args)
    except GenzooError as exc:
        kind = "checkpoint error" if isinstance(exc, CheckpointError) else "error"
        return _fail(f"{kind}: {exc}")
    except MemoryError:
        return _fail("error: out of memory; use smaller sizes (-n, model.*, train.batch_size)")
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        return _fail(f"error: no space left for {exc.filename or 'a file'} ({exc.strerror}); "
                     "free some space or write elsewhere")
    except KeyboardInterrupt:
        # `genzoo train` says itself what its run directory keeps. Every other output is
        # written by an atomic rename: an earlier file is whole or replaced.
        print("genzoo: interrupted; no output was left half-written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    """Print ``message`` as one line (a message spanning lines is joined) and return status 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"genzoo: {line}", file=sys.stderr)
    return EXIT_USER_ERROR
