"""The run directory of one Trainer run and its rules.

:class:`RunDirectory` is the Trainer's only way to the files of a run (their layout and the
crash-safe commit are in :mod:`genzoo.training.checkpoint`): ``config.json``,
``environment.json``, the checkpoint and its ``previous/`` copy, ``best/``, ``metrics.csv`` and
``samples.png``. Its rules:

* a run directory is written by one process at a time: the writer holds an advisory lock
  (``flock``) on ``.genzoo.lock`` in it (:func:`run_lock`), which also marks the folder as a
  genzoo run; a second writer is refused with the holder's pid, and the kernel drops the lock
  when the holder exits, however it exits;
* a fresh run starts only in a new or empty folder or in a genzoo run with no checkpoint yet
  (one stopped before its first checkpoint, even during its first write); it refuses a
  checkpoint and any file genzoo did not write (:func:`check_fresh`), and it deletes only
  entries genzoo names (:func:`genzoo.training.manifest.is_run_entry`);
* a resumed run must match its checkpoint in everything but its length (so that it replays
  exactly), and a run that diverges points to the last good checkpoint it keeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import CheckpointError, TrainingDiverged
from genzoo.training import checkpoint as ckpt
from genzoo.training.manifest import ENVIRONMENT_FILE, LOCK_FILE, check_regular, is_run_entry
from genzoo.training.model_calls import write_samples
from genzoo.training.seeding import device_key
from genzoo.utils.io import atomic_write_bytes
from genzoo.utils.provenance import environment

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range lock instead
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

# Config fields a resumed run may change: the run's length, and whether a bar is drawn.
RESUMABLE_CHANGES = ("epochs", "max_steps", "progress")


class RunInUse(CheckpointError):
    """Another process holds the lock of the run directory (it is writing that run)."""


# --------------------------------------------------------------------------- what a folder is


def foreign_entries(path: str | os.PathLike) -> list[str]:
    """The entries of the folder ``path`` that genzoo did not write, sorted: every entry of a
    folder that is not a genzoo run (no lock file, no checkpoint), else those that
    :func:`~genzoo.training.manifest.is_run_entry` does not name. Empty for a missing folder."""
    path = Path(path)
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"cannot list {path}: {exc.strerror or exc}; check the path") from None
    if LOCK_FILE not in names and not ckpt.has_checkpoint(path):
        return names  # a config.json of the user's is not a run genzoo started
    return [n for n in names if not is_run_entry(n)]


def check_fresh(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` unless a fresh run may start in ``path``: a missing or
    empty folder, or a genzoo run with no checkpoint (stopped before its first one). Reads
    only: a refused folder is left exactly as it was."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; choose a directory for the run")
    if ckpt.has_checkpoint(path):
        step = ckpt.checkpoint_step(path)
        raise CheckpointError(
            f"run directory {path} is not empty: it already holds a checkpoint"
            + (f" (step {step})" if step is not None else "")
            + "; resume it (genzoo train --resume, Trainer.fit(resume=True)) or choose a new "
            "run directory"
        )
    foreign = foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise CheckpointError(
            f"run directory {path} is not empty: it holds files genzoo did not write "
            f"({shown}); genzoo deletes and overwrites nothing it did not create: train into "
            "a new or empty directory, or move those files away"
        )


# --------------------------------------------------------------------------- the lock

# Locks this process holds: real path -> [fd, depth]. A process re-entering the lock of a run
# (the command line, then the Trainer it starts) shares it instead of blocking on itself.
_HELD: dict[str, list[int]] = {}


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the advisory lock of the run directory ``path`` for the ``with`` body.

    Before anything is created, a folder with no checkpoint is checked with
    :func:`check_fresh` (it must be new, empty or a genzoo run holding only genzoo's files), so
    a user's folder is refused untouched. Then the folder (and its parents) and
    ``.genzoo.lock`` are created, the lock is taken without waiting, and the file records this
    process's pid. Raises :class:`RunInUse`, naming the holder's pid, when another process
    holds it. The lock is released when the body ends, also by an exception (and by the kernel
    when the process dies); a folder this call created that holds nothing but the lock file
    is removed again.
    """
    path = Path(path)
    if not ckpt.has_checkpoint(path):
        check_fresh(path)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    created = not os.path.lexists(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path / LOCK_FILE)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        try:
            if created and os.listdir(path) == [LOCK_FILE]:
                # Nothing was written (the command failed early): leave no trace. Unlinked
                # while still locked, so no other process can hold a lock on this file.
                os.unlink(path / LOCK_FILE)
                os.rmdir(path)
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the lock


