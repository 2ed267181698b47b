"""Mistakes a user can make on the command line: each is refused before any work with exit
status 2 and one line naming the fix, never a traceback; no file outside the run changes and no
earlier result is lost.

Every case runs in one workspace holding a tiny trained run, a picture the user made, an
earlier genzoo report and an earlier genzoo picture; the whole workspace is compared byte for
byte before and after each refused command.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from genzoo.cli import main

TINY = [
    "--data", "digits", "--set", "data.binarize=threshold", "--set", "model.n_hidden=8",
    "--set", "train.epochs=1", "--set", "train.progress=false", "--set", "train.grid_samples=4",
    "--set", "model.sample_burn_in=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """The workspace: run/ (a trained RBM), user.png (not genzoo's), old.json and old.png
    (earlier genzoo results)."""
    root = tmp_path_factory.mktemp("ws")
    assert main(["train", "rbm", *TINY, "--out", str(root / "run")]) == 0
    Image.new("L", (4, 4), 200).save(root / "user.png")
    assert main(["evaluate", str(root / "run"), "--out", str(root / "old.json")]) == 0
    assert main(["sample", str(root / "run"), "-n", "4", "--out", str(root / "old.png")]) == 0
    return root


def _snapshot(root: Path) -> dict[str, str]:
    """relative path -> SHA-256 (or the kind of entry) of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink() or not p.is_file():
                out[rel] = "dir" if p.is_dir() else "other"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def refused(argv: list[str], capsys, root: Path, *fix: str) -> str:
    """Run ``genzoo argv``; assert exit status 2, one line of stderr holding every ``fix``
    text, no traceback, and ``root`` unchanged. Returns the line."""
    before = _snapshot(root)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for text in fix:
        assert text in err, err
    assert _snapshot(root) == before
    return err


# -- output paths -----------------------------------------------------------------------------

@pytest.mark.parametrize("cmd,name", [
    ("evaluate", "checkpoint.json"), ("evaluate", "config.json"),
    ("evaluate", "trainer_state.json"), ("sample", "samples.png"),
    ("sample", "model.safetensors"), ("filters", "checkpoint.json"), ("chain", ".lock.png"),
])  # fmt: skip
def test_a_file_of_the_run_is_never_an_output(ws, capsys, cmd, name):
    run = ws / "run"
    refused([cmd, str(run), "--out", str(run / name)], capsys, ws, "run directory",
            "choose another name")
    # --force does not make a run's own file writable.
    refused([cmd, str(run), "--out", str(run / name), "--force"], capsys, ws, "run directory")


def test_a_file_of_another_run_is_never_an_output(ws, capsys, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(ws / "run", other)
    before = _snapshot(tmp_path)
    refused(["sample", str(ws / "run"), "--out", str(other / "samples.png"), "--force"], capsys,
            ws, "run directory")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd", ["sample", "chain", "filters", "inpaint"])
def test_a_directory_is_never_turned_into_a_file(ws, capsys, cmd):
    # "o/" names a folder that does not exist yet: no file called "o" may appear.
    refused([cmd, str(ws / "run"), "--out", str(ws / "o") + "/"], capsys, ws, "is a directory",
            "give a file name")
    refused([cmd, str(ws / "run"), "--out", str(ws / "run")], capsys, ws, "is a directory")


@pytest.mark.parametrize("cmd,name,want", [
    ("sample", "s.jpg", ".png"), ("filters", "f.gif", ".png"), ("inpaint", "i", ".png"),
    ("chain", "c.mp4", ".gif or .png"), ("evaluate", "r.txt", ".json"),
])  # fmt: skip
def test_the_extension_must_match_the_format(ws, capsys, cmd, name, want):
    refused([cmd, str(ws / "run"), "--out", str(ws / name)], capsys, ws, f"ending in {want}")


@pytest.mark.parametrize("cmd,name", [("sample", "user.png"), ("evaluate", "user.json")])
def test_a_file_genzoo_did_not_write_needs_force(ws, capsys, tmp_path, cmd, name):
    target = tmp_path / name
    if name.endswith(".json"):
        target.write_text('{"mine": 1}\n')
    else:
        shutil.copy(ws / "user.png", target)
    mine = target.read_bytes()
    refused([cmd, str(ws / "run"), "--out", str(target)], capsys, tmp_path, "not written by genzoo",
            "--force")
    assert target.read_bytes() == mine
    args = ["-n", "4"] if cmd == "sample" else []
    assert main([cmd, str(ws / "run"), *args, "--out", str(target), "--force"]) == 0
    assert target.read_bytes() != mine


def test_an_earlier_genzoo_result_is_replaced_without_force(ws, tmp_path):
    out, report = tmp_path / "s.png", tmp_path / "r.json"
    for _ in range(2):
        assert main(["sample", str(ws / "run"), "-n", "4", "--out", str(out)]) == 0
        assert main(["evaluate", str(ws / "run"), "--out", str(report)]) == 0
    assert json.loads(report.read_text())["model"] == "rbm"


def test_a_fifo_or_a_symlink_is_not_an_output(ws, capsys, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "link.png").symlink_to(ws / "old.png")
    for name in ("pipe.png", "link.png"):
        refused(["sample", str(ws / "run"), "--out", str(tmp_path / name), "--force"], capsys,
                ws, "choose another name")


def test_an_unusable_folder_is_refused_before_the_work(ws, capsys):
    refused(["sample", str(ws / "run"), "--out", str(ws / "user.png" / "s.png")], capsys, ws,
            "is not a directory")
    if os.path.isdir("/proc/self"):  # a folder even root cannot create files in
        refused(["evaluate", str(ws / "run"), "--out", "/proc/genzoo-report.json"], capsys, ws,
                "is not writable")


def test_a_missing_parent_is_created(ws, tmp_path):
    out = tmp_path / "a" / "b" / "s.png"
    assert main(["sample", str(ws / "run"), "-n", "4", "--out", str(out)]) == 0
    assert out.is_file()


def test_evaluate_prints_its_figure_before_writing(ws, capsys, tmp_path, monkeypatch):
    """A write that fails after the check (a full disk) still leaves the figure on screen."""
    from genzoo.utils import io

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io, "atomic_write_text", full)
    capsys.readouterr()
    # --quiet: stderr then holds only the error (the progress lines are shown in
    # tests/cli/test_progress_cli.py).
    argv = ["evaluate", str(ws / "run"), "--json", "--quiet", "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "nll_nats" in json.loads(captured.out)
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "no space left" in captured.err and "free some space" in captured.err
    assert not (tmp_path / "r.json").exists()


# -- devices ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["evaluate", "sample", "chain", "inpaint"])
def test_an_unavailable_or_unknown_device_is_one_line(ws, capsys, cmd):
    out = str(ws / ("x.json" if cmd == "evaluate" else "x.png"))
    cuda = "cuda:99" if torch.cuda.is_available() else "cuda"
    fix = "cuda:0 to" if torch.cuda.is_available() else "use --device cpu"
    refused([cmd, str(ws / "run"), "--device", cuda, "--out", out], capsys, ws, fix)
    refused([cmd, str(ws / "run"), "--device", "gpu0", "--out", out], capsys, ws,
            "not a device", "use cpu, cuda or cuda:N")


# -- sizes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,fix", [
    (["sample", "-n", "1e9"], "use a smaller -n"),
    (["chain", "--steps", "1e9", "-n", "8"], "use a smaller -n or --steps"),
    (["chain", "-n", "1_000_000_000"], "use a smaller -n or --steps"),
])  # fmt: skip
def test_a_size_that_cannot_fit_is_refused_with_the_memory_it_needs(ws, capsys, argv, fix):
    out = ws / "huge.png"
    err = refused([argv[0], str(ws / "run"), *argv[1:], "--out", str(out)], capsys, ws, fix,
                  "needs about", "available")
    assert "TiB" in err or "PiB" in err


