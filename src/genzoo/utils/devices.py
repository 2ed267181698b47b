"""The ``--device`` of a command, checked before any work: an unknown name or an accelerator
this machine does not have is a :class:`GenzooError` naming the fix, not a torch traceback."""

from __future__ import annotations

import torch

from genzoo.core.errors import GenzooError


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """The :class:`torch.device` called ``name`` (``cpu``, ``cuda``, ``cuda:N``), once it is
    known to exist here. ``option`` names the setting in messages: a flag (``--device``) or a
    config key (``train.device``)."""
    use_cpu = f"{option} cpu" if option.startswith("-") else f"{option}=cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise GenzooError(f"{option} {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise GenzooError(f"{option} {name}: genzoo runs on cpu or cuda; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise GenzooError(f"{option} {name}: CUDA is not available on this machine (no GPU, or "
                          f"a PyTorch built without CUDA); use {use_cpu}")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise GenzooError(f"{option} {name}: this machine has {count} CUDA device(s), "
                          f"cuda:0 to cuda:{count - 1}; use one of those")
    return device
