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
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
from tqdm.auto import tqdm

from genzoo.core.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from genzoo.training import checkpoint as ckpt
from genzoo.training.atomic import atomic_write_text
from genzoo.training.callbacks import Callback
from genzoo.training.schedule import (
    build_optimizer,
    learning_rate,
    set_hyperparameters,
    total_steps,
)

# Config fields a resumed run may change: the run's length, and whether a bar is drawn.
RESUMABLE_CHANGES = ("epochs", "max_steps", "progress")
_FIXED_COLUMNS = ("step", "epoch", "lr")
_RATE_COLUMNS = ("examples_per_s", "wall_s")


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use cpu or auto")
    return device


def seed_for(*key: object) -> int:
    """A 63-bit seed from a hash of ``key``, so distinct uses never share a random stream."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """(n,) int64 order of the training examples in ``epoch`` (CPU), a function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed_for("shuffle", seed, epoch))
    return torch.randperm(n, generator=g)


class Trainer:
    """Train ``model`` on ``bundle`` as ``run_config.train`` says, writing into ``run_dir``.

    ``bundle``: a :class:`genzoo.data.DataBundle` (``train``, ``valid`` splits with ``x``,
    ``image_shape``, ``train_x(epoch)``). ``callbacks``: :class:`Callback` instances.
    Attributes readable during and after :meth:`fit`: ``step`` (completed optimizer steps),
    ``epoch``, ``metrics`` (last logged value of each metrics.csv column), ``device``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        run_config: Any,
        bundle: Any,
        run_dir: str | os.PathLike,
        *,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        self.model = model
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
        self.generator: torch.Generator | None = None
        self._best: dict[str, float] | None = None
        self._columns: list[str] | None = None
        self._pending_rows: list[dict[str, float]] = []
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
        n_train = self._n_train()
        bpe = math.ceil(n_train / cfg.batch_size)
        self.run_dir.mkdir(parents=True, exist_ok=True)

        self.model.to(self.device)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError(
                f"{type(self.model).__name__} has no trainable parameters; the Trainer only runs "
                "gradient-based learning rules"
            )
        self.optimizer = build_optimizer(params, cfg)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)

        if resume:
            self._resume(n_train, bpe)
        else:
            self._start_fresh()
        total = total_steps(cfg, bpe)
        self._t0 = time.perf_counter()
        if not resume:
            self._init_and_baseline()
        self._interval_t0 = time.perf_counter()
        self._excluded_s = 0.0
        for cb in self.callbacks:
            cb.on_fit_start(self)

        bar = tqdm(
            total=total,
            initial=min(self.step, total),
            desc=f"{self.run_config.model_name}",
            unit="step",
            disable=not cfg.progress,
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
        self._write_samples()
        result = {**self.metrics, "step": self.step, "epoch": self.step / bpe,
                  "wall_s": self._wall()}
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        return result

    # ------------------------------------------------------------------ setup

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

    def _start_fresh(self) -> None:
        if ckpt.has_checkpoint(self.run_dir):
            step = ckpt.checkpoint_step(self.run_dir)
            raise CheckpointError(
                f"{self.run_dir} already holds a checkpoint"
                + (f" (step {step})" if step is not None else "")
                + "; resume it (fit(resume=True), genzoo train --resume) or choose a new run "
                "directory"
            )
        ckpt.write_config(self.run_dir, self.run_config)
        for stale in (ckpt.METRICS_FILE, ckpt.SAMPLES_FILE):  # left by a run that failed early
            try:
                os.unlink(self.run_dir / stale)
            except FileNotFoundError:
                pass

    def _init_and_baseline(self) -> None:
        init = getattr(self.model, "init_from_data", None)
        if callable(init):
            # The data the model sees: under dynamic binarization, epoch 0's draw (binary),
            # not the grey levels of bundle.train.x.
            with torch.no_grad():
                init(self.bundle.train_x(0).to(self.device))
        if self._can_validate():
            # Step-0 figures: the baseline of the curves, and the valid_ columns of metrics.csv.
            self._pending_rows.append(
                {"step": 0, "epoch": 0.0, "lr": self._lr, "wall_s": 0.0, **self._validate()}
            )

    def _resume(self, n_train: int, bpe: int) -> None:
        if not ckpt.has_checkpoint(self.run_dir):
            raise CheckpointError(
                f"cannot resume: no checkpoint in {self.run_dir} ({ckpt.MANIFEST_FILE} is "
                "missing); start a fresh run without resume"
            )
        saved_cfg = ckpt.read_run_config(self.run_dir)
        self._check_resumable(saved_cfg)
        ckpt.restore_model(self.model, self.run_dir)
        state = ckpt.load_trainer_state(self.run_dir)
        try:
            if state["n_train"] != n_train or state["batches_per_epoch"] != bpe:
                raise CheckpointError(
                    f"cannot resume {self.run_dir}: it was trained on {state['n_train']} "
                    f"examples but the data now have {n_train}; use the same data settings"
                )
            saved_device = torch.device(state["generator_device"])
            if _device_key(saved_device) != _device_key(self.device):
                raise CheckpointError(
                    f"cannot resume {self.run_dir}: it was trained on {saved_device} but "
                    f"train.device={self.cfg.device!r} means {self.device} here; an exact "
                    f"resume needs the same device: set train.device={saved_device}"
                )
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator_state"])
            self.step = int(state["step"])
            self.epoch = int(state["epoch"])
            self.step_in_epoch = int(state["step_in_epoch"])
            self._wall_offset = float(state["wall_s"])
            self.metrics = dict(state["last_metrics"])
            self._best = state["best"]
            self._columns = state["csv_columns"]
            self._loss_keys = state["loss_keys"]
            self._valid_keys = list(state["valid_keys"])
            self._sums = dict(state["interval"]["sums"])
            self._interval_steps = int(state["interval"]["steps"])
            self._last_validation = state["last_validation"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"the trainer state in {self.run_dir} cannot be restored ({type(exc).__name__}: "
                f"{exc}); it was not written by this Trainer or this model; start a fresh run"
            ) from None
        self._last_checkpoint = self.step
        ckpt.write_config(self.run_dir, self.run_config)
        self._truncate_metrics(self.step)

    def _check_resumable(self, saved_cfg: Any) -> None:
        old, new = saved_cfg.to_dict(), self.run_config.to_dict()
        for section in ("model_name", "model", "data", "train", "eval"):
            a, b = old.get(section), new.get(section)
            if isinstance(a, dict) and isinstance(b, dict):
                for key in sorted(set(a) | set(b)):
                    # train.device may be respelled (auto/cuda/cuda:0); the resolved device
                    # is compared with the checkpoint's in _resume.
                    if section == "train" and key in (*RESUMABLE_CHANGES, "device"):
                        continue
                    if a.get(key) != b.get(key):
                        raise CheckpointError(
                            f"cannot resume {self.run_dir}: {section}.{key} is {b.get(key)!r} now "
                            f"but {a.get(key)!r} in the checkpoint; only train.epochs and "
                            "train.max_steps may change on resume. Drop the other changes or "
                            "start a new run directory"
                        )
            elif a != b:
                raise CheckpointError(
                    f"cannot resume {self.run_dir}: it holds a {a!r} model, not {b!r}; "
                    "use the same model or a new run directory"
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
            order = epoch_permutation(cfg.seed, epoch, n_train).to(self.device)
            for i in range(self.step_in_epoch, bpe):
                if self.step >= total:
                    return
                xb = x_epoch[order[i * cfg.batch_size : (i + 1) * cfg.batch_size]]
                self._lr = learning_rate(cfg, self.step, total)
                set_hyperparameters(opt, cfg, self._lr, epoch)
                try:
                    out = model.loss(xb, generator=self.generator)
                except Exception as exc:
                    # Models often fail on NaN parameters (e.g. torch.bernoulli of NaN
                    # probabilities) before the periodic check sees them: report divergence.
                    bad = self._bad_parameter()
                    if bad is not None:
                        raise self._diverged(self.step, f"{bad!r} is not finite") from exc
                    raise
                values = self._figures(out)
                if not math.isfinite(values["loss"]):
                    raise self._diverged(self.step + 1, f"loss={values['loss']}")
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
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

    def _figures(self, out: Any) -> dict[str, float]:
        if not isinstance(out, dict) or "loss" not in out:
            raise TypeError(
                f"{type(self.model).__name__}.loss must return a dict with a 'loss' entry"
            )
        keys = list(out)
        if self._loss_keys is None:
            for k in keys:
                v = out[k]
                if not isinstance(v, torch.Tensor) or v.dim() != 0:
                    raise TypeError(
                        f"{type(self.model).__name__}.loss()[{k!r}] must be a scalar tensor"
                    )
        # One device-to-host transfer for all figures (the loss check needs one anyway).
        flat = torch.stack([out[k].detach().to(torch.float64) for k in keys]).cpu().tolist()
        return dict(zip(keys, flat))

    def _after_step(self, epoch_end: bool, n_train: int, bpe: int, total: int, bar: Any) -> None:
        cfg = self.cfg
        if self._loss_keys is None:
            self._loss_keys = list(self._sums)
        row: dict[str, float] = {}
        if self.step % cfg.log_every == 0 or self.step == total:
            self._check_parameters()
            row.update(self._train_row(bpe))
            bar.set_postfix(loss=f"{row['loss']:.4g}", ex_s=f"{row['examples_per_s']:.0f}")
        if self._can_validate() and (
            (cfg.validate_every > 0 and self.step % cfg.validate_every == 0)
            or (cfg.validate_every == 0 and epoch_end)
            or self.step == total
        ):
            row.update(self._validate())
        if row:
            self._log({"step": self.step, "epoch": self.step / bpe, "lr": self._lr,
                       "wall_s": self._wall(), **row})
        elif self._columns is None:
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

    def _can_validate(self) -> bool:
        valid = getattr(self.bundle, "valid", None)
        return (
            callable(getattr(self.model, "validation_metrics", None))
            and valid is not None
            and getattr(valid, "x", None) is not None
            and len(valid.x) > 0
        )

    def _validate(self) -> dict[str, float]:
        if self._last_validation == self.step and self.step > 0:
            return {}
        t = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                figures = self.model.validation_metrics(self.bundle.valid.x.to(self.device))
        finally:
            self.model.train(was_training)
        out = {f"valid_{k}": float(v) for k, v in figures.items()}
        if not self._valid_keys:
            self._valid_keys = sorted(out)
        self._last_validation = self.step
        self._excluded_s += time.perf_counter() - t
        return out

    def _bad_parameter(self) -> str | None:
        """Name of the first floating parameter or buffer holding NaN/Inf, else None."""
        named = [(k, v) for k, v in self.model.state_dict().items() if v.is_floating_point()]
        if not named:
            return None
        finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu()
        if bool(finite.all()):
            return None
        return named[int((~finite).nonzero()[0])][0]

    def _check_parameters(self) -> None:
        """Raise TrainingDiverged when a floating parameter or buffer holds NaN/Inf."""
        bad = self._bad_parameter()
        if bad is not None:
            raise self._diverged(self.step, f"{bad!r} is not finite")

    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        last = ckpt.checkpoint_step(self.run_dir) if ckpt.has_checkpoint(self.run_dir) else None
        kept = (
            f"the last good checkpoint (step {last}) is kept in {self.run_dir}"
            if last is not None
            else f"no checkpoint had been written yet in {self.run_dir}"
        )
        return TrainingDiverged(
            f"training diverged at step {step} ({what}); {kept}; lower train.lr "
            f"(now {self.cfg.lr:g}) and train again in a new run directory, or check the data "
            "for extreme values"
        )

    # ------------------------------------------------------------------ files

    def _wall(self) -> float:
        return self._wall_offset + time.perf_counter() - self._t0

    def _log(self, row: dict[str, float] | None) -> None:
        if row is not None:
            self._pending_rows.append(row)
        if self._columns is None:
            if self._loss_keys is None:
                return
            others = sorted(k for k in self._loss_keys if k != "loss")
            self._columns = [
                *_FIXED_COLUMNS, "loss", *others, *_RATE_COLUMNS, *self._valid_keys
            ]
        rows, self._pending_rows = self._pending_rows, []
        if not rows:
            return
        path = self.run_dir / ckpt.METRICS_FILE
        new_file = not path.exists() or path.stat().st_size == 0
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._columns, extrasaction="ignore", restval="")
        if new_file:
            writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(v) for k, v in r.items()})
            self.metrics.update({k: float(v) for k, v in r.items() if k in self._columns})
        # One O_APPEND write() per batch of rows: a killed process cannot leave half a row
        # (a power cut might; resuming drops unparsable rows), and the file never has to be
        # rewritten, so logging stays O(rows).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, buf.getvalue().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        for r in rows:
            for cb in self.callbacks:
                cb.on_log(self, r)

    def _truncate_metrics(self, step: int) -> None:
        """Drop metrics.csv rows after ``step`` (written after the checkpoint we resume from)."""
        path = self.run_dir / ckpt.METRICS_FILE
        if self._columns is None or not path.exists():
            return
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            kept = []
            for r in reader:
                try:
                    complete = None not in r and all(v is not None for v in r.values())
                    if complete and int(r["step"]) <= step:
                        kept.append(r)
                except ValueError:
                    continue  # a torn last line from a kill mid-write
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._columns, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(path, buf.getvalue())

    def _checkpoint(self, n_train: int, bpe: int, total: int) -> None:
        t = time.perf_counter()
        self._check_parameters()  # never commit a diverged state
        if self._columns is None:
            self._log(None)
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "n_train": n_train,
            "batches_per_epoch": bpe,
            "total_steps": total,
            "wall_s": self._wall(),
            "optimizer": self.optimizer.state_dict(),
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.device),
            "lr_schedule": {"kind": self.cfg.lr_schedule, "base_lr": self.cfg.lr,
                            "lr": self._lr, "total_steps": total},
            "last_metrics": dict(self.metrics),
            "best": self._best,
            "csv_columns": self._columns,
            "loss_keys": self._loss_keys,
            "valid_keys": list(self._valid_keys),
            "interval": {"sums": dict(self._sums), "steps": self._interval_steps},
            "last_validation": self._last_validation,
        }
        ckpt.save_checkpoint(self.run_dir, self.model, self.run_config, state)
        self._last_checkpoint = self.step
        self._excluded_s += time.perf_counter() - t
        for cb in self.callbacks:
            cb.on_checkpoint(self)

    def _write_samples(self) -> None:
        n = self.cfg.grid_samples
        sample = getattr(self.model, "sample", None)
        if n == 0 or not callable(sample):
            return
        from genzoo.utils.images import save_image_grid

        h, w = self.bundle.image_shape
        # A generator of its own, so drawing the grid leaves the training stream untouched.
        g = torch.Generator(device=self.device).manual_seed(seed_for("samples", self.cfg.seed))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                x = sample(n, generator=g)
        finally:
            self.model.train(was_training)
        if x.dim() != 2 or x.shape[1] != h * w:
            warnings.warn(
                f"samples have shape {tuple(x.shape)}, not (n, {h * w}) for images {h}x{w}; "
                f"{ckpt.SAMPLES_FILE} not written",
                stacklevel=2,
            )
            return
        save_image_grid(x.float().cpu(), (h, w), self.run_dir / ckpt.SAMPLES_FILE)


def _device_key(device: torch.device) -> tuple[str, int]:
    return device.type, (device.index or 0) if device.type == "cuda" else 0


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["Trainer", "resolve_device", "epoch_permutation", "seed_for", "RESUMABLE_CHANGES"]
