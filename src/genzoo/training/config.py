"""Training-loop settings (the ``train`` section of a run config)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from genzoo.core.config import Config, check, check_nonnegative


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """Optimizer, schedule, length, logging and checkpointing of one training run.

    Length is ``epochs`` unless ``max_steps`` is set (then whichever ends first).
    ``lr_schedule``: ``constant``; ``linear`` decays to ``lr * lr_final_factor`` at the end;
    ``exponential`` multiplies by ``lr_final_factor ** (1 / total_steps)`` each step;
    ``staged``: Burda, Grosse & Salakhutdinov's (2016) schedule, ``lr_stages`` = n stages whose
    lengths grow as 1, 3, 9, ..., 3^(n-1) (scaled to the run's length), stage i at
    ``lr * lr_final_factor ** (i / (n - 1))`` (their run: n = 8 over 3^8 - 1 = 3280 epochs,
    lr 1e-3, factor 0.1, so 3^i epochs at 1e-3 * 10^(-i/7)).
    ``adam_eps``: Adam's epsilon (torch's 1e-8 by default; Burda et al. used 1e-4).
    ``momentum`` ramps from ``initial_momentum`` to ``momentum`` after ``momentum_warmup_epochs``
    (Hinton's practical guide: 0.5 then 0.9) for SGD; it is beta1 for Adam; Adagrad (Duchi,
    Hazan & Singer 2011, the optimizer of Kingma & Welling 2014) has none.
    ``weight_decay``: L2 coefficient lambda handed to the torch optimizer, which adds
    lambda * theta to the gradient of every parameter (biases included; 0 = none). For Adam
    that is the L2-coupled form (the decay goes through the adaptive scaling), not AdamW's
    decoupled decay; for SGD and Adagrad it is the gradient of (lambda / 2) ||theta||^2 added
    to the mean per-example loss, i.e. a Gaussian prior N(0, 1 / (N lambda)) on the parameters
    for N training examples (AEVB's N(0, I) prior: lambda = 1 / N).

    ``keep_best``: the name of a validation figure to minimise (a ``valid_*`` column of
    metrics.csv without its prefix, e.g. ``nll_estimate`` or ``error``; '' = off). Each
    validation that lowers it saves the model to ``RUN/best/``, a model-only checkpoint that
    ``genzoo evaluate`` / ``sample`` and ``genzoo.load`` read like a run directory: early
    stopping as selection (the papers' protocol of reporting the model with the best
    validation figure), while the run itself goes on to its end and stays resumable.
    ``patience`` (needs ``keep_best``; 0 = off): early stopping proper, as in the papers that
    train "until the validation figure stops improving": the run ends after ``patience``
    validations in a row that do not lower the ``keep_best`` figure (``validate_every`` sets
    how often that is; each epoch by default), its last checkpoint written; ``RUN/best/``
    holds the model to report. ``epochs`` / ``max_steps`` remain the upper bound.

    ``divergence_factor`` f: warn (RuntimeWarning) when the validation figure (``keep_best``'s,
    else the model's likelihood-like figure) exceeds its best so far by more than f - 1 times
    the best's magnitude (more than f times it for a positive figure), naming the step and the
    last good checkpoint; 0 = off. The default 2 flags a figure that doubles, e.g. an RBM at
    lr 1e3 whose reconstruction error goes from 0.13 to 0.27 in its first epoch, while the
    rise of ordinary overfitting stays well below it. NaN/Inf parameters always stop the run.

    Data parallelism (see :mod:`genzoo.training.data_parallel`): ``batch_size`` is the global
    batch; ``shards`` cuts each one into that many parts, each with its own random stream and
    buffers (e.g. persistent chains); the number of processes must divide it, and any such
    number gives the same run. 1 (default): no cutting, the classic single-stream run.
    ``lr_scaling``: ``none`` uses ``lr`` as is for any number of processes; ``linear``
    multiplies it by the number of processes (Goyal et al. 2017, for runs that grow
    ``batch_size`` with the processes; the ``lr`` column of metrics.csv shows the result).

    ``log_to``: ``csv`` writes the figures to metrics.csv only; ``tensorboard`` also streams
    them, with sample grids, first-layer filters and parameter histograms, to TensorBoard
    event files in ``RUN/tensorboard/`` (:class:`~genzoo.training.callbacks.TensorBoardLog`;
    needs ``pip install 'genzoo[tensorboard]'``). metrics.csv is the record either way.
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 100
    optimizer: Literal["sgd", "adam", "adagrad"] = "sgd"
    lr: float = 0.01
    lr_schedule: Literal["constant", "linear", "exponential", "staged"] = "constant"
    lr_final_factor: float = 0.1
    lr_stages: int = 8
    adam_eps: float = 1e-8
    momentum: float = 0.9
    initial_momentum: float = 0.5
    momentum_warmup_epochs: int = 5
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 1000
    log_every: int = 50
    validate_every: int = 0
    grid_samples: int = 100
    progress: bool = True
    shards: int = 1
    lr_scaling: Literal["none", "linear"] = "none"
    weight_decay: float = 0.0
    keep_best: str = ""
    patience: int = 0
    divergence_factor: float = 2.0
    log_to: Literal["csv", "tensorboard"] = "csv"

    def validate(self) -> None:
        check(self.epochs > 0, f"train.epochs={self.epochs} must be positive")
        check(self.max_steps is None or self.max_steps > 0, "train.max_steps must be positive")
        check(self.batch_size > 0, f"train.batch_size={self.batch_size} must be positive")
        check(self.lr > 0, f"train.lr={self.lr} must be positive")
        check(0 < self.lr_final_factor <= 1, "train.lr_final_factor must be in (0, 1]")
        check(1 <= self.lr_stages <= 30, f"train.lr_stages={self.lr_stages} must be in [1, 30]")
        check(self.adam_eps > 0, f"train.adam_eps={self.adam_eps} must be positive")
        check(0 <= self.momentum < 1, f"train.momentum={self.momentum} must be in [0, 1)")
        check(0 <= self.initial_momentum < 1, "train.initial_momentum must be in [0, 1)")
        check(self.momentum_warmup_epochs >= 0, "train.momentum_warmup_epochs must be >= 0")
        check_nonnegative(self.weight_decay, "train.weight_decay")
        check(self.checkpoint_every > 0, "train.checkpoint_every must be positive")
        check(self.log_every > 0, "train.log_every must be positive")
        check(self.validate_every >= 0, "train.validate_every must be >= 0 (0 = each epoch)")
        check(self.grid_samples >= 0, "train.grid_samples must be >= 0")
        check(self.keep_best == self.keep_best.strip() and not self.keep_best.startswith(
            "valid_"), f"train.keep_best={self.keep_best!r}: name the validation figure without "
            "the valid_ prefix or spaces, e.g. nll_estimate ('' = off)")
        check(self.patience >= 0, f"train.patience={self.patience} must be >= 0 (0 = off)")
        check(self.patience == 0 or bool(self.keep_best),
              f"train.patience={self.patience} stops on the train.keep_best figure; set "
              "train.keep_best (e.g. error or nll_estimate) or train.patience=0")
        check(self.divergence_factor == 0 or self.divergence_factor > 1,
              f"train.divergence_factor={self.divergence_factor} must be > 1 (or 0 = off)")
        check(self.shards >= 1, f"train.shards={self.shards} must be >= 1")
        check(
            self.shards <= self.batch_size,
            f"train.shards={self.shards} exceeds train.batch_size={self.batch_size}; every "
            "shard needs at least one example: lower train.shards or raise train.batch_size",
        )
        check(
            self.device == "cpu" or self.device == "auto" or self.device.startswith("cuda"),
            f"train.device={self.device!r}: use cpu, cuda, cuda:N or auto",
        )
