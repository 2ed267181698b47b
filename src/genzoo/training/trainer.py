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
``phases()`` method returning a sequence of :class:`~genzoo.core.protocols.Phase`
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

The Trainer is composed of collaborators, each with a small public interface; none reads
another's private state:

* :class:`~genzoo.training.stepper.Stepper` owns the optimizers, the phases, the learning-rate
  schedule and the random streams (with the per-shard buffers), and turns one minibatch into
  updates (data-parallel gradient sums through :mod:`~genzoo.training.data_parallel`);
* :class:`~genzoo.training.run_directory.RunDirectory` owns the files of the run: config.json,
  checkpoint save and load (format and commit protocol in :mod:`~genzoo.training.checkpoint`),
  ``best/``, samples.png, and the rules of fresh and resumed runs;
* :class:`~genzoo.training.metrics.RunMetrics` owns the figures: interval means, rates, the
  wall clock and metrics.csv;
* callbacks (:mod:`~genzoo.training.callbacks`): the Trainer's own, failure signals, keep-best,
  the divergence watch, the progress bar, curves.png and TensorBoard (``train.log_to``), run
  before those given by ``callbacks=`` or :meth:`Trainer.add_callback`;
* :mod:`~genzoo.training.model_calls` is the only place that asks the model for its optional
  hooks.

