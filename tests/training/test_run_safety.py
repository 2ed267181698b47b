"""Runs are safe places: what a user (or an attacker) can do to a run directory, and what
genzoo does about it.

Each case asserts the error type or exit status, that the message names the fix, that no file
outside the run changed and that no earlier file of the run was lost: crafted manifests
(absolute, ``..`` and path names, sizes), symlinks to a device and FIFOs in place of checkpoint
files, NaN weights, a kill before the first checkpoint (in-process and by SIGKILL), Ctrl-C,
two writers, and ``--out`` over a folder of the user's. Tiny models and the digits data:
seconds, not minutes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from hashlib import sha256
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from support import Killed

from genzoo.cli import main
from genzoo.core.errors import CheckpointError, TrainingDiverged
from genzoo.training import Trainer
from genzoo.training import checkpoint as ckpt
from genzoo.training import manifest as manifest_io
from genzoo.training.checkpoint import CheckpointFallbackWarning, load_model
from genzoo.training.manifest import LOCK_FILE
from genzoo.training.run_directory import RunInUse

TINY = [
    "--data", "digits", "--set", "data.binarize=threshold", "--set", "data.n_train=100",
    "--set", "model.n_hidden=4", "--set", "train.epochs=1", "--set", "train.batch_size=25",
    "--set", "train.progress=false", "--set", "train.grid_samples=0",
    "--set", "model.sample_burn_in=2",
]


def files_under(root: Path, skip: Path | None = None) -> dict[str, bytes]:
    """Every regular file under ``root`` (outside ``skip``): relative path -> bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.fixture
