"""The optimizer steps of :class:`~genzoo.training.trainer.Trainer`: one update of the single
optimizer, or every phase in turn, each over this rank's shards of the global batch.

A mixin of the Trainer, split out of trainer.py to keep files short; it reads and writes the
Trainer's attributes (``model``, ``cfg``, ``plan``, ``phases``, ``optimizers``, ``generator``,
``step``, ...) and is not meant to be used on its own. The module docstring of
:mod:`genzoo.training.trainer` describes the phases and the data-parallel shards.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genzoo.core.errors import ConfigError, DataError
from genzoo.training import data_parallel as dp
from genzoo.training.model_calls import loss_figures, nonfinite_parameter
from genzoo.training.schedule import phase_steps, set_hyperparameters


class _SteppingMixin:
    """Trainer methods that turn one minibatch into optimizer updates."""

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
