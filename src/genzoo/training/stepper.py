"""The stepper of :class:`~genzoo.training.trainer.Trainer`: it owns the optimizers, the
phases, the learning rate and the random streams of a run, and turns one global minibatch into
optimizer updates (one update of the single optimizer, or every phase in turn, each over this
rank's shards of the batch, gradients summed across ranks).

The module docstring of :mod:`genzoo.training.trainer` describes the phases; that of
:mod:`genzoo.training.data_parallel` the shards, their random streams and buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, ConfigError, TrainingDiverged
from genzoo.training import data_parallel as dp
from genzoo.training.config import TrainConfig
from genzoo.training.model_calls import loss_figures, model_phases, nonfinite_parameter
from genzoo.training.schedule import (
    build_optimizer,
    build_phase_optimizers,
    learning_rate,
    phase_steps,
    set_hyperparameters,
)


class Stepper:
    """Optimizer updates of ``model`` as ``cfg`` says, for this process's ``plan`` of shards.

    ``phases`` (the model's :class:`~genzoo.core.protocols.Phase` list, empty for a
    single-loss model), ``optimizer`` (single-loss models, else None), ``optimizers`` (phase
    name -> optimizer, else empty), ``generator`` (the run's random stream on ``device``,
    seeded from ``cfg.seed``) and ``lr`` (the learning rate of the last step, or of the first
    before any) are read by the Trainer. ``diverged(step, what)`` builds the error raised when
    a loss is not finite.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        plan: dp.ShardPlan,
        device: torch.device,
        diverged: Callable[[int, str], TrainingDiverged],
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.plan = plan
        self.device = device
        self.phases = model_phases(model)
        self.optimizer: torch.optim.Optimizer | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        if self.phases:
            self.optimizers = build_phase_optimizers(self.phases, cfg)
        else:
            params = [p for p in model.parameters() if p.requires_grad]
            if not params:
                raise ConfigError(
                    f"{type(model).__name__} has no trainable parameters; the Trainer only "
                    "runs gradient-based learning rules"
                )
            self.optimizer = build_optimizer(params, cfg)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        # train.lr_scaling=linear: W processes step with W times the rate.
        self.lr_factor = float(plan.world_size) if cfg.lr_scaling == "linear" else 1.0
        self.lr = cfg.lr * self.lr_factor
        self._diverged = diverged
        self._shard_generators = [
            torch.Generator(device=device) for _ in plan.local
        ] if plan.sharded else []
        self._shard_buffers: dp.ShardBuffers | None = None
        self._saved_shards: dict[str, torch.Tensor] | None = None  # from a resumed checkpoint

    # ------------------------------------------------------------------ one step

    def step(
        self,
        xb: torch.Tensor,
        y: torch.Tensor | None,
        epoch: int,
        step: int,
        total: int,
        figure_names: list[str] | None,
    ) -> dict[str, float]:
        """The updates of the Trainer step after ``step`` completed ones (of ``total``) on the
        global minibatch ``xb`` (B, D) with labels ``y`` (B,) or None, in 0-based ``epoch``.

        ``figure_names``: the logged figures, fixed after the first step (None before it):
        a phase that does not run logs NaN for them. Returns the step's figures (``loss``
        first)."""
        self.lr = learning_rate(self.cfg, step, total) * self.lr_factor
        extra = {} if y is None else {"y": y}
        if self.phases:
            return self._phased_step(xb, extra, epoch, step, figure_names)
        return self._single_step(xb, extra, epoch, step, figure_names is None)

    def _parts(self, xb: torch.Tensor, extra: dict, step: int) -> list[tuple]:
        """This rank's work on the global batch ``xb``: (local shard index or None, rows,
        labels dict, weight n_s / n or None, generator) per shard. The classic run (one
        shard) is the whole batch with the run's generator and no weight."""
        if not self.plan.sharded:
            return [(None, xb, extra, None, self.generator)]
        n = int(xb.shape[0])
        parts = []
        for i, (a, b) in enumerate(self.plan.split(n)):
            g = self._shard_generators[i]
            g.manual_seed(dp.shard_seed(self.cfg.seed, step, self.plan.local[i]))
            parts.append((i, xb[a:b], {k: v[a:b] for k, v in extra.items()}, (b - a) / n, g))
        return parts

    def _update(
        self, parts: list[tuple], params: list, opt: Any, phase: str | None, step: int,
        check: bool,
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
                    raise self._diverged(step, f"{bad!r} is not finite") from exc
                raise
            figures = loss_figures(model, out, check=check)
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
            raise self._diverged(step + 1, f"{what}={total['loss']}")
        opt.step()
        return total

    def _single_step(
        self, xb: torch.Tensor, extra: dict, epoch: int, step: int, check: bool
    ) -> dict[str, float]:
        """One update of the single optimizer on ``model.loss``; returns the loss figures."""
        opt = self.optimizer
        set_hyperparameters(opt, self.cfg, self.lr, epoch)
        params = [p for group in opt.param_groups for p in group["params"]]
        values = self._update(self._parts(xb, extra, step), params, opt, None, step, check)
        if self.plan.sharded:
            self._shard_buffers.hold(0)
        return values

    def _phased_step(
        self, xb: torch.Tensor, extra: dict, epoch: int, step: int, keys: list[str] | None
    ) -> dict[str, float]:
        """Run every phase on the minibatch ``xb`` in order (see
        :mod:`~genzoo.training.trainer`); returns ``loss`` (of the last phase that ran) and
        the ``<phase>_<figure>`` means."""
        model = self.model
        values: dict[str, float] = {}
        loss: float | None = None
        parts = self._parts(xb, extra, step)
        for phase in self.phases:
            opt = self.optimizers[phase.name]
            set_hyperparameters(opt, self.cfg, self.lr, epoch)
            n = phase_steps(phase, step)
            sums: dict[str, float] = {}
            for _ in range(n):
                figures = self._update(parts, list(phase.parameters), opt, phase.name, step,
                                       keys is None)
                for k, v in figures.items():
                    sums[k] = sums.get(k, 0.0) + v
            if n > 0:
                loss = sums["loss"] / n
                values.update({f"{phase.name}_{k}": v / n for k, v in sums.items()})
            elif keys is None:
                # The columns are fixed after the first step: give a phase that starts later
                # (e.g. after a pre-training phase) its loss column now.
                values[f"{phase.name}_loss"] = math.nan
        model.zero_grad(set_to_none=True)
        if self.plan.sharded:
            self._shard_buffers.hold(0)
        if loss is None:
            raise ConfigError(
                f"no phase of {type(model).__name__} ran at step {step}; every step must "
                "run at least one phase"
            )
        if keys is not None:
            # A phase that did not run in this batch logs NaN, keeping the columns fixed.
            values = {k: values.get(k, math.nan) for k in keys if k != "loss"}
        return {"loss": loss, **values}

    # ------------------------------------------------------------------ shards

    def start_shards(self) -> None:
        """Give every local shard its copy of the model's buffers (once the model holds its
        starting state)."""
        if self.plan.sharded:
            self._shard_buffers = dp.ShardBuffers(self.model, self.plan.per_rank)

    def restore_shards(self, where: Path) -> None:
        """Give this rank's shards their buffers from the checkpoint of ``where`` that
        :meth:`load_state_dict` read."""
        try:
            if self._saved_shards is None:
                raise KeyError("shard_buffers")
            self._shard_buffers.load_local(self._saved_shards, self.plan.local)
        except (KeyError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"the checkpoint in {where} lacks the per-shard buffers of "
                f"train.shards={self.plan.shards} ({type(exc).__name__}: {exc}); start a "
                "fresh run"
            ) from None

    def gather_shards(self) -> dict[str, torch.Tensor] | None:
        """Every shard's buffers, name -> (shards, *shape), gathered from every rank (a
        collective: every rank calls it); None for an unsharded run."""
        if not self.plan.sharded:
            return None
        return dp.gather_shards(self._shard_buffers.local_stacks())

    # ------------------------------------------------------------------ checkpoint

    def state_dict(self, total: int) -> dict[str, Any]:
        """The checkpointed state: optimizers, random stream, schedule and shard plan."""
        return {
            **(
                {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}
                if self.phases
                else {"optimizer": self.optimizer.state_dict()}
            ),
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.device),
            "lr_schedule": {"kind": self.cfg.lr_schedule, "base_lr": self.cfg.lr,
                            "lr": self.lr, "total_steps": total},
            "shards": self.plan.shards,
            "world_size": self.plan.world_size,
            "lr_scaling": {"kind": self.cfg.lr_scaling, "factor": self.lr_factor},
        }

    def load_state_dict(self, state: dict[str, Any], where: Path) -> None:
        """Restore what :meth:`state_dict` saved (the trainer state of the checkpoint in
        ``where``). A malformed ``state`` raises KeyError/TypeError/ValueError/RuntimeError."""
        saved_world = int(state.get("world_size", 1))
        if self.cfg.lr_scaling == "linear" and saved_world != self.plan.world_size:
            raise CheckpointError(
                f"cannot resume {where}: it ran on {saved_world} processes with "
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