def world(tmp_path):
    """``tmp_path`` with the user's files next to the runs (``outside/``), and a check that
    they did not change and that nothing appeared beside the runs the test names."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("the user's own file\n")
    before = files_under(tmp_path / "outside")
    yield tmp_path
    assert files_under(tmp_path / "outside") == before, "a file outside the run changed"
    assert set(os.listdir(tmp_path)) <= {"outside", "run", "ref", "fresh"}


def toy_run(toy, bundle, run: Path, *, max_steps: int = 4, checkpoint_every: int = 2):
    """A toy run with checkpoints at every ``checkpoint_every`` steps (so ``previous/`` holds
    the last but one); returns its config."""
    cfg = toy.make_config(max_steps=max_steps, checkpoint_every=checkpoint_every)
    Trainer(toy.build(cfg), cfg, bundle, run).fit()
    return cfg


def manifest_of(run: Path) -> dict:
    return json.loads((run / "checkpoint.json").read_text())


def write_manifest(run: Path, manifest: dict) -> None:
    (run / "checkpoint.json").write_text(json.dumps(manifest))


def forge(run: Path, name: str, data: bytes) -> None:
    """Replace ``name`` by ``data`` and make the manifest agree (hash and size)."""
    (run / name).write_bytes(data)
    manifest = manifest_of(run)
    manifest["files"][name] = {"sha256": sha256(data).hexdigest(), "size": len(data)}
    write_manifest(run, manifest)


def only_previous_loads(run: Path, match: str) -> None:
    """The current checkpoint is refused (``match``) and the previous one (step 2) is used."""
    with pytest.warns(CheckpointFallbackWarning, match=match):
        model, _ = load_model(run)
    assert ckpt.checkpoint_step(run) == 2
    assert torch.equal(model.theta, load_model(run / "previous")[0].theta)


# --------------------------------------------------------------------------- crafted manifests


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "separator"])
def test_a_manifest_naming_a_path_is_refused_and_nothing_outside_is_touched(
        toy, bundle, world, kind):
    run = world / "run"
    toy_run(toy, bundle, run)
    target = world / "outside" / "keep.txt"
    name = {"absolute": str(target), "dotdot": "../outside/keep.txt",
            "separator": "sub/model.safetensors"}[kind]
    # The attack: a manifest entry whose pending file the next commit would rename onto it.
    payload = b"written by an attacker"
    (run / "sub").mkdir()
    pending = run / (name + ".pending") if kind != "absolute" else Path(name + ".pending")
    pending.write_bytes(payload)
    manifest = manifest_of(run)
    manifest["files"][name] = {"sha256": sha256(payload).hexdigest(), "size": len(payload)}
    write_manifest(run, manifest)
    with pytest.raises(CheckpointError, match="not a plain file name inside the run") as exc:
        manifest_io.read_manifest(run, required=True)
    assert "restore checkpoint.json or re-run training" in str(exc.value)
    # Loading falls back to previous/; a resumed run continues from it and commits over the
    # crafted manifest without ever writing through the crafted name.
    only_previous_loads(run, "not a plain file name")
    longer = toy.make_config(max_steps=6, checkpoint_every=2)
    with pytest.warns(CheckpointFallbackWarning):
        Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    assert ckpt.checkpoint_step(run) == 6 and name not in manifest_of(run)["files"]
    assert target.read_text() == "the user's own file\n"
    assert pending.read_bytes() == payload  # the attacker's file: neither moved nor deleted
    pending.unlink()


def test_a_manifest_listing_a_file_that_is_no_checkpoint_file_is_refused(toy, bundle, world):
    run = world / "run"
    toy_run(toy, bundle, run, max_steps=2)
    (run / "notes.txt").write_text("mine\n")
    manifest = manifest_of(run)
    manifest["files"]["notes.txt"] = {"sha256": sha256(b"mine\n").hexdigest(), "size": 5}
    write_manifest(run, manifest)
    with pytest.raises(CheckpointError, match="'notes.txt', which is not a file of a genzoo "
                                              "checkpoint.*restore checkpoint.json"):
        load_model(run)
    assert (run / "notes.txt").read_text() == "mine\n"


def test_a_file_larger_than_its_manifest_size_is_not_read_beyond_it(toy, bundle, world,
                                                                     monkeypatch):
    """A file is read up to one byte past the size its manifest gives, not to its end."""
    run = world / "run"
    toy_run(toy, bundle, run)
    real_read = os.read
    asked = []

    def read(fd, n):
        asked.append(n)
        return real_read(fd, n)

    manifest = manifest_of(run)
    manifest["files"]["model.safetensors"]["size"] = 10  # the bound a crafted manifest sets
    write_manifest(run, manifest)
    manifest = manifest_io.read_manifest(run, required=True)
    with monkeypatch.context() as patch, pytest.raises(
            CheckpointError, match="larger than the 10 bytes the manifest says.*re-run training "
                                   "or restore the file"):
        patch.setattr(os, "read", read)
        manifest_io.read_verified(run, manifest, "model.safetensors")
    assert max(asked) <= 11
    only_previous_loads(run, "larger than the 10 bytes")


# --------------------------------------------------------------------------- special files


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["model.safetensors", "checkpoint.json",
                                   "model.safetensors.pending"])
def test_a_symlink_to_a_device_is_refused_without_reading_it(toy, bundle, world, where):
    run = world / "run"
    toy_run(toy, bundle, run)
    kept = files_under(run)
    if where == "model.safetensors.pending":  # the fallback name a damaged file is looked up by
        (run / "model.safetensors").write_bytes(b"damaged")
    else:
        (run / where).unlink()
    os.symlink("/dev/zero", run / where)
    only_previous_loads(run, "is a symbolic link, not a file genzoo wrote.*remove it")
    # The symlink is neither followed nor read at commit time either.
    longer = toy.make_config(max_steps=6, checkpoint_every=2)
    with pytest.warns(CheckpointFallbackWarning):
        Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    assert ckpt.checkpoint_step(run) == 6
    assert set(kept) - {"metrics.csv"} <= set(files_under(run))  # nothing of the run was lost


@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_the_model_is_refused_without_waiting_on_it(toy, bundle, world):
    run = world / "run"
    toy_run(toy, bundle, run, max_steps=2)  # one checkpoint: nothing to fall back to
    (run / "model.safetensors").unlink()
    os.mkfifo(run / "model.safetensors")
    with pytest.raises(CheckpointError, match="is a FIFO, not a file genzoo wrote.*remove it"):
        load_model(run)


@pytest.mark.timeout(60)
def test_evaluate_refuses_a_model_file_that_links_to_a_device(world, capsys):
    run = world / "run"
    assert main(["train", "rbm", *TINY, "--out", str(run)]) == 0
    (run / "model.safetensors").unlink()
    os.symlink("/dev/zero", run / "model.safetensors")
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "remove it" in err and "re-run training" in err


def test_a_symlinked_metrics_file_or_best_dir_never_leads_a_write_outside(toy, bundle, world):
    run = world / "run"
    toy_run(toy, bundle, run, max_steps=2)
    (run / "metrics.csv").unlink()
    os.symlink(world / "outside" / "keep.txt", run / "metrics.csv")
    longer = toy.make_config(max_steps=4, checkpoint_every=2)
    with pytest.raises(CheckpointError, match="metrics.csv is a symbolic link.*remove it"):
        Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    (run / "metrics.csv").unlink()  # the fix the message names
    Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    assert ckpt.checkpoint_step(run) == 4
    # best/ linked to a folder outside: a fresh run unlinks the link, never what it points to.
    fresh = world / "fresh"
    fresh.mkdir()
    (fresh / LOCK_FILE).touch()  # a genzoo run that stopped before its first checkpoint
    os.symlink(world / "outside", fresh / "best")
    cfg = toy.make_config(max_steps=2, keep_best="nll", validate_every=1)
    Trainer(toy.build(cfg), cfg, bundle, fresh).fit()
    assert (fresh / "best").is_dir() and not (fresh / "best").is_symlink()
    shutil.rmtree(fresh)


# --------------------------------------------------------------------------- NaN weights


def test_nan_weights_are_refused_and_previous_is_used(toy, bundle, world, capsys):
    run = world / "run"
    toy_run(toy, bundle, run)
    tensors = st_load((run / "model.safetensors").read_bytes())
    tensors["theta"][0] = float("nan")
    forge(run, "model.safetensors", st_save(tensors))
    only_previous_loads(run, "'theta' holds NaN or Inf")
    # Without a previous checkpoint: refused, naming the fix; the CLI exits with status 2.
    shutil.rmtree(run / "previous")
    with pytest.raises(CheckpointError, match="holds NaN or Inf.*re-run training"):
        load_model(run)


def test_evaluate_and_sample_refuse_a_checkpoint_with_nan_weights(world, capsys):
    run = world / "run"
    assert main(["train", "rbm", *TINY, "--out", str(run)]) == 0
    tensors = st_load((run / "model.safetensors").read_bytes())
    tensors["W"][0, 0] = float("inf")
    forge(run, "model.safetensors", st_save(tensors))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "holds NaN or Inf" in err and "re-run training" in err
    assert main(["sample", str(run), "--out", str(world / "run" / "s.png")]) == 2
    assert not (run / "s.png").exists()


# --------------------------------------------------------------------------- kill before the first checkpoint


def _killed_in_first_commit(run: Path, monkeypatch, *extra: str) -> None:
    """``genzoo train`` killed inside its first checkpoint commit (pending files written,
    manifest not yet): what a kill -9 at that moment leaves, plus a half-written temporary."""
    def kill(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(ckpt, "_write_manifest", kill)
        main(["train", "rbm", *TINY, *extra, "--out", str(run)])
    assert (run / "model.safetensors.pending").exists() and not (run / "checkpoint.json").exists()
    (run / ".model.safetensors.pending.a1b2c3.tmp").write_bytes(b"half a file")


@pytest.mark.parametrize("flag", [[], ["--resume"], ["--resume-if-exists"]])
def test_a_run_killed_in_its_first_checkpoint_starts_afresh(world, monkeypatch, capsys, flag):
    ref, run = world / "ref", world / "run"
    assert main(["train", "rbm", *TINY, "--out", str(ref)]) == 0
    _killed_in_first_commit(run, monkeypatch)
    capsys.readouterr()
    assert main(["train", "rbm", *TINY, *flag, "--out", str(run)]) == 0
    if flag == ["--resume"]:
        assert "no checkpoint yet" in capsys.readouterr().err
    # The same run as one never interrupted, and genzoo's leftovers are gone.
    got, want = (st_load((r / "model.safetensors").read_bytes()) for r in (run, ref))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert not [p for p in os.listdir(run) if p.endswith((".pending", ".tmp"))]


def test_a_run_killed_by_sigkill_before_its_first_checkpoint_starts_afresh(world, capsys):
    run = world / "run"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from genzoo.training import checkpoint
        checkpoint._write_manifest = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        from genzoo.cli import main
        main(sys.argv[1:])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, "train", "rbm", *TINY, "--out",
                           str(run)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (run / "config.json").exists() and not (run / "checkpoint.json").exists()
    # A torchrun restart (--resume-if-exists) and a plain --resume both go on.
    assert main(["train", "rbm", *TINY, "--resume-if-exists", "--out", str(run)]) == 0
    assert ckpt.checkpoint_step(run) == 4


def test_ctrl_c_says_a_checkpoint_is_intact_only_when_one_is(world, monkeypatch, capsys):
    from genzoo.training.trainer import Trainer as T

    real_after_step = T._after_step

    def interrupt_at(step):
        def after_step(self, *args):
            real_after_step(self, *args)
            if self.step == step:
                raise KeyboardInterrupt
        return after_step

    run = world / "run"
    every = ["--set", "train.checkpoint_every=2"]
    with monkeypatch.context() as patch:
        patch.setattr(T, "_after_step", interrupt_at(1))
        assert main(["train", "rbm", *TINY, "--out", str(run)]) == 130
        err = capsys.readouterr().err
        assert "intact" not in err and "no checkpoint had been written" in err
        assert "run the same command again" in err
        patch.setattr(T, "_after_step", interrupt_at(3))
        assert main(["train", "rbm", *TINY, *every, "--out", str(run)]) == 130
        err = capsys.readouterr().err
        assert "checkpoint of step 2" in err and "intact" in err and "--resume" in err
    assert main(["train", "rbm", *TINY, *every, "--resume", "--out", str(run)]) == 0


# --------------------------------------------------------------------------- two writers

HOLDER = textwrap.dedent(
    """
    import sys
    from genzoo.training.run_directory import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


