"""Seeds and devices of a training run: every random stream is a function of ``train.seed``.

Distinct uses of randomness (the epoch order, the sample grid) get seeds hashed from a key
naming the use, so they never share a stream and drawing from one never shifts another.
"""

from __future__ import annotations

import hashlib

import torch

from genzoo.core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use cpu or auto")
    return device


def seed_for(*key: object) -> int:
    """A 63-bit seed from a hash of ``key``, so distinct uses never share a random stream."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """(n,) int64 order of the training examples in ``epoch`` (CPU), a function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed_for("shuffle", seed, epoch))
    return torch.randperm(n, generator=g)


def device_key(device: torch.device) -> tuple[str, int]:
    """What must match for a generator state to be restored exactly (``cuda`` is ``cuda:0``)."""
    return device.type, (device.index or 0) if device.type == "cuda" else 0
