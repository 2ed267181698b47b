"""Provenance: a run names the code, command and machine it started on."""

from __future__ import annotations

import json

from genzoo.cli import main
from genzoo.utils import provenance


def test_command_line_names_the_entry_point_and_quotes_arguments(tmp_path):
    assert provenance.command_line(["/usr/bin/genzoo", "train", "rbm", "--set", "a=b c"]) == (
        "genzoo train rbm --set 'a=b c'")
    script = tmp_path / "bench" / "run.py"
    assert provenance.command_line([str(script), "x"], root=tmp_path) == "python bench/run.py x"
    assert provenance.command_line(["/elsewhere/run.py"], root=tmp_path) == (
        "python /elsewhere/run.py")


def test_an_installed_copy_has_no_commit_to_name(tmp_path):
    assert provenance.source_commit(tmp_path) == {"commit": "uncommitted", "dirty": True}


def test_machine_info_without_blas_skips_the_library_pools():
    info = provenance.machine_info(blas=False)
    assert info["cores"] >= 1 and info["torch"] and "blas" not in info


def test_busy_notes_only_on_a_loaded_machine():
    assert provenance.busy_notes("now", "rerun", load=0.0) == []
    (note,) = provenance.busy_notes("now", "rerun", load=1e6)
    assert "load average" in note and note.endswith("rerun")


def test_a_run_records_its_environment_when_it_starts(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "fvsbn", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", "data.n_train=100", "--set", "train.epochs=1",
                 "--set", "train.progress=false", "--set", "train.grid_samples=0",
                 "--out", str(run)]) == 0
    env = json.loads((run / "environment.json").read_text())
    assert env["genzoo"] == provenance.package_version("genzoo")
    assert set(env["git"]) == {"commit", "dirty"}
    assert env["machine"]["torch"] and env["machine"]["cores"] >= 1
    # a run holding it is still resumable, and it is one of the run's own files
    assert main(["train", "fvsbn", "--data", "digits", "--set", "data.binarize=threshold",
                 "--set", "data.n_train=100", "--set", "train.epochs=2",
                 "--set", "train.progress=false", "--set", "train.grid_samples=0",
                 "--resume", "--out", str(run)]) == 0