def test_a_second_writer_is_refused_with_the_holders_pid(toy, bundle, world, capsys):
    run = world / "run"
    assert main(["train", "rbm", *TINY, "--out", str(run)]) == 0
    before = files_under(run)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        longer = ["--set", "train.epochs=2"]
        assert main(["train", "rbm", *TINY, *longer, "--resume", "--out", str(run)]) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid} is writing it" in err and "wait for it to finish" in err
        assert f"kill {holder.pid}" in err
        assert main(["train", "rbm", *TINY, "--out", str(world / "run")]) == 2
        assert {k: v for k, v in files_under(run).items() if k != LOCK_FILE} == \
            {k: v for k, v in before.items() if k != LOCK_FILE}
        cfg = toy.make_config(max_steps=2)
        with pytest.raises(RunInUse, match=f"process {holder.pid}"):
            Trainer(toy.build(cfg), cfg, bundle, run).fit(resume=True)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # The holder exited: its lock went with it.
    assert main(["train", "rbm", *TINY, "--set", "train.epochs=2", "--resume", "--out",
                 str(run)]) == 0


def test_the_lock_is_released_when_training_raises(toy, bundle, world):
    run = world / "run"
    cfg = toy.make_config(max_steps=6, model={"nan_at_call": 3})
    with pytest.raises(TrainingDiverged):  # TrainingDiverged, a GenzooError
        Trainer(toy.build(cfg), cfg, bundle, run).fit()
    with open(run / LOCK_FILE) as f:  # another open file description: free again
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    # A failed run before its first checkpoint starts again in the same place.
    ok = toy.make_config(max_steps=2)
    Trainer(toy.build(ok), ok, bundle, run).fit()


