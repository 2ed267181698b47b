"""Flush-to-zero for subnormal ("denormal") floats on the CPU, which genzoo turns on while
it trains or evaluates.

Trained networks produce subnormal numbers: float32 values below 1.18e-38 in magnitude. The
usual sources are softplus or sigmoid units far in their flat tail (softplus(-90) =
exp(-90)), and the gradient x - sigmoid(logit) of a Bernoulli likelihood at a confident
logit. x86 CPUs handle each such operand in microcode, so a matrix product that meets them
slows down. Measured on genzoo's VAE 784-400-50 (softplus) after 100 epochs, one thread: a
training step took 1.16 s per 40 batches with IEEE subnormals and 0.86 s with them flushed.
Over those 100 epochs the epoch time had crept from 2.75 s to 3.67 s. No value a genzoo
model reports depends on numbers that small: every likelihood is computed in log space.

Flushing is a per-thread CPU mode (the MXCSR FTZ and DAZ bits, set by
:func:`torch.set_flush_denormal`). A thread inherits the mode of the thread that creates it,
so the intra-op worker threads follow only when the mode is set before torch starts them.
That is why the command line sets it first, before any tensor work. Python API users
(:class:`~genzoo.training.Trainer`) should call ``torch.set_flush_denormal(True)`` at the
top of their script to get the same effect on every thread. The Trainer itself sets the mode
for the thread that calls ``fit``. ``GENZOO_DENORMALS=ieee`` in the environment keeps IEEE
subnormals everywhere (bit-for-bit comparisons with another library, for instance).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from genzoo.core.errors import ConfigError

ENV_VAR = "GENZOO_DENORMALS"


def wanted() -> bool:
    """Whether genzoo should flush subnormals: yes, unless ``GENZOO_DENORMALS=ieee``."""
    value = os.environ.get(ENV_VAR, "flush").strip().lower()
    if value not in ("flush", "ieee"):
        raise ConfigError(f"{ENV_VAR}={value!r}: use 'flush' (the default) or 'ieee'")
    return value == "flush"


def flushing() -> bool:
    """Whether the calling thread flushes subnormals now. The check: a product whose exact
    result (1e-40) is subnormal comes out as 0."""
    tiny = torch.tensor([1e-30], dtype=torch.float32)
    return bool((tiny * 1e-10).item() == 0.0)


def flushing_fraction(n: int = 1 << 22) -> float:
    """Fraction of an elementwise product over ``n`` elements, which torch splits across its
    intra-op threads, that was flushed: 1.0 when every thread flushes, 1/T when only the
    calling thread of T does, 0.0 when none does."""
    a = torch.full((n,), 1e-30, dtype=torch.float32)
    return float(((a * 1e-10) == 0).float().mean())


@contextlib.contextmanager
def flushed(on: bool | None = None) -> Iterator[bool]:
    """Flush subnormals in the calling thread for the duration of the block, then restore the
    mode it had. ``on``: None follows :func:`wanted` (``GENZOO_DENORMALS``). Yields whether
    the thread flushes inside the block (False where the CPU lacks the mode)."""
    on = wanted() if on is None else on
    before = flushing()
    if on != before:
        torch.set_flush_denormal(on)
    try:
        yield flushing()
    finally:
        if on != before:
            torch.set_flush_denormal(before)


__all__ = ["ENV_VAR", "flushed", "flushing", "flushing_fraction", "wanted"]