def _acquire(lock_path: Path) -> int:
    """Open and lock ``lock_path``; return the descriptor (whose close releases the lock)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(lock_path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
        except OSError as exc:
            raise CheckpointError(
                f"cannot create the lock file {lock_path}: {exc.strerror or exc}; "
                + ("remove it (it is not a regular file), then run again"
                   if os.path.lexists(lock_path) else "choose a writable run directory")
            ) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"{lock_path} is not a regular file; remove it, then "
                                      "run again")
            if not _try_lock(fd):
                raise RunInUse(_in_use(lock_path, fd))
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file as it let go: lock the new one
                os.close(fd)
                continue
            _write_pid(fd)
            return fd
        except BaseException:
            os.close(fd)
            raise


# The byte msvcrt locks: past the pid, so the holder's pid stays readable by the process it
# refuses (Windows denies reads of a locked range).
_MSVCRT_LOCKED_BYTE = 64


def _try_lock(fd: int) -> bool:
    """Take the exclusive, non-blocking advisory lock of the open lock file ``fd``; False when
    another process holds it. flock on POSIX; on Windows msvcrt's lock of one byte past the
    pid, held until the descriptor is closed."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:
        os.lseek(fd, _MSVCRT_LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    return True  # no advisory locks on this platform: a second writer is not detected


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())


