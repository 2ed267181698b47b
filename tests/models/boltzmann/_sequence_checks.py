"""Checks shared by the tests of the sequence RBMs (conditional RBM, RNN-RBM)."""

from __future__ import annotations

import itertools

import torch

from genzoo.data import DataConfig, load_data


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def randomise(model: torch.nn.Module, scale: float, seed: int = 0) -> torch.nn.Module:
    model.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def binary_digits():
    return load_data(DataConfig(name="digits", binarize="threshold"))


def train(model, x, steps: int, lr: float, batch: int = 50, seed: int = 0) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g)
        opt.zero_grad()
        model.loss(x[idx], g)["loss"].backward()
        opt.step()
