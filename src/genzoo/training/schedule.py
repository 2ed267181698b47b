"""Optimizer construction and the learning-rate and momentum schedules of ``TrainConfig``.

The schedules are pure functions of the step (or epoch), so resuming a run needs no scheduler
state beyond the step counter.

Momentum follows Hinton, "A Practical Guide to Training Restricted Boltzmann Machines"
(UTML TR 2010-003, section 9): 0.5 for the first epochs, then 0.9.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from genzoo.training.config import TrainConfig


def total_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Optimizer steps of a run: ``epochs * batches_per_epoch``, capped by ``max_steps``."""
    total = cfg.epochs * batches_per_epoch
    return total if cfg.max_steps is None else min(total, cfg.max_steps)


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate of the step that follows ``step`` completed steps (0-based).

    ``constant``: ``lr``. ``linear``: ``lr * (1 - (1 - f) * step / total)``. ``exponential``:
    ``lr * f ** (step / total)``. Both decays reach ``lr * f`` (``f = lr_final_factor``) after
    the last step, i.e. at ``step == total``.
    """
    if cfg.lr_schedule == "constant" or total <= 0:
        return cfg.lr
    frac = min(max(step / total, 0.0), 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr * (1.0 - (1.0 - cfg.lr_final_factor) * frac)
    return cfg.lr * math.exp(frac * math.log(cfg.lr_final_factor))


def momentum(cfg: TrainConfig, epoch: int) -> float:
    """SGD momentum during 0-based ``epoch``: ``initial_momentum`` for the first
    ``momentum_warmup_epochs`` epochs, ``momentum`` after. Adam uses ``momentum`` as beta1."""
    if cfg.optimizer == "sgd" and epoch < cfg.momentum_warmup_epochs:
        return cfg.initial_momentum
    return cfg.momentum


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: TrainConfig
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg`` (no weight decay: regularisation is the model's business)."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum(cfg, 0), nesterov=False)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def set_hyperparameters(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, lr: float, epoch: int
) -> None:
    """Apply this step's learning rate and (SGD) momentum to every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if cfg.optimizer == "sgd":
            group["momentum"] = momentum(cfg, epoch)