def _in_use(lock_path: Path, fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    holder = f"process {pid}" if pid.isdigit() else "another process"
    return (
        f"run directory {lock_path.parent} is in use: {holder} is writing it (it holds "
        f"{lock_path}); wait for it to finish or stop it"
        + (f" (kill {pid})" if pid.isdigit() else "")
        + ", or choose another run directory"
    )


class RunDirectory:
    """The folder ``path`` of the run configured by ``run_config``.

    ``writes``: False on the ranks of a data-parallel run other than 0, which read the run
    directory (to resume) but never write it.
    """

    def __init__(self, path: str | os.PathLike, run_config: Any, *, writes: bool = True) -> None:
        self.path = Path(path)
        self.run_config = run_config
        self.writes = writes

    @property
    def metrics_path(self) -> Path:
        return self.path / ckpt.METRICS_FILE

    # ------------------------------------------------------------------ fresh run

    def locked(self, resume: bool) -> contextlib.AbstractContextManager[None]:
        """The lock of this run directory (:func:`run_lock`) while this process writes it;
        nothing on a rank that does not write. A resume of a folder with no checkpoint is
        refused here, before anything is created."""
        if not self.writes:
            return contextlib.nullcontext()
        if resume:
            self._require_checkpoint()
        return run_lock(self.path)

    def prepare_fresh(self) -> None:
        """Refuse a folder holding a checkpoint or files genzoo did not write (:func:`check_fresh`);
        write ``config.json`` and ``environment.json`` (the code, command and machine); drop stale logs and a stale ``best/`` (left by a run that failed
        before its first checkpoint)."""
        if not self.writes:
            return
        check_fresh(self.path)
        ckpt.write_config(self.path, self.run_config)
        atomic_write_bytes(self.path / ENVIRONMENT_FILE,
                           (json.dumps(environment(), indent=2) + "\n").encode())
        for stale in (ckpt.METRICS_FILE, ckpt.SAMPLES_FILE):  # left by a run that failed early
            try:
                os.unlink(self.path / stale)
            except FileNotFoundError:
                pass
        best = self.path / ckpt.BEST_DIR
        if best.is_symlink():
            best.unlink()  # never followed out of the run
        else:
            shutil.rmtree(best, ignore_errors=True)

    # ------------------------------------------------------------------ resume

    def resume_into(self, model: torch.nn.Module) -> dict[str, Any]:
        """Check that the checkpoint may be resumed by this run config, load its model state
        into ``model`` and return its trainer state (tensors on the CPU)."""
        self._require_checkpoint()
        self._check_resumable(ckpt.read_run_config(self.path))
        ckpt.restore_model(model, self.path)
        check_regular(self.metrics_path, "run again")  # read to cut it back to the checkpoint
        return ckpt.load_trainer_state(self.path)

    def _require_checkpoint(self) -> None:
        if not ckpt.has_checkpoint(self.path):
            raise CheckpointError(
                f"cannot resume: no checkpoint in {self.path} ({ckpt.MANIFEST_FILE} is "
                "missing); start a fresh run without resume"
            )

    def _check_resumable(self, saved_cfg: Any) -> None:
        """Raise :class:`CheckpointError` when the run config differs from the checkpoint's
        ``saved_cfg`` in anything but :data:`RESUMABLE_CHANGES` (and the spelling of the
        device)."""
        old, new = saved_cfg.to_dict(), self.run_config.to_dict()
        for section in ("model_name", "model", "data", "train", "eval"):
            a, b = old.get(section), new.get(section)
            if isinstance(a, dict) and isinstance(b, dict):
                for key in sorted(set(a) | set(b)):
                    # train.device may be respelled (auto/cuda/cuda:0); the resolved device
                    # is compared with the checkpoint's in check_same_run.
                    if section == "train" and key in (*RESUMABLE_CHANGES, "device"):
                        continue
                    if a.get(key) != b.get(key):
                        raise CheckpointError(
                            f"cannot resume {self.path}: {section}.{key} is {b.get(key)!r} now "
                            f"but {a.get(key)!r} in the checkpoint; only train.epochs and "
                            "train.max_steps may change on resume. Drop the other changes or "
                            "start a new run directory"
                        )
            elif a != b:
                raise CheckpointError(
                    f"cannot resume {self.path}: it holds a {a!r} model, not {b!r}; "
                    "use the same model or a new run directory"
                )
        self._warn_if_schedule_stretched(old["train"], new["train"])

    def _warn_if_schedule_stretched(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """A decaying rate spans the run's length (``train.lr_schedule`` other than constant):
        a run lengthened or shortened on resume follows the new schedule from its checkpoint
        on, so it is not the run it would have been had it started with the new length. Said,
        not refused: extending a finished run is a common and legitimate use."""
        length = ("epochs", "max_steps")
        if new.get("lr_schedule") == "constant" or all(old.get(k) == new.get(k) for k in length):
            return
        now = ", ".join(f"train.{k}={new.get(k)}" for k in length)
        warnings.warn(
            f"resuming {self.path} with a new length ({now}) under "
            f"train.lr_schedule={new.get('lr_schedule')}: the schedule is recomputed for "
            "the new length, so the rate jumps at the checkpoint and the result differs from a "
            "run started with this length (use train.lr_schedule=constant for runs you extend)",
            RuntimeWarning, stacklevel=4,
        )

    def check_same_run(
        self,
        state: dict[str, Any],
        n_train: int,
        batches_per_epoch: int,
        device: torch.device,
        *,
        exact_device: bool = True,
    ) -> None:
        """Raise :class:`CheckpointError` unless the trainer ``state`` was saved for the same
        amount of data and the same device. ``exact_device=False`` (sharded runs, whose random
        streams are re-seeded every step rather than restored) compares the device type only,
        so rank r may resume on cuda:r.

        A malformed ``state`` raises KeyError/TypeError/ValueError for the caller to report."""
        if state["n_train"] != n_train or state["batches_per_epoch"] != batches_per_epoch:
            raise CheckpointError(
                f"cannot resume {self.path}: it was trained on {state['n_train']} "
                f"examples but the data now have {n_train}; use the same data settings"
            )
        saved_device = torch.device(state["generator_device"])
        same = (
            device_key(saved_device) == device_key(device)
            if exact_device
            else saved_device.type == device.type
        )
        if not same:
            raise CheckpointError(
                f"cannot resume {self.path}: it was trained on {saved_device} but "
                f"train.device={self.run_config.train.device!r} means {device} here; an exact "
                f"resume needs the same device: set train.device={saved_device}"
            )

    def record_config(self) -> None:
        """Write ``config.json`` into the resumed checkpoint (a longer schedule, say)."""
        if self.writes:
            ckpt.write_config(self.path, self.run_config)

    # ------------------------------------------------------------------ writes

    def save(self, model: torch.nn.Module, trainer_state: dict[str, Any]) -> None:
        """Commit a checkpoint of ``model`` and the trainer (rotating the last into
        ``previous/``)."""
        ckpt.save_checkpoint(self.path, model, self.run_config, trainer_state)

    def save_best(self, model: torch.nn.Module, step: int) -> None:
        """Save ``model`` as the model-only checkpoint ``best/`` of ``step``."""
        if (self.path / ckpt.BEST_DIR).is_symlink():
            raise CheckpointError(
                f"{self.path / ckpt.BEST_DIR} is a symbolic link; genzoo writes only inside "
                "the run directory: remove it, then resume the run"
            )
        ckpt.save_checkpoint(self.path / ckpt.BEST_DIR, model, self.run_config, step=step)

    def write_samples(
        self,
        model: torch.nn.Module,
        n: int,
        image_shape: tuple[int, int],
        generator: torch.Generator,
        to_images: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        """``samples.png``: a grid of ``n`` samples (see
        :func:`~genzoo.training.model_calls.write_samples`)."""
        write_samples(model, n, image_shape, generator, self.path / ckpt.SAMPLES_FILE,
                      to_images=to_images)

    # ------------------------------------------------------------------ divergence

    def diverged(self, step: int, what: str) -> TrainingDiverged:
        """The error of a run that diverged at ``step`` (``what`` was not finite), naming the
        last good checkpoint it leaves here."""
        last = ckpt.checkpoint_step(self.path) if ckpt.has_checkpoint(self.path) else None
        kept = (
            f"the last good checkpoint (step {last}) is kept in {self.path}"
            if last is not None
            else f"no checkpoint had been written yet in {self.path}"
        )
        return TrainingDiverged(
            f"training diverged at step {step} ({what}); {kept}; lower train.lr "
            f"(now {self.run_config.train.lr:g}) and train again in a new run directory, or "
            "check the data for extreme values"
        )
