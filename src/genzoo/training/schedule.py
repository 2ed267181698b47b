"""Optimizer construction and the learning-rate and momentum schedules of ``TrainConfig``.

The schedules are pure functions of the step (or epoch), so resuming a run needs no scheduler
state beyond the step counter.

Momentum follows Hinton, "A Practical Guide to Training Restricted Boltzmann Machines"
(UTML TR 2010-003, section 9): 0.5 for the first epochs, then 0.9.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocols import Phase
from genzoo.training.config import TrainConfig


def total_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Optimizer steps of a run: ``epochs * batches_per_epoch``, capped by ``max_steps``."""
    total = cfg.epochs * batches_per_epoch
    return total if cfg.max_steps is None else min(total, cfg.max_steps)


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate of the step that follows ``step`` completed steps (0-based).

    ``constant``: ``lr``. ``linear``: ``lr * (1 - (1 - f) * step / total)``. ``exponential``:
    ``lr * f ** (step / total)``. Both decays reach ``lr * f`` (``f = lr_final_factor``) after
    the last step, i.e. at ``step == total``. ``staged``: ``lr * f ** (i / (n - 1))`` in
    stage i of n = ``lr_stages`` (see :func:`lr_stage`), so the last stage runs at ``lr * f``.
    """
    if cfg.lr_schedule == "constant" or total <= 0:
        return cfg.lr
    if cfg.lr_schedule == "staged":
        n = cfg.lr_stages
        return cfg.lr if n == 1 else cfg.lr * cfg.lr_final_factor ** (lr_stage(n, step, total)
                                                                      / (n - 1))
    frac = min(max(step / total, 0.0), 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr * (1.0 - (1.0 - cfg.lr_final_factor) * frac)
    return cfg.lr * math.exp(frac * math.log(cfg.lr_final_factor))


def lr_stage(n: int, step: int, total: int) -> int:
    """The 0-based stage of ``step`` (completed steps) among n stages of lengths proportional
    to 1, 3, ..., 3^(n-1) over ``total`` steps: stage i ends after
    ``total * (3^(i+1) - 1) / (3^n - 1)`` steps (exact integer arithmetic, so 3280 epochs cut
    at epochs 1, 4, 13, 40, 121, 364, 1093). Steps at or past ``total`` are in the last."""
    whole = 3**n - 1
    for i in range(n):
        if step * whole < total * (3 ** (i + 1) - 1):
            return i
    return n - 1


def momentum(cfg: TrainConfig, epoch: int) -> float:
    """SGD momentum during 0-based ``epoch``: ``initial_momentum`` for the first
    ``momentum_warmup_epochs`` epochs, ``momentum`` after. Adam uses ``momentum`` as beta1;
    Adagrad ignores it."""
    if cfg.optimizer == "sgd" and epoch < cfg.momentum_warmup_epochs:
        return cfg.initial_momentum
    return cfg.momentum


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: TrainConfig
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg``, with ``cfg.weight_decay`` as torch's L2 term (coupled,
    also for Adam; see :class:`TrainConfig`). Model-specific penalties (e.g. on W only) stay
    the model's business."""
    params = list(params)
    wd = cfg.weight_decay
    # At small batches the per-parameter Python loop of torch's default CPU optimizers is a
    # third of a step: foreach kernels give the same numbers, Adam's fused kernel (CPU and CUDA,
    # float parameters) 3x faster again, rounding differently only in the last bits.
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum(cfg, 0), nesterov=False,
                               weight_decay=wd, foreach=True)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd, foreach=True)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999), eps=cfg.adam_eps,
                            weight_decay=wd, **({"fused": True} if fused else {"foreach": True}))


def set_hyperparameters(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, lr: float, epoch: int
) -> None:
    """Apply this step's learning rate and (SGD) momentum to every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if cfg.optimizer == "sgd":
            group["momentum"] = momentum(cfg, epoch)


def phase_steps(phase: Phase, step: int) -> int:
    """Updates ``phase`` makes on the minibatch after ``step`` completed Trainer steps."""
    n = phase.steps(step) if callable(phase.steps) else phase.steps
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigError(f"phase {phase.name!r}: steps per batch must be an int >= 0, got {n!r}")
    return n


def build_phase_optimizers(
    phases: Sequence[Phase], cfg: TrainConfig
) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per phase, each as :func:`build_optimizer` builds it, keyed by name."""
    return {ph.name: build_optimizer(ph.parameters, cfg) for ph in phases}
