"""Checkpoint glue of :class:`~genzoo.training.trainer.Trainer`: the trainer state written with
each checkpoint, and restoring it (and the per-shard buffers) on resume.

A mixin of the Trainer, split out of trainer.py to keep files short; it reads and writes the
Trainer's attributes and is not meant to be used on its own. The state dict's keys are the
checkpoint format: :mod:`genzoo.training.resume` and :mod:`genzoo.training.checkpoint` read them.
"""

from __future__ import annotations

import time

from genzoo.core.errors import CheckpointError, ConfigError
from genzoo.training import checkpoint as ckpt
from genzoo.training import data_parallel as dp
from genzoo.training import resume as run_rules


class _TrainerStateMixin:
    """Trainer methods that write and restore the checkpointed trainer state."""

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
            self._best_valid = state.get("best_valid")  # absent before train.keep_best
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
            "best_valid": self._best_valid,
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
