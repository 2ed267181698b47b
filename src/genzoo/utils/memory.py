"""Up-front memory estimates: a setting that implies an allocation larger than the machine can
give is refused with the number, before any work, instead of ending in an out-of-memory kill,
a swap storm or a traceback.

Available memory is read from ``/proc/meminfo`` (``MemAvailable``: what can be allocated
without swapping), else from :func:`os.sysconf`; where neither is known nothing is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from genzoo.core.errors import GenzooError


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping, or None when unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kiB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps a number >= 1, e.g. ``'3.5 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(need: float, what: str, fix: str, available: int | None = None) -> None:
    """Raise :class:`GenzooError` when ``need`` bytes (for ``what``) exceed the available memory.

    The message gives both numbers and ``fix``, e.g. ``"use a smaller -n"``. ``available``
    defaults to :func:`available_memory`; when that is unknown, nothing is refused.
    """
    if available is None:
        available = available_memory()
    if available is not None and need > available:
        raise GenzooError(f"{what} needs about {format_bytes(need)} of memory, more than the "
                          f"{format_bytes(available)} available; {fix}")


def module_bytes(build: Callable[[], torch.nn.Module]) -> int | None:
    """Bytes of the parameters and buffers of the module ``build()`` makes, without allocating
    them: ``build`` runs with the meta device as the default (shapes only). None when the
    module cannot be built that way (an initialiser that needs real values)."""
    try:
        with torch.device("meta"):
            module = build()
    except Exception:  # noqa: BLE001 -- any failure here means "unknown"; the real build reports it
        return None
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


# Training holds each parameter, its gradient and up to two optimizer moments (Adam).
TRAINING_COPIES = 4


def check_model_fits(build: Callable[[], torch.nn.Module], what: str, fix: str) -> None:
    """Refuse a model whose training state (parameters, gradients, optimizer moments: about
    :data:`TRAINING_COPIES` times its parameter and buffer bytes) exceeds available memory;
    ``what`` names it (``"model rbm with model.n_hidden=10**12"``), ``fix`` says what to change.
    Call it before building the model for real."""
    size = module_bytes(build)
    if size is not None:
        check_memory(TRAINING_COPIES * size, what, fix)
