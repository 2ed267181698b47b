"""The encoder and decoder networks of :class:`~genzoo.models.directed.vae.VAE`: MLPs
(Kingma & Welling 2014, appendix C) and the convolutional pair for 28x28 images (the module
docstring of :mod:`genzoo.models.directed.vae` describes both).

Builders only: this module registers no model.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}
_CONV_SIDE = 28


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class _FlatBatch(nn.Module):
    """Applies ``net`` (which wants (N, ...) inputs) to (..., F) by flattening the leading dims."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.net(t.reshape(-1, t.shape[-1]))
        return out.reshape(*t.shape[:-1], out.shape[-1])


class _PixelBias(nn.Module):
    """Adds a learned bias per output (pixel and channel) to (..., F)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t + self.bias


def _conv_nets(j: int, channels: int, c1: int, c2: int, activation: str):
    """(encoder, decoder) for 28x28 images: x (..., 784) -> (..., 2J), z (..., J) ->
    (..., channels * 784) channel-major (so chunk(2, -1) splits Gaussian mean / log variance)."""
    act = _ACTIVATIONS[activation]
    s = _CONV_SIDE // 4
    encoder = nn.Sequential(_FlatBatch(nn.Sequential(
        nn.Unflatten(1, (1, _CONV_SIDE, _CONV_SIDE)),
        nn.Conv2d(1, c1, 4, 2, 1), act(),
        nn.Conv2d(c1, c2, 4, 2, 1), act(),
        nn.Flatten(), nn.Linear(c2 * s * s, 2 * j),
    )))
    decoder = nn.Sequential(_FlatBatch(nn.Sequential(
        nn.Linear(j, c2 * s * s), act(), nn.Unflatten(1, (c2, s, s)),
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), act(),
        nn.ConvTranspose2d(c1, channels, 4, 2, 1, bias=False), nn.Flatten(),
    )), _PixelBias(channels * _CONV_SIDE**2))
    return encoder, decoder