The Trainer itself keeps the loop: the epoch order, the position in it (``step``, ``epoch``),
when to log, validate and checkpoint, and the trainer state a checkpoint holds (each
collaborator's ``state_dict`` with the position).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, ConfigError, DataError, GenzooError
from genzoo.training import data_parallel as dp
from genzoo.training.callbacks import (
    Callback,
    CurvesPlot,
    DivergenceWatch,
    FailureSignals,
    KeepBest,
    ProgressBar,
    TensorBoardLog,
)
from genzoo.training.metrics import RunMetrics
from genzoo.training.model_calls import (
    built_from,
    can_sample,
    can_validate,
    init_from_data,
    needs_labels,
    nonfinite_parameter,
    validation_figures,
)
from genzoo.training.run_directory import RESUMABLE_CHANGES, RunDirectory
from genzoo.training.schedule import total_steps
from genzoo.training.seeding import epoch_permutation, resolve_device, seed_for
from genzoo.training.stepper import Stepper
from genzoo.utils import denormals


class Trainer:
    """Train ``model`` on ``bundle`` as ``run_config.train`` says, writing into ``run_dir``.

    ``bundle``: a :class:`genzoo.data.DataBundle` (``train``, ``valid`` splits with ``x``,
    ``image_shape``, ``train_x(epoch)``). ``callbacks``: :class:`Callback` instances (more
    with :meth:`add_callback`).
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
        self.plan = dp.ShardPlan(1)
        self.run = RunDirectory(self.run_dir, run_config)
        self.figures = RunMetrics(self.run.metrics_path)
        self.stepper: Stepper | None = None  # built by fit, once the device and shards are known
        self.failures = FailureSignals()
        self.keep_best = KeepBest(self.cfg.keep_best, self.run, self.cfg.patience)
        self.divergence = DivergenceWatch(self.cfg.divergence_factor, self.cfg.keep_best,
                                          self.run_dir)
        self._progress: ProgressBar | None = None
        # Logs beside metrics.csv: curves.png at the end, TensorBoard on request (refused
        # here, before any work, when tensorboard is not installed).
        self._logs: list[Callback] = [CurvesPlot()]
        if self.cfg.log_to == "tensorboard":
            self._logs.append(TensorBoardLog(self.run_dir, self.cfg.grid_samples))
        self._validates = False  # the model reports validation figures on this bundle
        self._last_checkpoint: int | None = None
        self._last_validation: int | None = None

    # ------------------------------------------------------------------ public

    @property
    def metrics(self) -> dict[str, float]:
        return self.figures.metrics

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return None if self.stepper is None else self.stepper.optimizer

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {} if self.stepper is None else self.stepper.optimizers

    def add_callback(self, callback: Callback) -> None:
        """Run ``callback``'s hooks too (after those already added)."""
        self.callbacks.append(callback)

    def fit(self, resume: bool = False) -> dict[str, float | int]:
        """Train to the end of the schedule; return the final metrics.

        ``resume=True`` continues the checkpoint in ``run_dir`` (written by a Trainer with the
        same config, except possibly ``train.epochs`` / ``train.max_steps``). A fresh run
        refuses a ``run_dir`` that already holds a checkpoint or files genzoo did not write.
        While it trains, the process holds the lock of ``run_dir`` (another process writing
        it is refused with :class:`~genzoo.training.run_directory.RunInUse`).
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
        if (built := built_from(self.model)) is not None and built != self.run_config.model:
            raise ConfigError(
                "the model was built with a config that differs from run_config.model, so "
                "config.json would not describe it; build the model from run_config.model"
            )
        self._setup_parallel()
        n_train = self._n_train()
        bpe = math.ceil(n_train / cfg.batch_size)
        self._check_shards(n_train, bpe)
        # One writer per run directory: rank 0 holds its lock until fit returns or raises.
        with self.run.locked(resume):
            return self._train(resume, n_train, bpe)

    def _train(self, resume: bool, n_train: int, bpe: int) -> dict[str, float | int]:
        cfg = self.cfg
        main = self.plan.rank == 0
        self.model.to(self.device)
        self._validates = can_validate(self.model, self.bundle)
        self.keep_best.check(self)
        self.model.train()
        self.stepper = Stepper(self.model, cfg, self.plan, self.device, self.run.diverged)

        if resume:
            self._together(lambda: self._resume(n_train, bpe))
            if main:  # only once every rank has read the checkpoint
                self.run.record_config()
                self.figures.truncate_after(self.step)
        else:
            self._together(self.run.prepare_fresh)
        total = total_steps(cfg, bpe)
        self.figures.start_clock()
        if not resume:
            self._init_and_baseline()
        self.stepper.start_shards()
        if self.plan.sharded and resume:
            self._together(lambda: self.stepper.restore_shards(self.run_dir))
        self.figures.start_interval()
        for cb in self._hooks():
            cb.on_fit_start(self)

        self._progress = ProgressBar(
            total, self.step, f"{self.run_config.model_name}",
            [phase.name for phase in self.stepper.phases], self.failures,
            enabled=cfg.progress and main,
        )
        try:
            self._loop(n_train, bpe, total)
        finally:
            self._progress.close()
        if self._last_checkpoint != self.step:
            self._checkpoint(n_train, bpe, total)
        if main:
            self._write_samples()
        if self.plan.distributed:
            from genzoo.distributed import barrier

            barrier()  # fit returns on every rank once the run directory is complete
        result = {**self.metrics, "step": self.step, "epoch": self.step / bpe,
                  "wall_s": self.figures.wall()}
        if (best := self.keep_best.best) is not None:  # train.keep_best: where RUN/best/ is from
            result.update(best_step=best["step"], best_value=best["value"])
        if self.keep_best.exhausted:  # train.patience ended the run before its schedule
            result["stopped_early"] = 1
        for cb in self._hooks():
            cb.on_fit_end(self, result)
        return result

    def _hooks(self) -> list[Callback]:
        """The Trainer's own callbacks, then the ones it was given."""
        bar = [self._progress] if self._progress is not None else []
        return [self.failures, self.keep_best, self.divergence, *bar, *self._logs,
                *self.callbacks]

    # ------------------------------------------------------------------ setup

    def _setup_parallel(self) -> None:
        """The shard plan and this rank's device; only rank 0 writes the run directory."""
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
            if cfg.patience:  # only rank 0 validates: the others would not know to stop
                raise ConfigError(
                    "train.patience (early stopping) needs one process: rank 0 alone "
                    "validates; train in one process, or set train.patience=0 and keep "
                    "train.keep_best's RUN/best/"
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
        self.run.writes = self.figures.file.write = self.plan.rank == 0

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

    def _n_train(self) -> int:
        x = self.bundle.train.x
        if x.dim() != 2 or x.shape[0] == 0:
            raise DataError(f"training data have shape {tuple(x.shape)}; expected (N >= 1, D)")
        return int(x.shape[0])

    def _init_and_baseline(self) -> None:
        # The data the model sees: under dynamic binarization, epoch 0's draw (binary), not
        # the grey levels of bundle.train.x.
        init_from_data(self.model, self.bundle.train_x(0).to(self.device))
        if self.plan.distributed:
            dp.broadcast_state(self.model)  # the same start on every rank, however built
        if self._validates and self.plan.rank == 0:
            # Step-0 figures: the baseline of the curves, and the valid_ columns of metrics.csv.
            self.figures.hold({"step": 0, "epoch": 0.0, "lr": self.stepper.lr, "wall_s": 0.0,
                               **self._validate()})

    def _train_labels(self) -> torch.Tensor | None:
        """(N,) int64 training labels on the device when the model learns from labels, else
        None."""
        if not needs_labels(self.model):
            return None
        y = self.bundle.train.y
        if y is None:
            raise DataError(
                f"{type(self.model).__name__} learns from labels, but data set "
                f"{self.run_config.data.name!r} has none; choose a labelled data set "
                "(digits, mnist)"
            )
        return y.to(self.device)

    # ------------------------------------------------------------------ loop

    def _loop(self, n_train: int, bpe: int, total: int) -> None:
        cfg = self.cfg
        while self.step < total and not self.keep_best.exhausted:
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
                values = self.stepper.step(xb, None if y_all is None else y_all[idx], epoch,
                                           self.step, total, self.figures.loss_keys)
                self.step += 1
                self.step_in_epoch = i + 1
                epoch_end = i + 1 == bpe
                if epoch_end:
                    self.epoch, self.step_in_epoch = epoch + 1, 0
                self.figures.add(values, int(xb.shape[0]))
                for cb in self._hooks():
                    cb.on_step_end(self, values["loss"])
                self._after_step(epoch_end, n_train, bpe, total)
                if self.keep_best.exhausted:  # train.patience: early stopping
                    return

    def _after_step(self, epoch_end: bool, n_train: int, bpe: int, total: int) -> None:
        cfg = self.cfg
        row: dict[str, float] = {}
        if self.step % cfg.log_every == 0 or self.step == total:
            self._check_parameters()
            row.update(self.figures.train_row(self.step))
        if self._validates and (
            (cfg.validate_every > 0 and self.step % cfg.validate_every == 0)
            or (cfg.validate_every == 0 and epoch_end)
            or self.step == total
        ):
            row.update(self._validate())
        if row:
            self._log({"step": self.step, "epoch": self.step / bpe, "lr": self.stepper.lr,
                       "wall_s": self.figures.wall(), **row})
        elif not self.figures.columns_fixed:
            self._log(None)  # fixes the header once the loss keys are known
        if self.step % cfg.checkpoint_every == 0 or self.step == total:
            self._checkpoint(n_train, bpe, total)

    def _validate(self) -> dict[str, float]:
        if self.plan.rank != 0 or (self._last_validation == self.step and self.step > 0):
            return {}
        with self.figures.excluded():
            valid = self.bundle.valid
            out = validation_figures(self.model, valid.x.to(self.device),
                                     getattr(valid, "y", None))
            self.figures.validated(out)
            for cb in self._hooks():
                cb.on_validation(self, out)
            self._last_validation = self.step
        return out

    def _log(self, row: dict[str, float] | None) -> None:
        rows = self.figures.log(row)
        for r in rows:
            for cb in self._hooks():
                cb.on_log(self, r)

    def _write_samples(self) -> None:
        n = self.cfg.grid_samples
        if n == 0 or not can_sample(self.model):
            return
        # A generator of its own, so drawing the grid leaves the training stream untouched.
        g = torch.Generator(device=self.device).manual_seed(seed_for("samples", self.cfg.seed))
        self.run.write_samples(self.model, n, self.bundle.image_shape, g,
                               getattr(self.bundle, "to_images", None))

    # ------------------------------------------------------------------ checkpoint

    def _resume(self, n_train: int, bpe: int) -> None:
        state = self.run.resume_into(self.model)
        try:
            self.run.check_same_run(state, n_train, bpe, self.device,
                                    exact_device=not self.plan.sharded)
            self.stepper.load_state_dict(state, self.run_dir)
            self.step = int(state["step"])
            self.epoch = int(state["epoch"])
            self.step_in_epoch = int(state["step_in_epoch"])
            self.figures.load_state_dict(state)
            self.keep_best.best = state.get("best_valid")  # absent before train.keep_best
            self.keep_best.stale = int(state.get("stale_validations", 0))
            self._last_validation = state["last_validation"]
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"the trainer state in {self.run_dir} cannot be restored ({type(exc).__name__}: "
                f"{exc}); it was not written by this Trainer or this model; start a fresh run"
            ) from None
        self._last_checkpoint = self.step

    def _checkpoint(self, n_train: int, bpe: int, total: int) -> None:
        with self.figures.excluded():
            self._check_parameters()  # never commit a diverged state
            if self.plan.distributed and not dp.parameters_agree(self.model):
                raise ConfigError(
                    f"the parameters of {type(self.model).__name__} differ between the "
                    f"processes after step {self.step}: the model changes its parameters "
                    "outside their gradients (a non-gradient learning rule), which "
                    "data-parallel training cannot average; train it in one process"
                )
            shard_buffers = self.stepper.gather_shards()  # a collective: every rank
            if not self.figures.columns_fixed:
                self._log(None)
            if self.plan.rank == 0:
                state = {
                    "step": self.step,
                    "epoch": self.epoch,
                    "step_in_epoch": self.step_in_epoch,
                    "n_train": n_train,
                    "batches_per_epoch": bpe,
                    "total_steps": total,
                    **self.figures.state_dict(),
                    **self.stepper.state_dict(total),
                    "best_valid": self.keep_best.best,
                    "stale_validations": self.keep_best.stale,
                    "last_validation": self._last_validation,
                }
                if shard_buffers is not None:
                    # Every shard's buffers (persistent chains...), name -> (shards, *shape);
                    # the model file holds shard 0's, so a plain load_model sees a consistent
                    # model.
                    state["shard_buffers"] = shard_buffers
                self.run.save(self.model, state)
            self._last_checkpoint = self.step
        for cb in self._hooks():
            cb.on_checkpoint(self)

    def _check_parameters(self) -> None:
        """Raise TrainingDiverged when a floating parameter or buffer holds NaN/Inf."""
        bad = nonfinite_parameter(self.model)
        if bad is not None:
            raise self.run.diverged(self.step, f"{bad!r} is not finite")


__all__ = ["RESUMABLE_CHANGES", "Trainer", "epoch_permutation", "resolve_device", "seed_for"]