def test_a_model_that_cannot_fit_is_refused_before_anything_is_allocated(ws, capsys):
    # 10**12 hidden units: the training state is measured on the meta device and refused with
    # the number; the run directory is never created.
    out = ws / "huge-run"
    argv = ["train", "rbm", "--data", "digits", "--set", "data.binarize=threshold",
            "--set", "model.n_hidden=1000000000000", "--out", str(out)]  # fmt: skip
    err = refused(argv, capsys, ws, "use smaller model.* sizes", "needs about", "available")
    assert "TiB" in err and not out.exists()


def test_a_bad_number_on_the_command_line_is_one_line(ws, capsys):
    refused(["sample", str(ws / "run"), "-n", "many", "--out", str(ws / "x.png")], capsys, ws,
            "not a whole number", "--help")
    refused(["sample", str(ws / "run"), "-n", "0", "--out", str(ws / "x.png")], capsys, ws,
            "-n 0", "must be positive")


# -- data files -------------------------------------------------------------------------------

NPZ = "binarized_mnist/binarized_mnist.npz"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    real = Path(os.environ.get("GENZOO_DATA", "")) / NPZ
    data = real.read_bytes() if real.is_file() else b"PK\x03\x04" + bytes(4000)
    path.write_bytes(data[: len(data) // 2])


def _alarm(signum, frame):
    raise TimeoutError("genzoo blocked on a data file")


@pytest.mark.parametrize("make,fix", [
    (_fifo, "is a FIFO"), (_device, "is a character device"), (_empty, "is empty"),
    (_truncated, "is corrupt"),
])  # fmt: skip
def test_a_bad_data_file_names_the_file_and_the_fix(ws, capsys, tmp_path, monkeypatch, make, fix):
    data = tmp_path / "data"
    (data / "binarized_mnist").mkdir(parents=True)
    make(data / NPZ)
    monkeypatch.setenv("GENZOO_DATA", str(data))
    monkeypatch.setenv("GENZOO_OFFLINE", "1")
    out = ws / "bad-data-run"
    # A FIFO must never be opened: opening one without a writer would block this test forever.
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        refused(["train", "rbm", "--data", "binarized-mnist", "--set", "model.n_hidden=8",
                 "--out", str(out)], capsys, ws, NPZ, fix, "replace it with a good copy")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
