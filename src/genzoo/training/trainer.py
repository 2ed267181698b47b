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
    loss_figures,
    nonfinite_parameter,
    validation_figures,
    write_samples,
)
from genzoo.training.resume import RESUMABLE_CHANGES
from genzoo.training.schedule import (
    Phase,
    build_optimizer,
    build_phase_optimizers,
    learning_rate,
    model_phases,
    phase_steps,
    set_hyperparameters,
    total_steps,
)
from genzoo.training.seeding import epoch_permutation, resolve_device, seed_for


class Trainer:
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
        with ``step``, ``epoch`` and ``wall_s``. Raises :class:`TrainingDiverged` on NaN/Inf,
        keeping the last good checkpoint.
        """
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

    def _load_shard_buffers(self) -> None:
        """Give this rank's shards their buffers from the checkpoint being resumed."""
        try:
            if self._saved_shards is None:
                raise KeyError("shard_buffers")
            self._shard_buffers.load_local(self._saved_shards, self.plan.local)
        except (KeyError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"the checkpoint in {self.run_dir} lacks the per-shard buffers of "
                f"train.shards={self.plan.shards} ({type(exc).__name__}: {exc}); start a "
                "fresh run"
            ) from None

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

    def _resume(self, n_train: int, bpe: int) -> None:
        run_rules.require_checkpoint(self.run_dir)
        saved_cfg = ckpt.read_run_config(self.run_dir)
        run_rules.check_resumable(self.run_dir, saved_cfg, self.run_config)
        ckpt.restore_model(self.model, self.run_dir)
        state = ckpt.load_trainer_state(self.run_dir)
        try:
            run_rules.check_same_run(
                self.run_dir, state, n_train, bpe, self.device, self.cfg.device,
                exact_device=not self.plan.sharded,
            )
            saved_world = int(state.get("world_size", 1))
            if self.cfg.lr_scaling == "linear" and saved_world != self.plan.world_size:
                raise CheckpointError(
                    f"cannot resume {self.run_dir}: it ran on {saved_world} processes with "
                    f"train.lr_scaling=linear, so its learning rate was scaled by "
                    f"{saved_world}; resume it on {saved_world} processes"
                )
            self._saved_shards = state.get("shard_buffers")
            if self.phases:
                saved = state["optimizers"]
                if set(saved) != set(self.optimizers):
                    raise ValueError(
                        f"checkpoint phases {sorted(saved)} differ from the model's "
                        f"{sorted(self.optimizers)}"
                    )
                for name, opt in self.optimizers.items():
                    opt.load_state_dict(saved[name])
            else:
                self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator_state"])
            self.step = int(state["step"])
            self.epoch = int(state["epoch"])
            self.step_in_epoch = int(state["step_in_epoch"])
            self._wall_offset = float(state["wall_s"])
            self.metrics = dict(state["last_metrics"])
            self._best = state["best"]
            self._csv.columns = state["csv_columns"]
            self._loss_keys = state["loss_keys"]
            self._valid_keys = list(state["valid_keys"])
            self._sums = dict(state["interval"]["sums"])
            self._interval_steps = int(state["interval"]["steps"])
            self._last_validation = state["last_validation"]
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"the trainer state in {self.run_dir} cannot be restored ({type(exc).__name__}: "
                f"{exc}); it was not written by this Trainer or this model; start a fresh run"
            ) from None
        self._last_checkpoint = self.step

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

    def _parts(self, xb: torch.Tensor, extra: dict) -> list[tuple]:
        """This rank's work on the global batch ``xb``: (local shard index or None, rows,
        labels dict, weight n_s / n or None, generator) per shard. The classic run (one
        shard) is the whole batch with the Trainer's running generator and no weight."""
        if not self.plan.sharded:
            return [(None, xb, extra, None, self.generator)]
        n = int(xb.shape[0])
        parts = []
        for i, (a, b) in enumerate(self.plan.split(n)):
            g = self._shard_generators[i]
            g.manual_seed(dp.shard_seed(self.cfg.seed, self.step, self.plan.local[i]))
            parts.append((i, xb[a:b], {k: v[a:b] for k, v in extra.items()}, (b - a) / n, g))
        return parts

    def _update(
        self, parts: list[tuple], params: list, opt: Any, phase: str | None
    ) -> dict[str, float]:
        """One optimizer update: the loss of each local shard, backward (weighted), the
        cross-rank gradient sum, the finiteness check, the step. Returns the figures of the
        global batch (the classic run: the figures of its one loss call, unchanged)."""
        model = self.model
        kw = {} if phase is None else {"phase": phase}
        # Clear every gradient, not only this update's: another phase's loss (e.g. the
        # generator's, through the discriminator) leaves gradients on these parameters.
        model.zero_grad(set_to_none=True)
        opt.zero_grad(set_to_none=True)
        total: dict[str, float] | None = None
        for i, x, ex, w, g in parts:
            if i is not None:
                self._shard_buffers.hold(i)
            try:
                out = model.loss(x, generator=g, **kw, **ex)
            except Exception as exc:
                # Models often fail on NaN parameters (e.g. torch.bernoulli of NaN
                # probabilities) before the periodic check sees them: report divergence.
                bad = nonfinite_parameter(model)
                if bad is not None:
                    raise self._diverged(self.step, f"{bad!r} is not finite") from exc
                raise
            figures = loss_figures(model, out, check=self._loss_keys is None)
            if w is None:
                total = figures
            else:
                total = {k: (0.0 if total is None else total[k]) + w * v
                         for k, v in figures.items()}
            if math.isfinite(figures["loss"]):
                (out["loss"] if w is None else out["loss"] * w).backward()
        if self.plan.distributed:
            keys = list(total)
            summed = dp.all_reduce_update(
                params, torch.tensor([total[k] for k in keys], dtype=torch.float64)
            )
            total = dict(zip(keys, summed.tolist()))
        if not math.isfinite(total["loss"]):
            what = "loss" if phase is None else f"{phase} loss"
            raise self._diverged(self.step + 1, f"{what}={total['loss']}")
        opt.step()
        return total

    def _single_step(
        self, xb: torch.Tensor, extra: dict, epoch: int, model: torch.nn.Module, opt: Any
    ) -> dict[str, float]:
        """One update of the single optimizer on ``model.loss``; returns the loss figures."""
        set_hyperparameters(opt, self.cfg, self._lr, epoch)
        params = [p for group in opt.param_groups for p in group["params"]]
        values = self._update(self._parts(xb, extra), params, opt, None)
        if self.plan.sharded:
            self._shard_buffers.hold(0)
        return values

    def _phased_step(self, xb: torch.Tensor, extra: dict, epoch: int) -> dict[str, float]:
        """Run every phase on the minibatch ``xb`` in order (see the module docstring);
        returns ``loss`` (of the last phase that ran) and the ``<phase>_<figure>`` means."""
        model = self.model
        values: dict[str, float] = {}
        loss: float | None = None
        parts = self._parts(xb, extra)
        for phase in self.phases:
            opt = self.optimizers[phase.name]
            set_hyperparameters(opt, self.cfg, self._lr, epoch)
            n = phase_steps(phase, self.step)
            sums: dict[str, float] = {}
            for _ in range(n):
                figures = self._update(parts, list(phase.parameters), opt, phase.name)
                for k, v in figures.items():
                    sums[k] = sums.get(k, 0.0) + v
            if n > 0:
                loss = sums["loss"] / n
                values.update({f"{phase.name}_{k}": v / n for k, v in sums.items()})
            elif self._loss_keys is None:
                # The columns are fixed after the first step: give a phase that starts later
                # (e.g. after a pre-training phase) its loss column now.
                values[f"{phase.name}_loss"] = math.nan
        model.zero_grad(set_to_none=True)
        if self.plan.sharded:
            self._shard_buffers.hold(0)
        if loss is None:
            raise ConfigError(
                f"no phase of {type(model).__name__} ran at step {self.step}; every step must "
                "run at least one phase"
            )
        keys = self._loss_keys
        if keys is not None:
            # A phase that did not run in this batch logs NaN, keeping the columns fixed.
            values = {k: values.get(k, math.nan) for k in keys if k != "loss"}
        return {"loss": loss, **values}

    def _train_labels(self) -> torch.Tensor | None:
        """(N,) int64 training labels on the device when the model learns from labels
        (``model.needs_labels``; its ``loss`` then takes ``y=``), else None."""
        if not getattr(self.model, "needs_labels", False):
            return None
        y = self.bundle.train.y
        if y is None:
            raise DataError(
                f"{type(self.model).__name__} learns from labels, but data set "
                f"{self.run_config.data.name!r} has none; choose a labelled data set "
                "(digits, mnist)"
            )
        return y.to(self.device)

    def _after_step(self, epoch_end: bool, n_train: int, bpe: int, total: int, bar: Any) -> None:
        cfg = self.cfg
        if self._loss_keys is None:
            self._loss_keys = list(self._sums)
        row: dict[str, float] = {}
        if self.step % cfg.log_every == 0 or self.step == total:
            self._check_parameters()
            row.update(self._train_row(bpe))
            post = {"loss": f"{row['loss']:.4g}"}
            for phase in self.phases:  # each player's loss: a collapse shows at a glance
                if f"{phase.name}_loss" in row:
                    post[f"{phase.name}_loss"] = f"{row[f'{phase.name}_loss']:.4g}"
            bar.set_postfix(**post, ex_s=f"{row['examples_per_s']:.0f}")
        if can_validate(self.model, self.bundle) and (
            (cfg.validate_every > 0 and self.step % cfg.validate_every == 0)
            or (cfg.validate_every == 0 and epoch_end)
            or self.step == total
        ):
            row.update(self._validate())
        if row:
            self._log({"step": self.step, "epoch": self.step / bpe, "lr": self._lr,
                       "wall_s": self._wall(), **row})
        elif self._csv.columns is None:
            self._log(None)  # fixes the header once the loss keys are known
        if self.step % cfg.checkpoint_every == 0 or self.step == total:
            self._checkpoint(n_train, bpe, total)

    def _train_row(self, bpe: int) -> dict[str, float]:
        n = max(self._interval_steps, 1)
        row = {k: s / n for k, s in self._sums.items()}
        elapsed = time.perf_counter() - self._interval_t0 - self._excluded_s
        row["examples_per_s"] = self._rate_examples / elapsed if elapsed > 0 else float("nan")
        if self._best is None or row["loss"] < self._best["loss"]:
            self._best = {"loss": row["loss"], "step": self.step}
        self._sums, self._interval_steps, self._rate_examples = {}, 0, 0
        self._interval_t0 = time.perf_counter()
        self._excluded_s = 0.0
        return row

    # ------------------------------------------------------------------ validation, checks

    def _validate(self) -> dict[str, float]:
        if self.plan.rank != 0 or (self._last_validation == self.step and self.step > 0):
            return {}
        t = time.perf_counter()
        out = validation_figures(self.model, self.bundle.valid.x.to(self.device))
        if not self._valid_keys:
            self._valid_keys = sorted(out)
        self._last_validation = self.step
        self._excluded_s += time.perf_counter() - t
        return out

    def _check_parameters(self) -> None:
        """Raise TrainingDiverged when a floating parameter or buffer holds NaN/Inf."""
        bad = nonfinite_parameter(self.model)
        if bad is not None:
            raise self._diverged(self.step, f"{bad!r} is not finite")

    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        return run_rules.diverged_error(self.run_dir, step, what, self.cfg.lr)

    # ------------------------------------------------------------------ files

    def _wall(self) -> float:
        return self._wall_offset + time.perf_counter() - self._t0

    def _log(self, row: dict[str, float] | None) -> None:
        if self._csv.columns is None and self._loss_keys is not None:
            self._csv.fix_columns(self._loss_keys, self._valid_keys)
        rows = self._csv.append([row] if row is not None else [])
        for r in rows:
            self.metrics.update({k: float(v) for k, v in r.items() if k in self._csv.columns})
        for r in rows:
            for cb in self.callbacks:
                cb.on_log(self, r)

    def _checkpoint(self, n_train: int, bpe: int, total: int) -> None:
        t = time.perf_counter()
        self._check_parameters()  # never commit a diverged state
        if self.plan.distributed and not dp.parameters_agree(self.model):
            raise ConfigError(
                f"the parameters of {type(self.model).__name__} differ between the processes "
                f"after step {self.step}: the model changes its parameters outside their "
                "gradients (a non-gradient learning rule), which data-parallel training cannot "
                "average; train it in one process"
            )
        shard_buffers = None
        if self.plan.sharded:
            shard_buffers = dp.gather_shards(self._shard_buffers.local_stacks())
        if self._csv.columns is None:
            self._log(None)
        if self.plan.rank != 0:
            self._last_checkpoint = self.step
            for cb in self.callbacks:
                cb.on_checkpoint(self)
            return
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "n_train": n_train,
            "batches_per_epoch": bpe,
            "total_steps": total,
            "wall_s": self._wall(),
            **(
                {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}
                if self.phases
                else {"optimizer": self.optimizer.state_dict()}
            ),
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.device),
            "lr_schedule": {"kind": self.cfg.lr_schedule, "base_lr": self.cfg.lr,
                            "lr": self._lr, "total_steps": total},
            "last_metrics": dict(self.metrics),
            "best": self._best,
            "csv_columns": self._csv.columns,
            "loss_keys": self._loss_keys,
            "valid_keys": list(self._valid_keys),
            "interval": {"sums": dict(self._sums), "steps": self._interval_steps},
            "last_validation": self._last_validation,
            "shards": self.plan.shards,
            "world_size": self.plan.world_size,
            "lr_scaling": {"kind": self.cfg.lr_scaling, "factor": self._lr_factor},
        }
        if shard_buffers is not None:
            # Every shard's buffers (persistent chains...), name -> (shards, *shape); the
            # model file holds shard 0's, so a plain load_model sees a consistent model.
            state["shard_buffers"] = shard_buffers
        ckpt.save_checkpoint(self.run_dir, self.model, self.run_config, state)
        self._last_checkpoint = self.step
        self._excluded_s += time.perf_counter() - t
        for cb in self.callbacks:
            cb.on_checkpoint(self)

    def _write_samples(self) -> None:
        n = self.cfg.grid_samples
        if n == 0 or not callable(getattr(self.model, "sample", None)):
            return
        # A generator of its own, so drawing the grid leaves the training stream untouched.
        g = torch.Generator(device=self.device).manual_seed(seed_for("samples", self.cfg.seed))
        write_samples(self.model, n, self.bundle.image_shape, g, self.run_dir / ckpt.SAMPLES_FILE,
                      to_images=getattr(self.bundle, "to_images", None))


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["RESUMABLE_CHANGES", "Trainer", "epoch_permutation", "resolve_device", "seed_for"]
