"""The one training loop: minibatch gradient descent on ``model.loss``, logged, checkpointed
and resumable bit for bit.

The model supplies only its objective (``loss``), and optionally ``init_from_data``,
``validation_metrics`` and ``sample``; it never sees the optimizer, the loop or the progress bar.

Reproducibility: one ``torch.Generator`` on the training device, seeded from ``train.seed``,
drives all of the model's randomness; the order of each epoch is a permutation drawn from a
generator seeded by (seed, epoch) and the data of each epoch come from ``bundle.train_x(epoch)``.
The generator state, optimizer state, step and position within the epoch are checkpointed, so a
run killed at any step and resumed from its last checkpoint replays the same batches with the
same random numbers and ends with exactly the parameters of an uninterrupted run.

Parameter groups stepped in turn (adversarial games, two-stage models): a model with a
``phases()`` method returning a sequence of :class:`~genzoo.training.schedule.Phase`
``(name, parameters, steps)`` gets one optimizer per phase (same ``train`` settings and
schedule). Each Trainer step takes one minibatch and runs the phases in order; phase ``name``
does ``steps`` updates (an int, or a function of the number of completed Trainer steps, so a
phase may be off for part of the run), each one ``model.loss(x, generator=..., phase=name)``
(plus ``y=`` for ``needs_labels`` models) followed by a step of that phase's optimizer only.
All gradients are cleared before each backward pass, so one phase's loss never leaks stale
gradients into another's update. Logged figures are the phase's figures prefixed by
``<name>_`` and averaged over its updates in the batch (NaN for a phase that did not run);
``loss`` is the loss of the last phase that ran. Every optimizer is checkpointed and resumed.

Data-parallel training (``distributed=True``, inside a default process group that
:func:`genzoo.distributed.init_from_env` joined, e.g. under ``torchrun``): every rank runs this
same loop over the same seeded epoch order and takes its shards of each global batch; the
gradients of the parameters an optimizer steps are summed across ranks before each step
(:mod:`genzoo.training.data_parallel` explains the shards, their random streams and buffers,
and why this is exact). Only rank 0 writes config.json, checkpoints, metrics.csv and
samples.png; every rank computes the same logged figures (global-batch averages). A checkpoint
holds every shard's buffers (persistent chains), so a resumed run continues every chain with
any number of processes that divides ``train.shards``. At each checkpoint the ranks compare
their parameters: a model that changes its parameters outside their gradients (a non-gradient
learning rule) cannot be averaged and is refused.

The Trainer's methods live in mixins beside this module: the optimizer steps in
:mod:`~genzoo.training.steps`, metrics rows and samples in
:mod:`~genzoo.training.trainer_reporting`, the checkpointed state in
:mod:`~genzoo.training.trainer_state`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genzoo.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GenzooError,
    TrainingDiverged,
)
from genzoo.training import checkpoint as ckpt
from genzoo.training import data_parallel as dp
from genzoo.training import resume as run_rules
from genzoo.training.callbacks import Callback
from genzoo.training.metrics import MetricsLog
from genzoo.training.model_calls import (
    can_validate,
    nonfinite_parameter,
)
from genzoo.training.resume import RESUMABLE_CHANGES
from genzoo.training.schedule import (
    Phase,
    build_optimizer,
    build_phase_optimizers,
    learning_rate,
    model_phases,
    total_steps,
)
from genzoo.training.seeding import epoch_permutation, resolve_device, seed_for
from genzoo.training.steps import _SteppingMixin
from genzoo.training.trainer_reporting import _ReportingMixin
from genzoo.training.trainer_state import _TrainerStateMixin
from genzoo.utils import denormals


class Trainer(_SteppingMixin, _ReportingMixin, _TrainerStateMixin):
    """Train ``model`` on ``bundle`` as ``run_config.train`` says, writing into ``run_dir``.

    ``bundle``: a :class:`genzoo.data.DataBundle` (``train``, ``valid`` splits with ``x``,
    ``image_shape``, ``train_x(epoch)``). ``callbacks``: :class:`Callback` instances.
    Attributes readable during and after :meth:`fit`: ``step`` (completed optimizer steps;
    for a model with phases, completed minibatches), ``epoch``, ``metrics`` (last logged value
    of each metrics.csv column), ``device``, ``optimizer`` (the optimizer of a single-loss
    model, None for a model with phases) and ``optimizers`` (phase name -> optimizer, empty for
    a single-loss model).

    ``distributed=True``: train data-parallel in the initialised default process group (see
    the module docstring); every rank constructs its Trainer with the same arguments.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        run_config: Any,
        bundle: Any,
        run_dir: str | os.PathLike,
        *,
        callbacks: Iterable[Callback] = (),
        distributed: bool = False,
    ) -> None:
        self.model = model
        self.distributed = distributed
        self.run_config = run_config
        self.bundle = bundle
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self.cfg = run_config.train
        self.device = resolve_device(self.cfg.device)
        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.metrics: dict[str, float] = {}
        self.optimizer: torch.optim.Optimizer | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.phases: list[Phase] = []
        self.generator: torch.Generator | None = None
        self._best: dict[str, float] | None = None
        self._best_valid: dict[str, Any] | None = None  # train.keep_best's figure, value, step
        self._csv = MetricsLog(self.run_dir / ckpt.METRICS_FILE)
        self._loss_keys: list[str] | None = None
        self._valid_keys: list[str] = []
        self._sums: dict[str, float] = {}
        self._interval_steps = 0
        self._rate_examples = 0  # examples since the rate clock started (not checkpointed)
        self._interval_t0 = 0.0
        self._excluded_s = 0.0
        self._wall_offset = 0.0
        self._t0 = 0.0
        self._last_checkpoint: int | None = None
        self._last_validation: int | None = None
        self._lr = self.cfg.lr
        self._lr_factor = 1.0
        self.plan = dp.ShardPlan(1)
        self._shard_buffers: dp.ShardBuffers | None = None
        self._shard_generators: list[torch.Generator] = []
        self._saved_shards: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ public

    def fit(self, resume: bool = False) -> dict[str, float | int]:
        """Train to the end of the schedule; return the final metrics.

        ``resume=True`` continues the checkpoint in ``run_dir`` (written by a Trainer with the
        same config, except possibly ``train.epochs`` / ``train.max_steps``). A fresh run
        refuses a ``run_dir`` that already holds a checkpoint.
        Returns the last logged value of each metrics.csv column (``loss``, ``valid_*``, ...)
        with ``step``, ``epoch`` and ``wall_s`` (and, with ``train.keep_best``, ``best_step``
        and ``best_value`` of the model kept in ``RUN/best/``). Raises :class:`TrainingDiverged` on NaN/Inf,
        keeping the last good checkpoint.
        The calling thread flushes subnormal floats while it trains (see
        :mod:`genzoo.utils.denormals`; ``GENZOO_DENORMALS=ieee`` keeps them).
        """
        with denormals.flushed():
            return self._fit(resume)

    def _fit(self, resume: bool) -> dict[str, float | int]:
        cfg = self.cfg
        self._check_model_config()
        self._setup_parallel()
        n_train = self._n_train()
        bpe = math.ceil(n_train / cfg.batch_size)
        self._check_shards(n_train, bpe)
        main = self.plan.rank == 0
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

        self.model.to(self.device)
        self._check_keep_best()
        self.model.train()
        self.phases = model_phases(self.model)
        if self.phases:
            self.optimizers = build_phase_optimizers(self.phases, cfg)
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
            if not params:
                raise ConfigError(
                    f"{type(self.model).__name__} has no trainable parameters; the Trainer only "
                    "runs gradient-based learning rules"
                )
            self.optimizer = build_optimizer(params, cfg)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self._shard_generators = [
            torch.Generator(device=self.device) for _ in self.plan.local
        ] if self.plan.sharded else []

        if resume:
            self._together(lambda: self._resume(n_train, bpe))
            if main:  # only once every rank has read the checkpoint
                ckpt.write_config(self.run_dir, self.run_config)
                self._csv.truncate_after(self.step)
        else:
            self._together(
                lambda: run_rules.prepare_fresh_run(self.run_dir, self.run_config)
                if main else None
            )
        total = total_steps(cfg, bpe)
        self._t0 = time.perf_counter()
        if not resume:
            self._init_and_baseline()
        if self.plan.sharded:
            self._shard_buffers = dp.ShardBuffers(self.model, self.plan.per_rank)
            if resume:
                self._together(self._load_shard_buffers)
        self._interval_t0 = time.perf_counter()
        self._excluded_s = 0.0
        for cb in self.callbacks:
            cb.on_fit_start(self)

        bar = tqdm(
            total=total,
            initial=min(self.step, total),
            desc=f"{self.run_config.model_name}",
            unit="step",
            disable=not cfg.progress or not main,
            dynamic_ncols=True,
            mininterval=0.2 if _stderr_is_tty() else 30.0,
            file=sys.stderr,
        )
        try:
            self._loop(n_train, bpe, total, bar)
        finally:
            bar.close()
        if self._last_checkpoint != self.step:
            self._checkpoint(n_train, bpe, total)
        if main:
            self._write_samples()
        if self.plan.distributed:
            from genzoo.distributed import barrier

            barrier()  # fit returns on every rank once the run directory is complete
        result = {**self.metrics, "step": self.step, "epoch": self.step / bpe,
                  "wall_s": self._wall()}
        if self._best_valid is not None:  # train.keep_best: where RUN/best/ comes from
            result.update(best_step=self._best_valid["step"], best_value=self._best_valid["value"])
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        return result

    # ------------------------------------------------------------------ setup

    def _setup_parallel(self) -> None:
        """The shard plan, this rank's device and the learning-rate factor."""
        cfg = self.cfg
        if not self.distributed:
            self.plan = dp.ShardPlan(cfg.shards)
        else:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise ConfigError(
                    "Trainer(distributed=True) needs the default process group: call "
                    "genzoo.distributed.init_from_env() first (or launch with torchrun)"
                )
            self.plan = dp.ShardPlan(cfg.shards, dist.get_world_size(), dist.get_rank())
            backend = dist.get_backend()
            if self.device.type == "cuda":
                # Each process has its own GPU (init_from_env set cuda:LOCAL_RANK).
                self.device = torch.device("cuda", torch.cuda.current_device())
            if backend == "nccl" and self.device.type != "cuda":
                raise ConfigError(
                    f"the process group uses NCCL but train.device={cfg.device!r}; use "
                    "train.device=cuda, or a gloo group for CPU training"
                )
        self._csv.write = self.plan.rank == 0
        self._lr_factor = float(self.plan.world_size) if cfg.lr_scaling == "linear" else 1.0
        self._lr = cfg.lr * self._lr_factor

    def _check_shards(self, n_train: int, bpe: int) -> None:
        """Every shard of every batch must hold an example (the last batch may be short)."""
        if not self.plan.sharded:
            return
        last = n_train - (bpe - 1) * self.cfg.batch_size
        if min(last, self.cfg.batch_size) < self.plan.shards:
            raise ConfigError(
                f"the last batch of each epoch has {last} of the {n_train} examples, fewer than "
                f"train.shards={self.plan.shards}: every shard needs an example; choose a "
                "train.batch_size whose remainder is 0 or at least train.shards"
            )

    def _together(self, fn: Any) -> None:
        """Run ``fn`` on every rank; if it raises a GenzooError on any rank, raise on all of
        them (a rank that failed alone would leave the others waiting in a collective)."""
        error: GenzooError | None = None
        try:
            fn()
        except GenzooError as exc:
            error = exc
        if not dp.agree(error is None):
            if error is not None:
                raise error
            raise CheckpointError(
                "another process of this data-parallel run failed to set up the run; its "
                "error names the fix (rank 0 prints it)"
            )

    def _check_model_config(self) -> None:
        model_cfg = getattr(self.model, "config", None)
        if model_cfg is not None and model_cfg != self.run_config.model:
            raise ConfigError(
                "the model was built with a config that differs from run_config.model, so "
                "config.json would not describe it; build the model from run_config.model"
            )

    def _n_train(self) -> int:
        x = self.bundle.train.x
        if x.dim() != 2 or x.shape[0] == 0:
            raise DataError(f"training data have shape {tuple(x.shape)}; expected (N >= 1, D)")
        return int(x.shape[0])

    def _init_and_baseline(self) -> None:
        init = getattr(self.model, "init_from_data", None)
        if callable(init):
            # The data the model sees: under dynamic binarization, epoch 0's draw (binary),
            # not the grey levels of bundle.train.x.
            with torch.no_grad():
                init(self.bundle.train_x(0).to(self.device))
        if self.plan.distributed:
            dp.broadcast_state(self.model)  # the same start on every rank, however built
        if can_validate(self.model, self.bundle) and self.plan.rank == 0:
            # Step-0 figures: the baseline of the curves, and the valid_ columns of metrics.csv.
            self._csv.append(
                [{"step": 0, "epoch": 0.0, "lr": self._lr, "wall_s": 0.0, **self._validate()}]
            )

    # ------------------------------------------------------------------ loop

    def _loop(self, n_train: int, bpe: int, total: int, bar: Any) -> None:
        cfg = self.cfg
        model, opt = self.model, self.optimizer
        while self.step < total:
            epoch = self.epoch
            x_epoch = self.bundle.train_x(epoch)
            if tuple(x_epoch.shape) != tuple(self.bundle.train.x.shape):
                raise DataError(
                    f"bundle.train_x({epoch}) has shape {tuple(x_epoch.shape)}, expected "
                    f"{tuple(self.bundle.train.x.shape)}"
                )
            x_epoch = x_epoch.to(self.device)
            y_all = self._train_labels()
            order = epoch_permutation(cfg.seed, epoch, n_train).to(self.device)
            for i in range(self.step_in_epoch, bpe):
                if self.step >= total:
                    return
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
                xb = x_epoch[idx]
                extra = {} if y_all is None else {"y": y_all[idx]}
                self._lr = learning_rate(cfg, self.step, total) * self._lr_factor
                if self.phases:
                    values = self._phased_step(xb, extra, epoch)
                else:
                    values = self._single_step(xb, extra, epoch, model, opt)
                self.step += 1
                self.step_in_epoch = i + 1
                epoch_end = i + 1 == bpe
                if epoch_end:
                    self.epoch, self.step_in_epoch = epoch + 1, 0
                for k, v in values.items():
                    self._sums[k] = self._sums.get(k, 0.0) + v
                self._interval_steps += 1
                self._rate_examples += int(xb.shape[0])
                for cb in self.callbacks:
                    cb.on_step_end(self, values["loss"])
                bar.update(1)
                self._after_step(epoch_end, n_train, bpe, total, bar)

    # ------------------------------------------------------------------ checks

    def _check_parameters(self) -> None:
        """Raise TrainingDiverged when a floating parameter or buffer holds NaN/Inf."""
        bad = nonfinite_parameter(self.model)
        if bad is not None:
            raise self._diverged(self.step, f"{bad!r} is not finite")

    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        return run_rules.diverged_error(self.run_dir, step, what, self.cfg.lr)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["RESUMABLE_CHANGES", "Trainer", "epoch_permutation", "resolve_device", "seed_for"]