# --------------------------------------------------------------------------- --out over user files


@pytest.mark.parametrize("content", [
    {"config.json": b'{"mine": true}\n'},
    {".DS_Store": b"\0\1", ".model.safetensors.x.tmp": b"a user's temp", "x.pending": b"p"},
    {"notes.txt": b"my notes\n"},
])
@pytest.mark.parametrize("flag", [[], ["--resume"], ["--resume-if-exists"]])
def test_out_over_a_folder_of_the_users_is_refused_untouched(world, capsys, content, flag):
    run = world / "run"
    run.mkdir()
    for name, data in content.items():
        (run / name).write_bytes(data)
    assert main(["train", "rbm", *TINY, *flag, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "genzoo did not write" in err and "new or empty directory" in err
    assert files_under(run) == content and sorted(os.listdir(run)) == sorted(content)


def test_a_started_run_with_a_file_of_the_users_is_refused_untouched(toy, bundle, world):
    run = world / "run"
    cfg = toy.make_config(max_steps=6, model={"nan_at_call": 3})
    with pytest.raises(TrainingDiverged):
        Trainer(toy.build(cfg), cfg, bundle, run).fit()
    (run / "notes.txt").write_text("mine\n")
    before = files_under(run)
    ok = toy.make_config(max_steps=2)
    with pytest.raises(CheckpointError, match=r"genzoo did not write \(notes.txt\).*new or "
                                              "empty directory"):
        Trainer(toy.build(ok), ok, bundle, run).fit()
    assert files_under(run) == before


def test_recovery_deletes_only_files_genzoo_wrote(toy, bundle, world):
    run = world / "run"
    toy_run(toy, bundle, run, max_steps=2)
    mine = {"notes.pending": b"a", ".notes.tmp": b"b", "data.tmp": b"c", ".hidden": b"d"}
    for name, data in mine.items():
        (run / name).write_bytes(data)
    before = files_under(run)
    longer = toy.make_config(max_steps=4, checkpoint_every=2)
    Trainer(toy.build(longer), longer, bundle, run).fit(resume=True)
    after = files_under(run)
    assert {name: after.get(name) for name in mine} == mine
    assert set(before) <= set(after)  # nothing of the run was lost


def test_a_file_in_place_of_the_run_directory_is_refused(world, capsys):
    (world / "run").write_text("not a folder\n")
    assert main(["train", "rbm", *TINY, "--out", str(world / "run")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert (world / "run").read_text() == "not a folder\n"
    (world / "run").unlink()


def test_a_run_lengthened_on_resume_under_a_decaying_rate_says_so(tmp_path):
    # The schedule spans the run's length: the resumed run is not the longer run from the start.
    run = tmp_path / "run"
    base = ["train", "rbm", *TINY, "--set", "train.lr_schedule=linear", "--out", str(run)]
    assert main(base) == 0
    with pytest.warns(RuntimeWarning, match="schedule is recomputed for the new length"):
        assert main([*base, "--resume", "--set", "train.epochs=2"]) == 0
    # A constant rate extends silently.
    const = tmp_path / "const"
    base = ["train", "rbm", *TINY, "--set", "train.lr_schedule=constant", "--out", str(const)]
    assert main(base) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main([*base, "--resume", "--set", "train.epochs=2"]) == 0


class _FlockAsMsvcrt:
    """msvcrt's locking() as Windows defines it (a non-blocking lock of n bytes at the file
    position, OSError when another holder has them), played by flock so that the Windows branch
    of the run lock runs here."""

    LK_NBLCK = 2

    def __init__(self):
        self.positions = []

    def locking(self, fd, mode, n):
        assert mode == self.LK_NBLCK and n == 1
        self.positions.append(os.lseek(fd, 0, os.SEEK_CUR))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OSError(36, "Resource deadlock avoided") from exc


def test_the_windows_lock_refuses_a_second_writer_with_the_holders_pid(tmp_path, monkeypatch):
    from genzoo.training import run_directory

    fake = _FlockAsMsvcrt()
    monkeypatch.setattr(run_directory, "fcntl", None)
    monkeypatch.setattr(run_directory, "msvcrt", fake)
    lock = tmp_path / LOCK_FILE
    fd = run_directory._acquire(lock)
    try:
        assert lock.read_text() == f"{os.getpid()}\n"
        # The locked byte lies past the pid, which the refused writer reads.
        assert fake.positions == [run_directory._MSVCRT_LOCKED_BYTE]
        with pytest.raises(RunInUse, match=f"process {os.getpid()} is writing it"):
            run_directory._acquire(lock)
    finally:
        os.close(fd)
    os.close(run_directory._acquire(lock))  # released with the descriptor
